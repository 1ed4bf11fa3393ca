import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq.layers import (
    AttentionDecoder,
    BahdanauAttention,
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
    previous = np.full((2, 5), 0.2, "float32")
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


def _decoder_run(decoder, rng, source_lengths=(4, 2)):
    memory = rng.normal(size=(2, 4, 8)).astype("float32")
    mask = _mask(source_lengths, 4)
    decoder.build((None, None, 5), (None, None, 8))
    context = decoder.prepare_context(memory, mask)
    encoder_states = [[tf.zeros((2, 8)), tf.zeros((2, 8))]]
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
