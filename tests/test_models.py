import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq import AttentionSeq2Seq, Seq2Seq, SequenceCrossEntropy
from keras_seq2seq.decoding import generate, greedy_generate, greedy_search
from keras_seq2seq.losses import smoothed_cross_entropy
from keras_seq2seq.metrics import MaskedAccuracy, exact_match
from keras_seq2seq.optimizers import FusedAdam
from keras_seq2seq.text import BOS_ID, EOS_ID


def _copy_task(rng, n=256, vocab=12, length=6):
    """Copy a sequence of random tokens: learnable in a few epochs."""
    source = rng.integers(4, vocab, size=(n, length)).astype("int32")
    lengths = rng.integers(2, length + 1, size=n)
    for row, k in zip(source, lengths):
        row[k:] = 0
    target = np.zeros((n, length + 1), "int32")
    decoder_in = np.zeros((n, length + 1), "int32")
    for i, k in enumerate(lengths):
        target[i, :k] = source[i, :k]
        target[i, k] = EOS_ID
        decoder_in[i, 0] = BOS_ID
        decoder_in[i, 1 : k + 1] = source[i, :k]
    return {"source_ids": source, "decoder_input_ids": decoder_in}, target


def _compile(model, lr=1e-2):
    model.compile(
        optimizer=FusedAdam(lr, global_clipnorm=5.0),
        loss=SequenceCrossEntropy(),
        metrics=[MaskedAccuracy()],
    )
    return model


MODELS = [
    lambda: AttentionSeq2Seq(12, embedding_dim=16, units=32, attention="luong_general"),
    lambda: AttentionSeq2Seq(12, embedding_dim=16, units=32, attention="bahdanau", input_feeding=False),
    lambda: AttentionSeq2Seq(12, embedding_dim=16, units=32, attention="location_sensitive",
                             attention_options={"filters": 8, "kernel_size": 5}, cell_type="gru"),
    lambda: Seq2Seq(12, embedding_dim=16, units=32, encoder_layers=2, decoder_layers=2),
    lambda: AttentionSeq2Seq(12, embedding_dim=16, units=32, encoder_layers=2, init_scale=0.1),
    # The copy task's ids 4-11 out of a larger shared vocabulary.
    lambda: AttentionSeq2Seq(30, embedding_dim=16, units=32, source_vocabulary=range(12),
                             target_vocabulary=[0, 1, 2, 3, *range(4, 12), 29]),
]


@pytest.mark.parametrize("make", MODELS)
def test_short_fit_lowers_the_loss(rng, make):
    x, y = _copy_task(rng)
    model = _compile(make())
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


@pytest.mark.parametrize("make", MODELS)
def test_keras_file_round_trip_gives_identical_outputs(rng, tmp_path, make):
    x, y = _copy_task(rng, n=16)
    model = _compile(make())
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


@pytest.mark.parametrize("file, weights", [
    ("attention_seq2seq_7cec63d.keras", {"source_embedding": 1.0, "target_embedding": 2.0}),
    ("speech_to_text_7cec63d.keras", {"output_projection": 1.0, "ctc_projection": 2.0}),
])
def test_keras_files_saved_by_an_earlier_release_load_each_weight_where_it_was(file, weights):
    """`.keras` files saved at commit 7cec63d (Keras 3.15) still load.

    Keras names the weights of a model's top-level layers of one class by
    their order in `model.layers` ("layers/embedding", "layers/embedding_1"),
    so creating a text model's two embeddings (of equal shapes here) in
    another order would load each into the other, silently; a speech
    model's output layer is stored that way too, beside a CTC layer of its
    shape. In these files each of the two holds a value of its own.
    """
    import os

    import keras_seq2seq

    model = keras_seq2seq.load_model(os.path.join(os.path.dirname(__file__), "data", file))
    for layer, value in weights.items():
        np.testing.assert_array_equal(getattr(model, layer).weights[0].numpy(), value)


def test_a_keras_file_saved_by_an_earlier_release_computes_what_it_computed_then():
    """The text model's teacher-forced logits from the 7cec63d file equal
    those 7cec63d computed from it (`attention_seq2seq_7cec63d_logits.npy`):
    the decoder side, now shared with the image and speech models
    (`EncoderAttentionDecoder`), computes what it did."""
    import os

    import keras_seq2seq

    data = os.path.join(os.path.dirname(__file__), "data")
    model = keras_seq2seq.load_model(os.path.join(data, "attention_seq2seq_7cec63d.keras"))
    logits = model({"source_ids": np.array([[5, 6, 7, 2, 0], [8, 9, 2, 0, 0]], "int32"),
                    "decoder_input_ids": np.array([[1, 5, 6], [1, 7, 0]], "int32")})
    np.testing.assert_allclose(
        np.asarray(logits), np.load(os.path.join(data, "attention_seq2seq_7cec63d_logits.npy")),
        rtol=1e-5, atol=1e-6)


def test_compiled_model_loads_in_a_fresh_process(rng, tmp_path):
    """Everything a compiled model refers to is registered by `keras_seq2seq.load_model`."""
    import subprocess
    import sys

    x, y = _copy_task(rng, n=8)
    model = _compile(MODELS[0]())
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "compiled.keras")
    model.save(path)
    code = f"import keras_seq2seq; keras_seq2seq.load_model({path!r}); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_fused_adam_trains_as_keras_adam_does(rng):
    """Same weights after a few steps (sparse embedding gradients, clipping
    and a learning-rate schedule included), and a config that loads back."""
    x, y = _copy_task(rng, n=64)
    weights = {}
    for optimizer_class in (keras.optimizers.Adam, FusedAdam):
        keras.utils.set_random_seed(3)
        model = MODELS[0]()
        schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=10, alpha=0.05)
        model.compile(optimizer=optimizer_class(schedule, global_clipnorm=1.0),
                      loss=SequenceCrossEntropy())
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        weights[optimizer_class] = model.get_weights()
    for fused, plain in zip(weights[FusedAdam], weights[keras.optimizers.Adam]):
        np.testing.assert_allclose(fused, plain, atol=1e-5)
    optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(FusedAdam(3e-4)))
    assert type(optimizer) is FusedAdam and float(optimizer.learning_rate) == pytest.approx(3e-4)


def test_loss_ignores_padding_and_smooths_labels():
    logits = np.log(np.array([[[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]], "float32"))
    labels = np.array([[1 + 0, 0]])  # second position is padding
    labels[0, 0] = 2
    plain = float(SequenceCrossEntropy()(labels, logits))
    np.testing.assert_allclose(plain, -np.log(0.1), rtol=1e-5)
    smoothed = float(SequenceCrossEntropy(label_smoothing=0.2)(labels, logits))
    expected = 0.8 * -np.log(0.1) + 0.2 * -np.mean(np.log([0.7, 0.1, 0.1, 0.1]))
    np.testing.assert_allclose(smoothed, expected, rtol=1e-5)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_smoothed_cross_entropy_matches_the_fused_kernel_in_values_and_gradients(
        rng, label_smoothing):
    # Large logits too: the written-out softmax must not overflow.
    logits = tf.constant(rng.normal(scale=30.0, size=(3, 5, 11)), tf.float32)
    labels = tf.constant(rng.integers(0, 11, size=(3, 5)), tf.int32)
    upstream = tf.constant(rng.normal(size=(3, 5)), tf.float32)

    def value_and_gradient(cross_entropy):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            values = cross_entropy()
            weighted = tf.reduce_sum(values * upstream)
        return values, tape.gradient(weighted, logits)

    values, gradient = value_and_gradient(
        lambda: smoothed_cross_entropy(labels, logits, label_smoothing))
    smoothed = tf.one_hot(labels, 11) * (1 - label_smoothing) + label_smoothing / 11
    expected, expected_gradient = value_and_gradient(
        lambda: tf.nn.softmax_cross_entropy_with_logits(smoothed, logits))
    assert values.shape == (3, 5)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)


def test_loss_configuration_round_trips():
    loss = SequenceCrossEntropy(0.1, ignore_unknown=True, from_log_probabilities=True)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is SequenceCrossEntropy
    assert restored.get_config() == loss.get_config()
    assert restored.from_log_probabilities and restored.ignore_unknown


def test_token_accuracy_counts_argmax_hits_on_real_positions():
    logits = tf.constant([[[0.1, 2.0, 0.3], [3.0, 0.0, -1.0], [0.0, 0.0, 5.0]]])
    metric = MaskedAccuracy()
    metric.update_state(tf.constant([[1, 2, 0]]), logits)  # third position: padding
    assert float(metric.result()) == pytest.approx(0.5)


def test_attention_weights_are_available(rng):
    x, _ = _copy_task(rng, n=4)
    model = AttentionSeq2Seq(12, embedding_dim=8, units=16)
    logits, alignments = model(x, return_attention=True)
    assert logits.shape == (4, 7, 12) and alignments.shape == (4, 7, 6)
    padded = x["source_ids"] == 0
    assert np.all(np.asarray(alignments)[np.broadcast_to(padded[:, None, :], alignments.shape)] == 0)


def test_greedy_decoding_learns_the_copy_task(rng):
    keras.utils.set_random_seed(0)
    x, y = _copy_task(rng, n=1024)
    model = _compile(AttentionSeq2Seq(12, embedding_dim=32, units=64), lr=1e-2)
    model.fit(x, y, batch_size=64, epochs=12, verbose=0)
    ids, scores = greedy_generate(model, x["source_ids"][:64], max_length=10)
    ids = ids.numpy()
    assert np.all(ids[:, 7:] == 0)  # nothing after EOS
    row_correct = np.all(ids[:, :7] == y[:64], axis=1)
    assert row_correct.mean() >= 0.9, row_correct.mean()
    assert np.all(scores.numpy() <= 0)


def test_greedy_search_stops_at_end_and_length_limit():
    vocab = 6
    # A step function that emits 4, 5, then EOS, whatever the input.
    script = tf.constant([4, 5, EOS_ID, 4, 4, 4, 4, 4])

    def step(tokens, t, context):
        log_probs = tf.math.log(tf.one_hot(tf.gather(script, t), vocab) * 0.9 + 0.1 / vocab)
        return log_probs, t + 1

    start = tf.fill([3], BOS_ID)
    ids, scores = greedy_search(step, tf.zeros([3], tf.int32), start, EOS_ID, max_length=8,
                                length_limits=tf.constant([8, 2, 1]))
    # A row that reaches its limit is ended with EOS, which counts in the limit.
    assert ids.numpy().tolist() == [
        [4, 5, EOS_ID, 0, 0, 0, 0, 0],
        [4, EOS_ID, 0, 0, 0, 0, 0, 0],
        [EOS_ID, 0, 0, 0, 0, 0, 0, 0],
    ]
    likely, unlikely = np.log(0.9 + 0.1 / vocab), np.log(0.1 / vocab)
    np.testing.assert_allclose(
        scores.numpy(), [3 * likely, likely + unlikely, unlikely], rtol=1e-5
    )


def test_exact_match():
    assert exact_match(["a", "b "], ["a", "c"]) == 0.5
    with pytest.raises(ValueError):
        exact_match(["a"], [])


def test_init_scale_draws_every_weight_uniformly():
    keras.utils.set_random_seed(0)
    model = AttentionSeq2Seq(50, embedding_dim=16, units=32, encoder_layers=2, init_scale=0.1)
    model.build()
    for weight in model.get_weights():
        assert np.abs(weight).max() <= 0.1
        if weight.size > 100:
            # Uniform on [-0.1, 0.1]: standard deviation 0.1 / sqrt(3).
            assert abs(weight.std() - 0.1 / np.sqrt(3)) < 0.01
    default = AttentionSeq2Seq(50, embedding_dim=16, units=32, encoder_layers=2)
    default.build()
    assert not any(np.allclose(a, b) for a, b in zip(model.get_weights(), default.get_weights())
                   if a.size > 100)


def _side_vocabulary_pair(vocabulary_size=40):
    """A model over the whole vocabulary, and the same weights as a model
    over side vocabularies: the target embedding and output layer keep the
    target ids' rows and columns."""
    keras.utils.set_random_seed(0)
    source_vocabulary = [0, 1, 2, 3, *range(4, 20)]
    target_vocabulary = [0, 1, 2, 3, *range(24, 32)]
    whole = AttentionSeq2Seq(vocabulary_size, embedding_dim=8, units=16)
    whole.build()
    side = AttentionSeq2Seq(vocabulary_size, embedding_dim=8, units=16,
                            source_vocabulary=source_vocabulary,
                            target_vocabulary=target_vocabulary)
    side.build()
    for layer in ("encoder", "decoder"):
        side.get_layer(layer).set_weights(whole.get_layer(layer).get_weights())
    side.source_embedding.set_weights([whole.source_embedding.get_weights()[0][source_vocabulary]])
    side.target_embedding.set_weights([whole.target_embedding.get_weights()[0][target_vocabulary]])
    kernel, bias = whole.output_projection.get_weights()
    side.output_projection.set_weights([kernel[:, target_vocabulary], bias[target_vocabulary]])
    # Ids outside the target vocabulary become impossible for the whole model.
    outside = np.setdiff1d(np.arange(vocabulary_size), target_vocabulary)
    bias[outside] = -1e9
    whole.output_projection.set_weights([kernel, bias])
    return whole, side, target_vocabulary


def test_side_vocabularies_compute_what_the_whole_vocabulary_restricted_to_them_does(rng):
    whole, side, target_vocabulary = _side_vocabulary_pair()
    source = rng.integers(4, 20, size=(6, 7)).astype("int32")
    source[:, -1] = EOS_ID
    target = rng.choice(target_vocabulary[4:], size=(6, 5)).astype("int32")
    target[:, -1] = EOS_ID
    decoder_in = np.concatenate([np.full((6, 1), BOS_ID, "int32"), target[:, :-1]], axis=1)
    x = {"source_ids": source, "decoder_input_ids": decoder_in}

    side_logits = side(x).numpy()
    assert side_logits.shape == (6, 5, len(target_vocabulary))
    np.testing.assert_allclose(side_logits, whole(x).numpy()[..., target_vocabulary], atol=1e-5)

    # fit/evaluate take vocabulary-id labels; the losses agree.
    for model in (whole, side):
        _compile(model)
    np.testing.assert_allclose(side.evaluate(x, target, verbose=0)[0],
                               whole.evaluate(x, target, verbose=0)[0], rtol=1e-4)

    # Decoding gives vocabulary ids, the same as the whole model's.
    for beam_size in (1, 3):
        side_ids, side_scores = generate(side, source, max_length=8, beam_size=beam_size)
        whole_ids, whole_scores = generate(whole, source, max_length=8, beam_size=beam_size)
        np.testing.assert_array_equal(side_ids.numpy(), whole_ids.numpy())
        np.testing.assert_allclose(side_scores.numpy(), whole_scores.numpy(), rtol=1e-4)
    assert set(np.unique(side_ids.numpy())) <= set(target_vocabulary)


def test_source_ids_outside_the_source_vocabulary_read_as_unknown():
    _, side, _ = _side_vocabulary_pair()
    with_outside = np.array([[5, 33, 7, EOS_ID]], "int32")
    with_unknown = np.array([[5, 1, 7, EOS_ID]], "int32")
    for a, b in zip(tf.nest.flatten(side.encode(with_outside)),
                    tf.nest.flatten(side.encode(with_unknown))):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("vocabulary, message", [
    ([0, 1, 2, 3, 9, 7], "sorted"),
    ([1, 2, 3, 4], "special ids"),
    ([0, 1, 2, 3, 40], "past vocabulary_size"),
])
def test_a_side_vocabulary_that_cannot_work_is_refused(vocabulary, message):
    with pytest.raises(ValueError, match=message):
        AttentionSeq2Seq(40, target_vocabulary=vocabulary)
