"""Decoding loops over a step function, with fixed-size buffers.

Every loop here takes a step function

    step_fn(token_ids [batch], state) -> (log_probs [batch, vocabulary], state)

where `state` is any nest of [batch, ...] tensors. Output ids are written into
a preallocated [batch, max_length] buffer with one-hot updates (no
TensorArray), so the loops trace into SavedModels and convert to TFLite
builtin ops.
"""

import tensorflow as tf

from keras_seq2seq.text import PAD_ID


def greedy_search(
    step_fn,
    initial_state,
    start_ids,
    end_id,
    max_length,
    length_limits=None,
):
    """Greedy decoding: the most probable token at every step.

    Args:
        step_fn: `(token_ids, state) -> (log_probs, state)`.
        initial_state: nest of [batch, ...] tensors.
        start_ids: int32 [batch], the first input tokens (BOS).
        end_id: the token that ends a sequence.
        max_length: static size of the output buffer (Python int).
        length_limits: optional int32 [batch]: row i stops after
            `length_limits[i]` tokens even without EOS.

    Returns:
        `(ids, scores)`: ids int32 [batch, max_length], padded with 0 after
        EOS (EOS included); scores float32 [batch], the sum of the chosen
        tokens' log-probabilities.
    """
    start_ids = tf.convert_to_tensor(start_ids, tf.int32)
    batch = tf.shape(start_ids)[0]
    if length_limits is None:
        length_limits = tf.fill([batch], max_length)
    length_limits = tf.minimum(tf.cast(length_limits, tf.int32), max_length)
    positions = tf.range(max_length)

    def cond(t, tokens, state, ids, scores, finished):
        return (t < max_length) & tf.logical_not(tf.reduce_all(finished))

    def body(t, tokens, state, ids, scores, finished):
        log_probs, state = step_fn(tokens, state)
        next_ids = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        next_ids = tf.where(finished, PAD_ID, next_ids)
        chosen = tf.gather(log_probs, next_ids, batch_dims=1)
        scores += tf.where(finished, 0.0, chosen)
        ids += tf.cast(tf.equal(positions, t), tf.int32)[None, :] * next_ids[:, None]
        finished |= tf.equal(next_ids, end_id) | (t + 1 >= length_limits)
        return t + 1, next_ids, state, ids, scores, finished

    _, _, _, ids, scores, _ = tf.while_loop(
        cond,
        body,
        (
            tf.constant(0),
            start_ids,
            initial_state,
            tf.zeros([batch, max_length], tf.int32),
            tf.zeros([batch], tf.float32),
            tf.zeros([batch], tf.bool),
        ),
    )
    return ids, scores
