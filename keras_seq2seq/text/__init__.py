"""Subword tokenization that runs inside the TensorFlow graph."""

from keras_seq2seq.text.sentencepiece import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SubwordTokenizer,
    train_sentencepiece,
)

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "UNK_ID",
    "SubwordTokenizer",
    "train_sentencepiece",
]
