"""Token- and sequence-level accuracy."""

import keras
import tensorflow as tf
from keras import ops

from keras_seq2seq.text import PAD_ID


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class MaskedAccuracy(keras.metrics.Mean):
    """Teacher-forced token accuracy over non-padding target positions.

    Args:
        pad_id: target id that marks padding.
    """

    def __init__(self, pad_id=PAD_ID, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        # tf.argmax, not keras.ops.argmax: the latter first rewrites -0.0
        # (four more passes over [batch, target, vocabulary], a third of
        # this metric's cost in a training step), which logits never need.
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        correct = ops.cast(ops.equal(predicted, y_true), "float32")
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        if sample_weight is not None:
            mask = mask * ops.cast(sample_weight, "float32")
        super().update_state(correct, sample_weight=mask)

    def get_config(self):
        return dict(super().get_config(), pad_id=self.pad_id)


def exact_match(hypotheses, references):
    """The fraction of hypotheses equal to their reference (after strip)."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references"
        )
    if not references:
        raise ValueError("no references to compare with")
    hits = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return hits / len(references)


def error_rate(hypotheses, references, unit="character"):
    """Edit distance over reference length, summed over the corpus: the
    character error rate (`unit="character"`, whitespace ignored: for digit
    strings, the digit error rate) or the word error rate (`"word"`).

    Distances are `tf.edit_distance`'s (Levenshtein: insertions, deletions
    and substitutions cost 1 each).
    """
    import tensorflow as tf

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if unit not in ("character", "word"):
        raise ValueError(f"unit must be 'character' or 'word', got {unit!r}")

    def units(texts):
        texts = tf.constant([str(t) for t in texts], tf.string)
        if unit == "word":
            return tf.strings.split(texts)
        return tf.strings.unicode_split(tf.strings.regex_replace(texts, r"\s+", ""), "UTF-8")

    truth = units(references)
    total = int(tf.reduce_sum(truth.row_lengths()))
    if total == 0:
        raise ValueError("the references are empty: no error rate")
    distances = tf.edit_distance(units(hypotheses).to_sparse(), truth.to_sparse(),
                                 normalize=False)
    return float(tf.reduce_sum(distances)) / total
