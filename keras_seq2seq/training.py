"""Training a recipe end to end: data -> tokenizer -> model.fit -> run folder.

    paths = recipe.prepare_data(...)          # parallel files per split
    tokenizer = SentencePiece on the training files (reused if present)
    model.fit(train batches, validation batches, callbacks)
    run folder: model.keras, tokenizer.model (or words.txt), translator.json,
                logs/, checkpoints
"""

import itertools
import json
import math
import os
import time
import warnings

import keras

from keras_seq2seq.distribute import is_chief, shard_batches, worker_dir
from keras_seq2seq.data import (
    check_parallel_files,
    iter_lines,
    parallel_text_dataset,
    text_line_dataset,
)
from keras_seq2seq.export import Translator
from keras_seq2seq.losses import SequenceCrossEntropy
from keras_seq2seq.metrics import MaskedAccuracy, exact_match
from keras_seq2seq.models import get_model_class
from keras_seq2seq.optimizers import FusedAdam
from keras_seq2seq.text import (
    SubwordTokenizer,
    WordTokenizer,
    build_word_vocabulary,
    train_sentencepiece,
    vocabulary_in_use,
)


class TimeBudget(keras.callbacks.Callback):
    """Stops training cleanly, after the current batch, once `minutes` have passed."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = minutes * 60.0
        self.stopped = False

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True
            if not self.stopped:
                print(f"\nTime budget of {self.seconds / 60:g} minutes reached: stopping.")
            self.stopped = True


def training_callbacks(work_dir, backup_dir=None, max_minutes=None, patience=5,
                       monitor="val_loss", tensorboard=True, best_checkpoint=True,
                       terminate_on_nan=True):
    """The callbacks `train` uses, each on by default.

    Args:
        work_dir: the run folder; logs go to `logs/`, the best weights to
            `checkpoints/best.weights.h5`.
        backup_dir: where `BackupAndRestore` keeps the last finished epoch
            (default `work_dir/backup`). A killed run started again with the
            same arguments continues from there.
        max_minutes: stop cleanly after this many minutes (None: no limit).
        patience: early stopping after this many epochs without improvement
            of `monitor`, restoring the best weights (0 or None: off).
        monitor: the quantity early stopping and the best checkpoint follow.
        tensorboard, best_checkpoint, terminate_on_nan: the TensorBoard logs
            (and `logs/curves.png`, the loss and metric curves), best-checkpoint
            saving and stopping on a NaN loss.
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
    backup_dir = backup_dir or os.path.join(work_dir, "backup")
    announce_resume(backup_dir)
    # Two copies, so that a kill while writing one still leaves the other.
    callbacks.append(keras.callbacks.BackupAndRestore(backup_dir, double_checkpoint=True))
    if max_minutes:
        callbacks.append(TimeBudget(max_minutes))
    return callbacks


def fit(model, train, validation, epochs, callbacks, verbose=1):
    """`model.fit` without the warnings that streamed tf.data inputs raise."""
    with warnings.catch_warnings():
        # tf.data shuffles; and a streamed dataset has no length until the
        # first epoch ends, which Keras reports as "ran out of data".
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        return model.fit(train, validation_data=validation, epochs=epochs,
                         callbacks=callbacks, verbose=verbose)


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


def build_tokenizer(recipe, train_paths, work_dir):
    """The recipe's joint tokenizer, from both sides of the training data:
    a SentencePiece model, or a word vocabulary (`recipe.tokenizer`).

    An existing tokenizer in `work_dir` is reused, so that a resumed run
    keeps its vocabulary.
    """
    cls = WordTokenizer if recipe.tokenizer == "words" else SubwordTokenizer
    path = os.path.join(work_dir, cls.file_name)
    if os.path.exists(path):
        return cls.from_file(path)
    source, target = train_paths
    sentences = itertools.chain.from_iterable(zip(iter_lines(source), iter_lines(target)))
    sentences = (s for s in sentences if s.strip())
    if cls is WordTokenizer:
        tokenizer = WordTokenizer(build_word_vocabulary(
            sentences, recipe.vocabulary_size, min_count=recipe.min_word_count))
    else:
        tokenizer = SubwordTokenizer(train_sentencepiece(
            sentences, vocab_size=recipe.vocabulary_size, split_digits=recipe.split_digits))
    os.makedirs(work_dir, exist_ok=True)
    tokenizer.save(path)
    return tokenizer


def mixed_precision_policy():
    """`mixed_float16` on a GPU, `mixed_bfloat16` on CPU (AVX512-BF16 runs it natively)."""
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def float32_copy(model):
    """The same model computing in float32 on plain (not distributed)
    variables, for export: serving, TFLite and CPUs without bfloat16 units
    then need no low-precision kernels, and exports carry no strategy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = model.__class__.from_config(dict(model.get_config(), dtype="float32"))
        copy.build()
        copy.set_weights(model.get_weights())
    finally:
        keras.config.set_dtype_policy(previous)
    return copy


def side_vocabularies(recipe, train_paths, tokenizer):
    """`{"source_vocabulary": ..., "target_vocabulary": ...}`, the ids each
    side of the training data uses, if the recipe asks for them; else `{}`."""
    if not recipe.side_vocabularies:
        return {}
    # The lines as the training pipeline reads them.
    return {
        f"{side}_vocabulary": vocabulary_in_use(tokenizer, text_line_dataset(path).as_numpy_iterator())
        for side, path in zip(("source", "target"), train_paths)
    }


def build_model(recipe, vocabulary_size, total_steps=None, vocabularies=None):
    """The recipe's model, compiled. With `total_steps`, the learning rate
    follows a cosine decay to 5% of its initial value over that many steps.
    `vocabularies`: from `side_vocabularies`."""
    model = get_model_class(recipe.model)(
        vocabulary_size, **recipe.model_config, **(vocabularies or {}))
    model.build()
    learning_rate = recipe.learning_rate
    if total_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            recipe.learning_rate, decay_steps=total_steps, alpha=0.05
        )
    model.compile(
        optimizer=FusedAdam(learning_rate, global_clipnorm=recipe.clipnorm),
        loss=SequenceCrossEntropy(label_smoothing=recipe.label_smoothing,
                                  ignore_unknown=model.copies_source),
        metrics=[MaskedAccuracy()],
    )
    return model


def announce_resume(backup_dir):
    """Prints where a run resumes from, if `backup_dir` holds a backup."""
    metadata = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(metadata):
        return None
    with open(metadata) as f:
        done = json.load(f)["epoch"]
    print(f"Resuming from the backup in {backup_dir}: {done} epoch(s) already done, "
          f"continuing with epoch {done + 1}.")
    return done


def train_recipe(recipe, work_dir, data_dir=None, max_minutes=None, epochs=None, verbose=1,
                 backup_dir=None, mixed_precision=False, on_bad_line="fail",
                 callback_options=None, strategy=None, extra_callbacks=()):
    """Trains `recipe` and saves the run to `work_dir`.

    Args:
        recipe: a `zoo.Recipe`.
        work_dir: the run folder (data for generated tasks, tokenizer, logs,
            checkpoints, the final model).
        data_dir: folder of the recipe's files, for recipes on real data.
        max_minutes: stop cleanly after this much training time.
        epochs: override the recipe's number of epochs.
        verbose: Keras progress bars (1) or not (0).
        backup_dir: where `keras.callbacks.BackupAndRestore` keeps the last
            finished epoch (default `work_dir/backup`). A run killed at any
            point and started again with the same arguments continues from
            there, losing at most the epoch in progress; the backup is
            removed when training completes.
        on_bad_line: `"fail"` stops at the first blank, undecodable or
            overlong line pair, naming file and line; `"skip"` drops such
            pairs and prints how many.
        mixed_precision: train under `mixed_precision_policy()`; Keras wraps
            the optimizer in a loss-scaling one for float16. Logits are cast
            to float32 after the output matmul; attention softmaxes and the
            loss are float32; the saved and exported model computes in
            float32.
        callback_options: keyword arguments of `training_callbacks`
            (early stopping patience, TensorBoard, best checkpoint, NaN stop).
        extra_callbacks: more Keras callbacks for `fit`.
        strategy: a `tf.distribute.Strategy` (`distribution_strategy`); the
            model is built in its scope, each global batch of
            `recipe.batch_size` is split across its replicas, and batches are
            sharded across workers. Only the chief saves the run.

    Returns:
        `(translator, paths, history)`; translator is None on a worker that
        is not the chief.
    """
    import tensorflow as tf

    strategy, chief, work_dir, backup_dir = _roles(strategy, work_dir, backup_dir)
    keras.utils.set_random_seed(recipe.seed)
    paths = recipe.prepare_data(data_dir, work_dir)
    # One streaming pass checks every split before any training starts.
    reports = {
        split: check_parallel_files(*paths[split], on_bad_line=on_bad_line)
        for split in ("train", "val", "test") if split in paths
    }
    for split, report in reports.items():
        skipped = report["pairs"] - report["usable"]
        if skipped:
            print(f"Skipping {skipped} of {report['pairs']} {split} pairs: "
                  f"{report['blank']} blank, {report['undecodable']} not UTF-8, "
                  f"{report['overlong']} too long")
    train_pairs = reports["train"]["usable"]
    tokenizer = build_tokenizer(recipe, paths["train"], work_dir)

    def batches(split, shuffle):
        return shard_batches(parallel_text_dataset(
            *paths[split],
            tokenizer,
            batch_size=recipe.batch_size,
            max_source_length=recipe.max_source_length,
            max_target_length=recipe.max_target_length,
            shuffle=shuffle,
            seed=recipe.seed,
            check_files=False,
            extended_ids=get_model_class(recipe.model).copies_source,
        ), strategy)

    epochs = epochs or recipe.epochs
    steps_per_epoch = math.ceil(train_pairs / recipe.batch_size)
    vocabularies = side_vocabularies(recipe, paths["train"], tokenizer)
    previous_policy = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
        print(f"Mixed precision: {keras.config.dtype_policy().name}")
    try:
        with strategy.scope():
            model = build_model(
                recipe,
                tokenizer.vocab_size,
                total_steps=epochs * steps_per_epoch if recipe.decay_learning_rate else None,
                vocabularies=vocabularies,
            )
    finally:
        keras.config.set_dtype_policy(previous_policy)
    callbacks = training_callbacks(work_dir, backup_dir, max_minutes, **(callback_options or {}))
    callbacks += list(extra_callbacks)
    history = fit(model, batches("train", shuffle=True), batches("val", shuffle=False),
                  epochs, callbacks, verbose)
    if not chief:
        return None, paths, history
    if mixed_precision or strategy is not tf.distribute.get_strategy():
        model = float32_copy(model)
    translator = Translator(
        model, tokenizer, recipe.max_source_length, recipe.max_target_length
    )
    translator.save_run(work_dir)
    return translator, paths, history


def translate_file(translator, source_path, batch_size=256, beam=False):
    """Translations of every line of `source_path` (greedy, or the export's
    beam search), as a list of str."""
    search = translator.serving_default if beam else translator.greedy
    return translate_texts(search, list(iter_lines(source_path)), batch_size)


def translate_texts(search, lines, batch_size):
    """`search`'s translations of `lines` (str), in batches of similar length.

    Args:
        search: a text signature, `text` string [batch] -> {"translation":
            string [batch], ...}: a `Translator`'s or a loaded export's.
    """
    import tensorflow as tf

    from keras_seq2seq.decoding import translate_in_length_batches

    def translate_batch(batch):
        return [t.decode("utf-8") for t in search(text=tf.constant(batch))["translation"].numpy()]

    return translate_in_length_batches(translate_batch, lines, batch_size)


def evaluate_exact_match(translator, source_path, target_path):
    """Greedy exact-match accuracy on a pair of files."""
    return exact_match(translate_file(translator, source_path), list(iter_lines(target_path)))


def pointer_data(recipe, work_dir):
    """The recipe's generated training and validation instances (cached in
    `work_dir/data/`, so a resumed run reuses them)."""
    from keras_seq2seq.data.points import cached_instances

    data = os.path.join(work_dir, "data")
    return {
        split: cached_instances(os.path.join(data, f"{split}.npz"), recipe.problem, size,
                                recipe.points, seed)
        for split, size, seed in (("train", recipe.train_size, 1000 + recipe.seed),
                                  ("val", recipe.val_size, 2000 + recipe.seed))
    }


def train_pointer_recipe(recipe, work_dir, max_minutes=None, epochs=None, verbose=1,
                         backup_dir=None, mixed_precision=False, callback_options=None,
                         strategy=None):
    """Trains a `zoo.PointerRecipe` (convex hull, TSP) and saves the run.

    Arguments as `train_recipe`'s. Returns `(solver, data, history)`: a
    `PointerSolver`, the instances by split, and the Keras history.
    """
    import tensorflow as tf

    from keras_seq2seq.data.points import pointer_dataset
    from keras_seq2seq.export import PointerSolver

    strategy, chief, work_dir, backup_dir = _roles(strategy, work_dir, backup_dir)
    keras.utils.set_random_seed(recipe.seed)
    start = time.monotonic()
    data = pointer_data(recipe, work_dir)
    print(f"{recipe.problem}, n={recipe.points}: {len(data['train'][0]):,} training instances "
          f"ready in {time.monotonic() - start:.0f} s")
    epochs = epochs or recipe.epochs
    steps = math.ceil(len(data["train"][0]) / recipe.batch_size)
    previous_policy = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
    try:
        with strategy.scope():
            model = get_model_class(recipe.model)(**recipe.model_config)
            model.build()
            learning_rate = keras.optimizers.schedules.CosineDecay(
                recipe.learning_rate, decay_steps=epochs * steps, alpha=0.05)
            model.compile(
                optimizer=FusedAdam(learning_rate, global_clipnorm=recipe.clipnorm),
                loss=SequenceCrossEntropy(),
                metrics=[MaskedAccuracy()],
            )
    finally:
        keras.config.set_dtype_policy(previous_policy)
    callbacks = training_callbacks(work_dir, backup_dir, max_minutes, **(callback_options or {}))
    history = fit(
        model,
        shard_batches(pointer_dataset(*data["train"], recipe.batch_size, shuffle=True,
                                    seed=recipe.seed), strategy),
        shard_batches(pointer_dataset(*data["val"], 1000), strategy),
        epochs, callbacks, verbose,
    )
    if not chief:
        return None, data, history
    if mixed_precision or strategy is not tf.distribute.get_strategy():
        model = float32_copy(model)
    solver = PointerSolver(model, recipe.points, beam_size=recipe.beam_size)
    solver.save_run(work_dir)
    return solver, data, history


def evaluate_pointer(solver, problem, points, beam_size=None, batch_size=500):
    """Convex hull or TSP metrics of a solver's outputs on `points` [count, n, 2]."""
    import numpy as np

    from keras_seq2seq.data.points import solve
    from keras_seq2seq.metrics import convex_hull_metrics, tsp_metrics

    import tensorflow as tf

    search = tf.function(lambda chunk: solver.search(chunk, beam_size=beam_size)[0][:, 0])
    rows = [search(points[i : i + batch_size]).numpy() for i in range(0, len(points), batch_size)]
    predicted = np.concatenate(rows)
    if problem == "convex_hull":
        return convex_hull_metrics(points, predicted)
    if problem == "tsp":
        return tsp_metrics(points, predicted, solve("tsp", points))
    raise ValueError(f"no metrics for {problem!r}")
