"""Using a trained text model the way a client does: through an export's
signatures, or a run folder's `Translator` in this process (the command
line's `translate` and `evaluate`)."""

import functools
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


def _load_signatures(model_path):
    """`(signatures, settings)` of an export (or an export folder's newest version).

    A version is loaded once a process (a load takes seconds, and `read
    --plot-attention` asks for two signatures of one export); one written
    again in the same folder is loaded again.
    """
    # The real path: the same relative path names other exports from other folders.
    path = os.path.realpath(resolve_export(model_path))
    return _load_version(path, os.path.getmtime(os.path.join(path, "saved_model.pb")))


@functools.lru_cache(maxsize=2)
def _load_version(path, modified):  # `modified` only keys the cache
    with open(os.path.join(path, "assets.extra", "settings.json")) as f:
        settings = json.load(f)
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    return tf.saved_model.load(path).signatures, settings


def _signature(signatures, name, model_path):
    if name not in signatures:
        raise UserError(f"{model_path} has no {name!r} signature (it has "
                        f"{', '.join(sorted(signatures))}); export it again with this version")
    return signatures[name]


def text_searcher(model_path, beam=None, alpha=None, beta=None, max_length=None,
                  sampling=None, xla=False):
    """`(lines, prefixes=None) -> (texts [B, K] bytes, scores [B, K])` through a model.

    Args:
        model_path: an export (searched through `beam_search_options`, as TF
            Serving would) or a run folder (its `Translator`, in this process).
        beam, alpha, beta, max_length: search settings (default: the model's).
        sampling: `(temperature, top_k, top_p, seed)` to sample instead,
            through the `sampling` signature (no prefixes).
        xla: compile the run folder's search with XLA.

    The searcher's `prefixes`, one str per line ("" for none), are target
    prefixes every hypothesis of that line starts with.
    """
    if sampling:
        return _sampler(_exported_or_run(model_path, "sampling"), *sampling)
    if is_run_folder(model_path):
        return _run_searcher(model_path, beam, alpha, beta, max_length, xla)
    signatures, settings = _load_signatures(model_path)
    signature = _signature(signatures, "beam_search_options", model_path)

    def search(lines, prefixes=None):
        out = signature(
            text=tf.constant(lines),
            beam_size=tf.constant(beam or settings["beam_size"]),
            alpha=tf.constant(settings["alpha"] if alpha is None else alpha, tf.float32),
            beta=tf.constant(settings["beta"] if beta is None else beta, tf.float32),
            max_length=tf.constant(max_length or settings["max_target_length"]),
            target_prefix=tf.constant(prefixes or [""] * len(lines), tf.string),
        )
        return out["translations"].numpy(), out["scores"].numpy()

    return search


def _sampler(sampling, temperature, top_k, top_p, seed):
    """A searcher (see `text_searcher`) drawing one output a line through a
    `sampling` signature."""

    def search(lines, prefixes=None):
        if prefixes:
            raise UserError("target prefixes work with beam search, not with sampling")
        out = sampling(text=tf.constant(lines), temperature=tf.constant(temperature, tf.float32),
                       top_k=tf.constant(top_k, tf.int32), top_p=tf.constant(top_p, tf.float32),
                       seed=tf.constant([seed, 0], tf.int32))
        return out["translation"].numpy()[:, None], out["score"].numpy()[:, None]

    return search


def _run_searcher(path, beam, alpha, beta, max_length, xla):
    translator = RunFolder(path).load(jit_compile=xla)

    def search(lines, prefixes=None):
        text = tf.constant(lines)
        prefix_ids = None
        if prefixes:
            prefix_ids = translator.encode_target(text, tf.constant(prefixes), add_eos=False)
        ids, scores = translator.search(
            translator.encode_text(text), beam_size=beam or translator.beam_size,
            alpha=alpha, beta=beta, max_length=max_length, prefix_ids=prefix_ids)
        return translator.decode_beams(ids, text).numpy(), scores.numpy()

    return search


def _exported_or_run(model_path, name):
    """The signature `name` of an export, or the same function of a run folder's
    `Translator` (called with the same keyword arguments)."""
    if is_run_folder(model_path):
        exportable = RunFolder(model_path).load()
        if name not in exportable.signatures():
            raise UserError(f"{model_path}'s model has no {name!r} function")
        return _holding(exportable, name)
    signatures, _ = _load_signatures(model_path)
    return _signature(signatures, name, model_path)


def _holding(exportable, name):
    """The exportable's function `name`, keeping the exportable alive: its
    tf.function methods hold their object only weakly, and a run folder's
    exportable has no other owner once loaded."""

    def function(**inputs):
        return exportable.signatures()[name](**inputs)

    return function


def n_best(search, lines, batch_size, prefixes=None):
    """`(translations, scores)` of each line, searched in batches of similar length."""
    if prefixes is None:
        return translate_in_length_batches(lambda batch: zip(*search(batch)), lines, batch_size)
    return translate_in_length_batches(
        lambda batch, prefix: zip(*search(batch, prefix)), lines, batch_size, prefixes)


def best_translations(search, lines, batch_size):
    """The best translation of each line, as str."""
    return [texts[0].decode("utf-8") for texts, _ in n_best(search, lines, batch_size)]


def scores_of(model_path, sources, targets, batch_size=64):
    """`[(log_prob, tokens)]`: each target's log-probability given its source
    (the `score` signature of an export, or a run folder's), in order."""
    signature = _exported_or_run(model_path, "score")

    def score_batch(batch, target):
        out = signature(text=tf.constant(batch), target=tf.constant(target))
        return zip(out["log_prob"].numpy().tolist(), out["tokens"].numpy().tolist())

    return translate_in_length_batches(score_batch, sources, batch_size, targets)


def word_alignments(attention, source_words, target_words):
    """Pharaoh `i-j` pairs from one sentence's `alignments` outputs.

    Each target piece aligns to the source piece it attended to most; pairs
    are of the words those pieces belong to (i: source word, j: target
    word, 0-based), each pair once, sorted. End pieces and padding (word
    -1) take no part.

    Args:
        attention: [target, source] floats.
        source_words, target_words: [source], [target] ints.
    """
    attention = np.asarray(attention)
    source_words, target_words = np.asarray(source_words), np.asarray(target_words)
    real_sources = source_words >= 0
    if not real_sources.any():
        return []
    pairs = set()
    for t, word in enumerate(target_words[: len(attention)]):
        if word < 0:
            continue
        s = int(np.argmax(np.where(real_sources, attention[t], -np.inf)))
        pairs.add((int(source_words[s]), int(word)))
    return sorted(pairs)


def aligned_translations(model_path, lines, batch_size=64):
    """`[(translation str, [(i, j), ...])]` of each line, through the
    `alignments` signature (the export's own beam settings)."""
    signature = _exported_or_run(model_path, "alignments")

    def align_batch(batch):
        out = {k: v.numpy() for k, v in signature(text=tf.constant(batch)).items()}
        return [(out["translation"][b].decode("utf-8"),
                 word_alignments(out["attention"][b], out["source_words"][b],
                                 out["target_words"][b]))
                for b in range(len(batch))]

    return translate_in_length_batches(align_batch, lines, batch_size)


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


def _reader_function(model_path, name):
    """`(function, input name)`: the signature `name` of an image or speech
    model's export, or the same function of a run folder's `Reader`, and the
    name of the encoded-file input it takes ("image", "audio")."""
    if is_run_folder(model_path):
        reader = RunFolder(model_path).load()
        return _holding(reader, name), reader.input_name
    signatures, settings = _load_signatures(model_path)
    if "input_name" not in settings:
        raise UserError(f"{model_path} does not say which input it reads (no input_name in its "
                        "settings): export it again with this version")
    return _signature(signatures, name, model_path), settings["input_name"]


def read_files(model_path, paths, batch_size=32):
    """`[(text, score)]` an image or speech model reads from each file (its
    bytes sent as a client sends them), through `serving_default` of an
    export or of a run folder's `Reader`. A file the model refuses (not an
    image or WAV file, too large) raises `UserError` naming it and the reason."""
    signature, input_name = _reader_function(model_path, "serving_default")
    results = []
    for i in range(0, len(paths), batch_size):
        batch = paths[i: i + batch_size]
        try:
            out = signature(**{input_name: tf.constant([_read_bytes(p) for p in batch])})
        except tf.errors.InvalidArgumentError:
            # Which file? Each alone, to name it.
            for path in batch:
                try:
                    signature(**{input_name: tf.constant([_read_bytes(path)])})
                except tf.errors.InvalidArgumentError as e:
                    raise UserError(f"{path}: refused: {_reason(e)}") from None
            raise
        results += zip((t.decode("utf-8") for t in out["translation"].numpy()),
                       out["score"].numpy().tolist())
    return results


# What each kind of reader's `alignments` gives to draw the attention over.
_READ_VIEWS = {
    "image": lambda out: out["pixels"].numpy()[0, :, :, 0],   # [height, width]
    "audio": lambda out: out["features"].numpy()[0],          # [frames, mel_bins]
}


def reading_attention(model_path, path):
    """`(input name, view, attention, pieces)` of the model's reading of one
    file (its `alignments` signature): for an image, the fitted pixels
    [height, width] and attention [tokens, rows, cols]; for a recording, its
    log-mel features [frames, mel_bins] and attention [tokens, positions]."""
    function, input_name = _reader_function(model_path, "alignments")
    try:
        out = function(**{input_name: tf.constant([_read_bytes(path)])})
    except tf.errors.InvalidArgumentError as e:
        raise UserError(f"{path}: refused: {_reason(e)}") from None
    pieces = [p.decode("utf-8") or "</s>" for p in out["target_pieces"].numpy()[0]]
    return input_name, _READ_VIEWS[input_name](out), out["attention"].numpy()[0], pieces


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def _reason(error):
    """The last line of a TensorFlow error's message: what the graph said."""
    lines = [line.strip() for line in str(error.message).splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(("[[", "Detected at", "<stack",
                                                                  "Graph execution"))]
    return (meaningful or lines or ["invalid input"])[-1]
