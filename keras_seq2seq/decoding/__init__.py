"""Decoding written once over a model's step function.

`decode` is the one loop; beam search, greedy search and sampling are the
same loop with a different selector or beam size.
"""

from keras_seq2seq.decoding.search import (
    beam_search,
    coverage_penalty,
    decode,
    greedy_search,
    length_penalty,
    sample,
    sampling_selector,
    tile_beams,
    top_k_selector,
)
from keras_seq2seq.decoding.translate import (
    beam_translate,
    decode_length_limits,
    greedy_translate,
    length_batches,
    sample_translate,
    translate,
    translate_in_length_batches,
)

__all__ = [
    "beam_search",
    "beam_translate",
    "coverage_penalty",
    "decode",
    "decode_length_limits",
    "greedy_search",
    "greedy_translate",
    "length_batches",
    "length_penalty",
    "sample",
    "sample_translate",
    "sampling_selector",
    "tile_beams",
    "top_k_selector",
    "translate",
    "translate_in_length_batches",
]
