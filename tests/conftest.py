import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_seq2seq.data import generate_date_pairs  # noqa: E402
from keras_seq2seq.text import SubwordTokenizer, train_sentencepiece  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    pairs = generate_date_pairs(2000, seed=1)
    sentences = [s for pair in pairs for s in pair] + [
        "A man rides a bicycle, quickly!",
        "Zwei Hunde spielen im Schnee.",
    ] * 20
    return SubwordTokenizer(train_sentencepiece(sentences, vocab_size=400, split_digits=True))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write_lines(path, lines, encoding="utf-8"):
    with open(path, "w", encoding=encoding) as f:
        f.write("".join(line + "\n" for line in lines))
    return str(path)


def matmul_dtypes(concrete):
    """The dtypes of the MatMul ops of a concrete function, its loops' bodies included."""
    graph = concrete.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {tf.dtypes.as_dtype(n.attr["T"].type) for n in nodes if "MatMul" in n.op}
