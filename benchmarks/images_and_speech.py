"""Reading images (and, with its recipe, speech) into text: accuracy and speed
through the exported SavedModel, from encoded bytes as a client sends them.

Trains a recipe (as `keras-seq2seq train --recipe NAME --data DIR` does; or
takes a run already trained with `--skip-training`), exports it, then loads
the export in this process with `tf.saved_model.load` and feeds its
`serving_default` the test split's encoded files (strings composed from
held-back digits or recordings, never used in training or validation).
Prints one JSON line: sequence accuracy, character (digit) error rate,
training minutes, and items/s through the export at batch 32 and batch 1.
With `--alphas`, the length penalty is first chosen on the validation split
(best sequence accuracy, then the lower error rate), never on the test one,
and the export carries the chosen value. With `--xla`, an `export --xla`
of the same run is timed one item at a time as well (its `xla_` figures,
and how many of those readings differ from the plain export's). With
`--baseline EXPORT` (another export of the same run), the two are timed
in alternating rounds, batch 32 and batch 1 (`baseline_` figures: each
round's ratio of items/s, and how many readings differ).

    python benchmarks/images_and_speech.py --recipe digit-strings-image \
        --data ../shared/data/mnist-digits --max-minutes 30
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import keras_seq2seq  # noqa: E402

keras_seq2seq.prefer_onednn_kernels()  # it trains, as `keras-seq2seq train`

from benchmarks.common import choose_on_validation, machine, train_or_load  # noqa: E402
from keras_seq2seq.export import export_saved_model  # noqa: E402
from keras_seq2seq.tasks import task_for  # noqa: E402
from keras_seq2seq.tasks.reading import reading_scores  # noqa: E402
from keras_seq2seq.zoo import load_recipe  # noqa: E402


def read_all(signature, name, items, batch_size):
    """Texts the signature reads from `items` in batches, and items/s."""
    import tensorflow as tf

    texts = []
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        out = signature(**{name: tf.constant(items[i: i + batch_size])})["translation"]
        texts += [t.decode("utf-8") for t in out.numpy()]
    return texts, len(items) / (time.perf_counter() - start)


def alternate(current, baseline, name, items, singles, rounds):
    """Items/s of two signatures in alternating rounds (the first goes
    first in even rounds), at batch 32 over `items` and batch 1 over
    `singles`: each round's ratio, and how many readings differ."""
    read_all(baseline, name, items[:32], 32)  # traces once, outside the timing
    figures, differing = {}, 0
    for size, inputs in ((32, items), (1, singles)):
        rates = {"current": [], "baseline": []}
        for round_ in range(rounds):
            pair = [("current", current), ("baseline", baseline)]
            readings = {}
            for who, signature in (pair if round_ % 2 == 0 else pair[::-1]):
                readings[who], rate = read_all(signature, name, inputs, size)
                rates[who].append(rate)
            differing = max(differing, sum(
                a != b for a, b in zip(readings["current"], readings["baseline"])))
        figures[f"baseline_items_per_s_batch_{size}"] = [round(r, 1) for r in rates["baseline"]]
        figures[f"current_items_per_s_batch_{size}"] = [round(r, 1) for r in rates["current"]]
        figures[f"baseline_ratio_per_round_batch_{size}"] = [
            round(a / b, 3) for a, b in zip(rates["current"], rates["baseline"])]
    return dict(figures, baseline_readings_differing=differing)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digit-strings-image")
    parser.add_argument("--data", required=True, help="the recipe's data folder")
    parser.add_argument("--work-dir", default=None, help="run folder (default: runs/NAME)")
    parser.add_argument("--max-minutes", type=float, default=30.0)
    parser.add_argument("--skip-training", action="store_true",
                        help="measure the run already in --work-dir")
    parser.add_argument("--alphas", type=float, nargs="+", default=None,
                        help="length penalties to choose from on validation (default: the recipe's)")
    parser.add_argument("--batch-1-items", type=int, default=200,
                        help="test items decoded one at a time for the batch-1 figure")
    parser.add_argument("--xla", action="store_true",
                        help="also export with --xla and time its batch 1 (after an untimed "
                             "pass, which compiles each length bucket, as both exports get)")
    parser.add_argument("--baseline", default=None,
                        help="another export of the run, timed against this one in "
                             "alternating rounds")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (--baseline)")
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    recipe = load_recipe(args.recipe, data_dir=args.data)
    work_dir = args.work_dir or os.path.join("runs", recipe.name)
    task = task_for(recipe)
    exportable, minutes = train_or_load(task, work_dir, args.max_minutes, args.skip_training)
    table = []
    if args.alphas:
        def score(candidate):
            scores = task.evaluate(candidate, split="val")
            return {k: scores[k] for k in ("sequence_accuracy", "character_error_rate")}

        exportable, table = choose_on_validation(
            exportable, [{"alpha": alpha} for alpha in args.alphas], score,
            rank=lambda row: (row["sequence_accuracy"], -row["character_error_rate"]))
    export = export_saved_model(exportable, os.path.join(work_dir, "bench-export"), check=True)

    signature = tf.saved_model.load(export).signatures["serving_default"]
    name = exportable.input_name
    items, targets = task.test_items()
    read_all(signature, name, items[:32], 32)  # traces once, outside the timing
    texts, per_s_32 = read_all(signature, name, items, 32)
    singles = items[: args.batch_1_items]
    xla = {}
    if args.xla:
        read_all(signature, name, singles, 1)
    single_texts, per_s_1 = read_all(signature, name, singles, 1)
    if args.xla:
        xla_export = export_saved_model(exportable.with_xla_search(),
                                        os.path.join(work_dir, "bench-export-xla"), check=True)
        compiled = tf.saved_model.load(xla_export).signatures["serving_default"]
        read_all(compiled, name, singles, 1)  # compiles each bucket, outside the timing
        xla_texts, xla_per_s_1 = read_all(compiled, name, singles, 1)
        xla = {"xla_items_per_s_batch_1": round(xla_per_s_1, 1),
               "xla_ms_per_item_batch_1": round(1000 / xla_per_s_1, 1),
               "xla_readings_differing": sum(a != b for a, b in zip(xla_texts, single_texts)),
               "xla_export": xla_export}
    if args.baseline:
        xla.update(alternate(signature, tf.saved_model.load(args.baseline).signatures[
            "serving_default"], name, items, singles, args.rounds), baseline=args.baseline)
    scores = reading_scores(texts, targets, "test", f"beam {exportable.beam_size}")
    print(json.dumps({
        "recipe": recipe.name,
        "test_items": len(items),
        "sequence_accuracy": round(scores["sequence_accuracy"], 4),
        "character_error_rate": round(scores["character_error_rate"], 4),
        "training_minutes": round(minutes, 1) if minutes is not None else None,
        "items_per_s_batch_32": round(per_s_32, 1),
        "items_per_s_batch_1": round(per_s_1, 1),
        "ms_per_item_batch_1": round(1000 / per_s_1, 1),
        **xla,
        "search": f"beam {exportable.beam_size}, alpha {exportable.alpha}",
        "tuned_on": "validation: " + json.dumps(table) if table else None,
        "through": "SavedModel serving_default, encoded bytes in",
        "export": export,
        "machine": machine(),
    }))


if __name__ == "__main__":
    main()
