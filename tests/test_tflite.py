"""TFLite conversion (design.md 2.5): builtin ops only, same n-best as the SavedModel."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq import AttentionSeq2Seq
from keras_seq2seq.data import generate_date_pairs
from keras_seq2seq.export import Translator, convert_to_tflite, export_saved_model
from keras_seq2seq.text import vocabulary_in_use

litert = pytest.importorskip("ai_edge_litert.interpreter")


@pytest.fixture(scope="module")
def export_path(tokenizer, tmp_path_factory):
    keras.utils.set_random_seed(5)
    # Side vocabularies, so that the conversion also covers their id mapping.
    pairs = generate_date_pairs(500, seed=3)
    model = AttentionSeq2Seq(tokenizer.vocab_size, embedding_dim=16, units=32,
                             encoder_layers=2, decoder_layers=2, attention="luong_general",
                             source_vocabulary=vocabulary_in_use(tokenizer, [s for s, _ in pairs]),
                             target_vocabulary=vocabulary_in_use(tokenizer, [t for _, t in pairs]))
    model.build()
    # A random model is nearly uniform, so hypotheses tie to float precision and
    # TFLite's kernels may break ties differently; sharpen it as training would.
    model.output_projection.kernel.assign(model.output_projection.kernel * 8.0)
    translator = Translator(model, tokenizer, 32, 16, beam_size=3, alpha=0.6)
    return export_saved_model(translator, str(tmp_path_factory.mktemp("exports") / "m"))


@pytest.fixture(scope="module")
def tflite_path(export_path, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tflite") / "model.tflite")
    convert_to_tflite(export_path, path)
    return path


def _run_tflite(path, source_ids):
    interpreter = litert.Interpreter(model_path=path)
    decode = interpreter.get_signature_runner("decode")
    out = decode(source_ids=np.asarray(source_ids, np.int32)[None, :])
    return out["target_ids"][0], out["scores"][0]


def test_signature_and_files(tflite_path):
    interpreter = litert.Interpreter(model_path=tflite_path)
    signatures = interpreter.get_signature_list()
    assert signatures == {"decode": {"inputs": ["source_ids"], "outputs": ["scores", "target_ids"]}}
    stem = os.path.splitext(tflite_path)[0]
    assert os.path.exists(stem + ".spm.model")
    assert len(open(stem + ".vocab.txt", encoding="utf-8").read().splitlines()) > 256


def test_builtin_ops_only(tflite_path):
    interpreter = litert.Interpreter(model_path=tflite_path)
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "WHILE" in ops  # the beam search loop itself is in the model
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops


def test_same_nbest_as_translate_ids_on_50_inputs(export_path, tflite_path, tokenizer):
    loaded = tf.saved_model.load(export_path)
    sources = [s for s, _ in generate_date_pairs(50, seed=123)]
    agree = 0
    for text in sources:
        ids = tokenizer.encode(tf.constant([text]), 32)
        want = loaded.signatures["translate_ids"](source_ids=ids)
        got_ids, got_scores = _run_tflite(tflite_path, ids.numpy()[0])
        np.testing.assert_array_equal(got_ids, want["target_ids"].numpy()[0])
        np.testing.assert_allclose(got_scores, want["scores"].numpy()[0], rtol=1e-4, atol=1e-4)
        agree += 1
    assert agree == 50


@pytest.mark.parametrize("quantize", ["dynamic", "float16"])
def test_quantized_models_convert_smaller_and_run(export_path, tflite_path, tmp_path, quantize):
    path = str(tmp_path / f"{quantize}.tflite")
    sizes = convert_to_tflite(export_path, path, quantize=quantize)
    assert sizes[path] < os.path.getsize(tflite_path)
    ids, scores = _run_tflite(path, [5, 6, 7, 3])
    assert ids.shape[0] == 3 and np.all(np.isfinite(scores))
