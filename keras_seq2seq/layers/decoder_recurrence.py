"""The attention decoder's teacher-forced loop with a hand-written backward pass, for training on CPU.

With input feeding (or an attention that reads its previous alignments)
each decoder step depends on the one before through more than the RNN, so
training loops over the steps. TensorFlow differentiates that loop step by
step: every iteration of the backward loop computes, casts and accumulates
its own slice of every weight gradient. `decoder_recurrence` computes the
same function as looping over `AttentionDecoder.step` (LSTM layers), with:

- the embedded tokens' share of the first layer's gates computed for all
  steps at once, before the loop (one matmul, differentiated as one);
- dropout masks drawn for all steps at once, before the loop;
- a backward loop that carries only the gradients of the state and of the
  source (memory and keys), saving each step's gate and projection
  gradients, so that every kernel's gradient is one matmul after the loop,
  as `layers/lstm_sequence.py` does for the LSTM alone.

The alignments are differentiated by TensorFlow, one step at a time inside
the backward loop (recomputed from the saved query and previous
alignments), so every `AttentionMechanism` runs here unchanged; the weights
that additive mechanisms use per query keep a per-step gradient. The
context they weigh (`alignments . memory`, the same for every mechanism)
is differentiated by hand: the memory's share of its gradient is one
batched product after the loop, not a [batch, source, memory_dim] product
and sum each step. So are the scores of mechanisms whose
`scores_are_dot_products` (Luong's dot and general): nothing is
recomputed, and the keys' gradient is one batched product after the loop.

`AttentionDecoder` runs it in training where `runs_decoder_recurrence` says
so; `step` stays the definition that decoding, scoring and export run, and
the tests hold the two equal in outputs and every gradient.
"""

import keras
import tensorflow as tf

from keras_seq2seq.layers.lstm_sequence import (
    lstm_gates, lstm_gates_gradient, runs_lstm_sequence, steps_weight_gradient)


def runs_decoder_recurrence(decoder):
    """Whether `decoder`'s training loop should run `decoder_recurrence`:
    LSTM layers that `lstm_sequence` computes exactly (on a machine without
    a GPU), and attention."""
    return (decoder.attention is not None and decoder.cell_type == "lstm"
            and all(runs_lstm_sequence(rnn.cell) for rnn in decoder.rnn_layers))


def decoder_recurrence(decoder, inputs, context, initial_state, dropout_masks=None):
    """What `decoder._call_step_by_step` computes in training, with a faster gradient.

    Args:
        decoder: an `AttentionDecoder` for which `runs_decoder_recurrence`.
        inputs: embedded decoder inputs, [batch, target, embedding_dim].
        context: from `decoder.prepare_context`.
        initial_state: from `decoder.initial_state`.
        dropout_masks: with dropout, optional
            [layers, target, batch, units] tensor of zeros and
            `1 / (1 - rate)`: step t multiplies the input of layer i + 1 by
            `dropout_masks[i, t]` and its output by `dropout_masks[-1, t]`.
            Drawn here when None.

    Returns:
        `(outputs, alignments)`: [batch, target, units] in the compute dtype
        and [batch, target, source] float32.
    """
    dtype = decoder.compute_dtype
    weights = decoder.step_weights()
    time_major = tf.transpose(tf.cast(inputs, dtype), (1, 0, 2))
    steps, batch = tf.shape(time_major)[0], tf.shape(time_major)[1]
    kernel, recurrent_kernel, bias = weights["rnn"][0]
    embedding_dim = inputs.shape[-1]
    # A split and a 2-D product: their gradients are a concatenation and one
    # matmul, where slices' are zero-filled kernels to add and a batched
    # product's a product per step and a sum.
    embedding_kernel, fed_back_kernel = tf.split(kernel, [embedding_dim, -1])
    # (The bias is added after the reshape: fused into the product, oneDNN's
    # bfloat16 kernel took 3.3 ms where the product alone takes 1.)
    projected = tf.reshape(
        tf.matmul(tf.reshape(time_major, (-1, embedding_dim)), embedding_kernel),
        (steps, batch, -1)) + bias
    layer_weights = [[fed_back_kernel, recurrent_kernel]] + [
        list(w) for w in weights["rnn"][1:]]
    rate = decoder.dropout
    masks = tf.zeros((0,), dtype)  # unread without dropout
    if rate > 0 and dropout_masks is not None:
        masks = tf.cast(dropout_masks, dtype)
    elif rate > 0:
        # Between each pair of layers and on the output: [layers, steps, batch, units].
        masks = keras.random.dropout(
            tf.ones((decoder.num_layers, steps, batch, decoder.units), dtype), rate,
            seed=decoder.dropout_layer.seed_generator)
    state = [[tf.cast(s, dtype) for s in layer] for layer in initial_state["rnn"]]
    recurrence = _Recurrence(decoder, context["mask"], dropout=rate > 0)
    outputs, alignments = recurrence(
        # Dot attention's keys are the memory itself; the identity gives the
        # backward pass two tensors, each with its own share of the gradient.
        projected, masks, context["memory"], tf.identity(context["keys"]), layer_weights,
        weights["attentional"], state, tf.cast(initial_state["attentional"], dtype),
        initial_state["alignments"], initial_state["coverage"])
    return tf.transpose(outputs, (1, 0, 2)), tf.transpose(alignments, (1, 0, 2))


class _Recurrence:
    """The loop and its backward pass, over flat tensors (`tf.custom_gradient`
    differentiates a function of tensors, not of dicts).

    Each layer's weights are `[kernel, recurrent_kernel]` (+ `bias` above the
    first layer, whose kernel here covers only the fed-back attentional
    vector: the embeddings' share and the bias arrive in `projected`).
    """

    def __init__(self, decoder, source_mask, dropout):
        self.attention = decoder.attention
        self.input_feeding = decoder.input_feeding
        self.num_layers = decoder.num_layers
        self.source_mask = source_mask
        self.dropout = dropout
        self.dot_scores = decoder.attention.scores_are_dot_products

    def __call__(self, projected, masks, memory, keys, layer_weights, attentional_kernel,
                 state, attentional, alignments, coverage):
        structure = [projected, masks, memory, keys, layer_weights, attentional_kernel,
                     state, attentional, alignments, coverage]

        @tf.custom_gradient
        def run(*flat):
            return self._forward_and_backward(tf.nest.pack_sequence_as(structure, flat))

        return run(*tf.nest.flatten(structure))

    def align(self, query, keys, previous):
        """The alignments of one step, float32 [batch, source]
        (`AttentionMechanism.alignments` of `attend`)."""
        return self.attention.alignments(query[:, None], keys, self.source_mask,
                                         previous[:, None])[:, 0]

    def attend(self, query, memory, keys, previous):
        """The attention of one step: `(attended [batch, memory_dim],
        alignments [batch, source] float32)`, as `AttentionDecoder.step` calls it."""
        attended, alignments = self.attention(
            query[:, None], memory, keys=keys, mask=self.source_mask,
            previous_alignments=previous[:, None])
        return attended[:, 0], alignments[:, 0]

    def _forward_and_backward(self, args):
        (projected, masks, memory, keys, layer_weights, attentional_kernel,
         state, attentional, alignments, coverage) = args
        dtype = projected.dtype
        steps = tf.shape(projected)[0]
        layers = range(self.num_layers)
        memory_dim = memory.shape[-1]

        def forward(t, state, attentional, alignments, coverage, saved):
            previous = coverage if self.attention.cumulative else alignments
            written = {"previous": saved["previous"].write(t, previous),
                       "gates": [], "h": [], "c": [], "x": []}
            new_state = []
            x = None
            for i in layers:
                kernel, recurrent_kernel = layer_weights[i][:2]
                h, c = state[i]
                if i == 0:
                    z = projected[t] + tf.matmul(h, recurrent_kernel)
                    if self.input_feeding:
                        z += tf.matmul(attentional, kernel)
                else:
                    if self.dropout:
                        x = x * masks[i - 1, t]
                    written["x"].append(saved["x"][i - 1].write(t, x))
                    z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + layer_weights[i][2]
                new_h, new_c, gates = lstm_gates(z, c)
                written["gates"].append(saved["gates"][i].write(t, tf.concat(gates, -1)))
                written["h"].append(saved["h"][i].write(t, h))
                written["c"].append(saved["c"][i].write(t, c))
                new_state.append([new_h, new_c])
                x = new_h
            attended, step_alignments = self.attend(x, memory, keys, previous)
            joined = tf.concat([tf.cast(attended, dtype), x], -1)
            output = tf.tanh(tf.matmul(joined, attentional_kernel))
            written["joined"] = saved["joined"].write(t, joined)
            written["tanh"] = saved["tanh"].write(t, output)
            if self.dropout:
                output = output * masks[-1, t]
            written["outputs"] = saved["outputs"].write(t, output)
            written["alignments"] = saved["alignments"].write(t, step_alignments)
            return (t + 1, new_state, output, step_alignments, coverage + step_alignments,
                    written)

        def arrays(array_dtype=dtype):
            return tf.TensorArray(array_dtype, size=steps)

        saved = {
            "gates": [arrays() for _ in layers], "h": [arrays() for _ in layers],
            "c": [arrays() for _ in layers], "x": [arrays() for _ in layers[1:]],
            "previous": arrays(tf.float32),
            "joined": arrays(), "tanh": arrays(), "outputs": arrays(),
            "alignments": arrays(tf.float32),
        }
        _, _, _, _, _, saved = tf.while_loop(
            lambda t, *_: t < steps, forward,
            (0, state, attentional, alignments, coverage, saved), maximum_iterations=steps)
        saved = tf.nest.map_structure(
            lambda a: a.stack() if isinstance(a, tf.TensorArray) else a, saved)
        outputs, step_alignments = saved["outputs"], saved["alignments"]

        def backward(d_outputs, d_alignments, variables=None):
            variables = list(variables or [])
            # Outputs that nothing used arrive as None.
            d_outputs = (tf.zeros_like(outputs) if d_outputs is None
                         else tf.cast(d_outputs, dtype))
            d_alignments = (tf.zeros_like(step_alignments) if d_alignments is None
                            else tf.cast(d_alignments, tf.float32))

            def step_back(t, d_state, d_attentional, d_alignments_state, d_coverage,
                          d_keys, d_variables, d_saved):
                d_output = d_outputs[t] + d_attentional
                if self.dropout:
                    d_output = d_output * masks[-1, t]
                output = saved["tanh"][t]
                d_tanh = d_output * (1 - output * output)
                d_joined = tf.matmul(d_tanh, attentional_kernel, transpose_b=True)
                d_attended, d_query = d_joined[:, :memory_dim], d_joined[:, memory_dim:]
                # This step's alignments became the next state's alignments,
                # were added to its coverage, and weighed the memory into this
                # step's context.
                d_attended = tf.cast(d_attended, memory.dtype)
                d_step_alignments = (
                    d_alignments[t] + d_alignments_state + d_coverage
                    + tf.cast(tf.einsum("bd,bsd->bs", d_attended, memory), tf.float32))
                query = saved["joined"][t][:, memory_dim:]
                previous = saved["previous"][t]
                written = {}
                if self.dot_scores:
                    # The softmax's gradient (masked positions have zero
                    # alignments, so they get none), then the scores'.
                    alignments = saved["alignments"][t]
                    d_scores = alignments * (d_step_alignments - tf.reduce_sum(
                        alignments * d_step_alignments, axis=-1, keepdims=True))
                    d_scores = tf.cast(d_scores, keys.dtype)
                    g_query = tf.einsum("bs,bsq->bq", d_scores, keys)
                    g_previous = tf.zeros_like(previous)
                    written["scores"] = d_saved["scores"].write(t, d_scores)
                else:
                    with tf.GradientTape() as tape:
                        tape.watch([query, keys, previous])
                        alignments = self.align(query, keys, previous)
                    grads = tape.gradient(
                        alignments, [query, keys, previous] + variables,
                        output_gradients=d_step_alignments,
                        unconnected_gradients=tf.UnconnectedGradients.ZERO)
                    g_query, g_keys, g_previous = grads[:3]
                    d_keys += tf.cast(g_keys, d_keys.dtype)
                    d_variables = [a + g for a, g in zip(d_variables, grads[3:])]
                d_coverage = d_coverage + (g_previous if self.attention.cumulative else 0.0)
                d_alignments_state = (tf.zeros_like(d_alignments_state)
                                      if self.attention.cumulative else g_previous)
                d_tanh_written = d_saved["tanh"].write(t, d_tanh)
                written["attended"] = d_saved["attended"].write(t, d_attended)

                d_h = d_query + tf.cast(g_query, dtype)
                new_d_state = [None] * self.num_layers
                d_gates_written = [None] * self.num_layers
                for i in reversed(layers):
                    kernel, recurrent_kernel = layer_weights[i][:2]
                    d_gates, d_c_before = lstm_gates_gradient(
                        saved["gates"][i][t], saved["c"][i][t], d_h + d_state[i][0],
                        d_state[i][1])
                    d_gates_written[i] = d_saved["gates"][i].write(t, d_gates)
                    new_d_state[i] = [tf.matmul(d_gates, recurrent_kernel, transpose_b=True),
                                      d_c_before]
                    if i > 0:
                        d_h = tf.matmul(d_gates, kernel, transpose_b=True)
                        if self.dropout:
                            d_h = d_h * masks[i - 1, t]
                    elif self.input_feeding:
                        d_attentional = tf.matmul(d_gates, kernel, transpose_b=True)
                    else:
                        d_attentional = tf.zeros_like(d_attentional)
                return (t - 1, new_d_state, d_attentional, d_alignments_state, d_coverage,
                        d_keys, d_variables,
                        {"gates": d_gates_written, "tanh": d_tanh_written, **written})

            zeros = tf.nest.map_structure(tf.zeros_like, [state, attentional, alignments,
                                                          coverage, keys])
            d_saved = {"gates": [tf.TensorArray(dtype, size=steps) for _ in layers],
                       "tanh": tf.TensorArray(dtype, size=steps),
                       "attended": tf.TensorArray(memory.dtype, size=steps)}
            if self.dot_scores:
                d_saved["scores"] = tf.TensorArray(keys.dtype, size=steps)
            (_, d_state, d_attentional, d_alignments_state, d_coverage, d_keys,
             d_variables, d_saved) = tf.while_loop(
                lambda t, *_: t >= 0, step_back,
                (steps - 1, *zeros, [tf.zeros_like(v) for v in variables], d_saved),
                maximum_iterations=steps)
            d_gates = [a.stack() for a in d_saved["gates"]]
            d_tanh = d_saved["tanh"].stack()
            d_memory = tf.einsum("tbs,tbd->bsd", tf.cast(step_alignments, memory.dtype),
                                 d_saved["attended"].stack())
            if self.dot_scores:
                queries = tf.cast(saved["joined"][:, :, memory_dim:], keys.dtype)
                d_keys += tf.einsum("tbs,tbq->bsq", d_saved["scores"].stack(), queries)

            d_layer_weights = []
            for i in layers:
                if i > 0:
                    d_kernel = steps_weight_gradient(saved["x"][i - 1], d_gates[i])
                elif self.input_feeding:
                    # The vector fed back at step t is the output of step t - 1.
                    fed_back = tf.concat([attentional[None], outputs[:-1]], 0)
                    d_kernel = steps_weight_gradient(fed_back, d_gates[0])
                else:
                    d_kernel = tf.zeros_like(layer_weights[0][0])
                d_layer = [d_kernel, steps_weight_gradient(saved["h"][i], d_gates[i])]
                if i > 0:
                    d_layer.append(tf.reduce_sum(d_gates[i], axis=(0, 1)))
                d_layer_weights.append(d_layer)
            d_args = [d_gates[0], tf.zeros_like(masks),
                      d_memory, d_keys, d_layer_weights,
                      steps_weight_gradient(saved["joined"], d_tanh),
                      d_state, d_attentional, d_alignments_state, d_coverage]
            return tf.nest.flatten(d_args), d_variables

        return (outputs, step_alignments), backward
