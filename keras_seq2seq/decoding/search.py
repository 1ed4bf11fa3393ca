"""Decoding written once: one loop over a step function serves beam search,
greedy search and sampling.

Every search takes a step function

    step_fn(token_ids [rows], state, context) -> (log_probs [rows, vocab], state)

where `state` is a nest of [rows, ...] tensors, a row a hypothesis: batch *
beam rows, fewer as sentences finish, the beams of a sentence next to each
other; and `context` a nest of [sentences, ...] tensors that the step only
reads (the encoder's memory), one entry per sentence, shared by its rows
(row r reads sentence r // beam's: the step finds beam as rows // sentences).
The loop keeps `beam` hypotheses per sentence. Each step scores the candidate
(hypothesis, next token) pairs (each hypothesis' own `beam` best tokens when
searching, every token when sampling), lets a *selector* pick the `beam`
survivors (top-k for beam search and greedy, a random draw for sampling),
reorders the state to follow them, and writes the tokens into a preallocated
[batch, beam, max_length] buffer with one-hot updates. There is no
TensorArray, so the loop traces into SavedModels and converts to TFLite
builtin ops. A search may also take the step in factored form
(`factored_step_fn`: logits and a per-row offset, plus exceptions, as a
pointer-generator's source words), whose candidates it finds without
writing out the rows.

A hypothesis that emits `end_id` is finished: from then on it may only emit
padding at no cost, so it keeps competing, unchanged, with the live ones. A
sentence whose hypotheses have all finished can change no more: it retires,
its results written to the output buffers, and the next steps run on the
other sentences' rows only (the state and context cut to them), so a batch
costs what its live sentences cost. The loop ends when every sentence has
finished, or at `max_length`.

Scores are summed log-probabilities; with `alpha` the ranking divides them by
the GNMT length penalty ((5 + length) / 6) ** alpha, and with `beta` it adds
the GNMT coverage penalty beta * sum_j log(min(coverage_j, 1)) over source
positions (Wu et al. 2016), read from the state by `coverage_fn`.
"""

import tensorflow as tf

from keras_seq2seq.text import PAD_ID

NEG_INF = -1e9
# Rows at least this wide (and a block per hypothesis kept) take `blockwise_top_k`.
_BLOCKWISE_TOP_K_WIDTH = 2048
_TOP_K_BLOCK = 64


def tile_beams(nest, beam_size):
    """Repeats every [batch, ...] tensor of `nest` to [batch * beam, ...]."""
    return tf.nest.map_structure(lambda x: tf.repeat(x, beam_size, axis=0), nest)


def length_penalty(lengths, alpha):
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def coverage_penalty(coverage, source_mask, beta):
    """GNMT coverage penalty: beta * sum_j log(min(coverage_j, 1)), real positions only."""
    capped = tf.math.log(tf.clip_by_value(coverage, 1e-10, 1.0))
    return beta * tf.reduce_sum(capped * tf.cast(source_mask, tf.float32), axis=-1)


def _banned_by_ngram_blocking(ids, t, n, vocab_size):
    """[rows, vocab] mask of tokens that would repeat an n-gram of `ids[:, :t]`."""
    max_length = ids.shape[-1]
    if n < 1 or max_length is None or max_length < n:
        return tf.zeros([tf.shape(ids)[0], vocab_size], tf.bool)
    if n == 1:
        seen = tf.cast(tf.range(max_length) < t, tf.int32)[None, :]
        return tf.reduce_max(tf.one_hot(ids * seen, vocab_size) * tf.cast(seen, tf.float32)[..., None], axis=1) > 0
    windows = max_length - n + 1
    # The last n-1 tokens written, ids[:, t-n+1 : t].
    last = tf.stack(
        [tf.gather(ids, tf.maximum(t - n + 1 + k, 0), axis=1) for k in range(n - 1)], axis=1
    )
    match = tf.ones([tf.shape(ids)[0], windows], tf.bool)
    for k in range(n - 1):
        match &= tf.equal(ids[:, k : k + windows], last[:, k : k + 1])
    # Window j predicts ids[:, j + n - 1], which must already be written.
    match &= (tf.range(windows) + n - 1 < t)[None, :]
    match &= t >= n - 1
    following = ids[:, n - 1 :]
    banned = tf.one_hot(following, vocab_size) * tf.cast(match, tf.float32)[..., None]
    return tf.reduce_max(banned, axis=1) > 0


def _is_python_zero(value):
    return isinstance(value, (int, float)) and value == 0


def blockwise_top_k(scores, k, block_size=_TOP_K_BLOCK):
    """`tf.math.top_k(scores, k)` over a wide last axis, computed in blocks.

    The k largest values of a row lie in the k blocks with the largest
    maxima, so a max over blocks of `block_size`, a top-k over those maxima
    and a top-k over the k chosen blocks find them. On CPU, for beam 5 over
    160 rows of 8,000 log-probabilities, this takes a fraction of the time of
    a plain top-k (0.5 ms against 2-3 ms on 2 cores). Ties may come out in
    another order than `tf.math.top_k`'s.

    Args:
        scores: float [rows, width].
        k: how many to keep (static), at most the width.

    Returns:
        `(values, indices)`, each [rows, k], largest first.
    """
    width = scores.shape[-1] or tf.shape(scores)[-1]
    # At least k blocks (padding ones too): XLA compiles this branch of
    # `_candidates` for rows of any width, the narrow ones included.
    blocks = (width + block_size - 1) // block_size
    blocks = max(blocks, k) if isinstance(blocks, int) else tf.maximum(blocks, k)
    padded = tf.pad(scores, [[0, 0], [0, blocks * block_size - width]],
                    constant_values=scores.dtype.min)
    padded = tf.reshape(padded, [-1, blocks, block_size])
    _, best_blocks = tf.math.top_k(tf.reduce_max(padded, axis=-1), k=k)  # [rows, k]
    candidates = tf.reshape(tf.gather(padded, best_blocks, batch_dims=1), [-1, k * block_size])
    values, positions = tf.math.top_k(candidates, k=k)
    block = tf.gather(best_blocks, positions // block_size, batch_dims=1)
    return values, block * block_size + positions % block_size


def _candidates(log_probs, k):
    """Each row's k best (fewer if the row is narrower): `(scores, ids)`."""
    # Wide rows, of at least k blocks, take blockwise top-k.
    blockwise_from = max(_BLOCKWISE_TOP_K_WIDTH, _TOP_K_BLOCK * k)
    width = log_probs.shape[-1]
    if width is not None:
        if width >= blockwise_from:
            return blockwise_top_k(log_probs, k)
        return tf.math.top_k(log_probs, k=min(k, width))
    # Known at run time only: pointer networks choose among n + 2 tokens, a
    # pointer-generator among its vocabulary and the source's words.
    width = tf.shape(log_probs)[-1]
    return tf.cond(width >= blockwise_from,
                   lambda: blockwise_top_k(log_probs, k),
                   lambda: tuple(tf.math.top_k(log_probs, k=tf.minimum(k, width))))


def _factored_candidates(logits, offsets, exception_ids, exception_scores, k, end_id, end_banned):
    """Each row's k best from log-probabilities in factored form
    (`SequenceModel.step_factored`), padding banned and the end too where
    `end_banned`: `(scores [rows, k], ids [rows, k], end_scores [rows, 1])`,
    the end's log-probability (-1e9 where banned) for rows that must end.

    The k best of a row are among its k + 2 best logits (2: what the search
    may ban) and its exceptions, which score at least their logits do: the
    same candidates as `_candidates` over the row written out, without
    writing it."""
    values, ids = _candidates(logits, k + 2)
    banned = tf.equal(ids, PAD_ID) | tf.reduce_any(
        tf.equal(ids[:, :, None], exception_ids[:, None, :]), axis=-1)
    exception_banned = tf.equal(exception_ids, PAD_ID)
    if end_banned is not None:
        banned |= tf.equal(ids, end_id) & end_banned
        exception_banned |= tf.equal(exception_ids, end_id) & end_banned
    scores = tf.concat([tf.where(banned, NEG_INF, values + offsets),
                        tf.where(exception_banned, NEG_INF, exception_scores)], axis=1)
    best, positions = tf.math.top_k(scores, k=k)
    ids = tf.gather(tf.concat([ids, exception_ids], axis=1), positions, batch_dims=1)
    is_end = tf.equal(exception_ids, end_id)
    end_scores = tf.where(tf.reduce_any(is_end, axis=1, keepdims=True),
                          tf.reduce_max(tf.where(is_end, exception_scores, NEG_INF), axis=1,
                                        keepdims=True),
                          logits[:, end_id : end_id + 1] + offsets)
    if end_banned is not None:
        end_scores = tf.where(end_banned, NEG_INF, end_scores)
    return best, ids, end_scores


class Selector:
    """Picks the `k` survivors of each row from its scored candidates.

    `considers_all_tokens`: whether each hypothesis offers every token as a
    candidate (sampling) or only its own k best (search; the k best of the
    whole beam are always among them).
    """

    considers_all_tokens = False

    def __call__(self, scores, k, step, log_probs):
        """scores [batch, k * width] -> int32 [batch, k] candidate positions.

        `step` is the decoding step; `log_probs` [batch * k, width] the
        model's log-probabilities of each hypothesis' candidates (without
        penalties; for sampling, k is 1 and width the vocabulary).
        """
        raise NotImplementedError


class TopKSelector(Selector):
    """Beam search and greedy search: the k best candidates."""

    def __call__(self, scores, k, step, log_probs):
        return tf.math.top_k(scores, k=k).indices


class SamplingSelector(Selector):
    """Draws one candidate per row (beam size 1).

    Args:
        temperature: divides the log-probabilities before sampling.
        top_k: sample among the k most probable tokens only (0: all).
        top_p: sample among the smallest set of tokens whose probability
            reaches top_p (nucleus sampling; 1.0: all).
        seed: a pair of ints; the same seed gives the same samples.

    Each may be a Python number or a scalar tensor (a signature's input).
    """

    considers_all_tokens = True

    def __init__(self, temperature=1.0, top_k=0, top_p=1.0, seed=(0, 0)):
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.seed = tf.convert_to_tensor(seed, tf.int32)

    def __call__(self, scores, k, step, log_probs):
        if k != 1:
            raise ValueError("sampling keeps one hypothesis per row (beam_size=1)")
        logits = log_probs / self.temperature
        if not _is_python_zero(self.top_k):
            width = tf.shape(logits)[-1]
            keep = tf.clip_by_value(tf.cast(self.top_k, tf.int32), 1, width)
            kth = tf.math.top_k(logits, k=keep).values[:, -1:]
            # top_k 0 (all tokens) compares with the smallest logit: no change.
            kth = tf.where(tf.cast(self.top_k, tf.int32) > 0, kth,
                           tf.reduce_min(logits, axis=-1, keepdims=True))
            logits = tf.where(logits < kth, NEG_INF, logits)
        if not (isinstance(self.top_p, (int, float)) and self.top_p >= 1.0):
            sorted_logits = tf.sort(logits, direction="DESCENDING")
            cumulative = tf.cumsum(tf.nn.softmax(sorted_logits), axis=-1, exclusive=True)
            # The smallest logit still inside the nucleus.
            threshold = tf.reduce_min(
                tf.where(cumulative < self.top_p, sorted_logits, -NEG_INF), axis=-1, keepdims=True
            )
            # top_p 1 keeps every token, also those a rounded cumulative sum reaches 1 before.
            threshold = tf.where(tf.cast(self.top_p, tf.float32) >= 1.0, NEG_INF, threshold)
            logits = tf.where(logits < threshold, NEG_INF, logits)
        return tf.random.stateless_categorical(
            logits, 1, self.seed + tf.stack([step, 0]), dtype=tf.int32)


def _rows_of(sentences, k):
    """int32 [sentences * k]: the rows of the beams of `sentences` [n]."""
    return tf.reshape(sentences[:, None] * k + tf.range(k)[None, :], [-1])


def _write_rows(out, live, rows):
    """`out` (dict of [rows, ...]) with the rows that `live["row"]` names
    replaced by `live`'s."""
    matches = tf.equal(tf.range(rows)[:, None], live["row"][None, :])  # [rows, live]
    present = tf.reduce_any(matches, axis=1)
    # At most one match a row; rows with none read position 0 and keep `out`.
    position = tf.reduce_sum(tf.cast(matches, tf.int32) * tf.range(tf.shape(matches)[1])[None, :],
                             axis=1)
    return {key: tf.where(tf.reshape(present, [-1] + [1] * (value.shape.rank - 1)),
                          tf.gather(live[key], position), value)
            for key, value in out.items()}


def decode(
    step_fn,
    initial_state,
    start_ids,
    end_id,
    max_length,
    beam_size=1,
    context=(),
    length_limits=None,
    alpha=0.0,
    beta=0.0,
    source_mask=None,
    min_length=0,
    no_repeat_ngram_size=0,
    selector=None,
    active_beams=None,
    coverage_fn=None,
    prefix_ids=None,
    retire_finished=True,
    factored_step_fn=None,
):
    """The decoding loop (see the module docstring).

    Args:
        step_fn: `(token_ids, state, context) -> (log_probs, state)` over
            the rows (batch * beam hypotheses, fewer once sentences retire).
        initial_state: nest of [batch, ...] tensors; tiled to the beams here.
        start_ids: int32 [batch], the first input token of each row (BOS).
        end_id: the token that finishes a hypothesis.
        max_length: static length of the output buffer (Python int).
        beam_size: hypotheses kept per row (static Python int).
        context: nest of [batch, ...] tensors the step reads and never
            changes (the encoder's memory): one entry per sentence, shared
            by its beams (see the module docstring), and cut with the state
            when sentences retire.
        length_limits: optional int32 [batch]: hypotheses of row i end (with
            `end_id`) after at most `length_limits[i]` tokens.
        alpha: GNMT length penalty weight (0: none). May be a tensor.
        beta: GNMT coverage penalty weight (0: none); needs `coverage_fn`
            and `source_mask` [batch, source]. May be a tensor.
        min_length: `end_id` is forbidden before this many tokens.
        no_repeat_ngram_size: forbid repeating any n-gram of this size (0: off).
        selector: a `Selector`: `TopKSelector()` (the default) or a
            `SamplingSelector`.
        active_beams: optional int32 scalar <= beam_size, chosen at run time:
            only the first `active_beams` survivors of each step are kept
            (the others are dropped), which is beam search of that width in
            a buffer of `beam_size`. Dropped beams come last, padding at
            a score of -1e9.
        coverage_fn: `state -> coverage` float32 [batch * beam, source], the
            attention summed so far (`SequenceModel.coverage`), for `beta`.
        prefix_ids: optional int32 [batch, prefix] (0-padded): every
            hypothesis of row i starts with the row's prefix tokens, which
            the search then continues (prefix-constrained decoding). The
            forced tokens ignore `min_length` and n-gram blocking, their
            log-probabilities count in the scores, and a row's length limit
            is raised to its prefix length + 1 (still at most `max_length`,
            which truncates a longer prefix). A row of padding: no prefix.
        retire_finished: a sentence whose hypotheses have all finished
            leaves the loop: its results are written out and the step runs
            on the other sentences only. Searches give the same hypotheses
            and scores either way (a finished sentence can no longer
            change); sampling draws differ, as a row's random stream follows
            its place in the batch. False keeps every row to the end, as
            a search compiled by XLA (`jit_compile`) must: XLA compiles the
            shrinking loop without an error into a wrong one.
        factored_step_fn: optional `step_fn` in factored form,
            `(token_ids, state, context) -> (logits, offsets, exception_ids,
            exception_scores, state)` (`SequenceModel.step_factored`): a
            search without prefixes or n-gram blocking (not sampling) then
            takes each hypothesis' candidates from it, never writing out
            its whole row of log-probabilities.

    Returns:
        `(ids, scores)`: ids int32 [batch, beam, max_length], each hypothesis
        followed by `end_id` (if it finished) and padding; scores float32
        [batch, beam], best first. With no penalties a score is the sum of
        the hypothesis' token log-probabilities, `end_id` included.
    """
    selector = selector or TopKSelector()
    k = beam_size
    start_ids = tf.convert_to_tensor(start_ids, tf.int32)
    batch = tf.shape(start_ids)[0]
    rows = batch * k
    if length_limits is None:
        length_limits = tf.fill([batch], max_length)
    length_limits = tf.cast(length_limits, tf.int32)
    # Per-hypothesis tensors of the sentences still decoding ("live"): they
    # shrink together as sentences retire. "row" is each one's row in the
    # full [batch * beam] results.
    live = {"row": tf.range(rows)}
    if prefix_ids is not None:
        prefix_ids = tf.convert_to_tensor(prefix_ids, tf.int32)
        prefix_lengths = tf.reduce_sum(tf.cast(prefix_ids != PAD_ID, tf.int32), axis=1)
        length_limits = tf.maximum(length_limits, prefix_lengths + 1)
        # The buffer's width, so that reading column t never runs off the end.
        live["prefix"] = tile_beams(tf.pad(prefix_ids, [[0, 0], [0, max_length]])[:, :max_length], k)
    live["limit"] = tf.repeat(tf.minimum(length_limits, max_length), k)
    state = tile_beams(initial_state, k)
    # Penalties given as Python zeros are left out of the graph altogether.
    use_length_penalty = not _is_python_zero(alpha)
    use_coverage = not _is_python_zero(beta)
    if use_coverage and (coverage_fn is None or source_mask is None):
        # A penalty that cannot apply is an error, not a silent no-op.
        raise ValueError("a coverage penalty (beta) needs coverage_fn and source_mask")
    if use_coverage:
        live["source_mask"] = tile_beams(source_mask, k)
    alpha = tf.cast(alpha, tf.float32)
    beta = tf.cast(beta, tf.float32)
    positions = tf.range(max_length)
    if active_beams is None:
        active_beams = k
    samples = selector.considers_all_tokens
    factored = (factored_step_fn is not None and not samples and prefix_ids is None
                and not no_repeat_ngram_size)

    def ranking(cumulative, lengths, coverage, beam_source_mask):
        score = cumulative
        if use_length_penalty:
            score = score / length_penalty(lengths, alpha)
        if use_coverage:
            score += coverage_penalty(coverage, beam_source_mask, beta)
        return score

    def cond(t, live, state, context, out):
        return (t < max_length) & tf.logical_not(tf.reduce_all(live["finished"]))

    def row_candidates(t, live, state, context):
        """Each hypothesis' candidates from its whole row of log-probabilities."""
        tokens, ids = live["tokens"], live["ids"]
        log_probs, state = step_fn(tokens, state, context)
        vocab = tf.shape(log_probs)[-1]
        eos = tf.one_hot(end_id, vocab, on_value=True, off_value=False)[None, :]
        unbanned = log_probs
        # Bans for live hypotheses: padding marks "after the end" in the
        # buffer and is never emitted; then minimum length, n-gram blocking.
        log_probs += tf.one_hot(PAD_ID, vocab, on_value=NEG_INF, off_value=0.0)[None, :]
        if min_length:
            log_probs = tf.where(eos & (t < min_length), NEG_INF, log_probs)
        if no_repeat_ngram_size:
            banned = _banned_by_ngram_blocking(ids, t, no_repeat_ngram_size, vocab)
            log_probs = tf.where(banned, NEG_INF, log_probs)
        # Read before prefix forcing: a prefix cut at the length limit still ends.
        eos_score = tf.gather(log_probs, [end_id], axis=1)
        if prefix_ids is not None:
            # A row still inside its prefix has one candidate: the prefix token.
            # Other tokens cost twice NEG_INF, so that the beams not yet live
            # (at NEG_INF) take the prefix too, rather than the live beam's
            # banned tokens: every hypothesis starts with the prefix, even
            # when the prefix fills the buffer.
            forced = live["prefix"][:, t]
            is_forced = tf.one_hot(forced, vocab, on_value=True, off_value=False)
            log_probs = tf.where((forced != PAD_ID)[:, None],
                                 tf.where(is_forced, unbanned, 2 * NEG_INF), log_probs)

        # Each hypothesis' candidate continuations: all tokens when sampling;
        # for search only its own k best, since the k best of the whole beam
        # are always among them (k scores per row instead of vocab: far
        # fewer elementwise passes at large vocabularies).
        if samples:
            candidate_scores = log_probs
            candidate_ids = tf.broadcast_to(tf.range(vocab)[None, :], tf.shape(log_probs))
        else:
            candidate_scores, candidate_ids = _candidates(log_probs, k)
        return candidate_scores, candidate_ids, eos_score, state

    def body(t, live, state, context, out):
        tokens, ids, cumulative, lengths, finished, coverage = (
            live[key] for key in ("tokens", "ids", "cumulative", "lengths", "finished", "coverage"))
        n = tf.shape(tokens)[0] // k  # sentences still decoding
        if factored:
            *factors, state = factored_step_fn(tokens, state, context)
            candidate_scores, candidate_ids, eos_score = _factored_candidates(
                *factors, k, end_id, (t < min_length) if min_length else None)
        else:
            candidate_scores, candidate_ids, eos_score, state = row_candidates(
                t, live, state, context)
        width = tf.shape(candidate_ids)[1]
        first = tf.equal(tf.range(width), 0)[None, :]
        # At its length limit a hypothesis can only end; once ended it only
        # continues with padding, at no cost.
        at_limit = (t + 1 >= live["limit"])[:, None]
        candidate_scores = tf.where(at_limit, tf.where(first, eos_score, NEG_INF), candidate_scores)
        candidate_ids = tf.where(at_limit, tf.where(first, end_id, PAD_ID), candidate_ids)
        candidate_scores = tf.where(finished[:, None], tf.where(first, 0.0, NEG_INF), candidate_scores)
        candidate_ids = tf.where(finished[:, None], PAD_ID, candidate_ids)
        if use_coverage:
            coverage = tf.where(finished[:, None], coverage, coverage_fn(state))

        candidates = cumulative[:, None] + candidate_scores  # [rows, width]
        candidate_lengths = tf.where(finished, lengths, t + 1)[:, None]
        rank = candidates
        if use_length_penalty:
            rank = rank / length_penalty(candidate_lengths, alpha)
        if use_coverage:
            rank += coverage_penalty(coverage, live["source_mask"], beta)[:, None]
        flat_rank = tf.reshape(rank, [n, k * width])
        chosen = selector(flat_rank, k, t, candidate_scores)
        origin = tf.reshape(chosen // width + tf.range(n)[:, None] * k, [-1])
        picked = tf.stack([origin, tf.reshape(chosen % width, [-1])], axis=1)
        next_ids = tf.gather_nd(candidate_ids, picked)
        # Beams past `active_beams` are dropped: finished at once, at -1e9.
        dropped = tf.tile(tf.range(k) >= tf.cast(active_beams, tf.int32), [n])
        was_finished = tf.gather(finished, origin)
        live = dict(
            live,
            tokens=next_ids,
            ids=tf.gather(ids, origin)
            + tf.cast(tf.equal(positions, t), tf.int32)[None, :] * next_ids[:, None],
            cumulative=tf.where(dropped, NEG_INF, tf.gather_nd(candidates, picked)),
            lengths=tf.where(was_finished, tf.gather(lengths, origin), t + 1),
            finished=was_finished | tf.equal(next_ids, end_id) | dropped,
            coverage=tf.gather(coverage, origin) if use_coverage else coverage,
        )

        if retire_finished:
            done = tf.reduce_all(tf.reshape(live["finished"], [n, k]), axis=1)

            def leave():
                # Write every live row out (the leaving ones for the last
                # time) and keep the sentences not done.
                written = _write_rows(out, live, rows)
                sentences = tf.cast(tf.reshape(tf.where(~done)[:, 0], [-1]), tf.int32)
                kept = _rows_of(sentences, k)
                return ({key: tf.gather(value, kept) for key, value in live.items()},
                        tf.gather(origin, kept),
                        tf.nest.map_structure(lambda c: tf.gather(c, sentences), context),
                        written)

            # The last sentences leave through `cond`: the loop never runs
            # on (or shapes) empty tensors, which TFLite cannot prepare.
            live, origin, context, out = tf.cond(
                tf.reduce_any(done) & tf.logical_not(tf.reduce_all(done)),
                leave, lambda: (live, origin, context, out))
        state = tf.nest.map_structure(lambda s: tf.gather(s, origin), state)
        return t + 1, live, state, context, out

    coverage0 = (
        tf.zeros_like(coverage_fn(state)) if use_coverage else tf.zeros([rows, 1], tf.float32)
    )
    # Only the first beam of each row is live at the start, so that the first
    # step's top-k picks k different tokens rather than k copies of one.
    initial_scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0), [batch])
    live.update(
        tokens=tf.repeat(start_ids, k),
        ids=tf.zeros([rows, max_length], tf.int32),
        cumulative=initial_scores,
        lengths=tf.zeros([rows], tf.int32),
        finished=tf.zeros([rows], tf.bool),
        coverage=coverage0,
    )
    out = {key: tf.zeros_like(live[key]) for key in ("ids", "cumulative", "lengths", "coverage")}
    beam_source_mask = live.get("source_mask")

    def shrinking(x):
        return tf.TensorShape([None]).concatenate(x.shape[1:])

    loop_vars = (tf.constant(0), live, state, context, out)
    _, live, _, _, out = tf.while_loop(
        cond, body, loop_vars,
        # The output buffers keep their size, but may lose a static batch
        # size to the branch that writes them.
        shape_invariants=(tf.TensorShape([]),
                          *(tf.nest.map_structure(shrinking, v) for v in loop_vars[1:])),
    )
    # Sentences still decoding at max_length.
    out = _write_rows(out, live, rows)
    scores = ranking(out["cumulative"], out["lengths"], out["coverage"], beam_source_mask)
    scores = tf.reshape(scores, [batch, k])
    order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
    ids = tf.gather(tf.reshape(out["ids"], [batch, k, max_length]), order, batch_dims=1)
    # Dropped beams (sorted last, at -1e9) hold whatever the last steps put
    # there: padding instead.
    ids = tf.where((tf.range(k) < tf.cast(active_beams, tf.int32))[None, :, None], ids, 0)
    return ids, tf.gather(scores, order, batch_dims=1)


def beam_search(step_fn, initial_state, start_ids, end_id, max_length, beam_size, **options):
    """Beam search: `decode` with the top-k selector. See `decode`."""
    return decode(step_fn, initial_state, start_ids, end_id, max_length, beam_size=beam_size, **options)


def greedy_search(step_fn, initial_state, start_ids, end_id, max_length, **options):
    """Greedy search: beam search of width 1.

    Returns `(ids [batch, max_length], scores [batch])`.
    """
    ids, scores = decode(step_fn, initial_state, start_ids, end_id, max_length, beam_size=1, **options)
    return ids[:, 0], scores[:, 0]


def sample(step_fn, initial_state, start_ids, end_id, max_length,
           temperature=1.0, top_k=0, top_p=1.0, seed=(0, 0), **options):
    """Random sampling, with temperature, top-k and top-p (nucleus) filtering.

    Returns `(ids [batch, max_length], scores [batch])`; scores are the
    model's log-probabilities of the sampled tokens (before filtering).
    """
    ids, scores = decode(step_fn, initial_state, start_ids, end_id, max_length, beam_size=1,
                         selector=SamplingSelector(temperature, top_k, top_p, seed), **options)
    return ids[:, 0], scores[:, 0]
