"""A training run killed with SIGKILL resumes from its last backup."""

import os
import re
import signal
import subprocess
import sys
import time

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
