"""Strided 2-D convolutions over a spectrogram, before a recurrent encoder."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class ConvolutionalSubsampling(keras.layers.Layer):
    """Convolutions over time and frequency that halve both, one per entry of
    `filters` (the convolutional front-end of ESPnet's and of Hori et al.
    2017's encoders): local time-frequency patterns are found before the
    recurrent layers, which then read 2**len(filters) times fewer steps.

    Each convolution is 3x3 with stride 2 and ReLU, over the features padded
    by one step and one bin on each side, so a sequence of n steps always
    becomes ceil(n / 2) (TensorFlow's "same" padding would shift its window
    with the parity of the batch's longest sequence, and a recording would
    read differently alone and in a batch). Outputs past each sequence's end
    are set to 0, as the features are, for the same reason.

    Args:
        filters: the channels of each convolution.

    Call arguments:
        inputs: float [batch, time, features].
        mask: bool [batch, time], True on real steps.

    Returns:
        `(outputs, mask)`: float [batch, reduced, reduced_features * filters[-1]]
        (`reduced_features`: `features` halved, rounded up, per convolution)
        and bool [batch, reduced]; `reduced` = ceil(time / 2**len(filters)).

    Example:

    >>> subsampling = ConvolutionalSubsampling((8, 16))
    >>> outputs, mask = subsampling(keras.random.normal((2, 50, 40)),
    ...                             ops.arange(50)[None, :] < ops.array([[50], [21]]))
    >>> outputs.shape
    (2, 13, 160)
    >>> ops.convert_to_numpy(ops.sum(ops.cast(mask, "int32"), axis=1))
    array([13,  6], dtype=int32)
    """

    def __init__(self, filters=(32, 32), **kwargs):
        super().__init__(**kwargs)
        filters = [int(f) for f in filters]
        if not filters or min(filters) < 1:
            raise ValueError(f"filters needs one entry >= 1 per convolution, got {filters}")
        self.filters = filters
        self.convolutions = [keras.layers.Conv2D(f, 3, strides=2, padding="valid",
                                                 activation="relu", name=f"convolution_{i}")
                             for i, f in enumerate(filters)]
        self.supports_masking = True

    def reduced_lengths(self, lengths):
        """int32 [batch]: steps left of sequences of `lengths` steps."""
        lengths = ops.cast(lengths, "int32")
        for _ in self.filters:
            lengths = (lengths + 1) // 2
        return lengths

    def output_features(self, features):
        """The size of each output step, for inputs of `features` per step."""
        for _ in self.filters:
            features = (features + 1) // 2
        return features * self.filters[-1]

    def build(self, input_shape):
        channels = 1
        for convolution in self.convolutions:
            convolution.build((None, None, None, channels))
            channels = convolution.filters
        self.built = True

    def call(self, inputs, mask=None):
        x = ops.expand_dims(inputs, -1)  # builtin in TFLite, unlike [..., None]
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], "bool")
        for convolution in self.convolutions:
            x = convolution(ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]))
            mask = mask[:, ::2]
            x = x * ops.cast(mask, x.dtype)[:, :, None, None]
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], x.shape[2] * x.shape[3])), mask

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config
