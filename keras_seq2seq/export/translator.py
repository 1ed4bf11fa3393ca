"""`Translator`: a model and its tokenizer as one `tf.Module`, strings to strings.

Its `tf.function`s are the SavedModel's signatures, and the command line calls
the same functions, so what `keras-seq2seq translate` prints is what TF Serving
returns.
"""

import json
import os

import keras
import tensorflow as tf

from keras_seq2seq.decoding import greedy_translate
from keras_seq2seq.text import SubwordTokenizer

TEXT_SIGNATURE = [tf.TensorSpec([None], tf.string, name="text")]


class Translator(tf.Module):
    """Strings in, translations out; everything in the graph.

    Args:
        model: a trained `AttentionSeq2Seq` (or any model with `encode` and
            `step`).
        tokenizer: the `SubwordTokenizer` it was trained with.
        max_source_length: longer inputs are truncated to this many tokens
            (EOS included).
        max_target_length: size of the output buffer; outputs are also
            limited to `2 * source length + 10` tokens.

    Example:

    >>> translator = Translator(model, tokenizer, 64, 64)
    >>> translator.greedy(tf.constant(["3rd of March 1999"]))["translation"]
    """

    def __init__(self, model, tokenizer, max_source_length, max_target_length, name=None):
        super().__init__(name=name)
        self.model = model
        self.tokenizer = tokenizer
        self.max_source_length = int(max_source_length)
        self.max_target_length = int(max_target_length)

    @property
    def settings(self):
        return {
            "model": self.model.__class__.__name__,
            "model_config": self.model.get_config(),
            "vocabulary_size": self.tokenizer.vocab_size,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
        }

    def encode_text(self, text):
        return self.tokenizer.encode(text, self.max_source_length)

    @tf.function(input_signature=TEXT_SIGNATURE)
    def greedy(self, text):
        """`text` string [batch] -> `translation` string [batch]."""
        ids, _ = greedy_translate(self.model, self.encode_text(text), self.max_target_length)
        return {"translation": self.tokenizer.decode(ids)}

    @tf.function(input_signature=TEXT_SIGNATURE)
    def serving_default(self, text):
        """`text` string [batch] -> `translation` string, `score` float32."""
        ids, scores = greedy_translate(self.model, self.encode_text(text), self.max_target_length)
        return {"translation": self.tokenizer.decode(ids), "score": scores}

    def signatures(self):
        return {"serving_default": self.serving_default, "greedy": self.greedy}

    # -- a trained run on disk: model.keras + tokenizer.model + settings ------

    def save_run(self, directory):
        """Writes the model, tokenizer and settings to `directory`."""
        os.makedirs(directory, exist_ok=True)
        self.model.save(os.path.join(directory, "model.keras"))
        self.tokenizer.save(os.path.join(directory, "tokenizer.model"))
        with open(os.path.join(directory, "translator.json"), "w") as f:
            json.dump(
                {
                    "max_source_length": self.max_source_length,
                    "max_target_length": self.max_target_length,
                },
                f,
                indent=2,
            )

    @classmethod
    def load_run(cls, directory):
        """The inverse of `save_run`."""
        import keras_seq2seq  # noqa: F401  (registers the layers for loading)

        model = keras.saving.load_model(os.path.join(directory, "model.keras"))
        tokenizer = SubwordTokenizer.from_file(os.path.join(directory, "tokenizer.model"))
        with open(os.path.join(directory, "translator.json")) as f:
            settings = json.load(f)
        return cls(model, tokenizer, **settings)
