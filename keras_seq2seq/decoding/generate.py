"""The one search entry point: `generate(model, inputs, ...)` for every model.

It calls only the `SequenceModel` interface (`encode`, `step` (and
`step_factored` where a model has it), the token
ids, `length_limits`, `output_ids`, and `coverage` for a coverage penalty),
so text models and pointer networks decode through the same lines.
"""

import tensorflow as tf

from keras_seq2seq.decoding.scoring import force_decode
from keras_seq2seq.decoding.search import NEG_INF, SamplingSelector, _is_python_zero, decode


def generate(model, inputs, max_length, beam_size=1, length_cap=None, beta=0.0,
             prefix_ids=None, matmul_dtype=None, shortlist=None, parallel_searches=1,
             fused_lstm=False, **options):
    """Decodes a batch with a model's `encode` and `step`.

    Args:
        model: a `keras_seq2seq.models.SequenceModel`.
        inputs: what `model.encode` takes: source ids int32 [batch, source]
            (0-padded, EOS-terminated) for text models, points float32
            [batch, n, dims] for pointer networks.
        max_length: static output buffer length; each row is also limited
            by `model.length_limits` (for text, twice the source plus 10).
        beam_size: hypotheses kept per row (1: greedy, unless sampling).
        length_cap: optional int32 scalar <= max_length, a run-time limit.
        beta: GNMT coverage penalty weight. A model without coverage
            (`model.has_coverage` False) refuses a non-zero Python value
            with a ValueError; a tensor must then be 0 at run time
            (InvalidArgument otherwise).
        prefix_ids: optional int32 [batch, prefix] of ids (as `output_ids`
            gives them), 0-padded: each row's outputs start with its prefix
            (see `decode`).
        matmul_dtype: "bfloat16" runs the step's matrix products in
            bfloat16 (`model.step_weights`), on CPUs with bfloat16 units
            (AMX, AVX512_BF16) faster at large batches; None: the model's
            compute dtype.
        shortlist: optional `LexicalShortlist` (of a model whose
            `shortlists_outputs`): a search computes only the outputs its
            inputs' lists hold (`LexicalShortlist.outputs`,
            `model.step_weights`), and each input's search writes only its
            own list's, normalized over them (`LexicalShortlist.lists`):
            an input's outputs are the same whatever else its batch holds.
            A search that keeps finished rows (`retire_finished=False`, as
            XLA compiles it) computes a list of a size that follows the
            inputs' shapes.
        parallel_searches: search the batch as this many independent
            searches, each over a consecutive part of it (its own encoder
            pass and loop; an empty part is skipped), which TensorFlow's
            executor runs side by side on its inter-op threads. With one
            intra-op thread an operation (TF Serving's
            `--tensorflow_intra_op_parallelism=1`) and a core for each
            search, every core runs a search of its own instead of sharing
            each small operation. The outputs are the same; sampling draws
            are not (a row's random stream follows its place in its batch).
        fused_lstm: encode with TensorFlow's fused LSTM kernel
            (`model.encode`): the same outputs, faster in a graph; XLA and
            TFLite have no such operation.
        **options: `decode` options (alpha, min_length,
            no_repeat_ngram_size, selector, active_beams, retire_finished).

    Returns:
        `(ids [batch, beam, max_length], scores [batch, beam])`, best first;
        ids as `model.output_ids` gives them (vocabulary ids for text,
        0-based positions with -1 after the end for pointer networks).

    Example:

    >>> ids, scores = generate(model, tokenizer.encode(["3rd of March 1999"], 48),
    ...                        max_length=24, beam_size=5, alpha=0.6)
    """
    if parallel_searches > 1:
        return _generate_in_parts(model, inputs, prefix_ids, parallel_searches, dict(
            max_length=max_length, beam_size=beam_size, length_cap=length_cap, beta=beta,
            matmul_dtype=matmul_dtype, shortlist=shortlist, fused_lstm=fused_lstm, **options))
    context, state = model.encode(inputs, fused_lstm=fused_lstm)
    if prefix_ids is not None:
        prefix_ids = model.target_index(tf.convert_to_tensor(prefix_ids, tf.int32))
    outputs = None
    if shortlist is not None:
        outputs, allowed = shortlist.lists(inputs, prefix_ids,
                                           static_size=not options.get("retire_finished", True))
        # The search cuts the context as inputs finish: each one's mask goes with it.
        context = (context, tf.where(allowed, 0.0, NEG_INF))
    # Read (and cast) once, not at every step of the loop.
    weights = model.step_weights(matmul_dtype, outputs)
    limits = model.length_limits(inputs, max_length)
    if length_cap is not None:
        limits = tf.minimum(limits, tf.maximum(tf.cast(length_cap, tf.int32), 1))
    coverage = {}
    if model.has_coverage:
        coverage = dict(coverage_fn=model.coverage, source_mask=model.source_mask(inputs))
    elif not _is_python_zero(beta):
        if not tf.is_tensor(beta):
            model.coverage(state)  # raises: the model keeps no coverage
        check = tf.debugging.assert_equal(
            tf.cast(beta, tf.float32), 0.0,
            message=f"{model.__class__.__name__} keeps no attention coverage: beta must be 0")
        with tf.control_dependencies([check]):
            limits = tf.identity(limits)
        beta = 0.0
    if outputs is not None and prefix_ids is not None:
        # The step counts in positions of the sorted `outputs`, which hold the prefix.
        prefix_ids = tf.searchsorted(outputs, prefix_ids, out_type=tf.int32)
    factored_step_fn = None
    if shortlist is None:
        def step_fn(token_ids, state, context):
            return model.step(token_ids, state, context, weights)

        if model.factors_log_probabilities:
            def factored_step_fn(token_ids, state, context):
                return model.step_factored(token_ids, state, context, weights)
    else:
        def step_fn(token_ids, state, context):
            context, bias = context
            return model.step(token_ids, state, context, weights, output_bias=bias)
    ids, scores = decode(
        step_fn,
        state,
        start_ids=tf.fill([tf.shape(limits)[0]], model.start_id),
        end_id=model.end_id,
        max_length=max_length,
        beam_size=beam_size,
        context=context,
        length_limits=limits,
        beta=beta,
        prefix_ids=prefix_ids,
        factored_step_fn=factored_step_fn,
        **coverage,
        **options,
    )
    if outputs is not None:
        ids = tf.gather(outputs, ids)
    return model.output_ids(ids), scores


def _generate_in_parts(model, inputs, prefix_ids, parts, options):
    """`generate` as `parts` searches over consecutive parts of the batch,
    their results concatenated."""
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    if prefix_ids is not None:
        prefix_ids = tf.convert_to_tensor(prefix_ids, tf.int32)
    batch = tf.shape(tf.nest.flatten(inputs)[0])[0]
    cuts = [batch * i // parts for i in range(parts + 1)]
    beam = options["beam_size"]

    def search(start, stop):
        def run():
            cut = lambda x: x[start:stop]  # noqa: E731
            return generate(model, tf.nest.map_structure(cut, inputs),
                            prefix_ids=None if prefix_ids is None else cut(prefix_ids), **options)
        return run

    def nothing():
        # An empty part never reaches the model (batch normalization fails
        # on empty batches).
        return (model.output_ids(tf.zeros([0, beam, options["max_length"]], tf.int32)),
                tf.zeros([0, beam], tf.float32))

    results = [tf.cond(stop > start, search(start, stop), nothing)
               for start, stop in zip(cuts[:-1], cuts[1:])]
    return tuple(tf.concat(columns, axis=0) for columns in zip(*results))


def score(model, inputs, target_ids, attention=False, fused_lstm=False):
    """The model's log-probability of given outputs, through its `step`.

    Args:
        model: a `keras_seq2seq.models.SequenceModel`.
        inputs: what `model.encode` takes, [batch, ...].
        target_ids: int32 [batch, time], ids as `output_ids` gives them, each
            row ending with `model.end_id`, then 0-padded.
        attention: also return where the model attended at each target
            token (needs `model.has_attention`).
        fused_lstm: as `generate`'s.

    Returns:
        `(log_prob [batch], tokens [batch])`, plus attention float32
        [batch, time, source] with `attention=True`. log_prob is what the
        search's score of the same output is without penalties.

    Example:

    >>> log_prob, tokens = score(model, source_ids, target_ids)
    """
    context, state = model.encode(inputs, fused_lstm=fused_lstm)
    target = model.target_index(tf.convert_to_tensor(target_ids, tf.int32))
    log_prob, tokens, alignments = force_decode(
        lambda ids, state: model.step(ids, state, context),
        state,
        start_ids=tf.fill([tf.shape(target)[0]], model.start_id),
        target_ids=target,
        attention_fn=model.attention if attention else None,
    )
    return (log_prob, tokens, alignments) if attention else (log_prob, tokens)


def attention_of(model, inputs, output_ids, fused_lstm=False):
    """Where the model attended while writing given outputs (forced decoding).

    Args:
        output_ids: int32 [batch, max_length], as `generate` gives one beam.
        fused_lstm: as `generate`'s.

    Returns:
        `(output_ids [batch, steps], attention float32 [batch, steps, source])`,
        cut to the longest output (end included).
    """
    _, tokens, attention = score(model, inputs, output_ids, attention=True,
                                 fused_lstm=fused_lstm)
    steps = tf.reduce_max(tokens)
    return output_ids[:, :steps], attention[:, :steps]


def greedy_generate(model, inputs, max_length, **options):
    """Greedy decoding: `(ids [batch, max_length], scores [batch])`."""
    ids, scores = generate(model, inputs, max_length, beam_size=1, **options)
    return ids[:, 0], scores[:, 0]


def sample_generate(model, inputs, max_length, temperature=1.0, top_k=0, top_p=1.0,
                    seed=(0, 0), **options):
    """Sampling: `(ids [batch, max_length], scores [batch])`, reproducible by seed."""
    ids, scores = generate(model, inputs, max_length, beam_size=1,
                           selector=SamplingSelector(temperature, top_k, top_p, seed), **options)
    return ids[:, 0], scores[:, 0]


def length_batches(lines, batch_size):
    """Batches of indices into `lines`, each of lines of similar length
    (whitespace-separated words, then characters), shortest first."""
    order = sorted(range(len(lines)), key=lambda i: (len(lines[i].split()), len(lines[i])))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def translate_in_length_batches(translate_batch, lines, batch_size, *columns):
    """`translate_batch` over `length_batches` of `lines`; results in the order of `lines`.

    A batch decodes until its longest sentence has ended, so batches of
    similar lengths waste fewer steps on rows already done (onmt_translate
    sorts a file the same way).

    Args:
        translate_batch: `(lines, *columns)` of one batch, each a list ->
            one result per line, in order.
        lines: a list of str.
        batch_size: lines per call.
        *columns: lists parallel to `lines` (target prefixes, say), batched
            with them.

    Returns:
        A list of the results, one per line.
    """
    results = [None] * len(lines)
    for batch in length_batches(lines, batch_size):
        pick = [[column[i] for i in batch] for column in (lines, *columns)]
        for i, result in zip(batch, translate_batch(*pick)):
            results[i] = result
    return results
