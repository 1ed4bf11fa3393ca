"""An LSTM over a whole sequence with a hand-written backward pass, for training on CPU.

TensorFlow differentiates a `tf.while_loop` step by step: every iteration of
the backward loop computes its own slice of each weight gradient, casts it
and adds it to an accumulator. cuDNN avoids this on GPU; `lstm_sequence`
does the same on CPU: the input projection of all steps is one matmul
outside the loop, the loop holds only the recurrent matmul, and the backward
loop saves the gate gradients of every step so that the recurrent kernel's
gradient is one matmul after it.

It computes exactly what `keras.layers.LSTM` computes with the same weights
(default activations, no cell dropout), masked steps leaving the state
unchanged, so `RNNEncoder` and `AttentionDecoder` use it in training where
`runs_lstm_sequence` says so, and keep Keras' layers as the holders of the
weights and for inference and export. `fused_lstm_sequence` is its
inference counterpart for graph-mode searches: TensorFlow's fused
`BlockLSTMV2` kernel, one operation for a whole sequence.
"""

import keras
from keras import ops
import tensorflow as tf


def runs_lstm_sequence(cell):
    """Whether training should run `cell` through `lstm_sequence` (and a
    graph-mode search through `fused_lstm_sequence`): an LSTM cell that they
    compute exactly, on a machine without a GPU (where there is one, Keras'
    LSTM layer runs cuDNN's kernel)."""
    return (isinstance(cell, keras.layers.LSTMCell)
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and cell.use_bias and not cell.dropout and not cell.recurrent_dropout
            and not tf.config.list_logical_devices("GPU"))


def lstm_sequence(inputs, cell, mask=None, initial_state=None, go_backwards=False):
    """Runs the LSTM `cell`'s weights over a whole sequence.

    Args:
        inputs: [batch, time, features], in the compute dtype.
        cell: a `keras.layers.LSTMCell` (sigmoid and tanh activations, bias).
        mask: optional bool [batch, time]; masked steps keep the state and
            output zeros.
        initial_state: optional `[h, c]`, each [batch, units]; zeros if None.
        go_backwards: read the sequence from its last step to its first
            (outputs stay in the input's order).

    Returns:
        `(outputs, h, c)`: outputs [batch, time, units], zero at masked steps;
        h and c the final state [batch, units].
    """
    dtype = inputs.dtype
    batch = tf.shape(inputs)[0]
    if initial_state is None:
        initial_state = [tf.zeros((batch, cell.units), dtype)] * 2
    h0, c0 = (tf.cast(s, dtype) for s in initial_state)
    if mask is None:
        mask = tf.ones(tf.shape(inputs)[:2], "bool")
    time_major = tf.transpose(inputs, (1, 0, 2))
    step_mask = tf.cast(tf.transpose(mask), dtype)[:, :, None]
    if go_backwards:
        time_major, step_mask = tf.reverse(time_major, [0]), tf.reverse(step_mask, [0])
    # Input projections and bias of every step at once; autodiff handles them.
    projected = ops.matmul(time_major, ops.cast(cell.kernel, dtype)) + ops.cast(cell.bias, dtype)
    outputs, h, c = _recurrence(projected, step_mask, h0, c0,
                                ops.cast(cell.recurrent_kernel, dtype))
    if go_backwards:
        outputs = tf.reverse(outputs, [0])
    return tf.transpose(outputs, (1, 0, 2)), h, c


@tf.custom_gradient
def _recurrence(projected, step_mask, h0, c0, recurrent_kernel):
    """The LSTM recurrence, time-major.

    projected [time, batch, 4 units] (x W + b, gates in Keras' order i, f, g,
    o); step_mask [time, batch, 1] of 0/1; h0, c0 [batch, units];
    recurrent_kernel [units, 4 units].
    """
    steps = tf.shape(projected)[0]
    dtype = projected.dtype

    def forward(t, h, c, outputs, gates, h_before, c_before):
        new_h, new_c, gates_t = lstm_gates(projected[t] + tf.matmul(h, recurrent_kernel), c)
        m = step_mask[t]
        return (t + 1, h + m * (new_h - h), c + m * (new_c - c),
                outputs.write(t, m * new_h), gates.write(t, tf.concat(gates_t, -1)),
                h_before.write(t, h), c_before.write(t, c))

    arrays = [tf.TensorArray(dtype, size=steps) for _ in range(4)]
    _, h, c, outputs, gates, h_before, c_before = tf.while_loop(
        lambda t, *_: t < steps, forward, (0, h0, c0, *arrays))
    outputs, gates = outputs.stack(), gates.stack()
    h_before, c_before = h_before.stack(), c_before.stack()

    def backward(d_outputs, d_h, d_c):
        # Outputs that nothing used arrive as None.
        d_outputs, d_h, d_c = (tf.zeros_like(x) if d is None else tf.cast(d, dtype)
                               for d, x in ((d_outputs, outputs), (d_h, h), (d_c, c)))

        def step_back(t, d_h, d_c, d_z):
            m = step_mask[t]
            # A masked step passed h and c through unchanged; a real step
            # replaced them and also wrote its h to the outputs.
            d_gates, d_c_before = lstm_gates_gradient(
                gates[t], c_before[t], m * (d_h + d_outputs[t]), m * d_c)
            d_h = (1 - m) * d_h + tf.matmul(d_gates, recurrent_kernel, transpose_b=True)
            d_c = (1 - m) * d_c + d_c_before
            return t - 1, d_h, d_c, d_z.write(t, d_gates)

        _, d_h0, d_c0, d_z = tf.while_loop(
            lambda t, *_: t >= 0, step_back,
            (steps - 1, d_h, d_c, tf.TensorArray(dtype, size=steps)))
        d_projected = d_z.stack()
        return (d_projected, tf.zeros_like(step_mask), d_h0, d_c0,
                steps_weight_gradient(h_before, d_projected))

    return (outputs, h, c), backward


def fused_lstm_sequence(inputs, cell, mask=None, initial_state=None, go_backwards=False):
    """What `lstm_sequence` computes, through TensorFlow's fused LSTM kernel.

    `BlockLSTMV2` runs a whole sequence as one operation, where Keras' LSTM
    layer runs a graph loop of some forty operations a step: a search's
    encoder pass at batch 1 is mostly that loop's per-operation cost. The
    kernel is in stock TensorFlow and TF Serving, but XLA has no kernel
    for it and TFLite no builtin, so only graph-mode searches use it
    (`generate(..., fused_lstm=True)`); it is not differentiated here.

    Args:
        inputs: [batch, time, features], float32 or float16 (the kernel
            takes no bfloat16).
        cell: a `keras.layers.LSTMCell` that `runs_lstm_sequence` accepts
            (its gates are in the kernel's i, f, g, o order).
        mask: optional bool [batch, time] whose real steps are a prefix of
            each row, as a padded batch's are; the kernel runs past a row's
            end, which changes none of its real steps' outputs, and its
            final state is read at its last real step.
        initial_state: optional `[h, c]`, each [batch, units]; zeros if None.
        go_backwards: read each row's real steps from its last to its first
            (outputs stay in the input's order).

    Returns:
        `(outputs, h, c)` as `lstm_sequence` returns them.
    """
    dtype = inputs.dtype
    batch, time = tf.shape(inputs)[0], tf.shape(inputs)[1]
    if initial_state is None:
        initial_state = [tf.zeros((batch, cell.units), dtype)] * 2
    h0, c0 = (tf.cast(s, dtype) for s in initial_state)
    if mask is None:
        mask = tf.ones((batch, time), "bool")
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    if go_backwards:
        inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
    no_peepholes = tf.zeros((cell.units,), dtype)
    _, c, _, _, _, _, h = tf.raw_ops.BlockLSTMV2(
        seq_len_max=tf.cast(time, tf.int64), x=tf.transpose(inputs, (1, 0, 2)),
        cs_prev=c0, h_prev=h0,
        w=tf.cast(tf.concat([cell.kernel, cell.recurrent_kernel], axis=0), dtype),
        wci=no_peepholes, wcf=no_peepholes, wco=no_peepholes, b=tf.cast(cell.bias, dtype),
        cell_clip=0.0, use_peephole=False)
    outputs = tf.transpose(h, (1, 0, 2))
    last = tf.stack([tf.range(batch), tf.maximum(lengths - 1, 0)], axis=1)
    started = (lengths > 0)[:, None]
    final_h = tf.where(started, tf.gather_nd(outputs, last), h0)
    final_c = tf.where(started, tf.gather_nd(tf.transpose(c, (1, 0, 2)), last), c0)
    if go_backwards:
        outputs = tf.reverse_sequence(outputs, lengths, seq_axis=1, batch_axis=0)
    return outputs * tf.cast(mask, dtype)[:, :, None], final_h, final_c


def steps_weight_gradient(inputs, d_products):
    """The gradient of a kernel that multiplied `inputs` [time, batch, in]
    at every step into products whose gradients are `d_products` [time,
    batch, out]: the sum over steps and rows of inputs^T d_products, as one
    matmul after the backward loop instead of one per step inside it."""
    return tf.matmul(tf.reshape(inputs, (-1, tf.shape(inputs)[-1])),
                     tf.reshape(d_products, (-1, tf.shape(d_products)[-1])),
                     transpose_a=True)


def kernel_matmul(x, kernel):
    """`x @ kernel` computed in the kernel's dtype, returned in x's.

    Where both have one dtype (training, float32 decoding) this is a plain
    matmul. A decoding loop may hand bfloat16 kernels to float32 activations
    (`AttentionDecoder.step_weights`): the products then run in bfloat16 and
    everything else (gates, attention, softmax) stays float32.
    """
    return ops.cast(ops.matmul(ops.cast(x, kernel.dtype), kernel), x.dtype)


def lstm_step(inputs, state, kernel, recurrent_kernel, bias):
    """One step of `keras.layers.LSTMCell` with the given weights.

    Args:
        inputs: [batch, features].
        state: `[h, c]`, each [batch, units].
        kernel, recurrent_kernel: the cell's kernels, in the inputs' dtype
            or a lower precision for the products (`kernel_matmul`).
        bias: the cell's bias, in the inputs' dtype.

    Returns:
        `(h, [h, c])`, as the cell returns them.
    """
    h, c = state
    z = (kernel_matmul(inputs, kernel)
         + kernel_matmul(ops.cast(h, inputs.dtype), recurrent_kernel) + bias)
    h, c = lstm_gates(z, ops.cast(c, inputs.dtype))[:2]
    return h, [h, c]


def lstm_gates(z, c):
    """Keras' LSTM gate arithmetic: `(new_h, new_c, [i, f, g, o])` from the
    pre-activations z [batch, 4 units] (gates in order i, f, g, o)."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    new_c = f * c + i * g
    return o * tf.tanh(new_c), new_c, [i, f, g, o]


def lstm_gates_gradient(gates, c, d_new_h, d_new_c):
    """The gradient of `lstm_gates`: `(d_z, d_c)`, the gradients of the
    pre-activations [batch, 4 units] and of the previous cell state, from
    the gates [batch, 4 units] it returned (concatenated), the previous
    cell state c, and the gradients of its new h and new c."""
    i, f, g, o = tf.split(gates, 4, axis=-1)
    tanh_c = tf.tanh(f * c + i * g)
    d_new_c = d_new_c + d_new_h * o * (1 - tanh_c * tanh_c)
    d_z = tf.concat([
        d_new_c * g * i * (1 - i),
        d_new_c * c * f * (1 - f),
        d_new_c * i * (1 - g * g),
        d_new_h * tanh_c * o * (1 - o),
    ], -1)
    return d_z, d_new_c * f
