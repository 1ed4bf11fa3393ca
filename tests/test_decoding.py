import itertools

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq import AttentionSeq2Seq, PointerGenerator, Seq2Seq
from keras_seq2seq.decoding import (
    beam_search,
    coverage_penalty,
    generate,
    greedy_generate,
    length_penalty,
    sample,
    score,
)
from keras_seq2seq.decoding import search as search_module
from keras_seq2seq.decoding.search import blockwise_top_k
from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID
from tests.conftest import peaked_model, while_loops

VOCAB = 6  # pad, unk, bos, eos, and two words


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(7)
    model = AttentionSeq2Seq(VOCAB, embedding_dim=8, units=8, attention="bahdanau")
    model.build()
    # Sharpen the random model so that hypotheses differ clearly in score.
    projection = model.output_projection
    projection.kernel.assign(projection.kernel * 6.0)
    return model


SOURCES = np.array([[4, 5, 4, EOS_ID], [5, EOS_ID, PAD_ID, PAD_ID]], "int32")


def teacher_forced_log_prob(model, source, sequences):
    """log p(sequence | source) of each sequence, EOS included, by teacher forcing."""
    n = len(sequences)
    length = max(len(s) for s in sequences)
    decoder_in = np.zeros((n, length), "int32")
    target = np.zeros((n, length), "int32")
    for i, s in enumerate(sequences):
        decoder_in[i, 0] = BOS_ID
        decoder_in[i, 1 : len(s)] = s[:-1]
        target[i, : len(s)] = s
    logits = model({"source_ids": np.repeat(source[None], n, 0), "decoder_input_ids": decoder_in})
    log_probs = tf.nn.log_softmax(logits).numpy()
    picked = np.take_along_axis(log_probs, target[..., None], -1)[..., 0]
    return (picked * (target != PAD_ID)).sum(-1)


def all_sequences(max_length):
    """Every output of at most max_length tokens ending with EOS (no PAD inside)."""
    words = [t for t in range(VOCAB) if t not in (PAD_ID, EOS_ID)]
    return [
        list(prefix) + [EOS_ID]
        for n in range(max_length)
        for prefix in itertools.product(words, repeat=n)
    ]


def _unpad(row):
    row = list(row)
    return row[: row.index(EOS_ID) + 1] if EOS_ID in row else [t for t in row if t != PAD_ID]


def test_beam_search_equals_exhaustive_search(tiny_model):
    max_length = 4
    candidates = all_sequences(max_length)  # 85 sequences
    ids, scores = generate(tiny_model, SOURCES, max_length, beam_size=64)
    for row, source in enumerate(SOURCES):
        exact = teacher_forced_log_prob(tiny_model, source, candidates)
        order = np.argsort(-exact)
        found = [_unpad(h) for h in ids.numpy()[row]]
        # Pruning only happens at the last step, among complete sequences, so
        # the whole 10-best list must be exact, scores included.
        for rank in range(10):
            assert found[rank] == candidates[order[rank]]
            np.testing.assert_allclose(scores.numpy()[row, rank], exact[order[rank]], rtol=1e-4)


def test_scores_are_teacher_forced_log_probs_and_nbest_is_sorted_and_distinct(tiny_model):
    ids, scores = generate(tiny_model, SOURCES, max_length=8, beam_size=5)
    ids, scores = ids.numpy(), scores.numpy()
    for row, source in enumerate(SOURCES):
        hyps = [_unpad(h) for h in ids[row]]
        assert len({tuple(h) for h in hyps}) == 5
        assert np.all(np.diff(scores[row]) <= 1e-6)
        np.testing.assert_allclose(
            scores[row], teacher_forced_log_prob(tiny_model, source, hyps), rtol=1e-4
        )


def test_generate_traced_is_the_same_search(tiny_model):
    traced = tf.function(lambda s: generate(tiny_model, s, max_length=8, beam_size=3))
    ids, scores = traced(tf.constant(SOURCES))
    want_ids, want_scores = generate(tiny_model, SOURCES, max_length=8, beam_size=3)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores)


def _padded(rows, width=None):
    width = width or max(len(r) for r in rows)
    out = np.zeros((len(rows), width), "int32")
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def test_score_is_the_teacher_forced_log_prob_and_the_search_score(tiny_model):
    ids, scores = generate(tiny_model, SOURCES, max_length=8, beam_size=3)
    best = ids.numpy()[:, 0]
    log_prob, tokens = score(tiny_model, SOURCES, best)
    np.testing.assert_allclose(log_prob, scores.numpy()[:, 0], rtol=1e-5)
    others = [[4, 4, 5, EOS_ID], [EOS_ID]]
    log_prob, tokens = score(tiny_model, SOURCES, _padded(others, 6))
    assert tokens.numpy().tolist() == [4, 1]
    for row, source in enumerate(SOURCES):
        np.testing.assert_allclose(
            log_prob.numpy()[row], teacher_forced_log_prob(tiny_model, source, [others[row]])[0],
            rtol=1e-5)


def test_forced_attention_is_the_teacher_forced_attention(tiny_model):
    targets = _padded([[4, 4, 5, EOS_ID], [5, EOS_ID]])
    _, _, attention = score(tiny_model, SOURCES, targets, attention=True)
    decoder_in = np.concatenate([np.full((2, 1), BOS_ID, "int32"), targets[:, :-1]], 1)
    _, expected = tiny_model({"source_ids": SOURCES, "decoder_input_ids": decoder_in},
                             return_attention=True)
    real = (targets != PAD_ID)[..., None]
    np.testing.assert_allclose(attention.numpy(), expected.numpy() * real, atol=1e-6)
    np.testing.assert_allclose(attention.numpy().sum(-1), real[..., 0].astype(float), atol=1e-5)


def test_a_model_without_attention_has_no_alignments():
    model = Seq2Seq(VOCAB, embedding_dim=8, units=8)
    model.build()
    assert not model.has_attention
    with pytest.raises(ValueError, match="no attention"):
        score(model, SOURCES, _padded([[EOS_ID], [EOS_ID]]), attention=True)


def test_prefixes_start_every_hypothesis_and_the_search_is_exact_among_them(tiny_model):
    prefixes = [[4], [5, 4]]
    max_length = 4
    ids, scores = generate(tiny_model, SOURCES, max_length, beam_size=64,
                           prefix_ids=_padded(prefixes))
    candidates = all_sequences(max_length)
    for row, source in enumerate(SOURCES):
        prefix = prefixes[row]
        allowed = [c for c in candidates if c[: len(prefix)] == prefix and len(c) > len(prefix)]
        exact = teacher_forced_log_prob(tiny_model, source, allowed)
        order = np.argsort(-exact)
        found = [_unpad(h) for h in ids.numpy()[row]]
        for rank in range(5):
            assert found[rank] == allowed[order[rank]]
            np.testing.assert_allclose(scores.numpy()[row, rank], exact[order[rank]], rtol=1e-4)


def test_an_empty_prefix_changes_nothing_and_a_long_one_is_cut_at_the_buffer(tiny_model):
    plain = generate(tiny_model, SOURCES, max_length=8, beam_size=3, alpha=0.6)
    empty = generate(tiny_model, SOURCES, max_length=8, beam_size=3, alpha=0.6,
                     prefix_ids=np.zeros((2, 1), "int32"))
    np.testing.assert_array_equal(plain[0], empty[0])
    np.testing.assert_allclose(plain[1], empty[1], rtol=1e-6)
    # Longer than the row's length limit (2 * 2 + 10 for the second row) and the buffer.
    long_prefix = np.tile([[4, 5]], (2, 10)).astype("int32")
    ids, scores = generate(tiny_model, SOURCES, max_length=8, beam_size=2, prefix_ids=long_prefix)
    for row in ids.numpy()[:, 0]:
        assert row.tolist() == long_prefix[0, :7].tolist() + [EOS_ID]
    assert np.isfinite(scores.numpy()).all() and (scores.numpy()[:, 0] > -1e8).all()


def test_a_coverage_penalty_without_coverage_is_an_error():
    """Seq2Seq has no attention, so nothing to cover: a Python beta is refused
    at once, a tensor beta (a served request) at run time; beta 0 works."""
    model = Seq2Seq(VOCAB, embedding_dim=8, units=8)
    model.build()
    assert not model.has_coverage
    with pytest.raises(ValueError, match="keeps no attention coverage"):
        generate(model, SOURCES, max_length=6, beam_size=2, beta=0.5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="beta must be 0"):
        generate(model, SOURCES, max_length=6, beam_size=2, beta=tf.constant(0.5))
    zero, _ = generate(model, SOURCES, max_length=6, beam_size=2, beta=tf.constant(0.0))
    plain, _ = generate(model, SOURCES, max_length=6, beam_size=2)
    np.testing.assert_array_equal(zero, plain)


def test_decode_refuses_a_coverage_penalty_it_cannot_read():
    table = np.zeros((8, 8), "float32")
    with pytest.raises(ValueError, match="coverage_fn"):
        beam_search(markov_step(table), tf.zeros([1]), tf.fill([1], BOS_ID), EOS_ID, 4,
                    beam_size=2, beta=1.0)


def test_beam_of_one_equals_a_plain_greedy_loop(tiny_model):
    ids, scores = greedy_generate(tiny_model, SOURCES, max_length=8)
    context, state = tiny_model.encode(SOURCES)
    tokens = tf.fill([2], BOS_ID)
    expected = np.zeros((2, 8), "int32")
    done = np.zeros(2, bool)
    for t in range(8):
        log_probs, state = tiny_model.step(tokens, state, context)
        log_probs = log_probs.numpy()
        log_probs[:, PAD_ID] = -np.inf
        best = log_probs.argmax(-1) if t < 7 else np.full(2, EOS_ID)  # limit: 8 tokens
        tokens = np.where(done, PAD_ID, best).astype("int32")
        expected[:, t] = tokens
        done |= tokens == EOS_ID
    np.testing.assert_array_equal(ids.numpy(), expected)


def test_length_penalty_divides_the_log_prob(tiny_model):
    ids, scores = generate(tiny_model, SOURCES, max_length=8, beam_size=4, alpha=0.8)
    for row, source in enumerate(SOURCES):
        hyps = [_unpad(h) for h in ids.numpy()[row]]
        log_probs = teacher_forced_log_prob(tiny_model, source, hyps)
        penalties = length_penalty(np.array([len(h) for h in hyps]), 0.8).numpy()
        np.testing.assert_allclose(scores.numpy()[row], log_probs / penalties, rtol=1e-4)


def test_coverage_penalty_formula():
    coverage = tf.constant([[0.5, 2.0, 0.1]])
    mask = tf.constant([[True, True, False]])
    np.testing.assert_allclose(coverage_penalty(coverage, mask, 0.2).numpy(), [0.2 * np.log(0.5)])


def test_coverage_penalty_changes_ranking_scores(tiny_model):
    _, plain = generate(tiny_model, SOURCES, max_length=8, beam_size=3)
    _, penalised = generate(tiny_model, SOURCES, max_length=8, beam_size=3, beta=1.0)
    assert np.all(penalised.numpy() <= plain.numpy() + 1e-6)
    assert np.any(penalised.numpy() < plain.numpy() - 1e-3)


# -- a Markov-chain "model", for checks that need a known distribution ---------

def markov_step(table):
    table = tf.constant(table, tf.float32)

    def step(tokens, state, context):
        return tf.nn.log_softmax(tf.gather(table, tokens)), state

    return step


def random_table(seed, vocab=8, eos_logit=-30.0):
    table = np.random.default_rng(seed).normal(scale=2.0, size=(vocab, vocab)).astype("float32")
    table[:, EOS_ID] = eos_logit
    table[:, PAD_ID] = -30.0
    return table


def test_agrees_with_keras_hub_beam_sampler():
    """Where the semantics coincide, the two searches agree.

    KerasHub's BeamSampler fills a fixed number of positions with no end
    token. Ours ends every hypothesis with EOS at the length limit; giving EOS
    the same probability after every token makes that last step cost all
    hypotheses the same, so the rankings coincide.
    """
    steps, beams, eos_log_prob = 5, 4, np.log(1e-6)
    table = random_table(3)
    table[:, EOS_ID] = -np.inf
    log_probs = tf.nn.log_softmax(table).numpy() + np.log1p(-1e-6)
    log_probs[:, EOS_ID] = eos_log_prob
    ids, scores = beam_search(markov_step(log_probs), tf.zeros([2]), tf.constant([BOS_ID, 4]),
                              EOS_ID, max_length=steps + 1, beam_size=beams)

    def next_fn(prompt, cache, index):
        return tf.gather(tf.constant(log_probs), prompt[:, index - 1]), None, cache

    prompt = tf.constant([[BOS_ID] + [0] * steps, [4] + [0] * steps])
    sampler = keras_hub.samplers.BeamSampler(num_beams=beams, return_all_beams=True)
    hub_ids, hub_log_probs = sampler(next_fn, prompt, index=1)
    hub_ids, hub_log_probs = hub_ids.numpy(), hub_log_probs.numpy()
    for row in range(2):
        for b in range(beams):
            ours = ids.numpy()[row, b]
            np.testing.assert_array_equal(ours[:steps], hub_ids[row, b, 1:])
            assert ours[steps] == EOS_ID
            np.testing.assert_allclose(
                scores.numpy()[row, b], hub_log_probs[row, b] + eos_log_prob, rtol=1e-4
            )


def test_sampling_is_reproducible_and_top_k_stays_in_the_top_k():
    table = random_table(5, eos_logit=-1.0)
    step = markov_step(table)
    start = tf.fill([64], BOS_ID)
    a, _ = sample(step, tf.zeros([64]), start, EOS_ID, 12, top_k=2, seed=(1, 2))
    b, _ = sample(step, tf.zeros([64]), start, EOS_ID, 12, top_k=2, seed=(1, 2))
    c, _ = sample(step, tf.zeros([64]), start, EOS_ID, 12, top_k=2, seed=(3, 4))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    allowed = {prev: set(np.argsort(-table[prev])[:2]) for prev in range(table.shape[0])}
    for row in a.numpy():
        prev = BOS_ID
        for token in _unpad(row):
            # EOS may be forced at the length limit.
            assert token in allowed[prev] or token == EOS_ID
            prev = token


def test_top_p_sampling_keeps_the_nucleus():
    table = np.full((8, 8), -30.0, "float32")
    table[:, 4], table[:, 5], table[:, EOS_ID] = 3.0, 2.9, 0.0  # 4 and 5 hold ~95%
    # Token 4 alone holds 51%: at top_p=0.5 it is the whole nucleus.
    out, _ = sample(markov_step(table), tf.zeros([32]), tf.fill([32], BOS_ID), EOS_ID, 6,
                    top_p=0.5, seed=(0, 1))
    tokens = out.numpy()[:, :5]
    assert (tokens == 4).all()
    # With the nucleus switched off the same seed draws 5 (46%) too.
    unfiltered, _ = sample(markov_step(table), tf.zeros([32]), tf.fill([32], BOS_ID), EOS_ID, 6,
                           top_p=1.0, seed=(0, 1))
    assert (unfiltered.numpy()[:, :5] == 5).any()


def test_min_length_and_ngram_blocking():
    table = np.full((8, 8), -5.0, "float32")
    table[BOS_ID, 4] = 5.0
    table[4, 5] = 5.0
    table[5, 4] = 5.0          # 4 5 4 5 ... repeats a bigram
    table[:, PAD_ID] = -30.0
    step = markov_step(table)
    plain, _ = beam_search(step, tf.zeros([1]), tf.fill([1], BOS_ID), EOS_ID, 10, beam_size=2)
    assert _unpad(plain.numpy()[0, 0])[:4] == [4, 5, 4, 5]
    blocked, _ = beam_search(step, tf.zeros([1]), tf.fill([1], BOS_ID), EOS_ID, 10, beam_size=2,
                             no_repeat_ngram_size=2)
    hyp = _unpad(blocked.numpy()[0, 0])
    bigrams = list(zip(hyp, hyp[1:]))
    assert len(bigrams) == len(set(bigrams))
    short_table = table.copy()
    short_table[4, EOS_ID] = 8.0
    unconstrained, _ = beam_search(markov_step(short_table), tf.zeros([1]), tf.fill([1], BOS_ID),
                                   EOS_ID, 10, beam_size=2)
    assert _unpad(unconstrained.numpy()[0, 0]) == [4, EOS_ID]
    early, _ = beam_search(markov_step(short_table), tf.zeros([1]), tf.fill([1], BOS_ID), EOS_ID,
                           10, beam_size=2, min_length=3)
    assert len(_unpad(early.numpy()[0, 0])) >= 4


@pytest.mark.parametrize("width", [2048, 8000, 8003])
@pytest.mark.parametrize("k", [1, 5, 32])
@pytest.mark.parametrize("width_known_when_traced", [True, False])
def test_blockwise_top_k_equals_top_k(width, k, width_known_when_traced):
    scores = tf.constant(np.random.default_rng(width + k).normal(size=(40, width)), tf.float32)
    signature = None if width_known_when_traced else [tf.TensorSpec([None, None], tf.float32)]
    values, indices = tf.function(lambda s: blockwise_top_k(s, k), input_signature=signature)(scores)
    expected = tf.math.top_k(scores, k)
    np.testing.assert_array_equal(values, expected.values)
    np.testing.assert_array_equal(indices, expected.indices)


def _wide_attention_model():
    model = AttentionSeq2Seq(3000, embedding_dim=8, units=16)
    model.build()
    sources = np.random.default_rng(0).integers(4, 3000, (3, 6)).astype("int32")
    sources[:, -1] = EOS_ID
    return model, sources, None


def _pointer_generator_as_exported():
    # A pointer-generator's width (vocabulary + source) is known only at
    # run time in an export: the search picks blockwise top-k when it is wide.
    model = PointerGenerator(2100, embedding_dim=8, units=16)
    model.build()
    sources = np.random.default_rng(0).integers(4, 2100, (3, 6)).astype("int32")
    sources[:, 2], sources[:, -1] = 2100, EOS_ID  # an extended id
    return model, sources, [tf.TensorSpec([None, None], tf.int32)]


@pytest.mark.parametrize("make", [_wide_attention_model, _pointer_generator_as_exported],
                         ids=["width_known_when_traced", "width_known_at_run_time"])
def test_wide_outputs_search_the_same_with_blockwise_top_k(monkeypatch, make):
    keras.utils.set_random_seed(3)
    model, sources, signature = make()

    def search():
        traced = tf.function(lambda s: generate(model, s, max_length=8, beam_size=4),
                             input_signature=signature)
        return traced(sources)

    blockwise = search()
    monkeypatch.setattr(search_module, "_BLOCKWISE_TOP_K_WIDTH", 10**9)
    plain = search()
    np.testing.assert_array_equal(blockwise[0], plain[0])
    np.testing.assert_allclose(blockwise[1], plain[1], rtol=1e-6)


def test_translate_in_length_batches_batches_by_length_and_keeps_the_order():
    from keras_seq2seq.decoding import translate_in_length_batches

    lines = ["a b c d", "a", "a b", "a b c d e f", "a b c", "x"]
    seen = []

    def translate_batch(batch):
        seen.append(batch)
        return [line.upper() for line in batch]

    assert translate_in_length_batches(translate_batch, lines, 2) == [s.upper() for s in lines]
    assert seen == [["a", "x"], ["a b", "a b c"], ["a b c d", "a b c d e f"]]


@pytest.fixture(scope="module")
def ragged_model():
    """A random model whose sentences finish at different steps."""
    return peaked_model(VOCAB, seed=3, units=8)


RAGGED_SOURCES = np.array([[4, 5, 4, 5, 4, EOS_ID], [5, EOS_ID, 0, 0, 0, 0], [4, 4, EOS_ID, 0, 0, 0],
                           [EOS_ID, 0, 0, 0, 0, 0], [5, 5, 5, 4, EOS_ID, 0]], "int32")


@pytest.mark.parametrize("options", [
    dict(beam_size=3),
    dict(beam_size=3, alpha=0.6, beta=0.4, no_repeat_ngram_size=2),
    dict(beam_size=4, active_beams=2, min_length=2),
    dict(beam_size=2, prefix_ids=np.array([[4, 0], [0, 0], [5, 4], [0, 0], [4, 0]], "int32")),
])
def test_retiring_finished_sentences_changes_no_output(ragged_model, options):
    def search(retire):
        return generate(ragged_model, RAGGED_SOURCES, max_length=14, retire_finished=retire, **options)

    traced = tf.function(lambda: search(True))
    # XLA compiles the search without retirement (it miscompiles the
    # shrinking loop: other beams, scores off by whole units).
    compiled = tf.function(lambda: search(False), jit_compile=True)
    (want, want_scores), (got, got_scores), (traced_ids, traced_scores), (xla_ids, xla_scores) = (
        search(False), search(True), traced(), compiled())
    # Sentences retire at different steps: each when its longest hypothesis ends.
    retired_at = (want.numpy() != PAD_ID).sum(-1).max(-1)
    assert len(set(retired_at)) > 1
    for ids, scores in ((got, got_scores), (traced_ids, traced_scores), (xla_ids, xla_scores)):
        np.testing.assert_array_equal(ids.numpy(), want.numpy())
        np.testing.assert_allclose(scores.numpy(), want_scores.numpy(), rtol=1e-5)


@pytest.mark.parametrize("parts, sentences, options", [
    (3, 5, dict(beam_size=3, alpha=0.6, beta=0.4, no_repeat_ngram_size=2)),
    # One sentence in two parts: the first is empty and skips its search.
    (2, 1, dict(beam_size=2, prefix_ids=np.array([[5, 4]], "int32"))),
])
def test_parallel_searches_give_the_whole_batchs_outputs(ragged_model, parts, sentences, options):
    def search(parallel_searches):
        return tf.function(lambda: generate(ragged_model, RAGGED_SOURCES[:sentences], max_length=14,
                                            parallel_searches=parallel_searches, **options))

    whole, split = search(1), search(parts)
    (want, want_scores), (got, got_scores) = whole(), split()
    assert got.shape[0] == sentences
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_allclose(got_scores.numpy(), want_scores.numpy(), rtol=1e-5)
    # A loop of its own for each part.
    loops = while_loops(whole.get_concrete_function())
    assert loops > 0 and while_loops(split.get_concrete_function()) == parts * loops


def test_a_retired_sentence_costs_no_more_steps():
    # A step that counts the rows it is called on: both hypotheses of the
    # first sentence end by its second step ("</s>", "5 </s>"), the second
    # sentence's only at the buffer's end ("4 4 4 ...").
    table = np.full((8, 8), -5.0, "float32")
    table[:, PAD_ID] = -30.0
    table[BOS_ID, EOS_ID] = 5.0
    table[BOS_ID, 5] = 4.0
    table[5, EOS_ID] = 5.0
    table[4, 4] = 5.0
    calls = []

    def step(tokens, state, context):
        calls.append(int(tf.shape(tokens)[0]))
        return tf.nn.log_softmax(tf.gather(tf.constant(table), tokens)), state

    for retire in (True, False):
        calls.clear()
        ids, _ = beam_search(step, tf.zeros([2]), tf.constant([BOS_ID, 4]), EOS_ID, 6,
                             beam_size=2, retire_finished=retire)
        assert _unpad(ids.numpy()[0, 0]) == [EOS_ID]
        assert calls == ([4, 4, 2, 2, 2, 2] if retire else [4] * 6)
