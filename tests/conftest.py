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


def peaked_model(vocabulary_size, seed, units=16):
    """A small random `AttentionSeq2Seq` (Bahdanau attention) whose output
    layer is scaled up, so that its distributions are peaked, as a trained
    model's are, and its sentences end at different steps."""
    import keras

    from keras_seq2seq import AttentionSeq2Seq

    keras.utils.set_random_seed(seed)
    model = AttentionSeq2Seq(vocabulary_size, embedding_dim=8, units=units,
                             attention="bahdanau")
    model.build()
    model.output_projection.kernel.assign(model.output_projection.kernel * 6.0)
    return model


def write_lines(path, lines, encoding="utf-8"):
    with open(path, "w", encoding=encoding) as f:
        f.write("".join(line + "\n" for line in lines))
    return str(path)


def matmul_dtypes(concrete):
    """The dtypes of the MatMul ops of a concrete function, its loops' bodies included."""
    graph = concrete.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {tf.dtypes.as_dtype(n.attr["T"].type) for n in nodes if "MatMul" in n.op}


def while_loops(concrete):
    """How many while loops a concrete function runs, nested ones included."""
    graph = concrete.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return sum(n.op in ("While", "StatelessWhile") for n in nodes)


def assert_xla_reads_one_item_as_a_batch(reader, items, tmp_path):
    """`reader.with_xla_search()` answers each one-item request (the XLA
    search, its input padded to a bucket) with the n-best that the graph
    search gives the whole batch, and its export carries one TF Serving
    warm-up request per bucket and passes its check in a clean process."""
    from keras_seq2seq.export import export_saved_model

    compiled = reader.with_xla_search()
    assert compiled.settings["jit_compile"] and not reader.settings["jit_compile"]
    name = reader.input_name
    want = reader.beam_search(**{name: tf.constant(items)})
    for i, item in enumerate(items):
        one = compiled.beam_search(**{name: tf.constant([item])})
        np.testing.assert_array_equal(one["translations"][0], want["translations"][i])
        np.testing.assert_allclose(one["scores"][0], want["scores"][i], rtol=1e-4, atol=1e-5)
    assert compiled._compiled_search.experimental_get_tracing_count() == 1
    path = export_saved_model(compiled, str(tmp_path / "xla"), check=True)
    records = list(tf.data.TFRecordDataset(
        os.path.join(path, "assets.extra", "tf_serving_warmup_requests")))
    assert len(records) == len(compiled.warmup_inputs())
    return compiled


def mutated(files, count, seed=0):
    """`count` byte strings made from `files` by the edits a damaged or
    hostile upload carries: bytes overwritten (mostly in the first 64, where
    headers are), runs of 0x00 / 0x7f / 0x80 / 0xff written over sizes,
    truncation and inserted bytes."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        data = bytearray(files[rng.integers(len(files))])
        for _ in range(rng.integers(1, 7)):
            edit, head = rng.random(), max(min(len(data), 64), 1)
            if edit < 0.5 and data:
                data[rng.integers(head if rng.random() < 0.7 else len(data))] = rng.integers(256)
            elif edit < 0.65 and data:
                start = rng.integers(head)
                data[start:start + 4] = bytes([rng.choice([0, 0x7F, 0x80, 0xFF])] * 4)
            elif edit < 0.8:
                data = data[: rng.integers(len(data) + 1)]
            else:
                start = rng.integers(len(data) + 1)
                data[start:start] = rng.integers(0, 256, rng.integers(1, 16)).astype(np.uint8).tobytes()
        yield bytes(data)


def assert_each_is_read_or_refused(read, items):
    """`read` of each item alone answers or raises InvalidArgument: never
    another error (decode ops whose messages quote non-UTF-8 bytes made
    Python raise UnicodeDecodeError), never a crashed process."""
    answered = 0
    for item in items:
        try:
            read(tf.constant([item]))
            answered += 1
        except tf.errors.InvalidArgumentError:
            pass
    return answered
