"""Decoding written once over a model's step function."""

from keras_seq2seq.decoding.search import greedy_search
from keras_seq2seq.decoding.translate import decode_length_limits, greedy_translate

__all__ = ["decode_length_limits", "greedy_search", "greedy_translate"]
