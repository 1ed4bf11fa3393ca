"""SavedModel signatures (design.md 2.4), bad input, concurrency, TFLite (2.5)."""

import json
import os
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from tensorflow.core.framework import tensor_pb2

from keras_seq2seq import AttentionSeq2Seq
from keras_seq2seq.export import Translator, export_saved_model, verify_export
from tests.conftest import matmul_dtypes

BEAM = 4


@pytest.fixture(scope="module")
def translator(tokenizer):
    keras.utils.set_random_seed(11)
    model = AttentionSeq2Seq(tokenizer.vocab_size, embedding_dim=16, units=32,
                             attention="bahdanau")
    model.build()
    return Translator(model, tokenizer, max_source_length=32, max_target_length=20,
                      beam_size=BEAM, alpha=0.6)


@pytest.fixture(scope="module")
def export_path(translator, tmp_path_factory):
    return export_saved_model(translator, str(tmp_path_factory.mktemp("exports") / "dates"))


@pytest.fixture(scope="module")
def loaded(export_path):
    return tf.saved_model.load(export_path)


def _strings(tensor):
    return [s.decode("utf-8") for s in np.asarray(tensor).ravel()]


SIGNATURES = {
    "serving_default": ({"text": (tf.string, [None])},
                        {"translation": (tf.string, [None]), "score": (tf.float32, [None])}),
    "beam_search": ({"text": (tf.string, [None])},
                    {"translations": (tf.string, [None, None]), "scores": (tf.float32, [None, None])}),
    "greedy": ({"text": (tf.string, [None])}, {"translation": (tf.string, [None])}),
    "sampling": ({"text": (tf.string, [None]), "temperature": (tf.float32, []),
                  "top_k": (tf.int32, []), "top_p": (tf.float32, []), "seed": (tf.int32, [2])},
                 {"translation": (tf.string, [None]), "score": (tf.float32, [None])}),
    "translate_ids": ({"source_ids": (tf.int32, [None, None])},
                      {"target_ids": (tf.int32, [None, None, None]), "scores": (tf.float32, [None, None])}),
    "beam_search_options": (
        {"text": (tf.string, [None]), "beam_size": (tf.int32, []), "alpha": (tf.float32, []),
         "beta": (tf.float32, []), "max_length": (tf.int32, []),
         "target_prefix": (tf.string, [None])},
        {"translations": (tf.string, [None, None]), "scores": (tf.float32, [None, None])}),
    "score": ({"text": (tf.string, [None]), "target": (tf.string, [None])},
              {"log_prob": (tf.float32, [None]), "tokens": (tf.int32, [None])}),
    "alignments": (
        {"text": (tf.string, [None])},
        {"translation": (tf.string, [None]), "score": (tf.float32, [None]),
         "attention": (tf.float32, [None, None, None]),
         "source_pieces": (tf.string, [None, None]), "target_pieces": (tf.string, [None, None]),
         "source_words": (tf.int32, [None, None]), "target_words": (tf.int32, [None, None])}),
}
NO_PREFIX = tf.constant(["", ""])


def test_signatures_match_the_contract(loaded):
    assert set(loaded.signatures) == set(SIGNATURES)
    for name, (inputs, outputs) in SIGNATURES.items():
        fn = loaded.signatures[name]
        specs = fn.structured_input_signature[1]
        assert {k: (v.dtype, v.shape.as_list()) for k, v in specs.items()} == {
            k: (d, s) for k, (d, s) in inputs.items()}
        got = {k: v.dtype for k, v in fn.structured_outputs.items()}
        assert got == {k: d for k, (d, _) in outputs.items()}


def test_export_records_settings_and_tokenizer(export_path):
    settings = json.load(open(os.path.join(export_path, "assets.extra", "settings.json")))
    assert settings["beam_size"] == BEAM and settings["alpha"] == 0.6
    assert os.path.exists(os.path.join(export_path, "assets.extra", "tokenizer.model"))
    assert os.path.basename(export_path) == "1"


def test_signatures_agree_with_each_other(loaded, translator):
    text = tf.constant(["3rd of March 1999", "12/25/07"])
    best = loaded.signatures["serving_default"](text=text)
    beams = loaded.signatures["beam_search"](text=text)
    assert beams["translations"].shape == (2, BEAM)
    assert _strings(best["translation"]) == _strings(beams["translations"][:, 0])
    np.testing.assert_allclose(best["score"], beams["scores"][:, 0])
    ids = loaded.signatures["translate_ids"](source_ids=translator.encode_text(text))
    decoded = translator.decode_beams(ids["target_ids"], text)
    assert _strings(decoded) == _strings(beams["translations"])
    full = loaded.signatures["beam_search_options"](
        text=text, beam_size=tf.constant(BEAM), alpha=tf.constant(0.6),
        beta=tf.constant(0.0), max_length=tf.constant(20), target_prefix=NO_PREFIX)
    assert _strings(full["translations"]) == _strings(beams["translations"])
    one = loaded.signatures["beam_search_options"](
        text=text, beam_size=tf.constant(1), alpha=tf.constant(0.0),
        beta=tf.constant(0.0), max_length=tf.constant(20), target_prefix=NO_PREFIX)
    greedy = loaded.signatures["greedy"](text=text)
    assert one["translations"].shape == (2, 1)
    assert _strings(one["translations"]) == _strings(greedy["translation"])


def test_beam_search_options_width_is_real_beam_search(translator):
    """Width 2 in a buffer of 4 gives what a width-2 export gives."""
    narrow = translator.with_settings(beam_size=2)
    assert narrow.run_settings() == dict(translator.run_settings(), beam_size=2)
    assert narrow.model is translator.model and translator.beam_size == BEAM
    text = tf.constant(["the 21st of June 1987", "Mar 3, 1999"])
    want = narrow.beam_search(text)
    got = translator.beam_search_options(text, tf.constant(2), tf.constant(0.6),
                                         tf.constant(0.0), tf.constant(20), NO_PREFIX)
    assert _strings(got["translations"]) == _strings(want["translations"])
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5)
    clipped = translator.beam_search_options(text, tf.constant(99), tf.constant(0.6),
                                             tf.constant(0.0), tf.constant(20), NO_PREFIX)
    assert clipped["translations"].shape == (2, BEAM)
    short = translator.beam_search_options(text, tf.constant(2), tf.constant(0.0),
                                           tf.constant(0.0), tf.constant(3), NO_PREFIX)
    ids = translator.tokenizer.tokenize(tf.reshape(short["translations"], [-1]))
    assert int(tf.reduce_max(ids.row_lengths())) <= 3


def _teacher_forced_log_prob(translator, text, target_ids):
    """Summed log-probabilities of `target_ids` [B, T] (EOS-terminated) by the Keras model."""
    from keras_seq2seq.text import BOS_ID

    decoder_in = tf.concat([tf.fill([tf.shape(target_ids)[0], 1], BOS_ID), target_ids[:, :-1]], 1)
    logits = translator.model({"source_ids": translator.encode_text(text),
                               "decoder_input_ids": decoder_in})
    picked = tf.gather(tf.nn.log_softmax(logits), target_ids, batch_dims=2)
    return tf.reduce_sum(tf.where(target_ids != 0, picked, 0.0), axis=1).numpy()


def test_score_is_the_keras_models_teacher_forced_log_prob(loaded, translator):
    text = tf.constant(["3rd of March 1999", "12/25/07", "", "x"])
    target = tf.constant(["1999-03-03", "2007-12-25", "", "x" * 10_000])
    out = loaded.signatures["score"](text=text, target=target)
    ids = translator.encode_target(text, target)
    np.testing.assert_allclose(out["log_prob"], _teacher_forced_log_prob(translator, text, ids),
                               rtol=1e-4)
    # Each target and its end; the 10,000-character one cut at max_target_length.
    assert out["tokens"].numpy().tolist()[2:] == [1, translator.max_target_length]
    assert (out["log_prob"].numpy() < 0).all()
    assert loaded.signatures["score"](text=tf.constant([], tf.string),
                                      target=tf.constant([], tf.string))["log_prob"].shape == (0,)


def test_score_of_the_search_output_is_its_search_score(translator):
    text = tf.constant(["3rd of March 1999", "12/25/07"])
    ids, scores = translator.search(translator.encode_text(text), alpha=0.0)
    from keras_seq2seq.decoding import score

    log_prob, _ = score(translator.model, translator.encode_text(text), ids[:, 0])
    np.testing.assert_allclose(log_prob, scores[:, 0], rtol=1e-5)


def test_prefixes_start_every_hypothesis(loaded, translator):
    text = tf.constant(["3rd of March 1999", "12/25/07", "Mar 3, 1999"])
    prefix = tf.constant(["1999-03", "", "19" * 60])
    out = loaded.signatures["beam_search_options"](
        text=text, beam_size=tf.constant(BEAM), alpha=tf.constant(0.6), beta=tf.constant(0.0),
        max_length=tf.constant(5), target_prefix=prefix)
    beams = np.asarray(_strings(out["translations"])).reshape(3, BEAM)
    assert all(h.startswith("1999-03") for h in beams[0])
    # An empty prefix is the plain search; a prefix longer than the output buffer
    # fills it (max_length is raised to fit a prefix, up to max_target_length).
    plain = translator.search(translator.encode_text(text[1:2]), alpha=0.6, max_length=5)
    assert list(beams[1]) == _strings(translator.decode_beams(plain[0], text[1:2]))[:BEAM]
    cut = translator.tokenizer.decode(translator.encode_target(text[2:], prefix[2:], add_eos=False))
    assert all(h == _strings(cut)[0] for h in beams[2])
    assert np.isfinite(out["scores"].numpy()).all()


def test_alignments_explain_the_best_translation(loaded, translator):
    from keras_seq2seq.export.clients import word_alignments

    text = tf.constant(["3rd of March 1999", "12/25/07", ""])
    out = {k: v.numpy() for k, v in loaded.signatures["alignments"](text=text).items()}
    best = loaded.signatures["serving_default"](text=text)
    assert _strings(out["translation"]) == _strings(best["translation"])
    np.testing.assert_allclose(out["score"], best["score"].numpy())
    batch, steps, source = out["attention"].shape
    assert out["source_pieces"].shape == (batch, source) and out["target_pieces"].shape == (batch, steps)
    real = out["target_pieces"] != b""
    np.testing.assert_allclose(out["attention"].sum(-1), real.astype(float), atol=1e-5)
    # Pieces read back to the source and the translation.
    first = translator.encode_text(text[:1]).numpy()[0]
    assert [p.decode() for p in out["source_pieces"][0][: len(first)]] == _strings(
        translator.tokenizer.id_to_piece(first))
    assert out["target_words"][0].max() >= 0 and out["source_words"][0].max() == 3
    pairs = word_alignments(out["attention"][0], out["source_words"][0], out["target_words"][0])
    assert pairs and all(0 <= i <= 3 for i, _ in pairs)
    assert len({j for _, j in pairs}) == out["target_words"][0].max() + 1
    empty = loaded.signatures["alignments"](text=tf.constant([], tf.string))
    assert empty["translation"].shape == (0,) and empty["attention"].shape[0] == 0


def test_word_alignments_take_the_argmax_over_real_source_words():
    from keras_seq2seq.export.clients import word_alignments

    attention = np.array([[0.1, 0.7, 0.2, 0.0], [0.6, 0.1, 0.1, 0.2], [0.0, 0.0, 0.0, 1.0]])
    source_words = np.array([0, 0, 1, -1])       # two pieces of word 0, word 1, end
    target_words = np.array([0, 1, -1])          # the last row is the end token
    assert word_alignments(attention, source_words, target_words) == [(0, 0), (0, 1)]
    assert word_alignments(attention, np.array([-1, -1, -1, -1]), target_words) == []


def test_xla_search_gives_the_same_beams(translator):
    compiled = translator.with_xla_search()
    assert compiled.settings["jit_compile"] and not translator.settings["jit_compile"]
    texts = ["3rd of March 1999", "12/25/07", "tomorrow"]
    want = translator.beam_search(tf.constant(texts))
    # A batch takes the graph search (tests/test_decoding.py: XLA's, which
    # never retires a sentence, gives the same outputs).
    got = compiled.beam_search(tf.constant(texts))
    assert _strings(got["translations"]) == _strings(want["translations"])
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-4, atol=1e-5)
    # One sentence at a time takes the compiled search, its source padded.
    for i, text in enumerate(texts):
        one = compiled.beam_search(tf.constant([text]))
        assert _strings(one["translations"]) == _strings(want["translations"][i])
        np.testing.assert_allclose(one["scores"][0], want["scores"][i], rtol=1e-4, atol=1e-5)
    assert compiled._compiled_search.experimental_get_tracing_count() == 1


def _length_delimited_fields(data):
    """`[(field number, payload)]` of a protobuf message whose fields are all
    length-delimited (messages, strings), read by hand."""
    def varint(i):
        value = shift = 0
        while True:
            value |= (data[i] & 0x7F) << shift
            shift += 7
            i += 1
            if not data[i - 1] & 0x80:
                return value, i

    fields, i = [], 0
    while i < len(data):
        key, i = varint(i)
        assert key & 7 == 2, "a field that is not length-delimited"
        length, i = varint(i)
        fields.append((key >> 3, data[i:i + length]))
        i += length
    return fields


def test_an_xla_export_carries_tf_serving_warmup_requests_for_each_bucket(translator, export_path,
                                                                        tmp_path):
    from keras_seq2seq.export.translator import XLA_SOURCE_BUCKET

    compiled = translator.with_xla_search()
    # Written, not run: XLA would compile the search (the slow test below runs it).
    path = export_saved_model(compiled, str(tmp_path / "xla"), check=False)
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))]
    # PredictionLog.predict_log (6) -> PredictLog.request (1) -> PredictRequest:
    # model_spec (1) with signature_name (3), inputs (2) as map entries.
    texts = []
    for record in records:
        [(log_field, log)] = _length_delimited_fields(record)
        [(request_field, request)] = _length_delimited_fields(log)
        assert (log_field, request_field) == (6, 1)
        (spec_field, spec), (inputs_field, entry) = _length_delimited_fields(request)
        assert spec_field == 1 and _length_delimited_fields(spec) == [(3, b"serving_default")]
        (_, name), (_, tensor) = _length_delimited_fields(entry)
        assert inputs_field == 2 and name == b"text"
        texts += list(tf.make_ndarray(tensor_pb2.TensorProto.FromString(tensor)))
    lengths = [int(tf.shape(translator.encode_text(tf.constant([t])))[1]) for t in texts]
    # One one-sentence request in each bucket up to the longest source.
    last_bucket = (translator.max_source_length - 1) // XLA_SOURCE_BUCKET
    assert last_bucket == 1
    assert [(n - 1) // XLA_SOURCE_BUCKET for n in lengths] == list(range(last_bucket + 1))
    # The plain export (the module's) has none.
    assert "tf_serving_warmup_requests" not in os.listdir(
        os.path.join(export_path, "assets.extra"))


@pytest.mark.slow  # XLA compiles the search, in the export's check and here
def test_an_xla_export_passes_its_check_in_a_clean_process_and_serves(translator, tmp_path):
    compiled = translator.with_xla_search()
    # The check runs a one-sentence request too: the compiled search's.
    assert [len(r["text"]) for r in compiled.check_requests(compiled.check_inputs())] == [2, 1]
    path = export_saved_model(compiled, str(tmp_path / "xla"), check=True)
    served = tf.saved_model.load(path).signatures["serving_default"]
    assert served(text=tf.constant(["3rd of March 1999"]))["translation"].shape == (1,)


def test_bfloat16_matmuls_search_in_bfloat16_and_tflite_stays_float32(translator):
    fast = translator.with_bfloat16_matmuls()
    assert fast.settings["matmul_dtype"] == "bfloat16"
    text = tf.constant(["3rd of March 1999", "12/25/07", "tomorrow"])
    want, got = translator.beam_search(text), fast.beam_search(text)
    # bfloat16 keeps 8 bits of mantissa; the scores are sums of float32
    # log-probabilities of bfloat16 products.
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=2e-2)
    spec = [tf.TensorSpec([None, None], tf.int32), {}]
    assert matmul_dtypes(translator._traced_search.get_concrete_function(*spec)) == {tf.float32}
    assert tf.bfloat16 in matmul_dtypes(fast._traced_search.get_concrete_function(*spec))
    decode, signature = fast.tflite_decode()
    concrete = tf.function(decode, autograph=False, input_signature=signature).get_concrete_function()
    assert matmul_dtypes(concrete) == {tf.float32}
    with pytest.raises(ValueError, match="matmul_dtype"):
        translator.with_settings(matmul_dtype="float16")


def test_parallel_searches_translate_as_one_search(translator):
    split = translator.with_parallel_searches(2)
    assert split.settings["parallel_searches"] == 2 and translator.settings["parallel_searches"] == 1
    assert Translator(split.model, split.tokenizer, **split.run_settings()).parallel_searches == 2
    assert split.for_tflite().parallel_searches == 1
    for texts in (["3rd of March 1999", "12/25/07", "tomorrow"], ["12/25/07"]):
        want, got = translator.beam_search(tf.constant(texts)), split.beam_search(tf.constant(texts))
        assert _strings(got["translations"]) == _strings(want["translations"])
        np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="parallel_searches"):
        translator.with_parallel_searches(0)


BAD_INPUTS = ["", "   \t ", "x" * 10_000, "😀🎉 東京 Ελληνικά", "3rd of March 1999"]


def test_bad_input_never_crashes(loaded):
    out = loaded.signatures["serving_default"](text=tf.constant(BAD_INPUTS + [b"\xff\xfe\x80 bad"]))
    assert out["translation"].shape == (6,)
    assert np.all(np.isfinite(out["score"].numpy()))
    empty = loaded.signatures["serving_default"](text=tf.constant([], tf.string))
    assert empty["translation"].shape == (0,) and empty["score"].shape == (0,)
    empty_beams = loaded.signatures["beam_search"](text=tf.constant([], tf.string))
    assert empty_beams["translations"].shape[0] == 0


def test_long_input_is_truncated_to_the_maximum_source_length(translator):
    from keras_seq2seq.text import EOS_ID

    long = tf.constant(["1 2 3 4 5 " * 2000])
    ids = translator.encode_text(long)
    assert ids.shape == (1, translator.max_source_length) and int(ids[0, -1]) == EOS_ID
    by_text = translator.serving_default(long)
    by_ids = translator.translate_ids(ids)
    assert _strings(by_text["translation"]) == _strings(
        translator.tokenizer.decode(by_ids["target_ids"][:, 0]))


def test_concurrent_calls_equal_sequential_ones(loaded):
    signature = loaded.signatures["serving_default"]
    inputs = [tf.constant([f"{d} March 19{d + 50}", "12/25/07"]) for d in range(1, 9)]
    sequential = [_strings(signature(text=x)["translation"]) for x in inputs]
    results = [None] * len(inputs)

    def work(i):
        results[i] = _strings(signature(text=inputs[i])["translation"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == sequential


def _saved_ops(export_path):
    """Every op of a SavedModel's graph and functions, with repeats."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(open(os.path.join(export_path, "saved_model.pb"), "rb").read())
    graph = proto.meta_graphs[0].graph_def
    return [n.op for n in graph.node] + [n.op for f in graph.library.function
                                         for n in f.node_def]


def test_the_graph_search_encodes_with_the_fused_lstm_kernel(translator, export_path):
    """Each encoder LSTM direction of the export's graph search is one
    `BlockLSTMV2` (a kernel of stock TensorFlow and TF Serving), and the
    search's n-best lists are those of Keras' LSTM loop."""
    from keras_seq2seq.decoding import generate

    assert "BlockLSTMV2" in _saved_ops(export_path)
    ids = translator.encode_text(tf.constant(["3rd of March 1999", "12/25/07", "tomorrow"]))
    searches = [tf.function(lambda ids, fused=fused: generate(
        translator.model, ids, 20, beam_size=BEAM, alpha=0.6, fused_lstm=fused),
        autograph=False)(ids) for fused in (True, False)]
    (fused_ids, fused_scores), (ids, scores) = searches
    np.testing.assert_array_equal(fused_ids, ids)
    np.testing.assert_allclose(fused_scores, scores, rtol=1e-5, atol=1e-5)


def test_only_core_and_tensorflow_text_ops(export_path):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(open(os.path.join(export_path, "saved_model.pb"), "rb").read())
    graph = proto.meta_graphs[0].graph_def
    functions = {f.signature.name for f in graph.library.function}
    ops = {n.op for n in graph.node}
    for f in graph.library.function:
        ops |= {n.op for n in f.node_def}
    custom = sorted(op for op in ops - functions if not hasattr(tf.raw_ops, op))
    assert custom and all(op.startswith("Sentencepiece") for op in custom), custom


def test_verify_export_in_a_clean_process(translator, export_path):
    assert verify_export(translator, export_path, {"text": ["3rd of March 1999", "", "😀"]}) == 3


SAVED_MODEL_CLI = (
    "import sys, tensorflow_text; "
    "from tensorflow.python.tools.saved_model_cli import main; "
    "sys.argv[0] = 'saved_model_cli'; sys.exit(main())"
)


def test_saved_model_cli_runs_the_export(export_path):
    """The README's saved_model_cli command: the stock tool with tf-text ops loaded."""
    result = subprocess.run(
        [sys.executable, "-c", SAVED_MODEL_CLI, "run", "--dir", export_path, "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", 'text=["12/25/07"]'],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "translation" in result.stdout and "score" in result.stdout


def test_clients_load_a_version_once_and_a_rewritten_one_again(export_path):
    from keras_seq2seq.export.clients import _load_signatures

    first, _ = _load_signatures(export_path)
    assert _load_signatures(export_path)[0] is first
    graph = os.path.join(export_path, "saved_model.pb")
    written = os.stat(graph)
    os.utime(graph, ns=(written.st_atime_ns, written.st_mtime_ns + 1_000_000_000))
    assert _load_signatures(export_path)[0] is not first
