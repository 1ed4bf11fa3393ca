"""Metrics for sequence models and pointer networks."""

from keras_seq2seq.metrics.geometry import convex_hull_metrics, tsp_metrics
from keras_seq2seq.metrics.sequence import MaskedAccuracy, error_rate, exact_match
from keras_seq2seq.metrics.text import (
    corpus_bleu,
    corpus_chrf,
    corpus_rouge,
    perplexity,
    repeated_ngram_rate,
    score_text,
)

__all__ = [
    "MaskedAccuracy",
    "convex_hull_metrics",
    "corpus_bleu",
    "corpus_chrf",
    "corpus_rouge",
    "error_rate",
    "exact_match",
    "perplexity",
    "repeated_ngram_rate",
    "score_text",
    "tsp_metrics",
]
