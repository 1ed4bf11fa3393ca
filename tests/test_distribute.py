"""tf.distribute: two workers on 127.0.0.1, and two mirrored replicas."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

COMMAND = [sys.executable, "-m", "keras_seq2seq.cli", "quickstart", "--strategy", "multi_worker",
           "--train-size", "2000", "--epochs", "2", "--no-check"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_the_quickstart_to_the_end(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(COMMAND, cwd=tmp_path, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
    chief, other = outputs
    # Both ran every epoch in lockstep: one model, so the same validation losses.
    losses = [re.findall(r"val_loss: ([0-9.]+)", out) for out in outputs]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    # Only the chief saves and exports.
    assert "SavedModel exported to" in chief and "Example translations" in chief
    assert "as a worker; the chief saves and exports the run" in other
    versions = os.listdir(tmp_path / "exports" / "quickstart")
    assert versions == ["1"]
    assert (tmp_path / "runs" / "quickstart" / "model.keras").exists()
    assert not (tmp_path / "runs" / "quickstart" / "worker-1" / "model.keras").exists()


def test_multi_worker_without_tf_config_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run(COMMAND, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "TF_CONFIG" in result.stderr


_MIRRORED = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
from keras_seq2seq.tasks import task_for
from keras_seq2seq.training import train
from keras_seq2seq.zoo import load_recipe
# With a moving average of the weights, which the replicas must keep in step.
recipe = load_recipe("dates-attention").replace(data={"train_size": 2000},
                                                training={"epochs": 2, "ema_momentum": 0.9})
task = task_for(recipe)
result = train(task, sys.argv[1], verbose=0, strategy=strategy)
translator, history = result.exportable, result.history
assert strategy.num_replicas_in_sync == 2
# The saved model holds plain variables, not mirrored ones.
assert all(type(v.value).__name__ == "ResourceVariable" for v in translator.model.variables)
print("loss", *history.history["loss"])
print("val_loss", *history.history["val_loss"])
import keras_seq2seq
translator.model.compile(loss=keras_seq2seq.SequenceCrossEntropy())
print("model_val_loss", translator.model.evaluate(task.datasets()[1], verbose=0))
"""


def test_mirrored_replicas_train_and_export_plain_variables(tmp_path):
    result = subprocess.run([sys.executable, "-c", _MIRRORED, str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    first, last = map(float, re.search(r"loss ([0-9.]+) ([0-9.]+)", result.stdout).groups())
    # It learned on two replicas: the loss fell, and below 3.0 (uniform over
    # the 400 pieces: 6.0). One epoch alone ended at 3.03 from other initial weights.
    assert last < first and last < 3.0
    assert (tmp_path / "run" / "model.keras").exists()
    # The run's model is the average of its best epoch: its validation loss
    # is the lowest logged, which validation measured on the average.
    logged = [float(x) for x in re.search(r"val_loss (.*)", result.stdout).group(1).split()]
    model = float(re.search(r"model_val_loss ([0-9.]+)", result.stdout).group(1))
    assert model == pytest.approx(min(logged), rel=1e-3), result.stdout
