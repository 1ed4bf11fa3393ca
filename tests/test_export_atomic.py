"""Exports are published atomically (design.md 2.4): a kill at any moment
leaves no new version or a complete one; racing exports take distinct versions."""

import os
import signal
import subprocess
import sys
import time

import keras
import pytest
import tensorflow as tf

from keras_seq2seq import AttentionSeq2Seq
from keras_seq2seq.export import Exportable, Translator, export_saved_model
from keras_seq2seq.export import saved_model as saved_model_module
from keras_seq2seq.export.saved_model import versions


class Doubler(Exportable):
    """The smallest exportable: `x` [batch] -> `doubled` [batch]. Exports in
    a fraction of a second, for testing how versions are published."""

    def __init__(self):
        super().__init__(model=keras.Sequential([]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serving_default(self, x):
        return {"doubled": 2.0 * x}

    def signatures(self):
        return {"serving_default": self.serving_default}

    @property
    def settings(self):
        return {}

    def run_settings(self):
        return {}

    def check_inputs(self):
        return {"x": [1.0, 2.0]}

    def save_run(self, directory):
        os.makedirs(directory)


def _hidden(export_dir):
    return [name for name in os.listdir(export_dir) if name.startswith(".")]


def test_a_failed_check_publishes_nothing(tmp_path, monkeypatch):
    def differs(*args, **kwargs):
        raise RuntimeError("the export differs from the model")

    monkeypatch.setattr(saved_model_module, "verify_export", differs)
    with pytest.raises(RuntimeError, match="differs"):
        export_saved_model(Doubler(), str(tmp_path), check=True)
    assert os.listdir(tmp_path) == []


def test_each_export_publishes_the_next_version(tmp_path):
    first = export_saved_model(Doubler(), str(tmp_path))
    second = export_saved_model(Doubler(), str(tmp_path))
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert sorted(versions(str(tmp_path))) == [1, 2] and _hidden(tmp_path) == []
    out = tf.saved_model.load(second).signatures["serving_default"](x=tf.constant([1.5]))
    assert out["doubled"].numpy().tolist() == [3.0]


def test_an_export_racing_another_for_a_version_takes_the_next(tmp_path, monkeypatch):
    """Another export publishes version 1 between our choice of 1 and our rename."""
    real_next = saved_model_module.next_version_dir
    calls = []

    def next_version_taken_meanwhile(export_dir):
        version = real_next(export_dir)
        if not calls:
            os.makedirs(os.path.join(version, "variables"))  # the other export, in place
        calls.append(version)
        return version

    monkeypatch.setattr(saved_model_module, "next_version_dir", next_version_taken_meanwhile)
    path = export_saved_model(Doubler(), str(tmp_path))
    assert os.path.basename(path) == "2" and len(calls) == 2
    assert os.listdir(os.path.join(tmp_path, "1")) == ["variables"]  # theirs, untouched
    out = tf.saved_model.load(path).signatures["serving_default"](x=tf.constant([1.5]))
    assert out["doubled"].numpy().tolist() == [3.0] and _hidden(tmp_path) == []


def _serves(version_dir):
    out = tf.saved_model.load(version_dir).signatures["serving_default"](
        text=tf.constant(["12/25/07"]))
    return out["translation"].shape == (1,)


# Exports the run folder argv[1] under argv[2], saying when the export starts.
_EXPORT_SCRIPT = """
import sys, time
from keras_seq2seq.export import RunFolder, export_saved_model
translator = RunFolder(sys.argv[1]).load()
print("start", flush=True)
start = time.monotonic()
export_saved_model(translator, sys.argv[2])
print("done", time.monotonic() - start, flush=True)
"""


def _start_export(run_dir, export_dir):
    return subprocess.Popen(
        [sys.executable, "-c", _EXPORT_SCRIPT, run_dir, export_dir], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.mark.slow
def test_killed_exports_leave_only_complete_versions(tokenizer, tmp_path, kills=20):
    """SIGKILL at 20 points spread over a translator's export: every integer
    folder left loads and serves; at most hidden staging folders are left
    besides. (Slow: a fresh process per kill, about 7 minutes.)"""
    keras.utils.set_random_seed(5)
    model = AttentionSeq2Seq(tokenizer.vocab_size, embedding_dim=8, units=16)
    model.build()
    translator = Translator(model, tokenizer, max_source_length=16, max_target_length=12,
                            beam_size=2)
    run_dir, export_dir = str(tmp_path / "run"), str(tmp_path / "exports")
    translator.save_run(run_dir)
    timing = _start_export(run_dir, export_dir)
    out, _ = timing.communicate(timeout=600)
    assert timing.returncode == 0, out
    seconds = float(out.split()[-1])
    checked = set(versions(export_dir))
    assert checked == {1} and _serves(os.path.join(export_dir, "1"))
    for kill in range(kills):
        process = _start_export(run_dir, export_dir)
        assert process.stdout.readline().strip() == "start"
        # From just after the export starts to just after it would have ended.
        time.sleep(seconds * 1.2 * (kill + 0.5) / kills)
        process.send_signal(signal.SIGKILL)
        process.wait()
        for version in set(versions(export_dir)) - checked:
            assert _serves(os.path.join(export_dir, str(version))), version
            checked.add(version)
    assert sorted(checked) == list(range(1, len(checked) + 1))
    assert set(os.listdir(export_dir)) == {str(v) for v in checked} | set(_hidden(export_dir))
