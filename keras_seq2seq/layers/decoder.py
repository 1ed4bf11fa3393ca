"""The attention decoder: one step function, used for training and decoding."""

import keras
from keras import ops
import tensorflow as tf

from keras_seq2seq.layers.attention import AttentionMechanism, get_attention
from keras_seq2seq.layers.decoder_recurrence import decoder_recurrence, runs_decoder_recurrence
from keras_seq2seq.layers.lstm_sequence import (
    kernel_matmul, lstm_sequence, lstm_step, runs_lstm_sequence)


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class AttentionDecoder(keras.layers.Layer):
    """A stacked LSTM/GRU decoder with optional attention and input feeding.

    Each step follows Luong et al. (2015):

        x_t = [embedding(y_{t-1}); h~_{t-1}]     (h~ fed back: input feeding)
        h_t = RNN stack(x_t)
        c_t, a_t = attention(h_t, memory)
        h~_t = tanh(W_c [c_t; h_t])               (the "attentional" output)

    Without attention, `h~_t = h_t` and the decoder is that of Sutskever et
    al. (2014). `step` is the single definition of this recurrence. `call`
    applies it over a whole teacher-forced target, either through a loop over
    `step` or, when no step depends on the one before except through the RNN
    (no input feeding, no location-sensitive attention), with whole-sequence
    RNN layers and one batched attention, which computes the same function
    faster. In training on CPU, LSTM decoders run the same function with a
    faster gradient and the Keras layers' weights: the whole-sequence path
    through `lstm_sequence` (see `layers/lstm_sequence.py`), the loop
    through `decoder_recurrence` (see `layers/decoder_recurrence.py`).

    Args:
        units: size of each RNN layer and of the output.
        num_layers: stacked RNN layers.
        cell_type: `"lstm"` or `"gru"`.
        attention: `None`, a name from `layers.attention.ATTENTION_MECHANISMS`,
            or an `AttentionMechanism`.
        attention_units: hidden size of additive attention mechanisms.
        input_feeding: feed the previous attentional vector to the first RNN
            layer.
        dropout: dropout rate on RNN outputs between layers and on the output.
        attention_options: more constructor arguments of the named attention
            mechanism (`layers.attention.get_attention`), e.g. `{"filters":
            16, "kernel_size": 31}` for `"location_sensitive"`.

    The decoder state is a dict of [batch, ...] tensors: `"rnn"` (per layer a
    list `[h, c]` or `[h]`), `"attentional"` [batch, units], and, with
    attention, `"alignments"` [batch, source] (the last step's) and
    `"coverage"` [batch, source] (their running sum). The per-source context is
    a dict `{"memory", "keys", "mask"}` from `prepare_context`. `step` may take
    more state rows than the context has sources: k rows a source, in order
    (the hypotheses of a beam search), which share their source's context
    instead of each reading a copy.

    Example:

    >>> decoder = AttentionDecoder(units=128, attention="luong_general")
    >>> context = decoder.prepare_context(memory, source_mask)
    >>> state = decoder.initial_state(encoder_states, context)
    >>> outputs, alignments = decoder(target_embeddings, context, state)
    """

    def __init__(
        self,
        units,
        num_layers=1,
        cell_type="lstm",
        attention="luong_general",
        attention_units=None,
        input_feeding=True,
        dropout=0.0,
        attention_options=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell_type not in ("lstm", "gru"):
            raise ValueError(f"cell_type must be 'lstm' or 'gru', got {cell_type!r}")
        self.units = units
        self.num_layers = num_layers
        self.cell_type = cell_type
        self.attention_units = attention_units or units
        self.input_feeding = bool(input_feeding and attention is not None)
        self.dropout = dropout
        self.attention_options = dict(attention_options or {})
        if self.attention_options and not isinstance(attention, str):
            raise ValueError("attention_options are the constructor arguments of a named "
                             f"attention mechanism; attention is {attention!r}")
        if isinstance(attention, AttentionMechanism):
            self.attention = attention
            self.attention_name = None
        elif attention is None:
            self.attention = None
            self.attention_name = None
        else:
            self.attention = get_attention(attention, self.attention_units,
                                           self.attention_options)
            self.attention_name = attention

        rnn_class = keras.layers.LSTM if cell_type == "lstm" else keras.layers.GRU
        # Whole-sequence layers serve the fast training path; their `.cell`
        # serves `step`. Both use the same weights.
        self.rnn_layers = [
            rnn_class(units, return_sequences=True, return_state=True, name=f"{cell_type}_{i}")
            for i in range(num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(dropout)
        if self.attention is not None:
            self.attentional_projection = keras.layers.Dense(
                units, activation="tanh", use_bias=False, name="attentional_projection"
            )

    @property
    def state_size_per_layer(self):
        return 2 if self.cell_type == "lstm" else 1

    @property
    def runs_step_by_step(self):
        """Whether training must loop over `step` (see the class docstring)."""
        return self.input_feeding or (
            self.attention is not None and self.attention.uses_previous_alignments
        )

    def build(self, inputs_shape, memory_shape=None):
        feature_dim = inputs_shape[-1] + (self.units if self.input_feeding else 0)
        for rnn in self.rnn_layers:
            rnn.build((None, None, feature_dim))
            feature_dim = self.units
        if self.attention is not None:
            memory_dim = memory_shape[-1] if memory_shape is not None else self.units
            self.attention.build((None, None, self.units), (None, None, memory_dim))
            self.attentional_projection.build((None, memory_dim + self.units))
        self.built = True

    def prepare_context(self, memory, mask):
        """The per-source constants every step reads."""
        keys = self.attention.process_memory(memory) if self.attention is not None else memory
        return {"memory": memory, "keys": keys, "mask": ops.cast(mask, "bool")}

    def initial_state(self, encoder_states, context):
        """The decoder state before the first step.

        Decoder layer i starts from encoder layer i's final state (the top
        encoder layer's, when the decoder has more layers).
        """
        batch = ops.shape(context["memory"])[0]
        source = ops.shape(context["memory"])[1]
        rnn = [
            list(encoder_states[min(i, len(encoder_states) - 1)])
            for i in range(self.num_layers)
        ]
        for layer_state in rnn:
            if len(layer_state) != self.state_size_per_layer:
                raise ValueError("encoder and decoder must use the same cell_type")
        state = {"rnn": rnn, "attentional": ops.zeros((batch, self.units), dtype=self.compute_dtype)}
        if self.attention is not None:
            state["alignments"] = ops.zeros((batch, source), dtype="float32")
            state["coverage"] = ops.zeros((batch, source), dtype="float32")
        return state

    def step_weights(self, matmul_dtype=None):
        """The weights `step` reads, in the compute dtype.

        Under mixed precision every read of a variable casts it; a loop over
        many steps reads them once, before the loop, and hands them to each
        `step` (which otherwise reads them itself).

        Args:
            matmul_dtype: the kernels' dtype, if not the compute dtype:
                "bfloat16" makes a float32 decoder's matrix products
                bfloat16 ones (`kernel_matmul`), its biases, gates and
                attention staying float32.
        """
        dtype = self.compute_dtype
        kernel_dtype = matmul_dtype or dtype
        weights = {}
        if self.cell_type == "lstm":
            weights["rnn"] = [[ops.cast(rnn.cell.kernel, kernel_dtype),
                               ops.cast(rnn.cell.recurrent_kernel, kernel_dtype),
                               ops.cast(rnn.cell.bias, dtype)]
                              for rnn in self.rnn_layers]
        if self.attention is not None:
            weights["attentional"] = ops.cast(self.attentional_projection.kernel, kernel_dtype)
        return weights

    def step(self, inputs, state, context, training=False, weights=None):
        """One decoder step.

        Args:
            inputs: embedded previous tokens, [rows, embedding_dim].
            state: the decoder state (see the class docstring), [rows, ...].
            context: from `prepare_context`, [sources, ...]: rows
                `i * k` to `i * k + k - 1` read source i's, k being
                rows // sources.
            weights: `step_weights()`, read once by a loop that runs many
                steps; None reads them here.

        Returns:
            `(output, new_state)`: output [batch, units], the attentional
            vector that the output layer turns into logits.
        """
        if weights is None:
            weights = self.step_weights()
        x = inputs
        if self.input_feeding:
            x = ops.concatenate([x, ops.cast(state["attentional"], x.dtype)], axis=-1)
        new_rnn = []
        for i, rnn in enumerate(self.rnn_layers):
            if i > 0:
                x = self.dropout_layer(x, training=training)
            if self.cell_type == "lstm":
                x, layer_state = lstm_step(x, state["rnn"][i], *weights["rnn"][i])
            else:
                x, layer_state = rnn.cell(x, state["rnn"][i], training=training)
            new_rnn.append(list(layer_state) if isinstance(layer_state, (list, tuple)) else [layer_state])
        new_state = dict(state, rnn=new_rnn)
        if self.attention is None:
            output = x
        else:
            previous = state["alignments"]
            if self.attention.cumulative:
                previous = state["coverage"]
            # The rows of a source are its queries: [sources, k, ...].
            memory = context["memory"]
            sources, source = ops.shape(memory)[0], ops.shape(memory)[1]
            attended, alignments = self.attention(
                ops.reshape(x, (sources, -1, self.units)),
                memory,
                keys=context["keys"],
                mask=context["mask"],
                previous_alignments=ops.reshape(previous, (sources, -1, source)),
            )
            # Back to [rows, ...] with the rows' own (possibly static) count:
            # a fixed-shape batch keeps its shape through a training loop.
            rows = ops.shape(x)[0]
            alignments = ops.reshape(alignments, (rows, source))
            attended = ops.reshape(attended, (rows, memory.shape[-1]))
            output = ops.tanh(kernel_matmul(
                ops.concatenate([attended, x], axis=-1), weights["attentional"]))
            new_state["alignments"] = alignments
            new_state["coverage"] = state["coverage"] + alignments
        output = self.dropout_layer(output, training=training)
        new_state["attentional"] = output
        return output, new_state

    def call(self, inputs, context, initial_state, training=False):
        """Runs the decoder over a whole teacher-forced target.

        Args:
            inputs: embedded decoder inputs, [batch, target, embedding_dim].
            context: from `prepare_context`.
            initial_state: from `initial_state`.

        Returns:
            `(outputs, alignments)`: outputs [batch, target, units];
            alignments [batch, target, source] float32 (None without attention).
        """
        # Keras casts floating call arguments to the compute dtype; attention
        # alignments and coverage are kept in float32 (see `initial_state`).
        initial_state = dict(initial_state)
        for key in ("alignments", "coverage"):
            if key in initial_state:
                initial_state[key] = ops.cast(initial_state[key], "float32")
        if self.runs_step_by_step:
            if training and runs_decoder_recurrence(self):
                # The same function, with the faster backward pass.
                return decoder_recurrence(self, inputs, context, initial_state)
            return self._call_step_by_step(inputs, context, initial_state, training)
        return self._call_whole_sequence(inputs, context, initial_state, training)

    def _call_step_by_step(self, inputs, context, initial_state, training):
        # A plain while loop: `keras.ops.scan` on TensorFlow requires per-step
        # outputs shaped like the carry. TensorArrays are fine here; only the
        # decode loops must avoid them (TFLite).
        steps = tf.shape(inputs)[1]
        # Read through a TensorArray: the gradient of slicing `time_major[t]`
        # would write a whole [time, batch, features] tensor every step.
        time_major = tf.TensorArray(inputs.dtype, size=steps).unstack(
            tf.transpose(inputs, (1, 0, 2)))
        outputs = tf.TensorArray(self.compute_dtype, size=steps)
        alignments = tf.TensorArray(tf.float32, size=steps)

        weights = self.step_weights()

        def body(t, state, outputs, alignments):
            output, state = self.step(time_major.read(t), state, context, training=training,
                                      weights=weights)
            outputs = outputs.write(t, output)
            if self.attention is not None:
                alignments = alignments.write(t, state["alignments"])
            return t + 1, state, outputs, alignments

        _, _, outputs, alignments = tf.while_loop(
            lambda t, *_: t < steps, body, (0, initial_state, outputs, alignments),
            # XLA (`jit_compile`) needs the loop's bound.
            maximum_iterations=steps,
        )
        outputs = tf.transpose(outputs.stack(), (1, 0, 2))
        if self.attention is None:
            return outputs, None
        return outputs, tf.transpose(alignments.stack(), (1, 0, 2))

    def _call_whole_sequence(self, inputs, context, initial_state, training):
        x = inputs
        for i, rnn in enumerate(self.rnn_layers):
            if i > 0:
                x = self.dropout_layer(x, training=training)
            if training and runs_lstm_sequence(rnn.cell):
                # The same function, with the faster backward pass.
                x = lstm_sequence(x, rnn.cell, initial_state=initial_state["rnn"][i])[0]
            else:
                x = rnn(x, initial_state=initial_state["rnn"][i], training=training)[0]
        if self.attention is None:
            return self.dropout_layer(x, training=training), None
        attended, alignments = self.attention(
            x, context["memory"], keys=context["keys"], mask=context["mask"]
        )
        outputs = self.attentional_projection(ops.concatenate([attended, x], axis=-1))
        return self.dropout_layer(outputs, training=training), alignments

    def get_config(self):
        config = super().get_config()
        attention = self.attention_name
        if attention is None and self.attention is not None:
            attention = keras.saving.serialize_keras_object(self.attention)
        config.update(
            units=self.units,
            num_layers=self.num_layers,
            cell_type=self.cell_type,
            attention=attention,
            attention_units=self.attention_units,
            input_feeding=self.input_feeding,
            dropout=self.dropout,
            attention_options=self.attention_options,
        )
        return config

    @classmethod
    def from_config(cls, config):
        if isinstance(config.get("attention"), dict):
            config = dict(config, attention=keras.saving.deserialize_keras_object(config["attention"]))
        return cls(**config)
