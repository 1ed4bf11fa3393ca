"""Metrics for sequence models."""

from keras_seq2seq.metrics.sequence import MaskedAccuracy, exact_match

__all__ = ["MaskedAccuracy", "exact_match"]
