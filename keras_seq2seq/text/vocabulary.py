"""Which ids of a joint vocabulary one side of the data uses."""

import itertools

import numpy as np
import tensorflow as tf

from keras_seq2seq.text.sentencepiece import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def vocabulary_in_use(tokenizer, lines, batch_size=4096):
    """The sorted ids that tokenizing `lines` gives, after the special ids.

    A joint SentencePiece model shares its pieces between two languages;
    each language uses only some (Multi30k's English side, about 4,000 of
    8,000). The result is one side's vocabulary for
    `AttentionSeq2Seq(source_vocabulary=..., target_vocabulary=...)`, as
    OpenNMT builds one per side.

    Args:
        tokenizer: a tokenizer with `tokenize` and `vocab_size`.
        lines: an iterable of `str` or `bytes` (bytes that are not UTF-8
            read as U+FFFD, as in training).
        batch_size: lines tokenized at a time.

    Returns:
        A list of int: 0, 1, 2, 3 (PAD, UNK, BOS, EOS), then every other id
        seen, ascending.
    """
    seen = np.zeros(tokenizer.vocab_size, bool)
    seen[[PAD_ID, UNK_ID, BOS_ID, EOS_ID]] = True
    lines = iter(lines)
    while batch := list(itertools.islice(lines, batch_size)):
        ids = tokenizer.tokenize(tf.constant(batch)).flat_values.numpy()
        seen[ids[ids < tokenizer.vocab_size]] = True
    return np.flatnonzero(seen).tolist()
