"""Losses for teacher-forced sequence outputs."""

import keras
from keras import ops

from keras_seq2seq.text import PAD_ID, UNK_ID


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class SequenceCrossEntropy(keras.losses.Loss):
    """Token cross-entropy that ignores padding, with label smoothing.

    The loss is averaged over the real (non-padding) target tokens of the
    batch, so short and long batches weigh each token alike.

    Args:
        label_smoothing: mass spread uniformly over the vocabulary, in [0, 1).
        pad_id: target id that marks padding.
        ignore_unknown: also leave `<unk>` targets out. For models that copy
            (`PointerGenerator`): they never write `<unk>`, and an unknown
            word they cannot copy from the source teaches nothing.
        from_log_probabilities: `y_pred` are log-probabilities of a
            distribution that sums to 1 (`PointerGenerator` returns its
            mixture so), read as they are; by default they are logits.

    Example:

    >>> model.compile(optimizer="adam", loss=SequenceCrossEntropy(0.1))
    """

    def __init__(self, label_smoothing=0.0, pad_id=PAD_ID, ignore_unknown=False,
                 from_log_probabilities=False, name="sequence_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.pad_id = pad_id
        self.ignore_unknown = ignore_unknown
        self.from_log_probabilities = from_log_probabilities

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        y_pred = ops.cast(y_pred, "float32")
        vocabulary = ops.shape(y_pred)[-1]
        smoothing = self.label_smoothing / ops.cast(vocabulary, "float32")
        if self.from_log_probabilities:
            # The smoothed cross-entropy of a normalized distribution is a
            # gather and a sum: normalizing it again (softmax forward,
            # softmax minus labels backward) would change nothing but cost
            # passes over [batch, target, vocabulary + source].
            target = ops.squeeze(ops.take_along_axis(y_pred, y_true[..., None], axis=-1), -1)
            nll = -(1.0 - self.label_smoothing) * target - smoothing * ops.sum(y_pred, axis=-1)
        else:
            # One fused softmax-cross-entropy over smoothed one-hot labels:
            # on [batch, target, 8000] logits, forward and backward take 3/4
            # of the time of log_softmax, gather and mean written out.
            labels = ops.one_hot(y_true, vocabulary) * (1.0 - self.label_smoothing) + smoothing
            nll = ops.categorical_crossentropy(labels, y_pred, from_logits=True)
        # Keras divides the summed values by their count (padding included)
        # and scales for distribution; weighting real tokens by count / real
        # tokens turns that into the mean over real tokens.
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        if self.ignore_unknown:
            mask *= ops.cast(ops.not_equal(y_true, UNK_ID), "float32")
        count = ops.cast(ops.size(mask), "float32")
        return nll * mask * (count / ops.maximum(ops.sum(mask), 1.0))

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, pad_id=self.pad_id,
                      ignore_unknown=self.ignore_unknown)
        return config
