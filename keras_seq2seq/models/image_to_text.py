"""`ImageToText`: a convolutional encoder under an attention decoder."""

import keras
from keras import ops

from keras_seq2seq.layers import ConvolutionalEncoder
from keras_seq2seq.models.encoder_attention_decoder import EncoderAttentionDecoder


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class ImageToText(EncoderAttentionDecoder):
    """Reads an image into text ("Show, Attend and Tell", Xu et al. 2015).

    A `ConvolutionalEncoder` turns the image into a memory of feature-map
    positions; an `AttentionDecoder` (the text models' own) attends over
    them while it writes the text, one token a step. Images arrive as
    pixels: `data.images.fit_image` (in the training pipeline and in the
    export's graph) brings any image to `image_height` x `image_width`.

    Trained with `compile` + `fit` on teacher-forced batches:
    `call({"images": [B, H, W, 1], "decoder_input_ids": [B, T]})` returns
    logits [B, T, vocabulary_size]. Decoding goes through `encode(images)`
    and `step`, as for every `SequenceModel`.

    Args:
        vocabulary_size: size of the output vocabulary (the tokenizer's).
        image_height, image_width: the pixels the model reads.
        filters, pool_sizes, row_encoder, backbone, backbone_channels: the
            encoder's (see `ConvolutionalEncoder`).
        **kwargs: the decoder's (see `EncoderAttentionDecoder`: embedding_dim,
            units, decoder_layers, cell_type, attention, attention_units,
            input_feeding, dropout).

    Example:

    >>> model = ImageToText(vocabulary_size=20, image_height=32, image_width=96,
    ...                     filters=(16, 32), pool_sizes=((2, 2), (16, 2)), units=32)
    >>> model.build()
    >>> logits = model({"images": keras.random.uniform((2, 32, 96, 1)),
    ...                 "decoder_input_ids": ops.ones((2, 5), "int32")})
    """

    def __init__(self, vocabulary_size, image_height=32, image_width=192,
                 filters=(32, 64, 128, 128), pool_sizes=((2, 2), (2, 2), (2, 1), (4, 1)),
                 row_encoder=True, backbone=None, backbone_channels=3, **kwargs):
        super().__init__(vocabulary_size, **kwargs)
        self.image_height = int(image_height)
        self.image_width = int(image_width)
        self.encoder = ConvolutionalEncoder(
            self.units, filters=filters, pool_sizes=pool_sizes, row_encoder=row_encoder,
            cell_type=self.cell_type, dropout=self.dropout, backbone=backbone,
            backbone_channels=backbone_channels, name="encoder")
        self.feature_rows, self.feature_cols = self.encoder.feature_shape(
            self.image_height, self.image_width)

    def build_encoder(self):
        self.encoder.build((None, self.image_height, self.image_width, 1))

    def encoder_outputs(self, images, training=False, fused_lstm=False):
        """Images float32 [batch, image_height, image_width, 1] -> memory, states."""
        return self.encoder(images, training=training, fused_lstm=fused_lstm)

    def source_inputs(self, inputs):
        return inputs["images"]

    def source_mask(self, images):
        """Every feature-map position is real: True [batch, rows * cols]."""
        return ops.ones((ops.shape(images)[0], self.feature_rows * self.feature_cols), "bool")

    def get_config(self):
        config = super().get_config()
        encoder = self.encoder.get_config()
        config.update(
            image_height=self.image_height,
            image_width=self.image_width,
            **{key: encoder[key] for key in ("filters", "pool_sizes", "row_encoder", "backbone",
                                             "backbone_channels")},
        )
        return config
