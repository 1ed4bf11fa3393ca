"""Word-level tokenization with an extended vocabulary, in the graph.

A pointer-generator copies source *words*; a word the vocabulary lacks (a
name, a number, a rare noun) gets a temporary id for the one sentence it
occurs in, `vocab_size + k` for the sentence's k-th distinct unknown word
(See et al. 2017). The ids alone then say which source word to copy, so
models, beam search and TFLite see nothing but int32 tensors; only turning
ids back into text needs the source words, which `decode` recomputes from
the source string.

Words are runs of letters and digits, and every other non-space character
is a word of its own; a line break is the word `LINE_BREAK` (⏎). Detokenization is lossless up to whitespace: a piece
that touched its neighbour in the input carries a joiner mark on that side
("man's." -> `man ￭'￭ s ￭.`), as OpenNMT's tokenizer writes it, and
`decode` removes the spaces the marks point at.
"""

import collections

import tensorflow as tf
import tensorflow_text as tf_text

from keras_seq2seq.text.line_breaks import (
    mark_line_breaks_in_graph,
    restore_line_breaks_in_graph,
)
from keras_seq2seq.text.sentencepiece import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    is_special,
    padded_ids,
)

JOINER = "\uffed"  # ￭
SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")
_WORD = r"\p{L}\p{N}"


def split_words(strings):
    """`strings` [batch] -> `tf.RaggedTensor` of word strings, joiners marked."""
    strings = mark_line_breaks_in_graph(tf.strings.regex_replace(strings, JOINER, ""))
    pieces, begins, ends = tf_text.regex_split_with_offsets(
        strings, rf"\s+|[^{_WORD}\s]", rf"[^{_WORD}\s]")
    flat = pieces.flat_values
    index = tf.range(tf.size(flat, out_type=tf.int64))
    first_in_row = tf.equal(index, tf.gather(pieces.row_starts(), pieces.value_rowids()))
    previous_end = tf.concat([[-1], ends.flat_values[:-1]], axis=0)
    touches_previous = tf.equal(begins.flat_values, previous_end) & ~first_in_row
    punctuation = tf.strings.regex_full_match(flat, rf"[^{_WORD}]")
    next_touches = tf.concat([touches_previous[1:], [False]], axis=0)
    next_punctuation = tf.concat([punctuation[1:], [False]], axis=0)
    # The mark goes on the punctuation side of each join: "(￭ Hund ￭)".
    flat = tf.where(touches_previous & punctuation, tf.strings.join([JOINER, flat]), flat)
    flat = tf.where(next_touches & ~next_punctuation, tf.strings.join([flat, JOINER]), flat)
    return pieces.with_flat_values(flat)


def join_words(words):
    """Ragged word strings [batch, (words)] -> detokenized strings [batch]."""
    text = tf.strings.reduce_join(words, axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, " " + JOINER + "|" + JOINER + " ", "")
    return restore_line_breaks_in_graph(tf.strings.regex_replace(text, JOINER, ""))


def build_word_vocabulary(sentences, max_size, min_count=1, batch_size=4096):
    """The `max_size - 4` most frequent words of `sentences` (an iterable of
    str) seen at least `min_count` times, most frequent first, split as
    `WordTokenizer` splits them."""
    counts = collections.Counter()
    batch = []

    def count(batch):
        counts.update(w.decode("utf-8") for w in split_words(tf.constant(batch)).flat_values.numpy())

    for sentence in sentences:
        batch.append(sentence)
        if len(batch) == batch_size:
            count(batch)
            batch = []
    if batch:
        count(batch)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    words = [w for w, n in counts.most_common() if n >= min_count]
    return words[: max_size - len(SPECIAL_TOKENS)]


class WordTokenizer(tf.Module):
    """Words to ids and back, in the graph, with per-sentence extended ids.

    Ids 0-3 are `<pad>`, `<unk>`, `<s>`, `</s>` (as in `SubwordTokenizer`),
    then the vocabulary's words. `encode` gives each unknown word of a
    sentence an extended id `vocab_size + k` (k-th distinct unknown word,
    in order of first occurrence); a model that cannot copy reads those as
    `<unk>`. `decode(ids, source=...)` maps extended ids back to the source's
    words.

    Args:
        words: the vocabulary, a list of str without the special tokens.

    Example:

    >>> tokenizer = WordTokenizer(["ein", "Hund", "a", "dog", "."])
    >>> ids = tokenizer.encode(["Ein Hund namens Rex ."], max_length=16)
    >>> tokenizer.decode(ids, source=["Ein Hund namens Rex ."])  # "<unk> Hund namens Rex ."
    """

    file_name = "words.txt"

    def __init__(self, words, name=None):
        super().__init__(name=name)
        self.words = list(words)
        vocabulary = list(SPECIAL_TOKENS) + self.words
        self.vocab_size = len(vocabulary)
        self._id_to_word = tf.constant(vocabulary)
        self._word_to_id = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocabulary), tf.range(self.vocab_size, dtype=tf.int32)),
            default_value=UNK_ID,
        )

    @classmethod
    def from_file(cls, path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        return cls([w for w in lines[len(SPECIAL_TOKENS):] if w])

    def save(self, path):
        """One word a line, in id order (specials first)."""
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(w + "\n" for w in list(SPECIAL_TOKENS) + self.words))

    def to_bytes(self):
        """The tokenizer as bytes: equal bytes, the same tokenizer."""
        return "\n".join(self.words).encode("utf-8")

    def write_client_files(self, stem):
        """Nothing beside the one-word-per-line vocabulary: it is the whole tokenizer."""
        return []

    def fresh(self):
        return WordTokenizer(self.words)

    def id_to_piece(self, ids):
        ids = tf.convert_to_tensor(ids, tf.int32)
        known = tf.gather(self._id_to_word, tf.clip_by_value(ids, 0, self.vocab_size - 1))
        return tf.where(ids < self.vocab_size, known, "<copy>")

    # -- strings to ids -----------------------------------------------------

    def _extended(self, words):
        """Ragged words [B, (S)] -> (extended ids [B, (S)], unknown words [B, K]).

        `unknown[b, k]` is the word with extended id `vocab_size + k` ("" past
        the row's last one; K is the most distinct unknown words of a row).
        """
        flat = words.flat_values
        rows = tf.cast(words.value_rowids(), tf.int32)
        ids = self._word_to_id.lookup(flat)
        is_unknown = tf.equal(ids, UNK_ID)
        unknown_rows = tf.boolean_mask(rows, is_unknown)
        unknown_flat = tf.boolean_mask(flat, is_unknown)
        # `tf.unique` numbers (row, word) keys in order of first occurrence,
        # row after row, in time linear in the words. Comparing every word
        # with every other word of its row (a [B, S, S] string equality)
        # had made the SAMSum pipeline cost more CPU than the training step
        # (benchmarks/train_step_speed.py prints the pipeline's share).
        keys = tf.strings.join([tf.strings.as_string(unknown_rows), unknown_flat], separator=" ")
        distinct, index = tf.unique(keys, out_idx=tf.int32)
        count = tf.size(distinct)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(index)), index, count)
        distinct_rows = tf.gather(unknown_rows, first)
        # Rows come in order, so a row's first distinct word follows all of
        # the earlier rows'.
        rank = tf.range(count) - tf.searchsorted(distinct_rows, distinct_rows, side="left")
        ids = tf.tensor_scatter_nd_update(
            ids, tf.where(is_unknown), self.vocab_size + tf.gather(rank, index))
        unknown_words = tf.RaggedTensor.from_value_rowids(
            tf.gather(unknown_flat, first), distinct_rows, nrows=words.nrows(out_type=tf.int32))
        return words.with_flat_values(ids), unknown_words.to_tensor("")

    def _source_words(self, strings, max_length):
        """Ragged source words, cut to leave room for EOS within `max_length`."""
        return split_words(strings)[:, : max_length - 1]

    def tokenize(self, strings):
        """`strings` [batch] -> ragged int32 vocabulary ids (unknown words: `<unk>`)."""
        words = split_words(strings)
        return words.with_flat_values(self._word_to_id.lookup(words.flat_values))

    def tokenize_pair(self, sources, targets, extended=True):
        """Ragged ids of parallel sentences, for training.

        With `extended`, source words outside the vocabulary get extended
        ids, and so does every target word that is such a source word (a
        copy); other unknown target words stay `<unk>`.
        """
        if not extended:
            return self.tokenize(sources), self.tokenize(targets)
        source_ids, unknown = self._extended(split_words(sources))
        target_words = split_words(targets)
        dense_targets = target_words.to_tensor("")
        target_ids = self._word_to_id.lookup(dense_targets)
        copies = tf.equal(dense_targets[:, :, None], unknown[:, None, :]) & tf.not_equal(unknown, "")[:, None, :]
        copied = self.vocab_size + tf.argmax(tf.cast(copies, tf.int32), axis=2, output_type=tf.int32)
        target_ids = tf.where(tf.equal(target_ids, UNK_ID) & tf.reduce_any(copies, axis=2),
                              copied, target_ids)
        return source_ids, tf.RaggedTensor.from_tensor(
            target_ids, lengths=target_words.row_lengths())

    def encode(self, strings, max_length, add_eos=True):
        """`strings` [batch] -> extended ids [batch, time], EOS-terminated, 0-padded.

        Truncated to `max_length` ids including the EOS; `time` is at least 1.
        """
        # Cut before numbering the unknown words, as `decode` recomputes them.
        ids, _ = self._extended(self._source_words(strings, max_length if add_eos else max_length + 1))
        return padded_ids(ids, max_length, add_eos)

    # -- ids to strings -----------------------------------------------------

    def decode(self, ids, source=None, max_source_length=None):
        """int32 ids [batch, time] -> strings [batch].

        Everything from the first EOS on is dropped, as are PAD and BOS.
        Extended ids become the unknown words of `source` (strings [batch],
        as given to `encode` with `max_source_length`), or `<unk>` without it.
        """
        ids = tf.convert_to_tensor(ids, tf.int32)
        words = self._words(ids, source, max_source_length)
        before_eos = tf.math.cumsum(tf.cast(ids == EOS_ID, tf.int32), axis=-1) == 0
        keep = before_eos & (ids != PAD_ID) & (ids != BOS_ID)
        return join_words(tf.ragged.boolean_mask(words, keep))

    def pieces(self, ids, source=None, max_source_length=None):
        """int32 ids [batch, time] -> `(pieces, words)`, each [batch, time]:
        the word of each id (copies resolved against `source`, as in
        `decode`; "" for padding), and its word position (-1 for specials)."""
        ids = tf.convert_to_tensor(ids, tf.int32)
        pieces = tf.where(ids == PAD_ID, "", self._words(ids, source, max_source_length))
        special = is_special(ids)
        position = tf.cumsum(tf.cast(~special, tf.int32), axis=1, exclusive=True)
        return pieces, tf.where(special, -1, position)

    def _words(self, ids, source, max_source_length):
        words = tf.gather(self._id_to_word, tf.clip_by_value(ids, 0, self.vocab_size - 1))
        words = tf.where(ids >= self.vocab_size, SPECIAL_TOKENS[UNK_ID], words)
        if source is not None:
            _, unknown = self._extended(self._source_words(source, max_source_length or 1 << 30))
            # Out-of-range extended ids (never produced by a copy) stay <unk>.
            unknown = tf.pad(unknown, [[0, 0], [0, 1]], constant_values=SPECIAL_TOKENS[UNK_ID])
            slot = tf.clip_by_value(ids - self.vocab_size, 0, tf.shape(unknown)[1] - 1)
            copied = tf.gather(unknown, slot, batch_dims=1)
            copied = tf.where(tf.equal(copied, ""), SPECIAL_TOKENS[UNK_ID], copied)
            words = tf.where(ids >= self.vocab_size, copied, words)
        return words
