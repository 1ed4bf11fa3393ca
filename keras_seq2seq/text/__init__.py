"""Tokenization that runs inside the TensorFlow graph: SentencePiece subwords,
and words with per-sentence extended ids for copying."""

from keras_seq2seq.text.line_breaks import LINE_BREAK
from keras_seq2seq.text.sentencepiece import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SubwordTokenizer,
    character_tokenizer,
    train_sentencepiece,
)
from keras_seq2seq.text.vocabulary import vocabulary_in_use
from keras_seq2seq.text.words import WordTokenizer, build_word_vocabulary


def load_tokenizer(directory):
    """The tokenizer saved in `directory` (by either class's `save`, under its `file_name`)."""
    import os

    for cls in (WordTokenizer, SubwordTokenizer):
        path = os.path.join(directory, cls.file_name)
        if os.path.exists(path):
            return cls.from_file(path)
    raise FileNotFoundError(f"no {SubwordTokenizer.file_name} or {WordTokenizer.file_name} in {directory}")


__all__ = [
    "BOS_ID",
    "EOS_ID",
    "LINE_BREAK",
    "PAD_ID",
    "UNK_ID",
    "SubwordTokenizer",
    "WordTokenizer",
    "build_word_vocabulary",
    "character_tokenizer",
    "load_tokenizer",
    "train_sentencepiece",
    "vocabulary_in_use",
]
