"""keras-seq2seq: sequence-to-sequence models for TensorFlow/Keras.

The public API, top down:

    data      parallel text -> tf.data batches; generated tasks (dates)
    text      SubwordTokenizer (SentencePiece in the graph), WordTokenizer
              (words, extended ids for copying)
    layers    RNNEncoder, attention mechanisms, AttentionDecoder
    models    AttentionSeq2Seq, Seq2Seq, PointerNetwork, PointerGenerator
    optimizers  FusedAdam (Keras' Adam, each update one fused kernel)
    decoding  beam search, greedy search and sampling over a model's step function
    export    SavedModels for TF Serving, TFLite (Translator, PointerSolver)
    distribute  tf.distribute strategies (multi-worker)
    zoo       named recipes (data + model + training settings)
"""

import os

# Keras 3 picks its backend at import; SavedModels and tensorflow-text need
# TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_seq2seq import layers, metrics  # noqa: E402,F401  (registers classes for loading)
from keras_seq2seq.losses import SequenceCrossEntropy  # noqa: E402
from keras_seq2seq.optimizers import FusedAdam  # noqa: E402
from keras_seq2seq.models import (  # noqa: E402
    AttentionSeq2Seq,
    PointerGenerator,
    PointerNetwork,
    Seq2Seq,
)
from keras_seq2seq.text import SubwordTokenizer, WordTokenizer  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AttentionSeq2Seq",
    "FusedAdam",
    "PointerGenerator",
    "PointerNetwork",
    "Seq2Seq",
    "SequenceCrossEntropy",
    "SubwordTokenizer",
    "WordTokenizer",
]
