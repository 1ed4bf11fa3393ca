"""Using a trained text model the way a client does: through an export's
signatures, or a run folder's `Translator` in this process (the command
line's `translate` and `evaluate`)."""

import json
import os

import numpy as np
import tensorflow as tf

from keras_seq2seq.decoding import translate_in_length_batches
from keras_seq2seq.errors import UserError
from keras_seq2seq.export.run_folder import RUN_FILE, RunFolder
from keras_seq2seq.export.saved_model import resolve_export


def is_run_folder(path):
    return os.path.exists(os.path.join(path, RUN_FILE))


def text_searcher(model_path, beam=None, alpha=None, beta=None, max_length=None,
                  sampling=None, xla=False):
    """`lines -> (texts [B, K] bytes, scores [B, K])` through a model.

    Args:
        model_path: an export (searched through `beam_search_options`, as TF
            Serving would) or a run folder (its `Translator`, in this process).
        beam, alpha, beta, max_length: search settings (default: the model's).
        sampling: `(temperature, top_k, top_p, seed)` to sample instead
            (run folders only).
        xla: compile the run folder's search with XLA.
    """
    if is_run_folder(model_path):
        return _run_searcher(model_path, beam, alpha, beta, max_length, sampling, xla)
    if sampling:
        raise UserError("sampling needs a run folder (--model runs/NAME), not an export")
    path = resolve_export(model_path)
    with open(os.path.join(path, "assets.extra", "settings.json")) as f:
        settings = json.load(f)
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    signature = tf.saved_model.load(path).signatures["beam_search_options"]

    def search(lines):
        out = signature(
            text=tf.constant(lines),
            beam_size=tf.constant(beam or settings["beam_size"]),
            alpha=tf.constant(settings["alpha"] if alpha is None else alpha, tf.float32),
            beta=tf.constant(settings["beta"] if beta is None else beta, tf.float32),
            max_length=tf.constant(max_length or settings["max_target_length"]),
        )
        return out["translations"].numpy(), out["scores"].numpy()

    return search


def _run_searcher(path, beam, alpha, beta, max_length, sampling, xla):
    translator = RunFolder(path).load(jit_compile=xla)

    def search(lines):
        if sampling:
            temperature, top_k, top_p, seed = sampling
            texts = translator.sample(lines, temperature, top_k, top_p, (seed, 0)).numpy()
            return texts[:, None], np.full(texts.shape + (1,), np.nan)
        text = tf.constant(lines)
        ids, scores = translator.search(
            translator.encode_text(text), beam_size=beam or translator.beam_size,
            alpha=alpha, beta=beta, max_length=max_length)
        return translator.decode_beams(ids, text).numpy(), scores.numpy()

    return search


def n_best(search, lines, batch_size):
    """`(translations, scores)` of each line, searched in batches of similar length."""
    return translate_in_length_batches(lambda batch: zip(*search(batch)), lines, batch_size)


def best_translations(search, lines, batch_size):
    """The best translation of each line, as str."""
    return [texts[0].decode("utf-8") for texts, _ in n_best(search, lines, batch_size)]


def perplexity_of(model_path, source_path, reference_path):
    """Teacher-forced perplexity of the references, with the Keras model behind
    `model_path` (a run folder or an export)."""
    from keras_seq2seq.data import parallel_text_dataset
    from keras_seq2seq.metrics import perplexity

    translator = RunFolder.of(model_path).load()
    pairs = parallel_text_dataset(
        source_path, reference_path, translator.tokenizer, batch_size=64,
        max_source_length=translator.max_source_length,
        max_target_length=translator.max_target_length, shuffle=False,
        extended_ids=translator.model.copies_source)
    return perplexity(translator.model, pairs)
