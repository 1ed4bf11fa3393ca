"""SentencePiece, trained with the `sentencepiece` library, run by tensorflow-text.

Training uses `sentencepiece.SentencePieceTrainer` directly because it offers
`byte_fallback`: characters never seen in training (emoji, other scripts) are
spelled as byte pieces and come back unchanged on detokenization, instead of
turning into `<unk>`. `keras_hub.tokenizers.compute_sentence_piece_proto` has
no such option.

At run time the model proto is handed to `tensorflow_text.SentencepieceTokenizer`,
whose ops are in the graph, so a SavedModel tokenizes and detokenizes strings
itself and TF Serving clients send and receive plain text.
"""

import io
import itertools
import re

import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text

from keras_seq2seq.text.line_breaks import mark_line_breaks_in_graph, restore_line_breaks_in_graph

# Fixed special ids shared by every tokenizer and model in the package. Padding
# is 0 so that Keras masks (`mask_zero`) and `ids != 0` agree.
PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3


def train_sentencepiece(
    sentences,
    vocab_size,
    model_type="unigram",
    split_digits=False,
    max_sentences=2_000_000,
):
    """Trains a SentencePiece model and returns its serialized proto.

    Args:
        sentences: an iterable of `str`, read once (a generator over a file is
            fine; it is not materialized beyond `max_sentences`).
        vocab_size: target vocabulary size. It is a soft limit: byte fallback
            needs 256 byte pieces plus every character of the training data.
        model_type: `"unigram"` or `"bpe"`.
        split_digits: split numbers into single digits (helps copy digits).
        max_sentences: read at most this many sentences.

    Returns:
        The model proto as `bytes`.
    """
    model = io.BytesIO()
    try:
        _train(sentences, model, vocab_size, model_type, split_digits, max_sentences)
    except RuntimeError as e:
        match = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", str(e))
        if match:
            raise ValueError(
                f"vocab_size {vocab_size} is too small: byte fallback and the "
                f"{int(match.group(2)) - 260} distinct characters of the training "
                f"data need at least {match.group(2)} pieces"
            ) from None
        raise
    return model.getvalue()


def character_tokenizer(sentences):
    """A `SubwordTokenizer` with one piece per character of `sentences` (a
    list of str): SentencePiece's char model, with byte fallback."""
    characters = set("".join(set().union(*(set(s.split()) for s in sentences))))
    # 4 specials, 256 byte pieces, the word-boundary piece and each
    # character (a soft limit: SentencePiece keeps fewer if fewer occur).
    return SubwordTokenizer(train_sentencepiece(sentences, vocab_size=len(characters) + 261,
                                                model_type="char"))


def _train(sentences, model, vocab_size, model_type, split_digits, max_sentences):
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=itertools.islice(iter(sentences), max_sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        byte_fallback=True,
        split_digits=split_digits,
        character_coverage=1.0,
        hard_vocab_limit=False,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        # Training logs every byte piece at INFO level; keep the console quiet.
        minloglevel=2,
        num_threads=2,
    )


def is_special(ids):
    """bool, the shape of `ids`: padding, BOS and EOS, which are no text."""
    return (ids == PAD_ID) | (ids == BOS_ID) | (ids == EOS_ID)


def padded_ids(ids, max_length, add_eos=True):
    """Ragged int32 ids [batch, (time)] -> dense [batch, time], 0-padded:
    cut to `max_length` tokens (EOS included, and always kept, with
    `add_eos`); `time` is the longest row (at least 1)."""
    if add_eos:
        ids = ids[:, : max_length - 1]
        eos = tf.fill([ids.nrows(), 1], tf.constant(EOS_ID, tf.int32))
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
    else:
        ids = ids[:, :max_length]
    dense = ids.to_tensor(default_value=PAD_ID)
    # An empty batch still needs a time axis of at least one.
    return tf.pad(dense, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(dense)[1])]])


class SubwordTokenizer(tf.Module):
    """Strings to ids and back, in the graph.

    Wraps `tensorflow_text.SentencepieceTokenizer`. Being a `tf.Module`, it is
    saved inside a SavedModel that holds it as an attribute.

    Args:
        proto: a serialized SentencePiece model (`bytes`).

    Example:

    >>> tokenizer = SubwordTokenizer(proto)
    >>> ids = tokenizer.encode(["3rd of March 1999"], max_length=32)
    >>> tokenizer.decode(ids)
    """

    file_name = "tokenizer.model"

    def __init__(self, proto, name=None):
        super().__init__(name=name)
        self.proto = bytes(proto)
        self._sentencepiece = self._make_sentencepiece()
        self.vocab_size = int(self._call("vocab_size"))

    def _make_sentencepiece(self):
        return tf_text.SentencepieceTokenizer(
            model=self.proto, out_type=tf.int32, add_bos=False, add_eos=False
        )

    def _call(self, method, *args):
        if not tf.executing_eagerly():
            # About to be captured by a graph being traced: make sure the
            # resource is alive first (the check runs eagerly, once per trace).
            with tf.init_scope():
                self._call("vocab_size")
        try:
            return getattr(self._sentencepiece, method)(*args)
        except tf.errors.NotFoundError:
            if not tf.executing_eagerly():
                raise
            # tf.random.set_seed (and keras.utils.set_random_seed) clears TF's
            # eager kernel cache, which deletes tensorflow-text's kernel-owned
            # SentencePiece resource (tensorflow-text b/318839908): rebuild it.
            self._sentencepiece = self._make_sentencepiece()
            return getattr(self._sentencepiece, method)(*args)

    @classmethod
    def from_file(cls, path):
        with open(path, "rb") as f:
            return cls(f.read())

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.proto)

    def to_bytes(self):
        """The tokenizer as bytes: equal bytes, the same tokenizer."""
        return self.proto

    def write_client_files(self, stem):
        """What a client tokenizing itself needs beside a one-piece-per-line
        vocabulary: the SentencePiece model, `STEM.spm.model`."""
        self.save(stem + ".spm.model")
        return [stem + ".spm.model"]

    def fresh(self):
        """A new tokenizer (and SentencePiece resource) for the same model."""
        return SubwordTokenizer(self.proto)

    def tokenize(self, strings):
        """`strings` [batch] -> `tf.RaggedTensor` of int32 ids, no specials.

        SentencePiece reads each byte that is not valid UTF-8 as U+FFFD, so
        such input decodes back with U+FFFD in its place. A line break is
        read as `LINE_BREAK` (⏎).
        """
        return self._call("tokenize", mark_line_breaks_in_graph(strings))

    def tokenize_pair(self, sources, targets, extended=False):
        """Ragged ids of parallel sentences (subwords need no extended ids)."""
        return self.tokenize(sources), self.tokenize(targets)

    def encode(self, strings, max_length, add_eos=True):
        """`strings` [batch] -> dense int32 ids [batch, time], padded with 0.

        Sequences are truncated to `max_length` tokens including the EOS,
        which is always kept so that the encoder sees where the input ends.
        `time` is the longest sequence in the batch (at least 1).
        """
        return padded_ids(self.tokenize(strings), max_length, add_eos)

    def decode(self, ids, source=None, max_source_length=None):
        """int32 ids [batch, time] -> strings [batch].

        Everything from the first EOS on is dropped, as are PAD, BOS and EOS;
        `LINE_BREAK` becomes a line break. `source` is ignored (subwords have
        no extended ids, see `WordTokenizer`).
        """
        ids = tf.convert_to_tensor(ids, tf.int32)
        before_eos = tf.math.cumsum(tf.cast(ids == EOS_ID, tf.int32), axis=-1) == 0
        keep = before_eos & (ids != PAD_ID) & (ids != BOS_ID)
        return restore_line_breaks_in_graph(
            self._call("detokenize", tf.ragged.boolean_mask(ids, keep)))

    def id_to_piece(self, ids):
        return self._call("id_to_string", ids)

    def pieces(self, ids, source=None, max_source_length=None):
        """int32 ids [batch, time] -> `(pieces, words)`, each [batch, time]:
        each id's SentencePiece piece ("" for padding), and the position of
        the word it is part of (a piece starting with U+2581 starts a word;
        -1 for specials). `source` is ignored, as in `decode`."""
        ids = tf.convert_to_tensor(ids, tf.int32)
        pieces = tf.where(ids == PAD_ID, "", self.id_to_piece(ids))
        special = is_special(ids)
        starts = tf.strings.regex_full_match(pieces, "\u2581.*") & ~special
        position = tf.maximum(tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1, 0)
        return pieces, tf.where(special, -1, position)
