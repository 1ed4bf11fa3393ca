"""keras-seq2seq: sequence-to-sequence models for TensorFlow/Keras.

The public API, top down:

    data      parallel text -> tf.data batches; generated tasks (dates)
    text      SubwordTokenizer (SentencePiece in the graph)
    layers    RNNEncoder, attention mechanisms, AttentionDecoder
    models    AttentionSeq2Seq, Seq2Seq, PointerNetwork
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
from keras_seq2seq.models import AttentionSeq2Seq, PointerNetwork, Seq2Seq  # noqa: E402
from keras_seq2seq.text import SubwordTokenizer  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AttentionSeq2Seq",
    "PointerNetwork",
    "Seq2Seq",
    "SequenceCrossEntropy",
    "SubwordTokenizer",
]
