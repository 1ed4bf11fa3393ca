"""`Translator`: a model and its tokenizer as one `tf.Module`, strings to strings.

Its `tf.function`s are the SavedModel's signatures (design.md 2.4), and the
command line calls the same functions, so what `keras-seq2seq translate`
prints is what TF Serving returns. Every signature runs the one search entry
point, `keras_seq2seq.decoding.generate`.
"""

import os

import tensorflow as tf

from keras_seq2seq.decoding import generate, sample_generate
from keras_seq2seq.export.exportable import Exportable
from keras_seq2seq.export.run_folder import register_exportable
from keras_seq2seq.text import load_tokenizer

TEXT = tf.TensorSpec([None], tf.string, name="text")


@register_exportable
class Translator(Exportable):
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
        check_texts: sources `check_inputs` gives `verify_export` (with an
            empty and an emoji input added).
        jit_compile: compile the search with XLA (about 2x faster at batch 1
            on CPU, see benchmarks/decode_speed.py). Off by default: the stock
            TF Serving binary refuses XLA:CPU functions unless started with
            `--xla_cpu_compilation_enabled=true`, and TFLite conversion
            retraces the search without it anyway.

    Example:

    >>> translator = Translator(model, tokenizer, 64, 64, beam_size=5)
    >>> translator.serving_default(tf.constant(["3rd of March 1999"]))["translation"]
    """

    def __init__(self, model, tokenizer, max_source_length, max_target_length,
                 beam_size=5, alpha=0.6, beta=0.0, check_texts=(), jit_compile=False, name=None):
        super().__init__(model, name=name)
        if beta and not model.has_coverage:
            model.coverage(None)  # raises: no coverage to penalise
        self.tokenizer = tokenizer
        self.max_source_length = int(max_source_length)
        self.max_target_length = int(max_target_length)
        self.beam_size = int(beam_size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.check_texts = [str(t) for t in check_texts][:8]
        self.jit_compile = bool(jit_compile)
        if self.jit_compile:
            # Only the ids-in, ids-out search: tensorflow-text ops have no
            # XLA kernels, so tokenization stays outside.
            self._compiled_search = tf.function(self._search, jit_compile=True)

    def with_fresh_tokenizer(self):
        """The same translator with a new tokenizer object (same model proto)."""
        return Translator(self.model, self.tokenizer.fresh(), **self.run_settings())

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
            "jit_compile": self.jit_compile,
        }

    def run_settings(self):
        return {k: getattr(self, k) for k in (
            "max_source_length", "max_target_length", "beam_size", "alpha", "beta",
            "check_texts", "jit_compile")}

    # -- ids in, ids out: the core every signature shares -------------------

    def search(self, source_ids, beam_size=None, alpha=None, beta=None, max_length=None,
               active_beams=None):
        """Beam search over source ids -> (ids [B, K, T], scores [B, K])."""
        search = self._compiled_search if self.jit_compile else self._search
        return search(source_ids, beam_size, alpha, beta, max_length, active_beams)

    def _search(self, source_ids, beam_size, alpha, beta, max_length, active_beams):
        return generate(
            self.model,
            source_ids,
            self.max_target_length,
            beam_size=beam_size or self.beam_size,
            alpha=self.alpha if alpha is None else alpha,
            beta=self.beta if beta is None else beta,
            length_cap=max_length,
            active_beams=active_beams,
        )

    def encode_text(self, text):
        return self.tokenizer.encode(text, self.max_source_length)

    def decode_text(self, ids, text):
        """[B, T] ids of translations of `text` [B] -> [B] strings."""
        return self.tokenizer.decode(ids, source=text, max_source_length=self.max_source_length)

    def decode_beams(self, ids, text):
        """[B, K, T] ids of translations of `text` [B] -> [B, K] strings."""
        shape = tf.shape(ids)
        flat = self.decode_text(tf.reshape(ids, [-1, shape[2]]), tf.repeat(text, shape[1]))
        return tf.reshape(flat, shape[:2])

    # -- the signatures -----------------------------------------------------

    @tf.function(input_signature=[TEXT])
    def serving_default(self, text):
        """`text` [B] -> `translation` string [B], `score` float32 [B] (best beam)."""
        ids, scores = self.search(self.encode_text(text))
        return {"translation": self.decode_text(ids[:, 0], text), "score": scores[:, 0]}

    @tf.function(input_signature=[TEXT])
    def beam_search(self, text):
        """`text` [B] -> `translations` string [B, K], `scores` float32 [B, K]."""
        ids, scores = self.search(self.encode_text(text))
        return {"translations": self.decode_beams(ids, text), "scores": scores}

    @tf.function(input_signature=[TEXT])
    def greedy(self, text):
        """`text` [B] -> `translation` string [B]."""
        ids, _ = self.search(self.encode_text(text), beam_size=1, alpha=0.0, beta=0.0)
        return {"translation": self.decode_text(ids[:, 0], text)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids")])
    def translate_ids(self, source_ids):
        """`source_ids` [B, S] -> `target_ids` int32 [B, K, T], `scores` [B, K]."""
        ids, scores = self.search(source_ids)
        return {"target_ids": ids, "scores": scores}

    @tf.function(input_signature=[
        TEXT,
        tf.TensorSpec([], tf.int32, name="beam_size"),
        tf.TensorSpec([], tf.float32, name="alpha"),
        tf.TensorSpec([], tf.float32, name="beta"),
        tf.TensorSpec([], tf.int32, name="max_length"),
    ])
    def beam_search_options(self, text, beam_size, alpha, beta, max_length):
        """`beam_search` with the search settings chosen per request.

        `beam_size` is clipped to [1, the export's beam size] and
        `max_length` to [1, max_target_length]; outputs have `beam_size`
        columns.
        """
        width = tf.clip_by_value(beam_size, 1, self.beam_size)
        ids, scores = self.search(self.encode_text(text), alpha=alpha, beta=beta,
                                  max_length=max_length, active_beams=width)
        return {"translations": self.decode_beams(ids[:, :width], text),
                "scores": scores[:, :width]}

    def signatures(self):
        return {
            "serving_default": self.serving_default,
            "beam_search": self.beam_search,
            "greedy": self.greedy,
            "translate_ids": self.translate_ids,
            "beam_search_options": self.beam_search_options,
        }

    def sample(self, text, temperature=1.0, top_k=0, top_p=1.0, seed=(0, 0)):
        """Sampled translations (not a signature): strings [B] -> strings [B]."""
        text = tf.constant(text)
        ids, _ = sample_generate(self.model, self.encode_text(text),
                                 self.max_target_length, temperature=temperature,
                                 top_k=top_k, top_p=top_p, seed=seed)
        return self.decode_text(ids, text)

    # -- what export_saved_model and convert_to_tflite ask of an exportable --

    def for_export(self):
        """The module to save: this one with a tokenizer created now.

        Its functions are then traced against a SentencePiece resource created
        now: the resource is kernel-owned (tensorflow-text b/318839908), a
        tf.random.set_seed deletes it, and functions traced before that hold
        a handle that is dead or no longer tracked.
        """
        return self.with_fresh_tokenizer()

    def write_assets(self, directory):
        """Clients tokenizing themselves (translate_ids, TFLite) need the
        SentencePiece model or word list, as a run folder keeps it."""
        self.write_run_files(directory)

    def check_inputs(self):
        """The run's sample sources, plus an empty and an emoji input."""
        return {"text": self.check_texts + ["", "\U0001F600 ??"]}

    def tflite_decode(self):
        """The batch-1 search that TFLite converts (as `translate_ids`), and its input."""

        def decode(source_ids):
            target_ids, scores = self.search(source_ids)
            return {"scores": scores, "target_ids": target_ids}

        return decode, [tf.TensorSpec([1, None], tf.int32, name="source_ids")]

    def write_tflite_assets(self, stem):
        """A one-piece-per-line vocabulary, and the tokenizer's own file."""
        files = self.tokenizer.write_client_files(stem)
        pieces = self.tokenizer.id_to_piece(tf.range(self.tokenizer.vocab_size)).numpy()
        with open(stem + ".vocab.txt", "w", encoding="utf-8") as f:
            f.write("".join(piece.decode("utf-8") + "\n" for piece in pieces))
        return files + [stem + ".vocab.txt"]

    # -- a trained run on disk: model.keras + tokenizer + settings ------------

    def write_run_files(self, directory):
        self.tokenizer.save(os.path.join(directory, self.tokenizer.file_name))

    @classmethod
    def from_run(cls, folder, settings):
        return cls(folder.load_model(), load_tokenizer(folder.path), **settings)
