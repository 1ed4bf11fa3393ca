"""Decoding applied to a model: encode once, then loop over `model.step`."""

import tensorflow as tf

from keras_seq2seq.decoding.search import greedy_search
from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID


def decode_length_limits(source_ids, max_length, ratio=2.0, extra=10):
    """Per-row output limits: `ratio * source length + extra`, capped.

    Sources are counted without padding (their EOS included).
    """
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, PAD_ID), tf.float32), axis=1)
    limits = tf.cast(tf.math.ceil(ratio * lengths), tf.int32) + extra
    return tf.minimum(limits, max_length)


def greedy_translate(model, source_ids, max_length, ratio=2.0, extra=10):
    """Greedy translations of a batch of source ids.

    Args:
        model: a model with `encode(source_ids)` and `step(ids, state, context)`.
        source_ids: int32 [batch, source], 0-padded, EOS-terminated.
        max_length: static output buffer length.

    Returns:
        `(ids, scores)` as `greedy_search`.
    """
    source_ids = tf.convert_to_tensor(source_ids, tf.int32)
    context, state = model.encode(source_ids)
    batch = tf.shape(source_ids)[0]
    return greedy_search(
        lambda ids, state: model.step(ids, state, context),
        state,
        start_ids=tf.fill([batch], BOS_ID),
        end_id=EOS_ID,
        max_length=max_length,
        length_limits=decode_length_limits(source_ids, max_length, ratio, extra),
    )
