"""`training.fit`: what it hands to Keras; `TimeBudget`: the schedule it fits."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq import training
from keras_seq2seq.optimizers import FusedAdam, ShortenableCosineDecay


class _RecordingModel:
    """Stands in for a `keras.Model`: `fit` records its inputs."""

    def fit(self, x, validation_data=None, **kwargs):
        self.x, self.validation_data = x, validation_data


def test_fit_hands_keras_the_same_batches_with_autotuning_off():
    """Keras drops an iterator at every epoch and validation; with autotuning
    on, TensorFlow waits for the iterator's autotuning thread to wake (up to
    60 s), so `fit` turns it off (see `without_autotuning`)."""
    batches = tf.data.Dataset.range(10).map(lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE)
    batches = batches.batch(3).prefetch(tf.data.AUTOTUNE)
    assert batches.options().autotune.enabled is not False

    model = _RecordingModel()
    training.fit(model, batches, batches, epochs=1, callbacks=[], verbose=0)
    for dataset in (model.x, model.validation_data):
        assert dataset.options().autotune.enabled is False
        assert [b.tolist() for b in dataset.as_numpy_iterator()] == [
            [0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]

    training.fit(model, batches, None, epochs=1, callbacks=[], verbose=0)
    assert model.validation_data is None


# -- a time budget fits the learning-rate schedule ---------------------------


def test_shortened_cosine_decay_is_keras_cosine_decay_over_the_new_length():
    schedule = ShortenableCosineDecay(1e-2, decay_steps=100, alpha=0.05)
    learning_rate = tf.function(lambda step: schedule(step))  # traced once, read after
    steps = np.arange(0, 120, 7)
    np.testing.assert_allclose([float(learning_rate(s)) for s in steps], [
        float(keras.optimizers.schedules.CosineDecay(1e-2, 100, alpha=0.05)(s)) for s in steps],
        rtol=1e-6)
    schedule.end_at(40)
    np.testing.assert_allclose([float(learning_rate(s)) for s in steps], [
        float(keras.optimizers.schedules.CosineDecay(1e-2, 40, alpha=0.05)(s)) for s in steps],
        rtol=1e-6)
    assert learning_rate.experimental_get_tracing_count() == 1
    # Never longer than built, never under a step; the config keeps the length.
    schedule.end_at(500)
    assert schedule.steps == 100
    schedule.end_at(0)
    assert schedule.steps == 1
    schedule.end_at(40)
    loaded = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert type(loaded) is ShortenableCosineDecay and loaded.steps == 40


class _Clock:
    """A fake `time.monotonic` that a callback advances one second a batch."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Killed(Exception):
    """Stands in for a kill: `fit` ends without its `on_train_end`."""


def _fit_under_budget(monkeypatch, minutes, epochs=5, batches_per_epoch=20, schedule=True,
                      backup_dir=None, killed_at_step=None, clock=None):
    clock = clock or _Clock()
    monkeypatch.setattr(training.time, "monotonic", clock)
    tick = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs=None: setattr(clock, "now", clock.now + 1.0))
    planned = epochs * batches_per_epoch
    learning_rate = ShortenableCosineDecay(1e-2, decay_steps=planned, alpha=0.05)
    rates = []

    def record(batch, logs=None):
        step = int(model.optimizer.iterations.numpy())
        rates.append(float(learning_rate(step)))
        if step == killed_at_step:
            raise _Killed

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(FusedAdam(learning_rate), "mse")
    budget = training.TimeBudget(minutes, learning_rate if schedule else None)
    callbacks = [tick, keras.callbacks.LambdaCallback(on_train_batch_end=record), budget]
    if backup_dir:
        callbacks.append(training.AtomicBackupAndRestore(str(backup_dir), time_budget=budget))
    x = np.random.default_rng(0).random((10 * batches_per_epoch, 3), dtype="float32")
    history = model.fit(x, x.sum(1), batch_size=10, epochs=epochs, verbose=0, callbacks=callbacks)
    return learning_rate, int(model.optimizer.iterations.numpy()), rates, history


def test_a_time_budget_shortens_the_schedule_to_end_inside_it(monkeypatch):
    """100 steps planned at a second a step in a 60-second budget: the
    schedule is fitted a quarter of the way in to end at step 60, and
    training stops there with the rate at its floor."""
    schedule, steps, rates, history = _fit_under_budget(monkeypatch, minutes=1.0)
    assert schedule.steps == 60 and steps == 60
    assert rates[-1] == pytest.approx(1e-2 * 0.05)
    assert len(history.history["loss"]) == 3  # the third epoch stopped at its 20th batch


def test_a_time_budget_leaves_a_schedule_that_fits(monkeypatch):
    schedule, steps, rates, _ = _fit_under_budget(monkeypatch, minutes=3.0)
    assert schedule.steps == 100 and steps == 100
    assert rates[-1] == pytest.approx(1e-2 * 0.05)


def test_without_the_schedule_a_time_budget_only_stops(monkeypatch):
    schedule, steps, rates, _ = _fit_under_budget(monkeypatch, minutes=1.0, schedule=False)
    assert schedule.steps == 100 and steps == 61  # stopped after the batch past 60 s
    assert rates[-1] > 0.3 * 1e-2  # a third of the way down the cosine from its end


def test_a_resumed_run_keeps_the_fitted_schedule_and_what_the_budget_left(monkeypatch, tmp_path):
    """Killed at step 50 (epoch 3), the 60-second run of the test above
    resumes from its epoch-2 backup (step 40, 40 seconds spent) with the
    schedule still ending at step 60 and 20 seconds left: the same rates at
    steps 41-60 as without the kill, and the same stop. (A run that started
    its budget and schedule afresh would plan 100 steps again.)"""
    _, _, whole, _ = _fit_under_budget(monkeypatch, minutes=1.0)
    clock = _Clock()
    with pytest.raises(_Killed):
        _fit_under_budget(monkeypatch, minutes=1.0, backup_dir=tmp_path, killed_at_step=50,
                          clock=clock)
    schedule, steps, rates, history = _fit_under_budget(
        monkeypatch, minutes=1.0, backup_dir=tmp_path, clock=clock)
    assert schedule.steps == 60 and steps == 60
    np.testing.assert_allclose(rates, whole[40:], rtol=1e-6)
    assert len(history.history["loss"]) == 1  # epoch 3 again, stopped at its 20th batch
    assert not (tmp_path / "training_metadata.json").exists()  # a finished run drops its backup
