"""Forced decoding: the same step function, fed a given target instead of
searching for one.

It scores given (source, target) pairs, and reads the attention a model
paid while producing them (for alignments of a translation). Like the
search, the loop writes into fixed-size buffers with one-hot updates, so it
traces into SavedModels without a TensorArray.
"""

import tensorflow as tf

from keras_seq2seq.text import PAD_ID


def force_decode(step_fn, initial_state, start_ids, target_ids, attention_fn=None):
    """Feeds `target_ids` through `step_fn`, one token a step.

    Args:
        step_fn: `(token_ids [batch], state) -> (log_probs [batch, vocab], state)`,
            as the search takes it (with a beam of one).
        initial_state: nest of [batch, ...] tensors.
        start_ids: int32 [batch], the first input token (BOS).
        target_ids: int32 [batch, time] in the step's token space, each row
            its tokens (end token included) then padding (0).
        attention_fn: optional `state -> float32 [batch, source]`, the
            attention of the step just taken (`SequenceModel.attention`).

    Returns:
        `(log_prob, tokens, attention)`: log_prob float32 [batch], the sum of
        the target tokens' log-probabilities; tokens int32 [batch], how many
        there are; attention float32 [batch, time, source] (zero after each
        row's end), or None without `attention_fn`.
    """
    target_ids = tf.convert_to_tensor(target_ids, tf.int32)
    batch, steps = tf.shape(target_ids)[0], tf.shape(target_ids)[1]
    real = tf.not_equal(target_ids, PAD_ID)
    # Each step's input: the start token, then the target shifted right.
    inputs = tf.concat([tf.convert_to_tensor(start_ids, tf.int32)[:, None], target_ids[:, :-1]], 1)
    if attention_fn is not None:
        source = tf.shape(attention_fn(initial_state))[1]
        attention = tf.zeros([batch, steps, source], tf.float32)
    else:
        attention = tf.zeros([batch, 1, 1], tf.float32)  # carried through the loop untouched

    def body(t, state, log_prob, attention):
        log_probs, state = step_fn(inputs[:, t], state)
        picked = tf.gather(log_probs, target_ids[:, t], batch_dims=1)
        log_prob += tf.where(real[:, t], picked, 0.0)
        if attention_fn is not None:
            written = tf.one_hot(t, steps) * tf.cast(real[:, t], tf.float32)[:, None]  # [B, T]
            attention += written[:, :, None] * attention_fn(state)[:, None, :]
        return t + 1, state, log_prob, attention

    _, _, log_prob, attention = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), initial_state, tf.zeros([batch], tf.float32), attention),
    )
    tokens = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
    return log_prob, tokens, attention if attention_fn is not None else None
