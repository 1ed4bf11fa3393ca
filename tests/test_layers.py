import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq.layers import (
    AttentionDecoder,
    BahdanauAttention,
    CoverageAttention,
    LocationSensitiveAttention,
    LuongAttention,
    RNNEncoder,
)


def _mask(lengths, time):
    return np.arange(time)[None, :] < np.array(lengths)[:, None]


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_shapes(cell_type, bidirectional):
    encoder = RNNEncoder(16, num_layers=2, cell_type=cell_type, bidirectional=bidirectional)
    outputs, states = encoder(np.random.rand(3, 5, 8).astype("float32"))
    assert outputs.shape == (3, 5, 16)
    assert len(states) == 2
    assert [s.shape for s in states[1]] == [(3, 16)] * (2 if cell_type == "lstm" else 1)


@pytest.mark.parametrize("reverse_input", [False, True])
def test_encoder_ignores_padding(rng, reverse_input):
    encoder = RNNEncoder(8, num_layers=2, bidirectional=True, reverse_input=reverse_input)
    x = rng.normal(size=(2, 6, 4)).astype("float32")
    mask = _mask([4, 6], 6)
    other = x.copy()
    other[0, 4:] = rng.normal(size=(2, 4))  # change only padded steps
    out_a, states_a = encoder(x, mask=mask)
    out_b, states_b = encoder(other, mask=mask)
    np.testing.assert_allclose(out_a, out_b, atol=1e-6)
    np.testing.assert_allclose(states_a[-1][0], states_b[-1][0], atol=1e-6)
    assert np.all(np.asarray(out_a)[0, 4:] == 0)


def test_reversed_input_reverses_only_real_steps(rng):
    forward = RNNEncoder(4, bidirectional=False)
    backward = RNNEncoder(4, bidirectional=False, reverse_input=True)
    x = rng.normal(size=(1, 5, 3)).astype("float32")
    mask = _mask([3], 5)
    forward(x, mask=mask)
    backward(x, mask=mask)
    backward.set_weights(forward.get_weights())
    reversed_x = x.copy()
    reversed_x[0, :3] = x[0, 2::-1]
    np.testing.assert_allclose(
        forward(reversed_x, mask=mask)[0], backward(x, mask=mask)[0], atol=1e-6
    )


MECHANISMS = [
    lambda: LuongAttention("dot"),
    lambda: LuongAttention("general"),
    lambda: LuongAttention("concat", units=8),
    lambda: BahdanauAttention(8),
    lambda: LocationSensitiveAttention(8, filters=4, kernel_size=3),
]


@pytest.mark.parametrize("make", MECHANISMS)
def test_attention_gives_padding_exactly_zero_weight(rng, make):
    attention = make()
    memory = rng.normal(size=(2, 5, 6)).astype("float32")
    query = rng.normal(size=(2, 1, 6)).astype("float32")
    mask = _mask([3, 5], 5)
    previous = np.full((2, 1, 5), 0.2, "float32")
    context, alignments = attention(query, memory, mask=mask, previous_alignments=previous)
    alignments = np.asarray(alignments)
    assert context.shape == (2, 1, 6) and alignments.shape == (2, 1, 5)
    assert np.all(alignments[0, :, 3:] == 0.0)
    np.testing.assert_allclose(alignments.sum(-1), 1.0, rtol=1e-5)
    # Changing what padded positions hold changes nothing.
    other = memory.copy()
    other[0, 3:] = 100.0
    context_b, alignments_b = attention(query, other, mask=mask, previous_alignments=previous)
    np.testing.assert_allclose(context, context_b, atol=1e-5)
    np.testing.assert_allclose(alignments, alignments_b, atol=1e-6)


@pytest.mark.parametrize("make", MECHANISMS + [lambda: CoverageAttention(8)])
def test_queries_sharing_a_memory_equal_each_query_on_its_own_copy(rng, make):
    # Beam search gives the hypotheses of a sentence one memory, not a copy each.
    attention = make()
    memory = rng.normal(size=(2, 5, 6)).astype("float32")
    query = rng.normal(size=(2, 3, 6)).astype("float32")
    mask = _mask([3, 5], 5)
    previous = rng.uniform(size=(2, 3, 5)).astype("float32")
    context, alignments = attention(query, memory, mask=mask, previous_alignments=previous)
    copies = lambda x: np.repeat(x, 3, axis=0)  # noqa: E731
    alone_context, alone_alignments = attention(
        query.reshape(6, 1, 6), copies(memory), mask=copies(np.asarray(mask)),
        previous_alignments=previous.reshape(6, 1, 5))
    np.testing.assert_allclose(np.reshape(context, (6, 1, 6)), alone_context, atol=1e-5)
    np.testing.assert_allclose(np.reshape(alignments, (6, 1, 5)), alone_alignments, atol=1e-6)


@pytest.mark.parametrize("make", MECHANISMS)
def test_attention_serialization(make):
    attention = make()
    again = attention.__class__.from_config(attention.get_config())
    assert again.get_config() == attention.get_config()
    name = keras.saving.get_registered_name(attention.__class__)
    assert name.startswith("keras_seq2seq>")


def test_encoder_and_decoder_serialization():
    encoder = RNNEncoder(8, num_layers=3, cell_type="gru", dropout=0.1, reverse_input=True)
    assert RNNEncoder.from_config(encoder.get_config()).get_config() == encoder.get_config()
    decoder = AttentionDecoder(8, num_layers=2, attention=BahdanauAttention(5))
    again = AttentionDecoder.from_config(decoder.get_config())
    assert isinstance(again.attention, BahdanauAttention) and again.attention.units == 5
    named = AttentionDecoder(8, attention="location_sensitive")
    assert AttentionDecoder.from_config(named.get_config()).get_config() == named.get_config()
    # A named mechanism's own constructor arguments travel with the name.
    shaped = AttentionDecoder(8, attention="location_sensitive_cumulative",
                              attention_options={"filters": 4, "kernel_size": 9})
    again = AttentionDecoder.from_config(shaped.get_config())
    assert (again.attention.filters, again.attention.kernel_size, again.attention.cumulative) == (
        4, 9, True)
    assert again.get_config() == shaped.get_config()
    with pytest.raises(ValueError, match="attention_options are the constructor arguments of a "
                                         "named attention mechanism"):
        AttentionDecoder(8, attention=BahdanauAttention(5), attention_options={"units": 4})


def test_named_attention_options_are_the_constructor_arguments_the_name_leaves():
    from keras_seq2seq.layers.attention import attention_options, get_attention

    assert attention_options("location_sensitive") == ["cumulative", "filters", "kernel_size"]
    assert attention_options("location_sensitive_cumulative") == ["filters", "kernel_size"]
    assert attention_options("luong_general") == []
    with pytest.raises(ValueError, match="'luong_general' attention has no option 'filters'; "
                                         "it takes none"):
        get_attention("luong_general", 8, {"filters": 4})


def _decoder_run(decoder, rng, source_lengths=(4, 2)):
    memory = rng.normal(size=(2, 4, 8)).astype("float32")
    mask = _mask(source_lengths, 4)
    decoder.build((None, None, 5), (None, None, 8))
    context = decoder.prepare_context(memory, mask)
    encoder_states = [[tf.zeros((2, 8))] * decoder.state_size_per_layer]
    state = decoder.initial_state(encoder_states, context)
    inputs = rng.normal(size=(2, 3, 5)).astype("float32")
    return inputs, context, state


def test_whole_sequence_path_equals_step_by_step(rng):
    """The fast training path computes exactly the recurrence of `step`."""
    decoder = AttentionDecoder(8, num_layers=2, attention="luong_general", input_feeding=False)
    inputs, context, state = _decoder_run(decoder, rng)
    assert not decoder.runs_step_by_step
    fast, fast_alignments = decoder(inputs, context, state)
    slow, slow_alignments = decoder._call_step_by_step(inputs, context, state, training=False)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    np.testing.assert_allclose(fast_alignments, slow_alignments, atol=1e-6)


@pytest.mark.parametrize("attention", ["luong_general", "bahdanau", "location_sensitive", None])
def test_decoder_call_matches_repeated_step(rng, attention):
    decoder = AttentionDecoder(8, attention=attention, input_feeding=True)
    inputs, context, state = _decoder_run(decoder, rng)
    outputs, alignments = decoder(inputs, context, state)
    assert outputs.shape == (2, 3, 8)
    for t in range(3):
        output, state = decoder.step(inputs[:, t], state, context)
        np.testing.assert_allclose(outputs[:, t], output, atol=1e-5)
    if attention is not None:
        assert alignments.shape == (2, 3, 4)
        assert np.all(np.asarray(alignments)[1, :, 2:] == 0.0)


def _loss_and_gradients(compute, sources):
    """A weighted sum of `compute()`'s outputs and its gradients w.r.t. `sources`."""
    with tf.GradientTape() as tape:
        tape.watch([s for s in sources if isinstance(s, tf.Tensor)])
        outputs = tf.nest.flatten(compute())
        loss = sum(tf.reduce_sum(o * np.cos(np.arange(o.shape[-1]) + k))
                   for k, o in enumerate(outputs))
    return outputs, tape.gradient(loss, sources)


def _keras_lstm_case(rng, go_backwards, with_initial_state, lengths):
    """A Keras LSTM layer (4 units), inputs [5, 7, 6] with a mask of
    `lengths`, an initial state or None, and a function that runs the layer
    (outputs in reading order, as `lstm_sequence` returns them)."""
    lstm = keras.layers.LSTM(4, return_sequences=True, return_state=True,
                             go_backwards=go_backwards, zero_output_for_mask=True)
    lstm.build((None, None, 6))
    x = tf.constant(rng.normal(size=(5, 7, 6)).astype("float32"))
    mask = tf.constant(_mask(lengths, 7))
    state = ([tf.constant(rng.normal(size=(5, 4)).astype("float32")) for _ in range(2)]
             if with_initial_state else None)

    def keras_lstm():
        outputs, h, c = lstm(x, mask=mask, initial_state=state)
        # Keras returns a backwards layer's outputs in reading order.
        return tf.reverse(outputs, [1]) if go_backwards else outputs, h, c

    return lstm, x, mask, state, keras_lstm


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_lstm_sequence_equals_keras_lstm(rng, go_backwards, with_initial_state):
    """Outputs, final state and every gradient (inputs, weights, initial
    state) equal `keras.layers.LSTM`'s, padding included."""
    from keras_seq2seq.layers.lstm_sequence import lstm_sequence

    lstm, x, mask, state, keras_lstm = _keras_lstm_case(
        rng, go_backwards, with_initial_state, [7, 3, 1, 5, 6])
    sources = [x] + lstm.trainable_weights + (state or [])
    expected, expected_gradients = _loss_and_gradients(keras_lstm, sources)
    got, gradients = _loss_and_gradients(
        lambda: lstm_sequence(x, lstm.cell, mask=mask, initial_state=state,
                              go_backwards=go_backwards), sources)
    for a, b in zip(got + gradients, expected + expected_gradients):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_fused_lstm_sequence_equals_keras_lstm(rng, go_backwards, with_initial_state):
    """TensorFlow's fused kernel computes what `keras.layers.LSTM` does:
    outputs (zero on padding) and final states, rows of every length
    including an empty one (which keeps its initial state)."""
    from keras_seq2seq.layers.lstm_sequence import fused_lstm_sequence

    lstm, x, mask, state, keras_lstm = _keras_lstm_case(
        rng, go_backwards, with_initial_state, [7, 3, 1, 5, 0])
    got = tf.function(fused_lstm_sequence, autograph=False)(
        x, lstm.cell, mask=mask, initial_state=state, go_backwards=go_backwards)
    for a, b in zip(got, keras_lstm()):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("bidirectional, reverse_input", [(True, False), (False, True)])
def test_a_fused_lstm_encoder_equals_its_keras_layers(rng, bidirectional, reverse_input):
    """Small batches run each layer and direction as one `BlockLSTMV2`,
    larger ones Keras' loop (`FUSED_LSTM_MAX_ROWS`): both as Keras' layers."""
    from keras_seq2seq.layers.encoder import FUSED_LSTM_MAX_ROWS

    encoder = RNNEncoder(8, num_layers=2, bidirectional=bidirectional,
                         reverse_input=reverse_input)
    fused = tf.function(lambda x, mask: encoder(x, mask=mask, fused_lstm=True), autograph=False)
    for batch in (3, FUSED_LSTM_MAX_ROWS + 1):
        x = tf.constant(rng.normal(size=(batch, 6, 5)).astype("float32"))
        mask = tf.constant(_mask(rng.integers(1, 7, batch), 6))
        expected = encoder(x, mask=mask)
        for a, b in zip(tf.nest.flatten(fused(x, mask)), tf.nest.flatten(expected)):
            np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(tf.nest.flatten(encoder._encode(x, mask, False, fused=True)),
                    tf.nest.flatten(expected)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    graph = fused.get_concrete_function(x, mask).graph.as_graph_def()
    ops = [node.op for node in graph.node] + [
        node.op for function in graph.library.function for node in function.node_def]
    assert ops.count("BlockLSTMV2") == 2 * (2 if bidirectional else 1)
    # GRU layers have no fused form: they run their Keras loop.
    gru = RNNEncoder(8, cell_type="gru")
    np.testing.assert_allclose(gru(x, mask=mask, fused_lstm=True)[0], gru(x, mask=mask)[0])


def test_lstm_sequence_runs_only_what_it_computes_exactly():
    from keras_seq2seq.layers.lstm_sequence import runs_lstm_sequence

    assert runs_lstm_sequence(keras.layers.LSTMCell(4)) == (not tf.config.list_logical_devices("GPU"))
    assert not runs_lstm_sequence(keras.layers.LSTMCell(4, activation="relu"))
    assert not runs_lstm_sequence(keras.layers.LSTMCell(4, recurrent_dropout=0.1))
    assert not runs_lstm_sequence(keras.layers.GRUCell(4))


def test_lstm_step_equals_keras_cell(rng):
    from keras_seq2seq.layers.lstm_sequence import lstm_step

    cell = keras.layers.LSTMCell(4)
    cell.build((None, 6))
    x = rng.normal(size=(3, 6)).astype("float32")
    state = [rng.normal(size=(3, 4)).astype("float32") for _ in range(2)]
    expected_h, (_, expected_c) = cell(x, state)
    h, (_, c) = lstm_step(x, state, cell.kernel, cell.recurrent_kernel, cell.bias)
    np.testing.assert_allclose(h, expected_h, atol=1e-6)
    np.testing.assert_allclose(c, expected_c, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_training_path_equals_keras_layers(rng, bidirectional):
    """In training an LSTM encoder runs `lstm_sequence` (the faster backward
    pass); with dropout off it computes what its Keras layers compute."""
    encoder = RNNEncoder(8, num_layers=2, bidirectional=bidirectional, dropout=0.0)
    x = tf.constant(rng.normal(size=(3, 6, 5)).astype("float32"))
    mask = _mask([6, 2, 4], 6)
    encoder.build(x.shape)
    runs = [_loss_and_gradients(lambda: encoder(x, mask=mask, training=training),
                                [x] + encoder.trainable_weights)
            for training in (True, False)]
    (got, gradients), (expected, expected_gradients) = runs
    for a, b in zip(got + gradients, expected + expected_gradients):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
@pytest.mark.parametrize("attention, input_feeding", [
    ("luong_general", True), ("bahdanau", True), ("location_sensitive", True),
    ("location_sensitive", False)])
def test_decoder_loop_equals_repeated_steps_in_every_gradient(rng, cell_type, attention,
                                                              input_feeding):
    """The teacher-forced loop in training (LSTM: `decoder_recurrence`; GRU:
    a loop over `step`, weights read once, inputs through a TensorArray) is
    `step` called once a step: outputs and every gradient are equal, input
    feeding or location-sensitive attention alone."""
    decoder = AttentionDecoder(8, num_layers=2, cell_type=cell_type, attention=attention,
                               input_feeding=input_feeding)
    inputs, context, state = _decoder_run(decoder, rng)
    inputs = tf.constant(inputs)
    assert decoder.runs_step_by_step

    def repeated_steps():
        outputs, step_state = [], state
        for t in range(inputs.shape[1]):
            output, step_state = decoder.step(inputs[:, t], step_state, context, training=True)
            outputs.append(output)
        return tf.stack(outputs, axis=1)

    runs = [_loss_and_gradients(compute, [inputs] + decoder.trainable_weights)
            for compute in (lambda: decoder(inputs, context, state, training=True)[0],
                            repeated_steps)]
    (got, gradients), (expected, expected_gradients) = runs
    for a, b in zip(got + gradients, expected + expected_gradients):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_decoder_loop_drops_units_in_training_only(rng):
    decoder = AttentionDecoder(8, attention="luong_general", input_feeding=True, dropout=0.5)
    inputs, context, state = _decoder_run(decoder, rng)
    inference = np.asarray(decoder(inputs, context, state)[0])
    np.testing.assert_array_equal(decoder(inputs, context, state)[0], inference)
    trained = np.asarray(decoder(inputs, context, state, training=True)[0])
    assert 0.2 < (trained == 0).mean() < 0.8  # of 48 outputs, rate 0.5
    # The first step's output is the inference one, dropped or scaled by 1 / (1 - 0.5).
    first, kept = trained[:, 0], trained[:, 0] != 0
    np.testing.assert_allclose(first[kept], 2 * inference[:, 0][kept], atol=1e-6)


@pytest.mark.parametrize("input_feeding", [False, True])
def test_decoder_training_path_equals_inference_path(rng, input_feeding):
    """Training reads the step's weights once and (without input feeding)
    runs `lstm_sequence`; outputs and gradients equal the inference path's."""
    decoder = AttentionDecoder(8, num_layers=2, attention="luong_general",
                               input_feeding=input_feeding)
    inputs, context, state = _decoder_run(decoder, rng)
    inputs = tf.constant(inputs)
    runs = [_loss_and_gradients(lambda: decoder(inputs, context, state, training=training),
                                [inputs] + decoder.trainable_weights)
            for training in (True, False)]
    (got, gradients), (expected, expected_gradients) = runs
    for a, b in zip(got + gradients, expected + expected_gradients):
        # (The attention's memory projection runs in `prepare_context`, outside.)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, atol=1e-5)


class _GivenMasks:
    """Stands in for a decoder's dropout: its k-th call multiplies by the k-th
    of the given masks, in the order `AttentionDecoder.step` drops units."""

    def __init__(self, masks):
        self.masks = masks
        self.calls = 0

    def __call__(self, x, training=False):
        t, i = divmod(self.calls, self.masks.shape[0])
        self.calls += 1
        return x * self.masks[i, t]


@pytest.mark.parametrize("attention, input_feeding, dropout", [
    ("luong_general", True, 0.0), ("luong_general", True, 0.5), ("luong_dot", True, 0.0),
    ("luong_concat", True, 0.0), ("bahdanau", True, 0.5), ("location_sensitive", True, 0.0),
    ("location_sensitive", False, 0.0), ("location_sensitive_cumulative", True, 0.0),
    ("coverage", True, 0.5), ("coverage", False, 0.0)])
def test_decoder_recurrence_equals_autodiff_of_step_in_every_gradient(
        rng, attention, input_feeding, dropout):
    """The training loop with the hand-written backward pass
    (`layers/decoder_recurrence.py`) is `step` called once a step: outputs,
    alignments and the gradients of the inputs, the memory, the encoder's
    states and every weight are equal, with the same dropout masks, traced
    as `fit` traces it."""
    from keras_seq2seq.layers.decoder_recurrence import (
        decoder_recurrence, runs_decoder_recurrence)

    decoder = AttentionDecoder(8, num_layers=2, attention=attention,
                               input_feeding=input_feeding, dropout=dropout)
    decoder.build((None, None, 5), (None, None, 8))
    assert runs_decoder_recurrence(decoder) == (not tf.config.list_logical_devices("GPU"))
    inputs = tf.constant(rng.normal(size=(3, 4, 5)).astype("float32"))
    memory = tf.constant(rng.normal(size=(3, 5, 8)).astype("float32"))
    mask = _mask([5, 2, 3], 5)
    encoder_state = [tf.constant(rng.normal(size=(3, 8)).astype("float32")) for _ in range(2)]
    keep = rng.random(size=(2, 4, 3, 8)) >= dropout
    masks = tf.constant((keep / (1 - dropout)).astype("float32"))
    sources = [inputs, memory] + encoder_state + decoder.trainable_weights

    def run(loop):
        context = decoder.prepare_context(memory, mask)
        state = decoder.initial_state([encoder_state], context)
        return loop(context, state)

    def repeated_steps(context, state):
        decoder.dropout_layer.call = _GivenMasks(masks)
        outputs, alignments = [], []
        for t in range(inputs.shape[1]):
            output, state = decoder.step(inputs[:, t], state, context, training=True)
            outputs.append(output)
            alignments.append(state["alignments"])
        return tf.stack(outputs, axis=1), tf.stack(alignments, axis=1)

    def recurrence(context, state):
        return decoder_recurrence(decoder, inputs, context, state, dropout_masks=masks)

    got, gradients = tf.function(
        lambda: _loss_and_gradients(lambda: run(recurrence), sources), autograph=False)()
    expected, expected_gradients = _loss_and_gradients(lambda: run(repeated_steps), sources)
    assert len(gradients) == len(expected_gradients) > 8
    for a, b in zip(got + gradients, expected + expected_gradients):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_decoder_trains_through_its_recurrence_under_mixed_precision(rng):
    """`fit`'s path: `call(training=True)` runs `decoder_recurrence` in
    bfloat16, and its outputs and gradients stay close to float32's."""
    decoder = AttentionDecoder(8, num_layers=2, attention="luong_general", input_feeding=True)
    inputs, context, state = _decoder_run(decoder, rng)
    inputs = tf.constant(inputs)
    expected, expected_gradients = _loss_and_gradients(
        lambda: decoder(inputs, context, state, training=True), [inputs] + decoder.trainable_weights)
    mixed = AttentionDecoder(8, num_layers=2, attention="luong_general", input_feeding=True,
                             dtype="mixed_bfloat16")
    mixed.build((None, None, 5), (None, None, 8))
    mixed.set_weights(decoder.get_weights())
    context = mixed.prepare_context(context["memory"], context["mask"])
    dtypes = []

    def run_mixed():
        outputs, alignments = mixed(inputs, context, state, training=True)
        dtypes.append(outputs.dtype)
        return tf.cast(outputs, tf.float32), alignments

    got, gradients = _loss_and_gradients(run_mixed, [inputs] + mixed.trainable_weights)
    assert dtypes == [tf.bfloat16]
    for a, b in zip(got + gradients, expected + expected_gradients):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, atol=0.05, rtol=0.05)


def test_bidirectional_encoders_made_while_a_keras_file_loads_keep_both_directions():
    # While a .keras file loads, Keras notes each object it serializes by
    # id() (its object-sharing scope); `Bidirectional` serializes the layer
    # it wraps, and a wrapped layer freed after one encoder could hand its
    # id to the next encoder's, which then got a copy of the first one's
    # direction (about 1 scope in 5 of six encoders, before the encoder
    # kept its wrapped layers).
    from keras.src.saving.serialization_lib import ObjectSharingScope

    for _ in range(30):
        with ObjectSharingScope():
            encoders = [RNNEncoder(units=8, num_layers=2, bidirectional=True) for _ in range(6)]
        for encoder in encoders:
            for layer in encoder.rnn_layers:
                assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
