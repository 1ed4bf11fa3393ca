"""The convolutional encoder: images -> a memory of feature-map positions."""

import math

import keras
from keras import ops

from keras_seq2seq.layers.encoder import RNNEncoder


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class ConvolutionalEncoder(keras.layers.Layer):
    """Images -> one memory vector per feature-map position (Xu et al. 2015).

    A stack of blocks `Conv2D 3x3 -> BatchNormalization -> ReLU ->
    MaxPooling2D`, trained from scratch (or any Keras `backbone` that maps
    images to a feature map, e.g. a `keras.applications` model without its
    top, with the user's weights), then:

    - with `row_encoder` (Deng et al. 2017, "Image-to-Markup Generation
      with Coarse-to-Fine Attention"), a bidirectional RNN reads each row of
      the feature map left to right, so that every position knows where it
      stands in its row; the decoder starts from its final states,
      averaged over rows;
    - without, a dense projection of each position, and the decoder starts
      from `tanh(W mean(memory))` (Xu et al. 2015, section 3.1.2).

    The memory lists positions row by row: position `r * cols + c` is
    feature-map cell (r, c), which covers about
    `(height / rows, width / cols)` pixels of the input.

    Args:
        units: size of each memory vector (and of the decoder it feeds).
        filters: output channels of each convolutional block.
        pool_sizes: `(rows, cols)` max-pooling of each block ("same"
            padding: a side of n becomes ceil(n / pool)).
        row_encoder: read rows with a bidirectional RNN (see above).
        cell_type: `"lstm"` or `"gru"`, of the row encoder and of the
            states given to the decoder.
        dropout: dropout rate on the feature map.
        backbone: optional Keras layer or model, float [batch, h, w, c] ->
            [batch, rows, cols, channels], used instead of the blocks.
        backbone_channels: the `c` the backbone takes; grey images are
            repeated to it (3 for `keras.applications` models).

    Call arguments:
        images: float [batch, height, width, channels] in [0, 1].
        training: whether dropout and batch statistics are active.
        fused_lstm: `RNNEncoder`'s, for the row encoder.

    Returns:
        `(memory, states)`: memory float [batch, rows * cols, units]; states
        as `RNNEncoder` gives them (a list with one `[h, c]` or `[h]` entry).

    Example:

    >>> encoder = ConvolutionalEncoder(64, filters=(16, 32), pool_sizes=((2, 2), (4, 2)))
    >>> memory, states = encoder(keras.random.uniform((2, 32, 96, 1)))
    >>> memory.shape, encoder.feature_shape(32, 96)
    ((2, 96, 64), (4, 24))
    """

    def __init__(self, units, filters=(32, 64, 128, 128),
                 pool_sizes=((2, 2), (2, 2), (2, 1), (4, 1)), row_encoder=True,
                 cell_type="lstm", dropout=0.0, backbone=None, backbone_channels=3, **kwargs):
        super().__init__(**kwargs)
        if cell_type not in ("lstm", "gru"):
            raise ValueError(f"cell_type must be 'lstm' or 'gru', got {cell_type!r}")
        filters = [int(f) for f in filters]
        pool_sizes = [tuple(int(p) for p in pool) for pool in pool_sizes]
        if backbone is None and (not filters or len(filters) != len(pool_sizes)):
            raise ValueError(f"filters and pool_sizes need one entry per block, got "
                             f"{len(filters)} filters and {len(pool_sizes)} pool sizes")
        if any(len(pool) != 2 or min(pool) < 1 for pool in pool_sizes):
            raise ValueError(f"each pool size is (rows, cols) >= 1, got {pool_sizes}")
        self.units = units
        self.filters = filters
        self.pool_sizes = pool_sizes
        self.row_encoder = bool(row_encoder)
        self.cell_type = cell_type
        self.dropout = dropout
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.backbone = backbone
        self.backbone_channels = int(backbone_channels)
        self.blocks = []
        if backbone is None:
            for i, (count, pool) in enumerate(zip(filters, pool_sizes)):
                self.blocks += [
                    keras.layers.Conv2D(count, 3, padding="same", use_bias=False,
                                        name=f"convolution_{i}"),
                    keras.layers.BatchNormalization(name=f"batch_normalization_{i}"),
                    keras.layers.ReLU(name=f"relu_{i}"),
                    keras.layers.MaxPooling2D(pool, padding="same", name=f"pooling_{i}"),
                ]
        self.feature_dropout = keras.layers.Dropout(dropout)
        if self.row_encoder:
            self.rows_rnn = RNNEncoder(units, cell_type=cell_type, bidirectional=True,
                                       name="row_encoder")
        else:
            self.projection = keras.layers.Dense(units, name="projection")
            self.state_projections = [
                keras.layers.Dense(units, activation="tanh", name=f"initial_{part}")
                for part in (("h", "c") if cell_type == "lstm" else ("h",))]

    def feature_shape(self, height, width):
        """`(rows, cols)` of the feature map of a `height` x `width` image."""
        if self.backbone is not None:
            shape = self.backbone.compute_output_shape((1, height, width, self.backbone_channels))
            return int(shape[1]), int(shape[2])
        for pool_rows, pool_cols in self.pool_sizes:
            height, width = math.ceil(height / pool_rows), math.ceil(width / pool_cols)
        return height, width

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.backbone is not None:
            shape = shape[:-1] + (self.backbone_channels,)
            if not self.backbone.built:
                self.backbone.build(shape)
            shape = tuple(self.backbone.compute_output_shape(shape))
        for block in self.blocks:
            block.build(shape)
            shape = tuple(block.compute_output_shape(shape))
        if self.row_encoder:
            self.rows_rnn.build((None, None, shape[-1]))
        else:
            self.projection.build((None, None, shape[-1]))
            for dense in self.state_projections:
                dense.build((None, self.units))
        self.built = True

    def call(self, images, training=False, fused_lstm=False):
        x = ops.cast(images, self.compute_dtype)
        if self.backbone is not None:
            if x.shape[-1] != self.backbone_channels:
                x = ops.repeat(x, self.backbone_channels // x.shape[-1], axis=-1)
            x = self.backbone(x, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.feature_dropout(x, training=training)
        batch, rows, cols = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        if self.row_encoder:
            memory, states = self.rows_rnn(
                ops.reshape(x, (batch * rows, cols, x.shape[-1])), training=training,
                fused_lstm=fused_lstm)
            memory = ops.reshape(memory, (batch, rows * cols, self.units))
            states = [[ops.mean(ops.reshape(s, (batch, rows, self.units)), axis=1)
                       for s in layer] for layer in states]
            return memory, states
        memory = self.projection(ops.reshape(x, (batch, rows * cols, x.shape[-1])))
        mean = ops.mean(memory, axis=1)
        return memory, [[dense(mean) for dense in self.state_projections]]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            filters=self.filters,
            pool_sizes=self.pool_sizes,
            row_encoder=self.row_encoder,
            cell_type=self.cell_type,
            dropout=self.dropout,
            backbone=(keras.saving.serialize_keras_object(self.backbone)
                      if self.backbone is not None else None),
            backbone_channels=self.backbone_channels,
        )
        return config
