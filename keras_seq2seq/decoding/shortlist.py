"""`LexicalShortlist`: the output tokens a search may write for a batch of sources."""

import numpy as np
import tensorflow as tf

from keras_seq2seq.text import UNK_ID

# The special ids 0-3 (padding, unknown, start, end) are in every shortlist.
_SPECIALS = 4


class LexicalShortlist:
    """The output tokens worth scoring for a batch of sources, from training pairs.

    A search's output layer and softmax span the whole target vocabulary at
    every step, though the translation of a sentence draws on a few hundred
    of its words: those its source words translate to, and the language's
    common words. A lexical shortlist (Marian's `--shortlist`, CTranslate2's
    vocabulary map) keeps, for each source token, the `per_token` output
    tokens that co-occur with it most in training pairs, and the `frequent`
    commonest output tokens for every batch; a search then scores only the
    union of those of its batch's tokens (the step's `outputs`,
    `SequenceModel.step_weights`), and each sentence's search only its own
    list, normalized over it (`lists`; `generate(shortlist=)` does
    both, for each of its parallel searches): a sentence translates the same
    whatever the other sentences of its request, as a server that batches
    requests together needs. The output layer's product and the softmax
    shrink with the union, and the translations may change where a word the
    list lacks would have won: measure them on validation data before
    serving them (README, Serving).

    Co-occurrence ranks by c(s, t)^2 / (c(s) c(t)), where c(s), c(t) and
    c(s, t) count the training pairs that hold a source token s, an output
    token t, and both: the product of p(t | s) and p(s | t), which favours
    neither the tokens every sentence holds (the frequent list has those)
    nor ones seen once.

    Args:
        table: int [source ids, per_token], each source id's output indices
            (0, padding, fills a short row).
        frequent: int [n], output indices every batch may write.
        output_size: the model's output width (its output layer's).

    Example:

    >>> shortlist = LexicalShortlist.from_pairs(pairs, 8000, 3853)
    >>> generate(model, source_ids, 64, beam_size=5, shortlist=shortlist)
    """

    def __init__(self, table, frequent, output_size):
        self.table = np.asarray(table, "int32")
        self.frequent = np.asarray(frequent, "int32")
        self.output_size = int(output_size)
        if self.table.ndim != 2 or self.frequent.ndim != 1:
            raise ValueError(f"a shortlist's table is [source ids, per_token] and its frequent "
                             f"list a vector; got shapes {self.table.shape}, {self.frequent.shape}")
        largest = max(self.table.max(initial=0), self.frequent.max(initial=0))
        if largest >= self.output_size:
            raise ValueError(f"a shortlist names output {largest}, past the model's "
                             f"{self.output_size} outputs")

    @property
    def per_token(self):
        return self.table.shape[1]

    @classmethod
    def from_pairs(cls, pairs, source_size, output_size, per_token=10, frequent=100):
        """A shortlist from training pairs.

        Args:
            pairs: iterable of `(source ids, output indices)`, each a 1-D int
                array (padding 0 is ignored).
            source_size: the source ids' range (the vocabulary's size).
            output_size: the model's output width.
            per_token: output tokens kept per source token.
            frequent: the commonest output tokens, kept for every batch.
            (The defaults measured best on Multi30k's validation data:
            README, Serving.)
        """
        codes, source_counts = [], np.zeros(source_size, np.int64)
        output_counts = np.zeros(output_size, np.int64)
        for source, output in pairs:
            source = np.unique(np.asarray(source, np.int64))
            output = np.unique(np.asarray(output, np.int64))
            source, output = source[source >= _SPECIALS], output[output >= _SPECIALS]
            source_counts[source] += 1
            output_counts[output] += 1
            codes.append((source[:, None] * output_size + output[None, :]).ravel())
        codes, together = np.unique(np.concatenate(codes or [np.zeros(0, np.int64)]),
                                    return_counts=True)
        sources, outputs = codes // output_size, codes % output_size
        strength = together.astype(np.float64) ** 2 / (
            source_counts[sources] * output_counts[outputs])
        # Within each source id, strongest first: sort by (source, -strength).
        order = np.lexsort((-strength, sources))
        sources, outputs = sources[order], outputs[order]
        starts = np.searchsorted(sources, np.arange(source_size))
        rank = np.arange(len(sources)) - starts[sources]
        keep = rank < per_token
        table = np.zeros((source_size, per_token), np.int32)
        table[sources[keep], rank[keep]] = outputs[keep]
        commonest = np.argsort(-output_counts, kind="stable")[:frequent]
        return cls(table, commonest[output_counts[commonest] > 0], output_size)

    def outputs(self, source_ids, prefix=None, static_size=False):
        """int32 [n]: the sorted output indices a search over `source_ids`
        [batch, source] (vocabulary ids, 0-padded) may write: the special
        ids, the frequent list, each source token's list, and `prefix`
        [batch, prefix] (output indices a prefix forces, 0-padded).

        `static_size`: n follows the inputs' shapes alone (as XLA compiles
        them): the listed ids, then the lowest unlisted ones up to the
        number of ids listed with repeats (at most the model's outputs).
        Otherwise (in the graph) n is the number of distinct ids listed.
        """
        return self.lists(source_ids, prefix, static_size)[0]

    def lists(self, source_ids, prefix=None, static_size=False):
        """`(outputs, allowed)`: the batch's `outputs` [n] (see there), and
        bool [batch, n], which of them each source's own list holds (the
        special ids, the frequent list, its tokens' lists and its prefix)."""
        listed = self._listed(source_ids)
        listed = tf.reshape(listed, [tf.shape(listed)[0], -1])
        if prefix is not None:
            listed = tf.concat([listed, tf.cast(prefix, tf.int32)], 1)
        batch, width = tf.shape(listed)[0], tf.shape(listed)[1]
        sentence = tf.repeat(tf.range(batch), width)
        # How often each source lists each output.
        present = tf.scatter_nd(tf.stack([sentence, tf.reshape(listed, [-1])], 1),
                                tf.ones([batch * width], tf.int32), [batch, self.output_size])
        every = self._for_every_sentence()
        present += tf.scatter_nd(every[:, None], tf.ones_like(every), [self.output_size])[None, :]
        in_batch = tf.reduce_sum(present, 0)
        if static_size:
            size = tf.minimum(batch * width + tf.size(every), self.output_size)
            # Listed ids first (top-k takes the lower index among equals).
            outputs = tf.sort(tf.math.top_k(tf.minimum(in_batch, 1), k=size).indices)
        else:
            outputs = tf.cast(tf.where(in_batch > 0)[:, 0], tf.int32)
        return outputs, tf.gather(present, outputs, axis=1) > 0

    def _listed(self, source_ids):
        """int32 [batch, source, per_token]: each source token's list."""
        source_ids = tf.convert_to_tensor(source_ids, tf.int32)
        # Ids past the table (a word tokenizer's extended ids) read as unknown.
        source_ids = tf.where(source_ids < self.table.shape[0], source_ids, UNK_ID)
        return tf.gather(self.table, source_ids)

    def _for_every_sentence(self):
        """int32: the ids every sentence may write (the specials, the frequent list)."""
        return tf.constant(np.concatenate([np.arange(_SPECIALS), self.frequent]), tf.int32)

    def save(self, path):
        """Writes the shortlist to `path` (a .npz file)."""
        with open(path, "wb") as f:
            np.savez(f, table=self.table, frequent=self.frequent,
                     output_size=np.int64(self.output_size))

    @classmethod
    def load(cls, path):
        with np.load(path) as saved:
            return cls(saved["table"], saved["frequent"], int(saved["output_size"]))
