"""`TextOutput`: the base of exportables whose outputs are text (a tokenizer's)."""

import functools
import os

import tensorflow as tf

from keras_seq2seq.export.exportable import Exportable
from keras_seq2seq.export.warmup import WARMUP_FILE, write_warmup_requests
from keras_seq2seq.text import load_tokenizer

# The dtypes of the search's matrix products: the model's (None) or bfloat16.
MATMUL_DTYPES = (None, "bfloat16")


class TextOutput(Exportable):
    """An `Exportable` that writes its outputs with a tokenizer.

    Owns what the tokenizer brings to every such export, whatever the
    input (text for `Translator`, images for `ImageReader`): its file in
    the run folder and beside the SavedModel, a fresh SentencePiece
    resource for each export, and the vocabulary beside a .tflite model.

    Args:
        model: the trained `SequenceModel`.
        tokenizer: the `SubwordTokenizer` or `WordTokenizer` of its outputs.
        matmul_dtype: "bfloat16" runs the search's matrix products (an
            LSTM decoder's layers, its attentional projection, the output
            layer; a GRU cell keeps its own dtype) in bfloat16, everything
            else in float32: faster at batch 32 on CPUs
            with bfloat16 matrix units (AMX) and TensorFlow's oneDNN
            kernels, slower where bfloat16 is emulated. None (the default):
            float32. Scores move a little, so n-best lists differ where
            hypotheses nearly tie (56 of the 1,000 Multi30k test
            translations, BLEU 37.09 against 37.18; README, Serving).
            TFLite conversion keeps float32.
        jit_compile: search one-item requests with XLA (2-3x faster on CPU,
            see README, Serving); larger batches keep the graph search,
            which retires finished items (XLA miscompiles that shrinking
            loop, and measured slower at batch 32 anyway). Inputs of
            varying size are padded to buckets (`xla_bucketed`), so XLA
            compiles one program per bucket (seconds each, on the first
            request of its size, or at load from the warm-up requests an
            export carries). Off by default: the stock TF Serving binary
            refuses XLA:CPU functions unless started with
            `--xla_cpu_compilation_enabled=true`, and TFLite conversion
            retraces the search without it anyway.
        parallel_searches: search a request as this many independent
            searches over parts of its batch (`decoding.generate`), run side
            by side on the server's inter-op threads: on 2 cores with one
            intra-op thread an operation (TF Serving's
            `--tensorflow_intra_op_parallelism=1`), 2 searches decoded
            requests of 32 1.3-1.4x as fast as one (README, Serving).
            The outputs are the same; the SavedModel holds a search loop
            for each. 1 (the default): one search.

    The graph search, and every signature's scoring and sampling, encode
    with TensorFlow's fused LSTM kernel (`generate(..., fused_lstm=True)`,
    in stock TF Serving); the XLA search and TFLite's, which have no such
    operation, with Keras' LSTM loop.

    Subclasses implement `_search(inputs, options, retire_finished,
    fused_lstm)`, the search over model inputs, and call
    `search_by_request_size`.
    """

    def __init__(self, model, tokenizer, matmul_dtype=None, jit_compile=False,
                 parallel_searches=1, name=None):
        super().__init__(model, name=name)
        self.tokenizer = tokenizer
        if matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be one of {MATMUL_DTYPES}, got {matmul_dtype!r}")
        self.matmul_dtype = matmul_dtype
        self.jit_compile = bool(jit_compile)
        if int(parallel_searches) < 1:
            raise ValueError(f"parallel_searches must be at least 1, got {parallel_searches!r}")
        self.parallel_searches = int(parallel_searches)
        # The signatures call one traced search (a function call in their
        # graphs), so that signatures with the same search settings share a
        # trace and the SavedModel holds it once. Autograph is off: the
        # search's loops are explicit tf.while_loops, and converting the
        # code costs more than half of an export's tracing time.
        self._traced_search = tf.function(self._search, autograph=False)
        # With XLA, only the inputs-in, ids-out search is compiled: the
        # tensorflow-text, image and audio decoding ops have no XLA kernels.
        self._compiled_search = tf.function(
            functools.partial(self._search, retire_finished=False, fused_lstm=False),
            autograph=False, jit_compile=True)

    def with_bfloat16_matmuls(self, enabled=True):
        return self.with_settings(matmul_dtype="bfloat16" if enabled else None)

    def with_xla_search(self, enabled=True):
        return self.with_settings(jit_compile=enabled)

    def with_parallel_searches(self, count):
        return self.with_settings(parallel_searches=count)

    # -- the search every signature runs ----------------------------------------

    def _search(self, inputs, options, retire_finished=True, fused_lstm=True):
        """Beam search over model inputs -> `(ids [B, K, T], scores [B, K])`.

        `options`: the subclass's per-request search options by name; one
        left out or None takes the export's own setting. `retire_finished`:
        `decoding.decode`'s (False for the compiled search, which answers
        one-item requests and so searches as one: `searches_of`).
        `fused_lstm`: `generate`'s (False where XLA or TFLite runs the search).
        """
        raise NotImplementedError

    def searches_of(self, retire_finished):
        """`generate`'s `parallel_searches` for `_search`: the export's, but
        one for the compiled search (one-item requests)."""
        return self.parallel_searches if retire_finished else 1

    def search_by_request_size(self, inputs, options):
        """`_search` of a request: a one-item request through the compiled
        search (with `jit_compile`), its inputs padded to their bucket;
        any other through the traced one."""
        if not self.jit_compile:
            return self._traced_search(inputs, options)
        batch = tf.shape(tf.nest.flatten(inputs)[0])[0]
        return tf.cond(batch == 1,
                       lambda: self._compiled_search(*self.xla_bucketed(inputs, options)),
                       lambda: self._traced_search(inputs, options))

    def xla_bucketed(self, inputs, options):
        """`(inputs, options)` of a one-item request padded to the size
        XLA compiles for; the padding must change no output. Inputs of one
        size for every request (fitted images) need none: the default."""
        return inputs, options

    def warmup_inputs(self):
        """`serving_default`'s inputs of one one-item request in each
        bucket, which an export with `jit_compile` carries as TF Serving
        warm-up requests."""
        raise NotImplementedError

    def check_requests(self, inputs):
        """With `jit_compile`, a one-item request as well: the compiled
        search answers it."""
        if not self.jit_compile:
            return [inputs]
        return [inputs, {name: list(value)[:1] for name, value in inputs.items()}]

    def for_tflite(self):
        """This exportable as TFLite converts it: float32 products, TFLite's
        builtins having no bfloat16 ones, and one search (its model takes
        one item)."""
        return self.with_settings(matmul_dtype=None, parallel_searches=1)

    def with_fresh_tokenizer(self):
        """The same exportable with a new tokenizer object (same model proto)."""
        return self.__class__(self.model, self.tokenizer.fresh(), **self.run_settings())

    def with_settings(self, **changes):
        """The same model and tokenizer with some `run_settings` changed
        (`alpha=1.0`): how a search setting is tuned before exporting."""
        return self.__class__(self.model, self.tokenizer, **dict(self.run_settings(), **changes))

    def for_export(self):
        """The module to save: this one with a tokenizer created now.

        Its functions are then traced against a SentencePiece resource created
        now: the resource is kernel-owned (tensorflow-text b/318839908), a
        tf.random.set_seed deletes it, and functions traced before that hold
        a handle that is dead or no longer tracked.
        """
        return self.with_fresh_tokenizer()

    def write_assets(self, directory):
        """Clients tokenizing themselves (ids signatures, TFLite) need the
        SentencePiece model or word list, as a run folder keeps it. With
        `jit_compile`, also TF Serving's warm-up requests (`warmup_inputs`),
        so that the server compiles every bucket at load rather than on the
        first request of each size."""
        self.write_run_files(directory)
        if self.jit_compile:
            write_warmup_requests(os.path.join(directory, WARMUP_FILE),
                                  [("serving_default", inputs) for inputs in self.warmup_inputs()])

    def write_tflite_assets(self, stem):
        """A one-piece-per-line vocabulary, and the tokenizer's own file."""
        files = self.tokenizer.write_client_files(stem)
        pieces = self.tokenizer.id_to_piece(tf.range(self.tokenizer.vocab_size)).numpy()
        with open(stem + ".vocab.txt", "w", encoding="utf-8") as f:
            f.write("".join(piece.decode("utf-8") + "\n" for piece in pieces))
        return files + [stem + ".vocab.txt"]

    def write_run_files(self, directory):
        self.tokenizer.save(os.path.join(directory, self.tokenizer.file_name))

    @classmethod
    def from_run(cls, folder, settings):
        return cls(folder.load_model(), load_tokenizer(folder.path), **settings)
