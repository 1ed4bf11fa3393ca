"""Decoding written once over a model's step function.

`decode` is the one loop; beam search, greedy search and sampling are the
same loop with a different `Selector` or beam size. `generate` applies it to
any `SequenceModel` (text models and pointer networks alike); `score` feeds
the same step function a given output (forced decoding).
"""

from keras_seq2seq.decoding.generate import (
    attention_of,
    generate,
    greedy_generate,
    length_batches,
    sample_generate,
    score,
    translate_in_length_batches,
)
from keras_seq2seq.decoding.scoring import force_decode
from keras_seq2seq.decoding.shortlist import LexicalShortlist
from keras_seq2seq.decoding.search import (
    SamplingSelector,
    Selector,
    TopKSelector,
    beam_search,
    coverage_penalty,
    decode,
    greedy_search,
    length_penalty,
    sample,
    tile_beams,
)

__all__ = [
    "LexicalShortlist",
    "SamplingSelector",
    "Selector",
    "TopKSelector",
    "attention_of",
    "beam_search",
    "coverage_penalty",
    "decode",
    "force_decode",
    "generate",
    "greedy_generate",
    "greedy_search",
    "length_batches",
    "length_penalty",
    "sample",
    "sample_generate",
    "score",
    "tile_beams",
    "translate_in_length_batches",
]
