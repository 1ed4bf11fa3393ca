"""`TextOutput`: the base of exportables whose outputs are text (a tokenizer's)."""

import os

import tensorflow as tf

from keras_seq2seq.export.exportable import Exportable
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
        **settings: the subclass's `run_settings()`.
    """

    def __init__(self, model, tokenizer, matmul_dtype=None, name=None):
        super().__init__(model, name=name)
        self.tokenizer = tokenizer
        if matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be one of {MATMUL_DTYPES}, got {matmul_dtype!r}")
        self.matmul_dtype = matmul_dtype

    def with_bfloat16_matmuls(self):
        return self.with_settings(matmul_dtype="bfloat16")

    def for_tflite(self):
        """This exportable as TFLite converts it: float32 products, TFLite's
        builtins having no bfloat16 ones."""
        return self.with_settings(matmul_dtype=None)

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
        SentencePiece model or word list, as a run folder keeps it."""
        self.write_run_files(directory)

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
