"""Metrics for sequence models and pointer networks."""

from keras_seq2seq.metrics.geometry import convex_hull_metrics, tsp_metrics
from keras_seq2seq.metrics.sequence import MaskedAccuracy, error_rate, exact_match
from keras_seq2seq.metrics.text import (
    corpus_bleu,
    corpus_chrf,
    corpus_rouge,
    distinct_ngrams,
    novel_ngram_rate,
    perplexity,
    repeated_ngram_rate,
    score_text,
    split_sentences,
    summary_statistics,
)

__all__ = [
    "MaskedAccuracy",
    "convex_hull_metrics",
    "corpus_bleu",
    "corpus_chrf",
    "corpus_rouge",
    "distinct_ngrams",
    "error_rate",
    "exact_match",
    "novel_ngram_rate",
    "perplexity",
    "repeated_ngram_rate",
    "score_text",
    "split_sentences",
    "summary_statistics",
    "tsp_metrics",
]
