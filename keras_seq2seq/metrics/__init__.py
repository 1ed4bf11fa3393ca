"""Metrics for sequence models and pointer networks."""

from keras_seq2seq.metrics.geometry import convex_hull_metrics, tsp_metrics
from keras_seq2seq.metrics.sequence import MaskedAccuracy, exact_match

__all__ = ["MaskedAccuracy", "convex_hull_metrics", "exact_match", "tsp_metrics"]
