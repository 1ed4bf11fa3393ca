"""Training-step speed of a recipe, without the noise of a whole run.

    python benchmarks/train_step_speed.py --data ../shared/data/multi30k --batches 200
    python benchmarks/train_step_speed.py --recipe samsum-pointer-generator \
        --data ../shared/data/samsum --batches 40
    python benchmarks/train_step_speed.py --recipe spoken-digit-strings \
        --data ../shared/data/fsdd --batches 60
    python benchmarks/train_step_speed.py --recipe multi30k-de-en-pointer-generator \
        --data ../shared/data/multi30k --set tokenizer.vocabulary_size=4000

Takes the first `--batches` batches of the recipe's real training pipeline
(`Task.datasets`: shuffled, bucketed, the tokenizer trained on the training
files, cached in `--work-dir`: by default a folder per recipe and settings
under runs/bench-train-step, since a folder holds one recipe's tokenizer and
data and is refused to another, as a training run's is), holds them in
memory, and times `model.fit` over them after a warm-up, so that neither the
input pipeline nor tracing is counted. A Multi30k model has the recipe's
side vocabularies unless `--whole-vocabulary`. `--set SECTION.KEY=VALUE`
(repeatable; VALUE read as YAML) changes one setting of the recipe, to time
models of equal sizes across recipes. Prints one JSON line: non-padding
target tokens per second, steps per second, the CPU seconds the pipeline
took per batch it made (the filling of its shuffle and bucket buffers
included, so more `--batches` give a truer figure), the share of target and
(text recipes) source positions that are real tokens, and the machine.
The first batches of a bucketed stream are not an epoch's mix of lengths:
with `--set training.batch_tokens=2048` they read 1.16-1.18x the tokens/s
of 64-sentence batches, where whole epochs read the same
(`train_multi30k.py --batch-tokens 2048`): compare token batches over epochs.
"""

import argparse
import json
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import keras_seq2seq  # noqa: E402

keras_seq2seq.prefer_onednn_kernels()  # it trains, as `keras-seq2seq train`

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

from benchmarks.common import (  # noqa: E402
    add_precision_arguments, add_thread_arguments, apply_thread_arguments, machine)
from keras_seq2seq.export import RunFolder  # noqa: E402
from keras_seq2seq.tasks import task_for  # noqa: E402
from keras_seq2seq.training import mixed_precision_policy  # noqa: E402
from keras_seq2seq.zoo import load_recipe  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="multi30k-de-en-attention")
    parser.add_argument("--data", required=True, help="the recipe's data folder")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--work-dir", default=None,
                        help="where the tokenizer and data are cached (default: a folder of "
                             "runs/bench-train-step named by the recipe and --set)")
    add_precision_arguments(parser)
    add_thread_arguments(parser)
    parser.add_argument("--whole-vocabulary", action="store_true",
                        help="both sides over all 8,000 joint pieces (no side vocabularies)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one recipe setting, e.g. model.attention=coverage")
    args = parser.parse_args()
    threads = apply_thread_arguments(args)

    recipe = load_recipe(args.recipe, data_dir=args.data)
    if args.whole_vocabulary:
        recipe = recipe.replace(tokenizer={"side_vocabularies": False})
    for setting in args.set:
        name, _, value = setting.partition("=")
        section, _, key = name.partition(".")
        if not (key and value):
            parser.error(f"--set {setting!r}: expected SECTION.KEY=VALUE")
        recipe = recipe.replace(**{section: {key: yaml.safe_load(value)}})
    training = recipe.training
    keras.utils.set_random_seed(training["seed"])
    changes = [*args.set, *(["whole-vocabulary"] if args.whole_vocabulary else [])]
    work_dir = args.work_dir or os.path.join(
        "runs", "bench-train-step", re.sub(r"[^\w.=-]", "_", "-".join([args.recipe, *changes])))
    # A folder's cached tokenizer and data are another recipe's to reuse
    # only if it is the same recipe with the same settings.
    RunFolder(work_dir).claim(recipe.identity())
    task = task_for(recipe).prepare(work_dir, strategy=tf.distribute.get_strategy())
    pipeline, _ = task.datasets()
    # The input pipeline's own cost: in `fit` it shares the cores with the step.
    cpu_start = time.process_time()
    batches = list(pipeline.take(args.batches))
    pipeline_cpu_s = (time.process_time() - cpu_start) / len(batches)

    def real_share(tensors):
        return sum(int(tf.math.count_nonzero(t)) for t in tensors) / sum(int(tf.size(t)) for t in tensors)

    targets = [t for _, t in batches]
    tokens = sum(int(tf.math.count_nonzero(t)) for t in targets)
    mixed_precision = (training["mixed_precision"] if args.mixed_precision is None
                       else args.mixed_precision)
    if mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
    model = task.build_model(total_steps=training["epochs"] * 500)
    in_memory = tf.data.Dataset.from_generator(lambda: iter(batches),
                                               output_signature=pipeline.element_spec)
    model.fit(in_memory.take(20), epochs=1, verbose=0)  # tracing, warm-up
    start = time.monotonic()
    model.fit(in_memory, epochs=1, verbose=0)
    seconds = time.monotonic() - start
    figures = {
        "train_target_tokens_per_s": round(tokens / seconds),
        "steps_per_s": round(len(batches) / seconds, 2),
        "pipeline_cpu_s_per_batch": round(pipeline_cpu_s, 4),
        "real_target_positions": round(real_share(targets), 3),
    }
    if recipe.task == "text":  # images and recordings: no source tokens, one vocabulary
        figures["real_source_positions"] = round(
            real_share([x["source_ids"] for x, _ in batches]), 3)
        figures["output_vocabulary"] = model.target_size
    print(json.dumps({
        **figures,
        "batches": len(batches),
        "recipe": args.recipe,
        "settings": args.set,
        "dtype_policy": keras.config.dtype_policy().name,
        **threads,
        "machine": machine(),
    }), flush=True)


if __name__ == "__main__":
    main()
