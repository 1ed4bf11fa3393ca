"""Decoding applied to a model: encode once, then loop over `model.step`."""

import tensorflow as tf

from keras_seq2seq.decoding.search import decode, sampling_selector, tile_beams
from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID


def decode_length_limits(source_ids, max_length, ratio=2.0, extra=10):
    """Per-row output limits: `ratio * source length + extra`, capped.

    Sources are counted without padding (their EOS included).
    """
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, PAD_ID), tf.float32), axis=1)
    limits = tf.cast(tf.math.ceil(ratio * lengths), tf.int32) + extra
    return tf.minimum(limits, max_length)


def translate(model, source_ids, max_length, beam_size=1, ratio=2.0, extra=10,
              length_cap=None, **options):
    """Decodes a batch of source ids with a model's `encode` and `step`.

    Args:
        model: a model with `encode(source_ids) -> (context, state)` and
            `step(ids, state, context) -> (log_probs, state)`, and optionally
            `vocabulary_ids(ids)` mapping the ids it decodes in to
            vocabulary ids.
        source_ids: int32 [batch, source], 0-padded, EOS-terminated.
        max_length: static output buffer length; each row is also limited to
            `ratio * source length + extra` tokens.
        beam_size: hypotheses kept per row (1: greedy, unless sampling).
        length_cap: optional int32 scalar <= max_length, a run-time limit.
        **options: `decode` options (alpha, beta, min_length,
            no_repeat_ngram_size, selector).

    Returns:
        `(ids [batch, beam, max_length], scores [batch, beam])`, best first.
    """
    source_ids = tf.convert_to_tensor(source_ids, tf.int32)
    context, state = model.encode(source_ids)
    beam_context = tile_beams(context, beam_size)
    limits = decode_length_limits(source_ids, max_length, ratio, extra)
    if length_cap is not None:
        limits = tf.minimum(limits, tf.maximum(tf.cast(length_cap, tf.int32), 1))
    ids, scores = decode(
        lambda ids, state: model.step(ids, state, beam_context),
        state,
        start_ids=tf.fill([tf.shape(source_ids)[0]], BOS_ID),
        end_id=EOS_ID,
        max_length=max_length,
        beam_size=beam_size,
        length_limits=limits,
        source_mask=tf.not_equal(source_ids, PAD_ID),
        **options,
    )
    # A model with a target vocabulary decodes in its indices (special ids
    # keep their places, so BOS, EOS and padding are the same in both).
    if hasattr(model, "vocabulary_ids"):
        ids = model.vocabulary_ids(ids)
    return ids, scores


def greedy_translate(model, source_ids, max_length, **options):
    """Greedy decoding: `(ids [batch, max_length], scores [batch])`."""
    ids, scores = translate(model, source_ids, max_length, beam_size=1, **options)
    return ids[:, 0], scores[:, 0]


def beam_translate(model, source_ids, max_length, beam_size=5, **options):
    """Beam search: `(ids [batch, beam, max_length], scores [batch, beam])`."""
    return translate(model, source_ids, max_length, beam_size=beam_size, **options)


def sample_translate(model, source_ids, max_length, temperature=1.0, top_k=0, top_p=1.0,
                     seed=(0, 0), **options):
    """Sampling: `(ids [batch, max_length], scores [batch])`, reproducible by seed."""
    selector = sampling_selector(temperature, top_k, top_p, seed)
    ids, scores = translate(model, source_ids, max_length, beam_size=1, selector=selector, **options)
    return ids[:, 0], scores[:, 0]


def length_batches(lines, batch_size):
    """Batches of indices into `lines`, each of lines of similar length
    (whitespace-separated words, then characters), shortest first."""
    order = sorted(range(len(lines)), key=lambda i: (len(lines[i].split()), len(lines[i])))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def translate_in_length_batches(translate_batch, lines, batch_size):
    """`translate_batch` over `length_batches` of `lines`; results in the order of `lines`.

    A batch decodes until its longest sentence has ended, so batches of
    similar lengths waste fewer steps on rows already done (onmt_translate
    sorts a file the same way).

    Args:
        translate_batch: a list of str -> one result per line, in order.
        lines: a list of str.
        batch_size: lines per call.

    Returns:
        A list of the results, one per line.
    """
    results = [None] * len(lines)
    for batch in length_batches(lines, batch_size):
        for i, result in zip(batch, translate_batch([lines[i] for i in batch])):
            results[i] = result
    return results
