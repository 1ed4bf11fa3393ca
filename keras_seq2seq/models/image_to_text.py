"""`ImageToText`: a convolutional encoder under an attention decoder."""

import keras
from keras import ops

from keras_seq2seq.layers import AttentionDecoder, ConvolutionalEncoder
from keras_seq2seq.models.base import SequenceModel


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class ImageToText(SequenceModel):
    """Reads an image into text ("Show, Attend and Tell", Xu et al. 2015).

    A `ConvolutionalEncoder` turns the image into a memory of feature-map
    positions; an `AttentionDecoder` (the text models' own) attends over
    them while it writes the text, one token a step. Images arrive as
    pixels: `data.images.fit_image` (in the training pipeline and in the
    export's graph) brings any image to `image_height` x `image_width`.

    Trained with `compile` + `fit` on teacher-forced batches:
    `call({"images": [B, H, W, 1], "decoder_input_ids": [B, T]})` returns
    logits [B, T, vocabulary_size]. Decoding goes through `encode` and
    `step`, as for every `SequenceModel`.

    Args:
        vocabulary_size: size of the output vocabulary (the tokenizer's).
        image_height, image_width: the pixels the model reads.
        filters, pool_sizes, row_encoder, backbone, backbone_channels: the
            encoder's (see `ConvolutionalEncoder`).
        embedding_dim: size of the output token embeddings.
        units: size of the memory and of each decoder layer.
        decoder_layers: stacked decoder RNN layers.
        cell_type: `"lstm"` or `"gru"`.
        attention: a name from `layers.attention.ATTENTION_MECHANISMS`.
        attention_units: hidden size of additive attention mechanisms.
        input_feeding: feed the previous attentional vector to the decoder.
        dropout: dropout rate in encoder and decoder.

    Example:

    >>> model = ImageToText(vocabulary_size=20, image_height=32, image_width=96,
    ...                     filters=(16, 32), pool_sizes=((2, 2), (16, 2)), units=32)
    >>> model.build()
    >>> logits = model({"images": keras.random.uniform((2, 32, 96, 1)),
    ...                 "decoder_input_ids": ops.ones((2, 5), "int32")})
    """

    def __init__(
        self,
        vocabulary_size,
        image_height=32,
        image_width=192,
        filters=(32, 64, 128, 128),
        pool_sizes=((2, 2), (2, 2), (2, 1), (4, 1)),
        row_encoder=True,
        backbone=None,
        backbone_channels=3,
        embedding_dim=64,
        units=128,
        decoder_layers=1,
        cell_type="lstm",
        attention="bahdanau",
        attention_units=None,
        input_feeding=True,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention is None:
            raise ValueError("an image model reads the image through attention: "
                             "give an attention mechanism")
        self.vocabulary_size = vocabulary_size
        self.image_height = int(image_height)
        self.image_width = int(image_width)
        self.embedding_dim = embedding_dim
        self.units = units
        self.decoder_layers = decoder_layers
        self.cell_type = cell_type
        self.attention_name = attention
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.dropout = dropout
        self.encoder = ConvolutionalEncoder(
            units, filters=filters, pool_sizes=pool_sizes, row_encoder=row_encoder,
            cell_type=cell_type, dropout=dropout, backbone=backbone,
            backbone_channels=backbone_channels, name="encoder")
        self.feature_rows, self.feature_cols = self.encoder.feature_shape(
            self.image_height, self.image_width)
        self.target_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="target_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.decoder = AttentionDecoder(
            units, num_layers=decoder_layers, cell_type=cell_type, attention=attention,
            attention_units=attention_units, input_feeding=input_feeding, dropout=dropout,
            name="decoder")
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection")

    def build(self, input_shape=None):
        self.encoder.build((None, self.image_height, self.image_width, 1))
        self.target_embedding.build((None, None))
        self.decoder.build((None, None, self.embedding_dim), (None, None, self.units))
        self.output_projection.build((None, None, self.units))
        self.built = True

    # -- the SequenceModel interface --------------------------------------------

    def encode(self, images, training=False):
        """Images float32 [batch, image_height, image_width, 1] ->
        `(context, state)` of the decoder."""
        memory, states = self.encoder(images, training=training)
        context = self.decoder.prepare_context(memory, self.source_mask(images))
        return context, self.decoder.initial_state(states, context)

    def step(self, token_ids, state, context):
        """One token further: `(log_probs float32 [rows, vocabulary_size], state)`."""
        embedded = self.target_embedding(ops.convert_to_tensor(token_ids, "int32"))
        output, state = self.decoder.step(embedded, state, context, training=False)
        return ops.log_softmax(self.logits(output), axis=-1), state

    def logits(self, outputs):
        return ops.cast(self.output_projection(outputs), "float32")

    def length_limits(self, images, max_length):
        """Every output may use the whole buffer, `max_length` tokens."""
        return ops.full((ops.shape(images)[0],), max_length, "int32")

    def source_mask(self, images):
        """Every feature-map position is real: True [batch, rows * cols]."""
        return ops.ones((ops.shape(images)[0], self.feature_rows * self.feature_cols), "bool")

    @property
    def has_coverage(self):
        return True

    def coverage(self, state):
        return state["coverage"]

    @property
    def has_attention(self):
        return True

    def attention(self, state):
        return state["alignments"]

    # -- teacher-forced training --------------------------------------------------

    def call(self, inputs, training=False, return_attention=False):
        """Teacher-forced logits [batch, target, vocabulary_size] (float32);
        with `return_attention`, also the alignments [batch, target, rows * cols]."""
        context, state = self.encode(inputs["images"], training=training)
        embedded = self.embedding_dropout(self.target_embedding(
            ops.convert_to_tensor(inputs["decoder_input_ids"], "int32")), training=training)
        outputs, alignments = self.decoder(embedded, context, state, training=training)
        logits = self.logits(outputs)
        return (logits, alignments) if return_attention else logits

    def get_config(self):
        config = super().get_config()
        encoder = self.encoder.get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            image_height=self.image_height,
            image_width=self.image_width,
            **{key: encoder[key] for key in ("filters", "pool_sizes", "row_encoder", "backbone",
                                             "backbone_channels")},
            embedding_dim=self.embedding_dim,
            units=self.units,
            decoder_layers=self.decoder_layers,
            cell_type=self.cell_type,
            attention=self.attention_name,
            attention_units=self.attention_units,
            input_feeding=self.input_feeding,
            dropout=self.dropout,
        )
        return config
