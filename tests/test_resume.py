"""A training run killed with SIGKILL resumes from its last backup."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_seq2seq.errors import RunFolderError
from keras_seq2seq.training import AtomicBackupAndRestore, announce_resume

EPOCHS = 3
COMMAND = [sys.executable, "-m", "keras_seq2seq.cli", "quickstart", "--train-size", "1000",
           "--epochs", str(EPOCHS), "--no-check"]


def test_killed_run_resumes_from_the_last_backup(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    metadata = tmp_path / "runs" / "quickstart" / "backup" / "training_metadata.json"
    first = subprocess.Popen(COMMAND, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not metadata.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert metadata.exists(), "no backup was written"
    first.send_signal(signal.SIGKILL)
    first.wait()

    second = subprocess.run(COMMAND, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    match = re.search(r"Resuming from the backup in \S+: (\d) epoch\(s\) already done, "
                      r"continuing with epoch (\d)", second.stdout)
    assert match, second.stdout[-2000:]
    done = int(match.group(1))
    assert 1 <= done < EPOCHS and int(match.group(2)) == done + 1
    # Keras starts counting at the resumed epoch, not at 1.
    assert f"Epoch {done + 1}/{EPOCHS}" in second.stdout
    assert f"Epoch 1/{EPOCHS}" not in second.stdout
    assert (tmp_path / "exports" / "quickstart" / "1" / "saved_model.pb").exists()
    assert not metadata.exists()  # the backup is removed once training completes


def test_a_backup_cut_while_being_written_keeps_the_last_finished_epoch(tmp_path, monkeypatch):
    def model_with(value):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.set_weights([np.full((2, 1), value, "float32"), np.zeros(1, "float32")])
        model.compile("sgd", "mse")
        return model

    backup = tmp_path / "backup"
    callback = AtomicBackupAndRestore(str(backup))
    callback.set_model(model_with(1.0))
    callback.on_epoch_end(0)  # epoch 1's backup, whole
    assert announce_resume(str(backup)) == 1
    # A kill while writing epoch 2's metadata, then one while writing its weights.
    callback.set_model(model_with(2.0))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    for target, name in [(json, "dump"), (keras.Model, "save_weights")]:
        with monkeypatch.context() as patch:
            patch.setattr(target, name, killed)
            with pytest.raises(KeyboardInterrupt):
                callback.on_epoch_end(1)
        assert sorted(p.name for p in backup.iterdir()) == ["latest.weights.h5",
                                                            "training_metadata.json"]
        assert announce_resume(str(backup)) == 1
    restored = model_with(0.0)
    resume = AtomicBackupAndRestore(str(backup))
    resume.set_model(restored)
    resume.on_train_begin()
    assert restored.get_weights()[0].tolist() == [[1.0], [1.0]] and restored._initial_epoch == 1
    # A backup an earlier version left empty fails with the file named.
    (backup / "training_metadata.json").write_text("")
    with pytest.raises(RunFolderError, match="training_metadata.json: not a finished backup"):
        announce_resume(str(backup))
