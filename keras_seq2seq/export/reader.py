"""`Reader`: the base of exports that read encoded files (images, recordings) into text."""

import base64

import tensorflow as tf

from keras_seq2seq.decoding import attention_of, generate
from keras_seq2seq.export.text_output import TextOutput


class Reader(TextOutput):
    """Encoded files in, their text out; decoding, features and search in the graph.

    What every such export shares: the search (`decoding.generate`, one
    traced function every signature calls), the text it writes, and the
    signatures' bodies. A subclass says how its files become model inputs
    (`model_inputs`) and declares the signatures with its input's name
    (`image`, `audio`), each a line that calls the body here, so that the
    Python functions and the SavedModel take the same keyword.

    Args:
        model: a trained `EncoderAttentionDecoder` (`ImageToText`, `SpeechToText`).
        tokenizer: the tokenizer of its outputs.
        max_target_length: size of the output buffer, in tokens (EOS included).
        beam_size: beam width of `serving_default` and `beam_search`, and the
            largest `beam_size` that `beam_search_options` accepts.
        alpha: GNMT length penalty of the fixed-width signatures.
        check_items: encoded files `check_inputs` gives `verify_export`
            (bytes; or base64 str, as `run_settings` keeps them in JSON).
        matmul_dtype: the search's matrix products (see `TextOutput`).
        jit_compile: search one-item requests with XLA (see `TextOutput`).
        parallel_searches: independent searches a request is split into
            (see `TextOutput`).
    """

    # The name of the signatures' input: encoded files, string [batch].
    input_name = None

    def __init__(self, model, tokenizer, max_target_length, beam_size=5, alpha=0.0,
                 check_items=(), matmul_dtype=None, jit_compile=False, parallel_searches=1,
                 name=None):
        super().__init__(model, tokenizer, matmul_dtype, jit_compile, parallel_searches, name=name)
        self.max_target_length = int(max_target_length)
        self.beam_size = int(beam_size)
        self.alpha = float(alpha)
        self.check_items = [base64.b64decode(item) if isinstance(item, str) else bytes(item)
                            for item in check_items][:8]

    def model_inputs(self, data):
        """Encoded files, string [B] -> what the model's `encode` takes."""
        raise NotImplementedError

    def run_settings(self):
        return {"max_target_length": self.max_target_length, "beam_size": self.beam_size,
                "alpha": self.alpha,
                "check_items": [base64.b64encode(item).decode("ascii")
                                for item in self.check_items],
                "matmul_dtype": self.matmul_dtype, "jit_compile": self.jit_compile,
                "parallel_searches": self.parallel_searches}

    def reader_settings(self):
        """What `settings` tells clients about the model's search and outputs."""
        return {
            "model": self.model.__class__.__name__,
            "input_name": self.input_name,
            "model_config": self.model.get_config(),
            "tokenizer": self.tokenizer.__class__.__name__,
            "vocabulary_size": self.tokenizer.vocab_size,
            "max_target_length": self.max_target_length,
            "beam_size": self.beam_size,
            "alpha": self.alpha,
            "matmul_dtype": self.matmul_dtype,
            "jit_compile": self.jit_compile,
            "parallel_searches": self.parallel_searches,
        }

    # -- model inputs in, ids out: the core every signature shares ----------

    def search(self, inputs, beam_size=None, alpha=None, max_length=None, active_beams=None):
        """Beam search -> (ids [B, K, T], scores [B, K])."""
        width = beam_size or self.beam_size

        def no_inputs():
            return (tf.zeros([0, width, self.max_target_length], tf.int32),
                    tf.zeros([0, width], tf.float32))

        # TF's batch normalization fails on an empty batch ("Incompatible
        # shapes: [16] vs. [0,16,32,8]"); an empty request gets empty outputs.
        options = dict(beam_size=beam_size, alpha=alpha, max_length=max_length,
                       active_beams=active_beams)
        return tf.cond(tf.shape(self.model.source_mask(inputs))[0] > 0,
                       lambda: self.search_by_request_size(inputs, options), no_inputs)

    def _search(self, inputs, options, retire_finished=True, fused_lstm=True):
        alpha = options.get("alpha")
        return generate(self.model, inputs, self.max_target_length,
                        beam_size=options.get("beam_size") or self.beam_size,
                        alpha=self.alpha if alpha is None else alpha,
                        length_cap=options.get("max_length"),
                        active_beams=options.get("active_beams"),
                        matmul_dtype=self.matmul_dtype,
                        parallel_searches=self.searches_of(retire_finished),
                        retire_finished=retire_finished, fused_lstm=fused_lstm)

    def decode_text(self, ids):
        """[B, T] ids -> [B] strings."""
        return self.tokenizer.decode(ids)

    def decode_beams(self, ids):
        """[B, K, T] ids -> [B, K] strings."""
        shape = tf.shape(ids)
        return tf.reshape(self.decode_text(tf.reshape(ids, [-1, shape[2]])), shape[:2])

    # -- the signatures' bodies ---------------------------------------------

    def read_inputs(self, inputs):
        """Model inputs -> `translation` [B], `score` [B] (best beam)."""
        ids, scores = self.search(inputs)
        return {"translation": self.decode_text(ids[:, 0]), "score": scores[:, 0]}

    def _serving_default(self, data):
        return self.read_inputs(self.model_inputs(data))

    def _beam_search(self, data):
        ids, scores = self.search(self.model_inputs(data))
        return {"translations": self.decode_beams(ids), "scores": scores}

    def _greedy(self, data):
        ids, _ = self.search(self.model_inputs(data), beam_size=1, alpha=0.0)
        return {"translation": self.decode_text(ids[:, 0])}

    def _beam_search_options(self, data, beam_size, alpha, max_length):
        width = tf.clip_by_value(beam_size, 1, self.beam_size)
        ids, scores = self.search(self.model_inputs(data), alpha=alpha, max_length=max_length,
                                  active_beams=width)
        return {"translations": self.decode_beams(ids[:, :width]), "scores": scores[:, :width]}

    def _alignments(self, data):
        """The best reading, its attention [B, T, source] read by forced
        decoding, and its pieces; `alignment_outputs` adds the subclass's."""
        inputs = self.model_inputs(data)
        ids, scores = self.search(inputs)
        best, attention = attention_of(self.model, inputs, ids[:, 0], fused_lstm=True)
        pieces, _ = self.tokenizer.pieces(best)
        return self.alignment_outputs(inputs, attention, {
            "translation": self.decode_text(best), "score": scores[:, 0],
            "target_pieces": pieces})

    def alignment_outputs(self, inputs, attention, outputs):
        """`outputs` with the attention (and whatever helps draw it) added."""
        return dict(outputs, attention=attention)

    def tflite_decode(self):
        """The batch-1 search that TFLite converts: `(function, input signature)`
        over the model's own inputs (a client decodes its file itself)."""
        raise NotImplementedError

    def _tflite_search(self, inputs):
        # Inlined, not a call of the traced search: the converter freezes one graph.
        target_ids, scores = self.for_tflite()._search(inputs, {}, fused_lstm=False)
        return {"scores": scores, "target_ids": target_ids}


# The per-request search settings of `beam_search_options`.
SEARCH_OPTIONS = [
    tf.TensorSpec([], tf.int32, name="beam_size"),
    tf.TensorSpec([], tf.float32, name="alpha"),
    tf.TensorSpec([], tf.int32, name="max_length"),
]
