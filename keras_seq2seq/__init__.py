"""keras-seq2seq: sequence-to-sequence models for TensorFlow/Keras.

The public API, top down:

    data      parallel text and record files -> tf.data batches; generated tasks
    text      SubwordTokenizer (SentencePiece in the graph), WordTokenizer
              (words, extended ids for copying)
    layers    RNNEncoder, attention mechanisms, AttentionDecoder
    models    SequenceModel (the interface), AttentionSeq2Seq, Seq2Seq,
              PointerNetwork, PointerGenerator, Ensemble
    decoding  generate(model, inputs, ...): beam search, greedy search and
              sampling over a model's step function; score (forced decoding)
    export    Exportable; Translator, PointerSolver; SavedModels for TF
              Serving, TFLite; RunFolder
    tasks     a recipe's inputs, preprocessing, model, metrics and exportable
    training  train(task): data -> model.fit -> run folder -> export
    zoo       built-in recipes (YAML files)

The names below are imported on first use, so that `import keras_seq2seq.zoo`
(the command line's `zoo` and `--help`) does not start TensorFlow.
"""

import importlib
import os
import platform

# Keras 3 picks its backend at import; SavedModels and tensorflow-text need
# TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.2.0"

_PUBLIC = {
    "AttentionSeq2Seq": "keras_seq2seq.models",
    "Ensemble": "keras_seq2seq.models",
    "PointerGenerator": "keras_seq2seq.models",
    "PointerNetwork": "keras_seq2seq.models",
    "Seq2Seq": "keras_seq2seq.models",
    "SequenceModel": "keras_seq2seq.models",
    "FusedAdam": "keras_seq2seq.optimizers",
    "SequenceCrossEntropy": "keras_seq2seq.losses",
    "SubwordTokenizer": "keras_seq2seq.text",
    "WordTokenizer": "keras_seq2seq.text",
    "generate": "keras_seq2seq.decoding",
    "score": "keras_seq2seq.decoding",
}

__all__ = sorted(_PUBLIC) + ["load_model", "prefer_onednn_kernels"]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'keras_seq2seq' has no attribute {name!r}")


def load_model(path, compile=True):
    """`keras.saving.load_model` with every class of the package registered:
    models and layers, and for a compiled model its loss, metrics and
    optimizer (`SequenceCrossEntropy`, `MaskedAccuracy`, `FusedAdam`)."""
    import keras

    for module in ("models", "layers", "losses", "metrics", "optimizers"):
        importlib.import_module(f"keras_seq2seq.{module}")
    return keras.saving.load_model(path, compile=compile)


def prefer_onednn_kernels():
    """Asks TensorFlow for its oneDNN kernels, for a process that trains.

    TensorFlow turns them on by itself only on x86-64 CPUs with AVX-512
    VNNI, AVX-512 BF16 or AMX, and runs Eigen's elsewhere. On a 2-core AMD
    EPYC with AVX2 alone, oneDNN's trained the recipes faster: Multi30k's
    attention model at 1.03-1.09x the steps/s, its pointer-generator
    1.11-1.15x, the image and speech recipes (convolutions) 1.42-1.62x;
    but they searched slower in a graph (the decode benchmark's
    random-weight model: 0.92x sentences/s at batch 1, 0.94x at batch 32).
    So the command line asks for them when it trains, not when it decodes.

    Call it before TensorFlow is imported: TensorFlow reads
    `TF_ENABLE_ONEDNN_OPTS` then. A value already set (by the user) wins;
    other CPUs than x86-64 are left alone. Returns whether the variable now
    asks for oneDNN.

    Example:

    >>> import keras_seq2seq
    >>> keras_seq2seq.prefer_onednn_kernels()  # then import tensorflow, keras
    True
    """
    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    # TensorFlow reads "1" and "true" alike, in any case.
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower() in ("1", "true")
