"""The pyramidal recurrent encoder of Listen, Attend and Spell (Chan et al. 2016)."""

import keras
from keras import ops

from keras_seq2seq.layers.encoder import RNNEncoder


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class PyramidalEncoder(keras.layers.Layer):
    """Bidirectional RNN layers, each reading a sequence shortened by stacking.

    Before layer i, every `reductions[i]` consecutive steps are concatenated
    into one (the sequence padded to a multiple first), so the sequence
    shrinks by the product of `reductions`: 100 frames a second of speech
    become 12.5 memory positions a second with (2, 2, 2), which an
    attention decoder can read and a CPU can train. Each layer is a
    bidirectional `RNNEncoder`, whose masking, state handling and faster
    LSTM training it keeps.

    Args:
        units: size of each layer's output (each direction `units // 2`).
        reductions: per layer, how many steps become one before it reads them.
        cell_type: `"lstm"` or `"gru"`.
        dropout: dropout rate between layers.

    Call arguments:
        inputs: float [batch, time, features].
        mask: bool [batch, time], True on real steps.
        training: whether dropout is active.
        fused_lstm: `RNNEncoder`'s, for each layer.

    Returns:
        `(outputs, states, mask)`: outputs float [batch, reduced, units], the
        last layer's final states (as `RNNEncoder`), and bool [batch, reduced],
        True on steps that hold at least one real input step.

    Example:

    >>> encoder = PyramidalEncoder(64, reductions=(2, 2))
    >>> outputs, states, mask = encoder(keras.random.normal((2, 50, 40)))
    >>> outputs.shape
    (2, 13, 64)
    """

    def __init__(self, units, reductions=(2, 2, 2), cell_type="lstm", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        reductions = [int(r) for r in reductions]
        if not reductions or min(reductions) < 1:
            raise ValueError(f"reductions needs one entry >= 1 per layer, got {reductions}")
        self.units = units
        self.reductions = reductions
        self.cell_type = cell_type
        self.dropout = dropout
        self.layers_ = [RNNEncoder(units, cell_type=cell_type, bidirectional=True,
                                   name=f"layer_{i}") for i in range(len(reductions))]
        self.dropout_layer = keras.layers.Dropout(dropout)
        # The mask is taken explicitly and returned reduced.
        self.supports_masking = True

    def reduced_lengths(self, lengths):
        """int32 [batch]: steps left of sequences of `lengths` steps."""
        lengths = ops.cast(lengths, "int32")
        for r in self.reductions:
            lengths = (lengths + r - 1) // r
        return lengths

    def build(self, input_shape):
        features = input_shape[-1]
        for layer, r in zip(self.layers_, self.reductions):
            layer.build((None, None, features * r))
            features = self.units
        self.built = True

    def call(self, inputs, mask=None, training=False, fused_lstm=False):
        x = inputs
        if mask is None:
            mask = ops.ones(ops.shape(x)[:2], "bool")
        for i, (layer, r) in enumerate(zip(self.layers_, self.reductions)):
            if i > 0:
                x = self.dropout_layer(x, training=training)
            x, mask = _stack_steps(x, mask, r)
            x, states = layer(x, mask=mask, training=training, fused_lstm=fused_lstm)
        return x, states[-1:], mask

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, reductions=self.reductions, cell_type=self.cell_type,
                      dropout=self.dropout)
        return config


def _stack_steps(x, mask, r):
    """[B, T, F], [B, T] -> [B, ceil(T / r), r * F], [B, ceil(T / r)]."""
    if r == 1:
        return x, mask
    batch, time = ops.shape(x)[0], ops.shape(x)[1]
    padding = (r - time % r) % r
    x = ops.pad(x, [[0, 0], [0, padding], [0, 0]])
    mask = ops.pad(mask, [[0, 0], [0, padding]])
    steps = (time + padding) // r
    return (ops.reshape(x, (batch, steps, r * x.shape[-1])),
            ops.any(ops.reshape(mask, (batch, steps, r)), axis=-1))
