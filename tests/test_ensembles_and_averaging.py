"""Ensembles (one search over several models) and checkpoint averaging."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_seq2seq
from keras_seq2seq import AttentionSeq2Seq, Ensemble
from keras_seq2seq.decoding import generate, score
from keras_seq2seq.errors import UserError
from keras_seq2seq.export import Translator
from keras_seq2seq.text import EOS_ID, PAD_ID, SubwordTokenizer, train_sentencepiece
from keras_seq2seq.training import KeepLastEpochs, average_weights, epoch_checkpoints
from tests.conftest import peaked_model

SOURCES = np.array([[7, 9, 12, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]], "int32")


def _model(seed, vocabulary_size=40):
    return peaked_model(vocabulary_size, seed)


@pytest.fixture(scope="module")
def members():
    return [_model(1), _model(2)]


def test_an_ensemble_of_one_model_twice_searches_as_the_model(members):
    alone = generate(members[0], SOURCES, max_length=8, beam_size=3, alpha=0.6)
    twice = generate(Ensemble([members[0], members[0]]), SOURCES, max_length=8, beam_size=3,
                     alpha=0.6)
    np.testing.assert_array_equal(alone[0], twice[0])
    np.testing.assert_allclose(alone[1], twice[1], rtol=1e-5)


def test_an_ensemble_scores_each_output_as_its_members_mean(members):
    ensemble = Ensemble(members)
    ids, scores = generate(ensemble, SOURCES, max_length=8, beam_size=3)
    for beam in range(3):
        target = ids[:, beam]
        each = [score(m, SOURCES, target)[0].numpy() for m in members]
        np.testing.assert_allclose(scores[:, beam], np.mean(each, axis=0), rtol=1e-4)
        np.testing.assert_allclose(score(ensemble, SOURCES, target)[0], scores[:, beam],
                                   rtol=1e-4)
    # Not just either member's search.
    assert any(not np.array_equal(ids, generate(m, SOURCES, max_length=8, beam_size=3)[0])
               for m in members)


def test_an_ensemble_round_trips_through_a_keras_file(members, tmp_path):
    ensemble = Ensemble(members)
    path = str(tmp_path / "ensemble.keras")
    ensemble.save(path)
    loaded = keras_seq2seq.load_model(path, compile=False)
    assert isinstance(loaded, Ensemble) and len(loaded.members) == 2
    want = generate(ensemble, SOURCES, max_length=8, beam_size=2)
    got = generate(loaded, SOURCES, max_length=8, beam_size=2)
    np.testing.assert_array_equal(want[0], got[0])
    np.testing.assert_allclose(want[1], got[1], rtol=1e-6)


def test_members_must_count_outputs_alike(members):
    with pytest.raises(ValueError, match="vocabulary_size"):
        Ensemble([members[0], _model(3, vocabulary_size=41)])


@pytest.fixture(scope="module")
def translators(tokenizer):
    def translator(seed, tok=tokenizer):
        keras.utils.set_random_seed(seed)
        model = AttentionSeq2Seq(tok.vocab_size, embedding_dim=8, units=16)
        model.build()
        return Translator(model, tok, max_source_length=24, max_target_length=12,
                          beam_size=3, check_texts=["12/25/07"])

    return translator


@pytest.fixture(scope="module")
def exported_ensemble(translators, tmp_path_factory):
    """`keras-seq2seq export --run A --run B`: `(path, member translators)`."""
    from keras_seq2seq import cli

    work = tmp_path_factory.mktemp("ensemble")
    members = [translators(1), translators(2)]
    for name, member in zip("ab", members):
        member.save_run(str(work / name))
    assert cli.main(["export", "--run", str(work / "a"), "--run", str(work / "b"),
                     "--export-dir", str(work / "exports"), "--no-check"]) == 0
    return str(work / "exports" / "1"), members


def test_an_exported_ensemble_serves_the_same_signatures(exported_ensemble):
    path, (a, b) = exported_ensemble
    served = tf.saved_model.load(path)
    assert set(served.signatures) == set(a.signatures())
    text = tf.constant(["3rd of March 1999", "12/25/07"])
    out = served.signatures["serving_default"](text=text)
    scored = served.signatures["score"](text=text, target=out["translation"])
    members = [t.score(text, out["translation"])["log_prob"].numpy() for t in (a, b)]
    np.testing.assert_allclose(scored["log_prob"], np.mean(members, axis=0), rtol=1e-4)
    alone = [t.serving_default(text)["score"].numpy() for t in (a, b)]
    assert not any(np.allclose(out["score"], score) for score in alone)


@pytest.mark.slow
def test_an_ensemble_converts_to_tflite_with_the_same_nbest(exported_ensemble, tmp_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    from keras_seq2seq.export import convert_to_tflite

    path, (a, _) = exported_ensemble
    tflite = str(tmp_path / "ensemble.tflite")
    convert_to_tflite(path, tflite)
    decode = litert.Interpreter(model_path=tflite).get_signature_runner("decode")
    for text in ["3rd of March 1999", "12/25/07"]:
        ids = a.encode_text(tf.constant([text]))
        want = tf.saved_model.load(path).signatures["translate_ids"](source_ids=ids)
        got = decode(source_ids=ids.numpy())
        np.testing.assert_array_equal(got["target_ids"], want["target_ids"])
        np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-4, atol=1e-4)


def test_members_with_other_tokenizers_are_refused(translators):
    other = SubwordTokenizer(train_sentencepiece(["a b c d e f g"] * 50 + ["h i j"] * 50,
                                                 vocab_size=280))
    with pytest.raises(UserError, match="runs/b has another tokenizer than runs/a"):
        Translator.ensemble([translators(1), translators(2, other)], names=["runs/a", "runs/b"])


def test_keep_last_epochs_and_average_weights(members, tmp_path):
    model = _model(4)
    keep = KeepLastEpochs(str(tmp_path), keep=2)
    keep.set_model(model)
    saved = []
    for epoch in range(4):
        for variable in model.trainable_variables:
            variable.assign(variable + 1.0)
        saved.append([w.copy() for w in model.get_weights()])
        keep.on_epoch_end(epoch)
    kept = epoch_checkpoints(str(tmp_path))
    assert [os.path.basename(p) for p in kept] == ["epoch-003.weights.h5", "epoch-004.weights.h5"]
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(p) for p in kept]
    average_weights(model, kept)
    for got, third, fourth in zip(model.get_weights(), saved[2], saved[3]):
        np.testing.assert_allclose(got, (third + fourth) / 2, rtol=1e-6)
