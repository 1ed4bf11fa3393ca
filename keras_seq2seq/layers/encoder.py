"""Recurrent encoders."""

import keras
from keras import ops
import tensorflow as tf

from keras_seq2seq.layers.lstm_sequence import (
    fused_lstm_sequence,
    lstm_sequence,
    runs_lstm_sequence,
)


def reverse_valid_steps(sequences, mask):
    """Reverses each row's unpadded steps, leaving the padding at the end.

    Args:
        sequences: [batch, time, ...].
        mask: bool [batch, time], True on real steps (a prefix of each row).
    """
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    return tf.reverse_sequence(sequences, lengths, seq_axis=1, batch_axis=0)


class _Untracked:
    """Holds objects where Keras' attribute tracking does not look (neither
    as sublayers nor in saved files)."""

    def __init__(self, *objects):
        self.objects = objects


# Batches of at most this many sequences encode through the fused kernel
# (`fused_lstm`). It runs a sequence as one operation, but its products are
# Eigen's, not oneDNN's: with two intra-op threads, 32 sequences of the
# speech recipe's 75 steps took 16.2 ms against 11.5-13.4 for Keras' loop,
# while up to 8 it took about half as long and at 16 as long (one-off
# microbenchmark, 2-core AMD EPYC); with one thread it was as fast or faster
# at every size.
FUSED_LSTM_MAX_ROWS = 16


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class RNNEncoder(keras.layers.Layer):
    """A stack of (bidirectional) LSTM or GRU layers over embedded tokens.

    Args:
        units: size of each layer's output. A bidirectional layer gives each
            direction `units // 2`, so outputs and final states are `units`
            wide either way (as OpenNMT's `brnn`).
        num_layers: number of stacked layers.
        cell_type: `"lstm"` or `"gru"`.
        bidirectional: read the sequence both ways.
        dropout: dropout rate between layers.
        reverse_input: reverse each sequence's real steps before encoding
            (Sutskever et al. 2014). Outputs stay in reversed order, which
            attention does not mind.

    In training on CPU, LSTM layers run through `lstm_sequence` (the same
    function with a faster backward pass; see `layers/lstm_sequence.py`);
    with `fused_lstm`, through TensorFlow's fused kernel.

    Call arguments:
        inputs: float [batch, time, features].
        mask: bool [batch, time], True on real steps; padded steps neither
            update the state nor change any output at a real step.
        training: whether dropout is active.
        fused_lstm: outside training, run float32 (or float16) LSTM layers
            of batches of up to `FUSED_LSTM_MAX_ROWS` sequences as
            TensorFlow's fused `BlockLSTMV2` operation
            (`fused_lstm_sequence`): the same outputs, one operation a
            layer and direction instead of a loop, for graph-mode searches
            (XLA and TFLite have no such operation). The mask's real steps
            must then be a prefix of each row. GRU layers ignore it.

    Returns:
        `(outputs, states)`: outputs float [batch, time, units]; states a list
        with one entry per layer, each a list of [batch, units] tensors
        (`[h, c]` for LSTM, `[h]` for GRU).

    Example:

    >>> encoder = RNNEncoder(units=128, num_layers=2, bidirectional=True)
    >>> outputs, states = encoder(keras.random.normal((4, 7, 32)))
    >>> outputs.shape
    (4, 7, 128)
    """

    def __init__(
        self,
        units,
        num_layers=1,
        cell_type="lstm",
        bidirectional=True,
        dropout=0.0,
        reverse_input=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell_type not in ("lstm", "gru"):
            raise ValueError(f"cell_type must be 'lstm' or 'gru', got {cell_type!r}")
        if bidirectional and units % 2:
            raise ValueError(f"a bidirectional encoder needs even units, got {units}")
        self.units = units
        self.num_layers = num_layers
        self.cell_type = cell_type
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.reverse_input = reverse_input
        # The mask is taken explicitly; outputs carry none (padded steps are zeroed).
        self.supports_masking = True

        rnn_class = keras.layers.LSTM if cell_type == "lstm" else keras.layers.GRU
        layer_units = units // 2 if bidirectional else units
        self.rnn_layers = []
        templates = []
        for i in range(num_layers):
            rnn = rnn_class(
                layer_units,
                return_sequences=True,
                return_state=True,
                name=f"{cell_type}_{i}",
            )
            if bidirectional:
                templates.append(rnn)
                rnn = keras.layers.Bidirectional(rnn, name=f"bidirectional_{i}")
            self.rnn_layers.append(rnn)
        # `Bidirectional` makes its two directions from the layer it is given
        # by serializing it. While a .keras file loads, Keras notes every
        # serialized object by its id(), so a template freed here could hand
        # its id to a later object, which the load then takes for a copy of
        # this one ("Forward layer and backward layer should have different
        # `go_backwards` value", now and then). Kept, no id is reused.
        self._bidirectional_templates = _Untracked(*templates)
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for rnn in self.rnn_layers:
            rnn.build(shape)
            shape = shape[:-1] + (self.units,)
        self.built = True

    def call(self, inputs, mask=None, training=False, fused_lstm=False):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        mask = ops.cast(mask, "bool")
        if not (fused_lstm and not training and self.cell_type == "lstm"
                and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "float16")):
            return self._encode(inputs, mask, training, fused=False)
        return tf.cond(tf.shape(inputs)[0] <= FUSED_LSTM_MAX_ROWS,
                       lambda: self._encode(inputs, mask, training, fused=True),
                       lambda: self._encode(inputs, mask, training, fused=False))

    def _encode(self, inputs, mask, training, fused):
        x = inputs
        if self.reverse_input:
            x = reverse_valid_steps(x, mask)
        states = []
        for i, rnn in enumerate(self.rnn_layers):
            if i > 0:
                x = self.dropout_layer(x, training=training)
            if self._runs_lstm_sequence(rnn) and (training or fused):
                run = lstm_sequence if training else fused_lstm_sequence
                x, layer_states = self._lstm_layer(run, rnn, x, mask)
                states.append(layer_states)
                continue
            outputs = rnn(x, mask=mask, training=training)
            x, layer_states = outputs[0], list(outputs[1:])
            if self.bidirectional:
                half = len(layer_states) // 2
                layer_states = [
                    ops.concatenate([f, b], axis=-1)
                    for f, b in zip(layer_states[:half], layer_states[half:])
                ]
            states.append(layer_states)
        # Padded steps carry copies of earlier outputs; zero them so that
        # nothing downstream can depend on what the padding held.
        x = x * ops.cast(mask, x.dtype)[:, :, None]
        return x, states

    def _directions(self, rnn):
        return [rnn.forward_layer, rnn.backward_layer] if self.bidirectional else [rnn]

    def _runs_lstm_sequence(self, rnn):
        return all(runs_lstm_sequence(layer.cell) for layer in self._directions(rnn))

    def _lstm_layer(self, run, rnn, x, mask):
        """What `rnn(x, mask=mask)` computes, through `run` (`lstm_sequence`,
        whose hand-written backward pass is the faster one, or
        `fused_lstm_sequence`): `(outputs, [h, c])`, the directions' outputs
        and states concatenated."""
        results = [run(x, layer.cell, mask=mask, go_backwards=layer.go_backwards)
                   for layer in self._directions(rnn)]
        outputs, h, c = (ops.concatenate(parts, axis=-1) for parts in zip(*results))
        return outputs, [h, c]

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            num_layers=self.num_layers,
            cell_type=self.cell_type,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            reverse_input=self.reverse_input,
        )
        return config
