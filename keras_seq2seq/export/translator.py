"""`Translator`: a model and its tokenizer as one `tf.Module`, strings to strings.

Its `tf.function`s are the SavedModel's signatures (design.md 2.4), and the
command line calls the same functions, so what `keras-seq2seq translate`
prints is what TF Serving returns. Every signature runs the one search entry
point, `keras_seq2seq.decoding.generate`.
"""

import itertools
import os

import tensorflow as tf

from keras_seq2seq.decoding import LexicalShortlist, attention_of, generate, sample_generate
from keras_seq2seq.decoding import score as score_outputs
from keras_seq2seq.errors import UserError
from keras_seq2seq.export.text_output import TextOutput
from keras_seq2seq.export.run_folder import RunFolder, register_exportable
from keras_seq2seq.models import Ensemble
from keras_seq2seq.text import EOS_ID, PAD_ID, UNK_ID

TEXT = tf.TensorSpec([None], tf.string, name="text")
TARGET = tf.TensorSpec([None], tf.string, name="target")
TARGET_PREFIX = tf.TensorSpec([None], tf.string, name="target_prefix")
# Source lengths XLA compiles for (with `jit_compile`): multiples of this.
XLA_SOURCE_BUCKET = 16
# A translator's `LexicalShortlist`, in its run folder.
SHORTLIST_FILE = "shortlist.npz"


def _pad_to_bucket(ids, bucket):
    """[B, S] ids, 0-padded to the next multiple of `bucket` columns."""
    width = tf.shape(ids)[1]
    return tf.pad(ids, [[0, 0], [0, (width + bucket - 1) // bucket * bucket - width]])


def _check_takes_shortlist(model):
    if not model.shortlists_outputs:
        raise UserError(f"a {model.__class__.__name__} cannot restrict its outputs to a "
                        "shortlist")


@register_exportable
class Translator(TextOutput):
    """Strings in, translations out; tokenization and search in the graph.

    Args:
        model: a trained text `SequenceModel` (`AttentionSeq2Seq`,
            `PointerGenerator`, `Seq2Seq`).
        tokenizer: the `SubwordTokenizer` or `WordTokenizer` it was trained
            with. With a `WordTokenizer`, sources carry extended ids for
            unknown words and outputs are detokenized against the source, so
            a word a `PointerGenerator` copies comes out verbatim.
        max_source_length: longer inputs are truncated to this many tokens
            (EOS included).
        max_target_length: size of the output buffer; outputs are also
            limited to `2 * source length + 10` tokens.
        beam_size: beam width of `serving_default`, `beam_search` and
            `translate_ids`, and the largest `beam_size` that
            `beam_search_options` accepts.
        alpha: GNMT length penalty of the fixed-width signatures.
        beta: GNMT coverage penalty of the fixed-width signatures; must be 0
            for a model without coverage (`model.has_coverage`), and
            `beam_search_options` then refuses a non-zero `beta`.
        no_repeat_ngram_size: every search forbids repeating an n-gram of
            this size within an output (3: trigram blocking, as
            summarization uses it; 0: off).
        check_texts: sources `check_inputs` gives `verify_export` (with an
            empty and an emoji input added).
        jit_compile: search one-sentence requests with XLA, sources padded
            to a multiple of `XLA_SOURCE_BUCKET` tokens (see `TextOutput`).
        matmul_dtype: the search's matrix products (see `TextOutput`).
        shortlist: a `LexicalShortlist` (`with_shortlist` builds one from
            training pairs): every search scores only the outputs it lists
            for the request's sources, and each sentence only those of its
            own tokens (and prefix), normalized over them: faster, and a
            sentence's translation is the same whatever else its request
            holds (it may differ from the whole vocabulary's). None: the whole
            output vocabulary. `score` and `sampling` always use the whole
            vocabulary, and so does the TFLite conversion.

    Example:

    >>> translator = Translator(model, tokenizer, 64, 64, beam_size=5)
    >>> translator.serving_default(tf.constant(["3rd of March 1999"]))["translation"]
    """

    def __init__(self, model, tokenizer, max_source_length, max_target_length,
                 beam_size=5, alpha=0.6, beta=0.0, no_repeat_ngram_size=0, check_texts=(),
                 jit_compile=False, matmul_dtype=None, shortlist=None, parallel_searches=1,
                 name=None):
        super().__init__(model, tokenizer, matmul_dtype, jit_compile, parallel_searches, name=name)
        if shortlist is not None:
            _check_takes_shortlist(model)
        self.shortlist = shortlist
        if beta and not model.has_coverage:
            model.coverage(None)  # raises: no coverage to penalise
        self.max_source_length = int(max_source_length)
        self.max_target_length = int(max_target_length)
        self.beam_size = int(beam_size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.no_repeat_ngram_size = int(no_repeat_ngram_size)
        self.check_texts = [str(t) for t in check_texts][:8]

    @classmethod
    def ensemble(cls, translators, names=None):
        """One translator searching the `Ensemble` of the translators' models,
        with the first one's tokenizer and settings.

        Raises `UserError` unless every translator has the same tokenizer
        (`names`, e.g. their run folders, name them in the message).
        """
        names = names or [f"translator {i}" for i in range(len(translators))]
        first = translators[0]
        for name, other in zip(names[1:], translators[1:]):
            if other.tokenizer.to_bytes() != first.tokenizer.to_bytes():
                raise UserError(f"{name} has another tokenizer than {names[0]}: an ensemble's "
                                "members must share one (train them on the same data and "
                                "tokenizer settings)")
        try:
            model = Ensemble([t.model for t in translators])
        except ValueError as e:
            raise UserError(str(e)) from None
        return cls(model, first.tokenizer, **first.run_settings())

    def with_shortlist(self, sources, targets, per_token=10, frequent=100):
        """This translator with a `LexicalShortlist` built from training
        pairs, tokenized as training tokenized them.

        Args:
            sources, targets: parallel iterables of source and target lines.
            per_token, frequent: see `LexicalShortlist.from_pairs`.
        """
        _check_takes_shortlist(self.model)  # before counting the pairs
        return self.with_settings(shortlist=LexicalShortlist.from_pairs(
            self._token_pairs(sources, targets), self.tokenizer.vocab_size,
            self.model.target_size, per_token=per_token, frequent=frequent))

    def without_shortlist(self):
        return self.with_settings(shortlist=None)

    def _token_pairs(self, sources, targets, batch=2000):
        """`(source ids, output indices)` arrays of each pair, in batches."""
        lines = itertools.zip_longest(sources, targets)
        while True:
            pairs = list(itertools.islice(lines, batch))
            if not pairs:
                return
            if any(source is None or target is None for source, target in pairs):
                raise UserError("a shortlist's source and target lines differ in number: "
                                "they must be parallel, one line per line")
            text = tf.constant([source for source, _ in pairs])
            source_ids = self.encode_text(text).numpy()
            outputs = self.model.target_index(
                self.encode_target(text, tf.constant([target for _, target in pairs]))).numpy()
            for source, output in zip(source_ids, outputs):
                yield source[source != PAD_ID], output[output != PAD_ID]

    @property
    def settings(self):
        return {
            "model": self.model.__class__.__name__,
            "model_config": self.model.get_config(),
            "tokenizer": self.tokenizer.__class__.__name__,
            "vocabulary_size": self.tokenizer.vocab_size,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "beam_size": self.beam_size,
            "alpha": self.alpha,
            "beta": self.beta,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "jit_compile": self.jit_compile,
            "matmul_dtype": self.matmul_dtype,
            "parallel_searches": self.parallel_searches,
            "shortlist": None if self.shortlist is None else {
                "per_token": self.shortlist.per_token,
                "frequent": len(self.shortlist.frequent)},
        }

    def run_settings(self):
        return {k: getattr(self, k) for k in (
            "max_source_length", "max_target_length", "beam_size", "alpha", "beta",
            "no_repeat_ngram_size", "check_texts", "jit_compile", "matmul_dtype", "shortlist",
            "parallel_searches")}

    def for_tflite(self):
        """As `TextOutput.for_tflite`, searching the whole vocabulary."""
        return super().for_tflite().without_shortlist()

    # -- the run folder: the shortlist in a file of its own --------------------

    def save_run(self, directory):
        settings = self.run_settings()
        if self.shortlist is not None:
            settings["shortlist"] = SHORTLIST_FILE
        RunFolder(directory).save(self, self.model, settings)

    def write_run_files(self, directory):
        super().write_run_files(directory)
        if self.shortlist is not None:
            self.shortlist.save(os.path.join(directory, SHORTLIST_FILE))

    @classmethod
    def from_run(cls, folder, settings):
        if settings.get("shortlist"):
            settings = dict(settings, shortlist=LexicalShortlist.load(
                folder.file(settings["shortlist"])))
        return super().from_run(folder, settings)

    # -- ids in, ids out: the core every signature shares -------------------

    def search(self, source_ids, beam_size=None, alpha=None, beta=None, max_length=None,
               active_beams=None, prefix_ids=None):
        """Beam search over source ids -> (ids [B, K, T], scores [B, K])."""
        return self.search_by_request_size(source_ids, dict(
            beam_size=beam_size, alpha=alpha, beta=beta, max_length=max_length,
            active_beams=active_beams, prefix_ids=prefix_ids))

    def xla_bucketed(self, source_ids, options):
        """Sources (and prefixes) padded to a multiple of `XLA_SOURCE_BUCKET` tokens."""
        if options.get("prefix_ids") is not None:
            options = dict(options, prefix_ids=_pad_to_bucket(options["prefix_ids"],
                                                              XLA_SOURCE_BUCKET))
        return _pad_to_bucket(source_ids, XLA_SOURCE_BUCKET), options

    def _search(self, source_ids, options, retire_finished=True, fused_lstm=True):
        alpha, beta = options.get("alpha"), options.get("beta")
        return generate(
            self.model,
            source_ids,
            self.max_target_length,
            beam_size=options.get("beam_size") or self.beam_size,
            alpha=self.alpha if alpha is None else alpha,
            beta=self.beta if beta is None else beta,
            length_cap=options.get("max_length"),
            active_beams=options.get("active_beams"),
            prefix_ids=options.get("prefix_ids"),
            no_repeat_ngram_size=self.no_repeat_ngram_size,
            matmul_dtype=self.matmul_dtype,
            shortlist=self.shortlist,
            parallel_searches=self.searches_of(retire_finished),
            retire_finished=retire_finished,
            fused_lstm=fused_lstm,
        )

    def encode_text(self, text):
        return self.tokenizer.encode(text, self.max_source_length)

    def encode_target(self, text, target, add_eos=True):
        """Target strings [B] of sources `text` [B] -> ids [B, T], 0-padded.

        With `add_eos`, at most `max_target_length` ids, the last one EOS (as
        outputs are); without, at most `max_target_length - 1` (a prefix,
        which leaves room for the end). A copying model's targets carry the
        extended ids of the source words they copy (as in training).
        """
        _, ids = self.tokenizer.tokenize_pair(text, target, extended=self.model.copies_source)
        ids = ids[:, : self.max_target_length - 1]
        if add_eos:
            eos = tf.fill([ids.nrows(), 1], tf.constant(EOS_ID, tf.int32))
            ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
        dense = ids.to_tensor(default_value=PAD_ID)
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(dense)[1])]])
        if self.model.copies_source:
            # A copy of a word past the truncated source cannot be produced.
            width = self.tokenizer.vocab_size + self.max_source_length
            dense = tf.where(dense >= width, UNK_ID, dense)
        return dense

    def decode_text(self, ids, text):
        """[B, T] ids of translations of `text` [B] -> [B] strings."""
        return self.tokenizer.decode(ids, source=text, max_source_length=self.max_source_length)

    def decode_beams(self, ids, text):
        """[B, K, T] ids of translations of `text` [B] -> [B, K] strings."""
        shape = tf.shape(ids)
        flat = self.decode_text(tf.reshape(ids, [-1, shape[2]]), tf.repeat(text, shape[1]))
        return tf.reshape(flat, shape[:2])

    # -- the signatures -----------------------------------------------------

    @tf.function(autograph=False, input_signature=[TEXT])
    def serving_default(self, text):
        """`text` [B] -> `translation` string [B], `score` float32 [B] (best beam)."""
        ids, scores = self.search(self.encode_text(text))
        return {"translation": self.decode_text(ids[:, 0], text), "score": scores[:, 0]}

    @tf.function(autograph=False, input_signature=[TEXT])
    def beam_search(self, text):
        """`text` [B] -> `translations` string [B, K], `scores` float32 [B, K]."""
        ids, scores = self.search(self.encode_text(text))
        return {"translations": self.decode_beams(ids, text), "scores": scores}

    @tf.function(autograph=False, input_signature=[TEXT])
    def greedy(self, text):
        """`text` [B] -> `translation` string [B]."""
        ids, _ = self.search(self.encode_text(text), beam_size=1, alpha=0.0, beta=0.0)
        return {"translation": self.decode_text(ids[:, 0], text)}

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids")])
    def translate_ids(self, source_ids):
        """`source_ids` [B, S] -> `target_ids` int32 [B, K, T], `scores` [B, K]."""
        ids, scores = self.search(source_ids)
        return {"target_ids": ids, "scores": scores}

    @tf.function(autograph=False, input_signature=[
        TEXT,
        tf.TensorSpec([], tf.int32, name="beam_size"),
        tf.TensorSpec([], tf.float32, name="alpha"),
        tf.TensorSpec([], tf.float32, name="beta"),
        tf.TensorSpec([], tf.int32, name="max_length"),
        TARGET_PREFIX,
    ])
    def beam_search_options(self, text, beam_size, alpha, beta, max_length, target_prefix):
        """`beam_search` with the search settings chosen per request.

        `beam_size` is clipped to [1, the export's beam size] and
        `max_length` to [1, max_target_length]; outputs have `beam_size`
        columns. Every hypothesis of row i starts with `target_prefix[i]`
        ("" for none) and continues it; a prefix is truncated to
        `max_target_length - 1` tokens, and `max_length` is raised to fit it.
        """
        width = tf.clip_by_value(beam_size, 1, self.beam_size)
        prefix_ids = self.encode_target(text, target_prefix, add_eos=False)
        ids, scores = self.search(self.encode_text(text), alpha=alpha, beta=beta,
                                  max_length=max_length, active_beams=width,
                                  prefix_ids=prefix_ids)
        return {"translations": self.decode_beams(ids[:, :width], text),
                "scores": scores[:, :width]}

    @tf.function(autograph=False, input_signature=[TEXT, TARGET])
    def score(self, text, target):
        """`text` [B], `target` [B] -> `log_prob` float32 [B], `tokens` int32 [B].

        The model's log-probability of each target given its source, summed
        over its tokens, end included (forced decoding through the search's
        step). Targets are truncated to `max_target_length` tokens, end
        included, as outputs are.
        """
        log_prob, tokens = score_outputs(self.model, self.encode_text(text),
                                         self.encode_target(text, target), fused_lstm=True)
        return {"log_prob": log_prob, "tokens": tokens}

    @tf.function(autograph=False, input_signature=[TEXT])
    def alignments(self, text):
        """`serving_default` plus where the model attended.

        Returns `translation` [B], `score` [B], `attention` float32 [B, T, S]
        (row t: the attention while producing target piece t), the pieces
        `source_pieces` [B, S] and `target_pieces` [B, T] (end pieces
        included, "" for padding), and `source_words` [B, S] and
        `target_words` [B, T]: the word each piece belongs to (-1 for end
        and padding), for word alignments.
        """
        source_ids = self.encode_text(text)
        ids, scores = self.search(source_ids)
        best, attention = attention_of(self.model, source_ids, ids[:, 0], fused_lstm=True)
        source_pieces, source_words = self.tokenizer.pieces(
            source_ids, source=text, max_source_length=self.max_source_length)
        target_pieces, target_words = self.tokenizer.pieces(
            best, source=text, max_source_length=self.max_source_length)
        return {"translation": self.decode_text(best, text), "score": scores[:, 0],
                "attention": attention, "source_pieces": source_pieces,
                "target_pieces": target_pieces, "source_words": source_words,
                "target_words": target_words}

    def signatures(self):
        return {
            "serving_default": self.serving_default,
            "beam_search": self.beam_search,
            "greedy": self.greedy,
            "translate_ids": self.translate_ids,
            "beam_search_options": self.beam_search_options,
            "score": self.score,
            "sampling": self.sampling,
            **({"alignments": self.alignments} if self.model.has_attention else {}),
        }

    @tf.function(autograph=False, input_signature=[
        TEXT,
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.float32, name="top_p"),
        tf.TensorSpec([2], tf.int32, name="seed"),
    ])
    def sampling(self, text, temperature, top_k, top_p, seed):
        """`text` [B] -> `translation` string [B], `score` float32 [B]: one
        output drawn token by token (varied responses, where a search gives
        the most likely, often blandest, one).

        `temperature` divides the log-probabilities; `top_k` keeps the k
        most probable tokens (0: all); `top_p` the smallest set whose
        probability reaches it (nucleus sampling; 1: all). The same `seed`
        gives the same outputs. `score` is the output's log-probability
        under the model (before filtering).
        """
        ids, scores = sample_generate(self.model, self.encode_text(text), self.max_target_length,
                                      temperature=tf.maximum(temperature, 1e-3), top_k=top_k,
                                      top_p=top_p, seed=seed, fused_lstm=True)
        return {"translation": self.decode_text(ids, text), "score": scores}

    # -- what export_saved_model and convert_to_tflite ask of an exportable --

    def warmup_inputs(self):
        """One text of each source-length bucket XLA compiles for, up to
        `max_source_length` tokens (longer texts are truncated to it)."""
        candidates = [" ".join(["a"] * words) for words in range(self.max_source_length + 1)]
        lengths = tf.reduce_sum(
            tf.cast(self.encode_text(tf.constant(candidates)) != PAD_ID, tf.int32), axis=1)
        first_of_bucket = {}
        for text, length in zip(candidates, lengths.numpy()):
            first_of_bucket.setdefault((length - 1) // XLA_SOURCE_BUCKET, text)
        return [{"text": [text]} for text in first_of_bucket.values()]

    def check_inputs(self):
        """The run's sample sources, plus an empty and an emoji input."""
        return {"text": self.check_texts + ["", "\U0001F600 ??"]}

    def tflite_decode(self):
        """The batch-1 search that TFLite converts (as `translate_ids`), and its input."""

        def decode(source_ids):
            # Inlined, not a call of the traced search: the converter freezes
            # one graph, and never compiles it with XLA.
            target_ids, scores = self.for_tflite()._search(source_ids, {}, fused_lstm=False)
            return {"scores": scores, "target_ids": target_ids}

        return decode, [tf.TensorSpec([1, None], tf.int32, name="source_ids")]
