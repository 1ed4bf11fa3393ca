"""Training any task end to end: recipe -> task -> model.fit -> run folder -> export.

    recipe = zoo.load_recipe("dates-attention")      # or a YAML file of your own
    task = tasks.task_for(recipe)
    result = train(task, "runs/dates")               # data, tokenizer, fit, run folder
    scores = task.evaluate(result.exportable)
    export_saved_model(result.exportable, "exports/dates", check=True)
"""

import dataclasses
import json
import os
import time
import warnings

import keras

from keras_seq2seq.data.atomic import PART, atomic_path
from keras_seq2seq.distribute import is_chief, on_one_machine, worker_dir
from keras_seq2seq.errors import RunFolderError
from keras_seq2seq.export import RunFolder, export_saved_model


class KeepLastEpochs(keras.callbacks.Callback):
    """Saves each finished epoch's weights as `directory/epoch-NNN.weights.h5`,
    keeping the last `keep` (for `average_checkpoints`).

    A file appears whole or not at all: it is written under a temporary name
    and renamed.
    """

    def __init__(self, directory, keep):
        super().__init__()
        self.directory = directory
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"epoch-{epoch + 1:03d}.weights.h5")
        with atomic_path(path, extension=".weights.h5") as part:
            self.model.save_weights(part)
        for old in epoch_checkpoints(self.directory)[: -self.keep]:
            os.remove(old)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` (at each epoch's end) whose backup
    a kill cannot leave half-written, and which carries the run's time
    budget across a resume.

    Keras writes the weights and `training_metadata.json` in place: a run
    killed while writing the metadata left it empty, and the next run failed
    on it instead of resuming. Each file is written under a temporary name
    and renamed, the weights first and the metadata after (nested
    `atomic_path` blocks): the backup is the last finished epoch's, or, if a
    kill falls between the two renames, its weights with the epoch before's
    count (that epoch is trained again). Keras' double checkpoint is not
    needed and not used.

    With `time_budget`, the metadata also holds `TimeBudget.state()` (the
    minutes trained so far, where the fitted schedule ends), which a resumed
    run hands back to its own budget (`TimeBudget.resume`).

    Args:
        backup_dir: the folder of the backup.
        time_budget: the run's `TimeBudget`, or None.
    """

    def __init__(self, backup_dir, time_budget=None):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=True)
        self.time_budget = time_budget

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.time_budget is None or not os.path.exists(self._training_metadata_path):
            return
        with open(self._training_metadata_path) as f:
            state = json.load(f).get("time_budget")
        if state is not None:  # None: a backup written without a budget
            self.time_budget.resume(state)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        if self.time_budget is not None:
            metadata["time_budget"] = self.time_budget.state()
        # Both written before either is renamed.
        with atomic_path(self._training_metadata_path) as metadata_part:
            with open(metadata_part, "w") as f:
                json.dump(metadata, f)
            with atomic_path(self._weights_path, extension=".weights.h5") as weights_part:
                self.model.save_weights(weights_part)


def epoch_checkpoints(directory):
    """The `KeepLastEpochs` files in `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    names = sorted(n for n in os.listdir(directory)
                   if n.startswith("epoch-") and n.endswith(".weights.h5") and PART not in n)
    return [os.path.join(directory, n) for n in names]


def average_weights(model, paths):
    """Sets `model`'s weights to the mean of the weight files `paths`.

    Floating-point variables are averaged; others (integer counters, random
    generator states) take the last file's values.
    """
    total = None
    for path in paths:
        model.load_weights(path)
        weights = model.get_weights()
        if total is None:
            total = [w.astype("float64") if w.dtype.kind == "f" else w for w in weights]
        else:
            total = [t + w if w.dtype.kind == "f" else w for t, w in zip(total, weights)]
    model.set_weights([(t / len(paths)).astype(w.dtype) if w.dtype.kind == "f" else w
                       for t, w in zip(total, weights)])
    return model


def average_checkpoints(run_dir, last):
    """Makes a run's model the average of its last `last` epochs' weights
    (kept by `training.average_last` in the recipe), and saves it as the
    run's model; returns the run's exportable.

    The model before averaging is the run's best checkpoint
    (`checkpoints/best.weights.h5`) or its last epoch, still on disk.
    """
    from keras_seq2seq.errors import UserError

    folder = RunFolder(run_dir)
    exportable = folder.load()
    paths = epoch_checkpoints(folder.file("checkpoints"))
    if last < 1 or len(paths) < last:
        raise UserError(f"{run_dir} keeps {len(paths)} epoch checkpoint(s) in checkpoints/ "
                        f"(recipe key training.average_last), fewer than the {last} asked for")
    average_weights(exportable.model, paths[-last:])
    exportable.save_run(folder.path)
    return exportable


class MovingAverageWeights:
    """Puts the optimizer's moving average of the weights in the model
    wherever `fit` reads the weights instead of training them.

    An optimizer built with `use_ema=True` (recipe key
    `training.ema_momentum`; Polyak averaging) keeps an exponential moving
    average of every trainable variable, and `fit` ends by copying the
    average into the model, so the trained model is the average. This
    makes the rest of training agree with that: validation runs on the
    average, and so do the epoch-end callbacks between `first` and `last`
    (the best checkpoint, early stopping and its restored weights, the
    epoch checkpoints `average_last` averages). Callbacks after `last`
    (`BackupAndRestore`) see the training weights, and the average stays in
    the optimizer's variables, so a resumed run continues both.

    Example:

    >>> averaged = MovingAverageWeights()
    >>> model.fit(data, callbacks=[averaged.first, checkpoint, averaged.last, backup])
    """

    def __init__(self):
        self.average_in_model = False
        self.first = keras.callbacks.LambdaCallback(
            on_test_begin=lambda logs=None: self._put_average_in(True),
            on_test_end=lambda logs=None: self._put_average_in(False),
            on_epoch_end=lambda epoch, logs=None: self._put_average_in(True))
        self.last = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs=None: self._put_average_in(False))

    def _put_average_in(self, wanted):
        if self.average_in_model == wanted:
            return
        optimizer = self.first.model.optimizer
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = optimizer.inner_optimizer
        for variable, average in zip(optimizer._trainable_variables,
                                     optimizer._model_variables_moving_average):
            # Through host memory: a swap in place would need a third variable.
            kept = variable.numpy()
            variable.assign(average)
            average.assign(kept)
        self.average_in_model = wanted


class TimeBudget(keras.callbacks.Callback):
    """Stops training cleanly, after the current batch, once `minutes` have passed.

    With `schedule` (a `ShortenableCosineDecay`), it also fits the learning
    rate's decay into the budget, so that a budget shorter than the
    recipe's epochs ends training at the schedule's floor rather than
    midway down it. At the end of each epoch, and once a quarter of the way
    into the budget if the first epoch has not ended by then, it counts the
    steps the minutes left hold at the pace measured so far (from the fifth
    batch on, so that tracing is not counted; validation is) and makes the
    schedule end there, never later than the recipe planned. Training then
    stops at that step, validating as at an epoch's end. A run whose
    schedule fits is not changed.

    The budget is the whole run's: a run resumed from its backup
    (`AtomicBackupAndRestore`, which keeps `state()`) gets what its budget
    has left after the epochs the backup holds, with the schedule ending
    where it was fitted to end, and plans again from its own pace.

    Args:
        minutes: the budget, in minutes of `fit`.
        schedule: a `ShortenableCosineDecay` the optimizer follows, or None.
    """

    # Batches of the first epoch left out of the pace: the first ones trace.
    WARM_UP_BATCHES = 5

    def __init__(self, minutes, schedule=None):
        super().__init__()
        self.seconds = minutes * 60.0
        self.schedule = schedule
        self.stopped = False
        # Seconds of `fit` that earlier runs of this training spent (`resume`).
        self.seconds_before = 0.0
        # The step the shortened schedule ends at (None: as the recipe
        # planned), kept here so that a batch reads one variable, not two.
        self.schedule_end = None

    def state(self):
        """What a backup keeps of the budget: the seconds of `fit` so far and
        the step the schedule now ends at (None without a schedule)."""
        return {"seconds": self._elapsed(),
                "schedule_end": None if self.schedule is None else self.schedule.steps}

    def resume(self, state):
        """Continues the budget of the run whose backup holds `state`."""
        self.seconds_before = float(state["seconds"])
        if self.schedule is not None and state.get("schedule_end") is not None:
            self._end_schedule_at(state["schedule_end"])

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()
        self.pace_start = None
        self.planned_mid_epoch = False

    def _elapsed(self):
        return self.seconds_before + time.monotonic() - self.start

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        elapsed = self._elapsed()
        if self.schedule is not None:
            if self.pace_start is None and batch + 1 >= self.WARM_UP_BATCHES:
                self.pace_start = (time.monotonic(), self._step())
            # A quarter of what this run has to spend (all of it, unless resumed).
            this_run = time.monotonic() - self.start
            if not self.planned_mid_epoch and this_run > (self.seconds - self.seconds_before) / 4:
                self.planned_mid_epoch = True
                self._fit_schedule()
            if self.schedule_end is not None and self._step() >= self.schedule_end:
                self._stop("The learning-rate schedule ends here, inside the time budget: stopping.")
        if elapsed > self.seconds:
            self._stop(f"Time budget of {self.seconds / 60:g} minutes reached: stopping.")

    def on_epoch_end(self, epoch, logs=None):
        if self.schedule is not None:
            self.planned_mid_epoch = True
            self._fit_schedule()

    def _fit_schedule(self):
        if self.pace_start is None or self.stopped:
            return
        started, first_step = self.pace_start
        now, step = time.monotonic(), self._step()
        if step <= first_step:
            return
        seconds_a_step = (now - started) / (step - first_step)
        steps_left = int((self.seconds - self._elapsed()) / seconds_a_step)
        before = self.schedule.steps
        if self._end_schedule_at(step + max(steps_left, 0)) != before:
            print(f"\nTime budget: the learning-rate schedule now ends at step "
                  f"{self.schedule.steps} (planned: {self.schedule.longest}; "
                  f"{seconds_a_step:.3f} s a step so far).")

    def _end_schedule_at(self, step):
        """`schedule.end_at(step)`, and the end step a batch compares with
        (None unless shortened); returns the end step."""
        self.schedule.end_at(step)
        end = self.schedule.steps
        self.schedule_end = end if end < self.schedule.longest else None
        return end

    def _stop(self, message):
        self.model.stop_training = True
        if not self.stopped:
            print("\n" + message)
        self.stopped = True


def training_callbacks(work_dir, backup_dir=None, max_minutes=None, patience=5,
                       monitor="val_loss", tensorboard=True, best_checkpoint=True,
                       terminate_on_nan=True, keep_last_epochs=0, moving_average=False,
                       schedule=None):
    """The callbacks `train` uses, each on by default.

    Args:
        work_dir: the run folder; logs go to `logs/`, the best weights to
            `checkpoints/best.weights.h5`.
        backup_dir: where `BackupAndRestore` keeps the last finished epoch
            (default `work_dir/backup`). A killed run started again with the
            same arguments continues from there.
        max_minutes: stop cleanly after this many minutes of training, those
            before a resume included (`TimeBudget`; None: no limit).
        patience: early stopping after this many epochs without improvement
            of `monitor`, restoring the best weights (0 or None: off).
        monitor: the quantity early stopping and the best checkpoint follow.
        tensorboard, best_checkpoint, terminate_on_nan: the TensorBoard logs
            (and `logs/curves.png`, the loss and metric curves), best-checkpoint
            saving and stopping on a NaN loss.
        keep_last_epochs: keep the last N epochs' weights in `checkpoints/`
            (`KeepLastEpochs`, for `average_checkpoints`; 0: none).
        moving_average: the optimizer keeps a moving average of the weights
            (`use_ema`): validation, the best checkpoint, early stopping and
            the kept epochs see the average (`MovingAverageWeights`).
        schedule: the optimizer's `ShortenableCosineDecay`, which
            `max_minutes` then fits into the budget (`TimeBudget`); None:
            the budget only stops training.
    """
    callbacks = []
    if terminate_on_nan:
        callbacks.append(keras.callbacks.TerminateOnNaN())
    if tensorboard:
        from keras_seq2seq.plots import TrainingCurves

        callbacks.append(keras.callbacks.TensorBoard(os.path.join(work_dir, "logs")))
        callbacks.append(TrainingCurves(os.path.join(work_dir, "logs", "curves.png")))
    if best_checkpoint:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            os.path.join(work_dir, "checkpoints", "best.weights.h5"),
            monitor=monitor, save_best_only=True, save_weights_only=True,
        ))
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=patience, restore_best_weights=True, verbose=1))
    if keep_last_epochs:
        callbacks.append(KeepLastEpochs(os.path.join(work_dir, "checkpoints"), keep_last_epochs))
    if moving_average:
        averaged = MovingAverageWeights()
        callbacks = [averaged.first, *callbacks, averaged.last]
    budget = TimeBudget(max_minutes, schedule) if max_minutes else None
    if budget is not None:
        # Before the backup: an epoch's backup keeps the plan made at its end.
        callbacks.append(budget)
    backup_dir = backup_dir or os.path.join(work_dir, "backup")
    announce_resume(backup_dir)
    callbacks.append(AtomicBackupAndRestore(backup_dir, time_budget=budget))
    return callbacks


def fit(model, train, validation, epochs, callbacks, verbose=1):
    """`model.fit` on `without_autotuning` datasets, without the warnings
    that streamed tf.data inputs raise."""
    with warnings.catch_warnings():
        # tf.data shuffles; and a streamed dataset has no length until the
        # first epoch ends, which Keras reports as "ran out of data".
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        return model.fit(without_autotuning(train),
                         validation_data=None if validation is None else without_autotuning(validation),
                         epochs=epochs, callbacks=callbacks, verbose=verbose)


def without_autotuning(dataset):
    """`dataset` with tf.data's autotuning off: its `AUTOTUNE` parallelism
    stays at the number of CPU cores (at most 16) and its `AUTOTUNE`
    prefetch buffers still grow as they are drained.

    Keras drops an iterator of each dataset at every epoch (training) and
    every validation pass. In TensorFlow 2.21 dropping one waits for its
    autotuning thread (`Model::OptimizeLoop`), which sleeps up to 60 s
    between rounds and wakes only at the end of its sleep: a Multi30k run
    of 20 minutes stood idle for 32-59 s at a time, and 5 of its 9 epochs
    took 1.6-2.3 times as long as the other 4 (stacks taken during such
    stalls in two later runs: the main thread in `~RootDataset::Iterator`
    waiting for that thread).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _roles(strategy, work_dir, backup_dir):
    """The strategy (default: none), whether this process is the chief, and
    the folders it writes (a worker's own, inside them, if it is not)."""
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    if not chief:
        work_dir = worker_dir(strategy, work_dir)
        backup_dir = backup_dir and worker_dir(strategy, backup_dir)
    return strategy, chief, work_dir, backup_dir


def mixed_precision_policy():
    """`mixed_float16` on a GPU, `mixed_bfloat16` on CPU (AVX512-BF16 runs it natively)."""
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def announce_resume(backup_dir):
    """Prints where a run resumes from, if `backup_dir` holds a backup."""
    metadata = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(metadata):
        return None
    try:
        with open(metadata) as f:
            done = int(json.load(f)["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        # A backup an earlier version wrote in place, cut by a kill.
        raise RunFolderError(
            f"{metadata}: not a finished backup ({error}); remove {backup_dir} to train this "
            "run from its start") from error
    print(f"Resuming from the backup in {backup_dir}: {done} epoch(s) already done, "
          f"continuing with epoch {done + 1}.")
    return done


@dataclasses.dataclass
class TrainingResult:
    """What `train` returns.

    Attributes:
        exportable: the trained model as an `Exportable` (None on a worker
            that is not the chief, which saves nothing).
        history: the Keras `History`.
        minutes: wall-clock minutes, data preparation included.
        work_dir: the run folder.
    """

    exportable: object
    history: object
    minutes: float
    work_dir: str


def train(task, work_dir, max_minutes=None, verbose=1, backup_dir=None, on_bad_line="fail",
          callback_options=None, strategy=None, extra_callbacks=()):
    """Trains a task and saves the run to `work_dir`: one function for every task.

    The recipe fixes data, model, epochs and precision
    (`training.mixed_precision`); this call fixes where and for how long.

    Args:
        task: a `tasks.Task` (`tasks.task_for(recipe)`).
        work_dir: the run folder (`export.RunFolder`): data the task writes,
            tokenizer, logs, checkpoints, backups, the final model. A folder
            holding anything else (another recipe's run, an older layout,
            files that are not a run) is refused before anything is written.
        max_minutes: stop cleanly after this much training time (default:
            the recipe's `training.max_minutes`, else no limit); a cosine
            schedule that would not end inside it is shortened to end there
            (`TimeBudget`). A resumed run has what the budget left.
        verbose: Keras progress bars (1) or not (0).
        backup_dir: where `keras.callbacks.BackupAndRestore` keeps the last
            finished epoch (default `work_dir/backup`). A run killed at any
            point and started again with the same arguments continues from
            there, losing at most the epoch in progress.
        on_bad_line: `"fail"` stops at the first blank, undecodable or
            overlong line pair, naming file and line; `"skip"` drops such
            pairs and prints how many.
        callback_options: keyword arguments of `training_callbacks`
            (early stopping patience, TensorBoard, best checkpoint, NaN stop).
        strategy: a `tf.distribute.Strategy` (`distribution_strategy`); the
            model is built in its scope, each global batch of the recipe's
            `batch_size` is split across its replicas, and batches are
            sharded across workers. Only the chief saves the run.
        extra_callbacks: more Keras callbacks for `fit`.

    Under `training.mixed_precision` the model trains in
    `mixed_precision_policy()` (logits, attention softmaxes and the loss in
    float32) and is saved and exported computing in float32.

    Returns:
        A `TrainingResult`.
    """
    import tensorflow as tf

    start = time.monotonic()
    recipe = task.recipe
    strategy, chief, work_dir, backup_dir = _roles(strategy, work_dir, backup_dir)
    if chief:
        RunFolder(work_dir).claim(recipe.identity())
    keras.utils.set_random_seed(recipe.training["seed"])
    task.prepare(work_dir, on_bad_line=on_bad_line, strategy=strategy)
    for line in task.notes():
        print(line)
    epochs = recipe.training["epochs"]
    mixed_precision = recipe.training["mixed_precision"]
    previous_policy = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
        print(f"Mixed precision: {keras.config.dtype_policy().name}")
    try:
        with strategy.scope():
            learning_rate = task.learning_rate(epochs * task.steps_per_epoch)
            model = task.build_model(learning_rate=learning_rate)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    max_minutes = max_minutes or recipe.training["max_minutes"]
    average_last = recipe.training["average_last"]
    # The workers of a cluster would each fit the schedule to their own clock.
    fitted = recipe.training["schedule"] == "cosine" and on_one_machine(strategy)
    callbacks = training_callbacks(work_dir, backup_dir, max_minutes, keep_last_epochs=average_last,
                                   moving_average=recipe.training["ema_momentum"] is not None,
                                   schedule=learning_rate if fitted else None,
                                   **(callback_options or {}))
    train_batches, val_batches = task.datasets()
    history = fit(model, train_batches, val_batches, epochs,
                  callbacks + list(extra_callbacks), verbose)
    exportable = None
    if chief:
        if mixed_precision or strategy is not tf.distribute.get_strategy():
            # Exports compute in float32 on plain variables: serving, TFLite
            # and CPUs without bfloat16 units need no low-precision kernels,
            # and exports carry no strategy.
            model = model.with_dtype_policy("float32")
        exportable = task.with_export_settings(task.exportable(model))
        exportable.save_run(work_dir)
        kept = min(average_last, len(epoch_checkpoints(os.path.join(work_dir, "checkpoints"))))
        if kept:
            exportable = average_checkpoints(work_dir, kept)
            print(f"The run's model is the average of its last {kept} epochs' weights.")
    return TrainingResult(exportable, history, (time.monotonic() - start) / 60, work_dir)


def export(exportable, export_dir, check=True):
    """Publishes the next SavedModel version under `export_dir`, checked in a
    clean process first (`export_saved_model(check=True)`); returns its path."""
    return export_saved_model(exportable, export_dir, check=check)
