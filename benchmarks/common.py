"""What the benchmark scripts share: the machine line of their JSON, how
requests are batched, the precision and thread flags, training or reusing
a run, and choosing decode settings on validation."""

import argparse
import json
import os
import platform
import sys

from keras_seq2seq.decoding import length_batches
from keras_seq2seq.export import RunFolder
from keras_seq2seq.training import train


def machine():
    """The machine a figure was measured on: CPU model, cores and GPUs."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{cpu}, {os.cpu_count()} CPU cores, " + (f"{gpus} GPU" if gpus else "no GPU")


def request_batches(lines, batch_size, sort):
    """`lines` in requests of `batch_size` (lists of lines): of similar
    length as `keras-seq2seq translate` (and onmt_translate) make them, or
    with `sort=False` in file order, as a server receives them."""
    if sort:
        return [[lines[i] for i in batch] for batch in length_batches(lines, batch_size)]
    return [lines[i: i + batch_size] for i in range(0, len(lines), batch_size)]


def add_precision_arguments(parser):
    """`--[no-]mixed-precision`, as the command line's: override the recipe's
    `training.mixed_precision` (neither keeps it)."""
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction,
                        default=None, help="train in mixed precision, or not; default: "
                        "as the recipe says")


def add_thread_arguments(parser):
    """`--inter-op-threads` and `--intra-op-threads`: TensorFlow's thread
    pools, as TF Serving's `--tensorflow_inter_op_parallelism` and
    `--tensorflow_intra_op_parallelism` set them (0: TensorFlow's default,
    one thread a core for each)."""
    parser.add_argument("--inter-op-threads", type=int, default=0,
                        help="operations run side by side (0: TensorFlow's default)")
    parser.add_argument("--intra-op-threads", type=int, default=0,
                        help="threads one operation splits over (0: TensorFlow's default)")


def apply_thread_arguments(args):
    """Sets the thread pools of `add_thread_arguments`, before TensorFlow
    runs anything; returns them for the report."""
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    return {"inter_op_threads": args.inter_op_threads or "default",
            "intra_op_threads": args.intra_op_threads or "default"}


def train_or_load(task, work_dir, max_minutes, skip_training):
    """`(exportable, training minutes)`: the task trained in `work_dir` within
    `max_minutes`, or, with `skip_training`, the run already there (minutes None)."""
    if skip_training:
        task.prepare(work_dir)
        return RunFolder(work_dir).load(), None
    result = train(task, work_dir, max_minutes=max_minutes, verbose=2)
    return result.exportable, result.minutes


def choose_on_validation(exportable, candidates, score, rank):
    """`(exportable, table)`: `exportable` with the settings among
    `candidates` (dicts such as `{"alpha": 0.5}`) whose validation scores
    rank highest, and a row of settings and scores per candidate.
    `score(exportable)` decodes the validation split and returns its scores
    (a dict); `rank(row)` is the value to maximise. With one candidate
    nothing is decoded and the table is empty. Never tune on test."""
    if len(candidates) == 1:
        return exportable.with_settings(**candidates[0]), []
    table = []
    for settings in candidates:
        scores = score(exportable.with_settings(**settings))
        table.append({**settings, **{k: round(v, 4) for k, v in scores.items()}})
        print(json.dumps({"validation": table[-1]}), file=sys.stderr, flush=True)
    best = max(table, key=rank)
    return exportable.with_settings(**{k: best[k] for k in candidates[0]}), table
