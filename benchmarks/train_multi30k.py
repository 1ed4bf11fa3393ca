"""Trains the multi30k-de-en-attention recipe for a time budget and scores it.

    python benchmarks/train_multi30k.py --data ../shared/data/multi30k --max-minutes 20
    python benchmarks/train_multi30k.py --data ../shared/data/multi30k --max-minutes 30 --epochs 22
    python benchmarks/train_multi30k.py --data ../shared/data/multi30k --max-minutes 20 --batch-tokens 2048

Prints one JSON line: `bleu` and `chrf` (sacrebleu on test_2016_flickr,
beam 5, through the exported SavedModel), `train_target_tokens_per_s`
(non-padding target tokens per second of training, from the epochs after the
first, whose time includes tracing; validation excluded), `peak_rss_mb`,
`minutes` (wall clock of the whole training call), `repeated_trigram_rate`
(of the test outputs), `decode_sentences_per_s`
(the export at batch 32 and batch 1, beam 5, the test file in batches of
similar length as `keras-seq2seq translate` and onmt_translate batch a
file) and the machine; with `--bfloat16-matmuls`, the same figures of a
second export of the model with bfloat16 matrix products; with `--xla`, of
an export whose one-sentence search XLA compiles (`export --xla`).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import keras_seq2seq  # noqa: E402

keras_seq2seq.prefer_onednn_kernels()  # it trains, as `keras-seq2seq train`

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import (  # noqa: E402
    add_precision_arguments, add_thread_arguments, apply_thread_arguments, machine,
    request_batches)
from keras_seq2seq.data import iter_lines, parallel_text_dataset  # noqa: E402
from keras_seq2seq.export import RunFolder, export_saved_model  # noqa: E402
from keras_seq2seq.metrics import repeated_ngram_rate  # noqa: E402
from keras_seq2seq.tasks import task_for, translate_texts  # noqa: E402
from keras_seq2seq.training import train  # noqa: E402
from keras_seq2seq.zoo import load_recipe  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Training seconds of each epoch, from its start to its last batch."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.batches = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.last, self.count = time.monotonic(), None, 0

    def on_train_batch_end(self, batch, logs=None):
        self.last, self.count = time.monotonic(), self.count + 1

    def on_epoch_end(self, epoch, logs=None):
        if self.last is not None:
            self.seconds.append(self.last - self.start)
            self.batches.append(self.count)


def target_tokens_per_epoch(recipe, paths, tokenizer):
    training = recipe.training
    dataset = parallel_text_dataset(
        *paths["train"], tokenizer, batch_size=training["batch_size"],
        batch_tokens=training["batch_tokens"], max_source_length=training["max_source_length"],
        max_target_length=training["max_target_length"], shuffle=False, check_files=False)
    tokens = batches = 0
    for _, targets in dataset:
        tokens += int(tf.math.count_nonzero(targets))
        batches += 1
    return tokens, batches


def decode_speed(signature, lines, batch_size, seconds=20.0, sort=True):
    """Sentences per second through `signature` over all of `lines`, in
    `request_batches`: whole passes for at least `seconds`, after an
    untimed one (tracing; an XLA search compiles a program per source
    length bucket on its first request of that length, as a server does
    once). Whole passes, so that batch 1 is timed on every sentence, as
    onmt_translate's figure is, not on the shortest ones first."""
    batches = [tf.constant(batch) for batch in request_batches(lines, batch_size, sort)]
    for batch in batches:
        signature(text=batch)
    done, start = 0, time.monotonic()
    while done == 0 or time.monotonic() - start < seconds:
        for batch in batches:
            signature(text=batch)
            done += int(batch.shape[0])
    return done / (time.monotonic() - start)


# The requests decode speed is timed on: `{key: (batch size, sorted by length)}`.
DECODE_REQUESTS = {"beam5_batch32": (32, True), "beam5_batch32_file_order": (32, False),
                   "beam5_batch1": (1, True)}


def score_export(exportable, path, sources, references):
    """Exports `exportable` to `path`; `(figures, serving_default,
    translations)`: BLEU, chrF and the repeated-trigram rate of its
    translations of `sources`, and its decode speeds (`decode_speed` on
    each of `DECODE_REQUESTS`)."""
    import sacrebleu
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

    served = tf.saved_model.load(export_saved_model(exportable, path)).signatures[
        "serving_default"]
    hypotheses = translate_texts(served, sources, 32)
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
        "repeated_trigram_rate": round(repeated_ngram_rate(hypotheses), 4),
        "decode_sentences_per_s": {
            key: round(decode_speed(served, sources, batch, sort=sort), 1)
            for key, (batch, sort) in DECODE_REQUESTS.items()},
    }, served, hypotheses


def train_and_score(recipe_name, data, max_minutes, work_dir, mixed_precision=None,
                    epochs=None, bfloat16_matmuls=False, xla_search=False, shortlist=0,
                    parallel_searches=1, batch_tokens=None):
    """Trains a Multi30k recipe for a budget, exports it and scores the export.
    `mixed_precision`: True or False overrides the recipe's
    `training.mixed_precision` (None keeps it); exports are float32 either way.
    `epochs`: the learning-rate schedule's length, if not the recipe's.
    `batch_tokens`: token batches (`training.batch_tokens`) instead of the
    recipe's sentence batches.
    `bfloat16_matmuls`: also export the model with bfloat16 matrix products
    (`keras-seq2seq export --bfloat16-matmuls`) and score that export
    (figures under "bfloat16_matmuls").
    `xla_search`: also export the model with its one-sentence search
    compiled by XLA (`keras-seq2seq export --xla`) and score that export
    (figures under "xla_search").
    `shortlist`, `parallel_searches`: also score exports with a shortlist,
    and searching a request as that many searches (see `score_exports`).

    Returns `(figures, served, paths)`: the figures of the JSON line, the
    export's `serving_default` and the recipe's files.
    """
    recipe = load_recipe(recipe_name, data_dir=data)
    training = {} if mixed_precision is None else {"mixed_precision": mixed_precision}
    if epochs:
        training["epochs"] = epochs
    if batch_tokens:
        training["batch_tokens"] = batch_tokens
    recipe = recipe.replace(training=training)
    timer = EpochTimer()
    start = time.monotonic()
    task = task_for(recipe)
    result = train(task, work_dir, max_minutes=max_minutes, verbose=2, extra_callbacks=[timer])
    translator, paths, history = result.exportable, task.paths, result.history
    minutes = (time.monotonic() - start) / 60
    tokens, batches = target_tokens_per_epoch(recipe, paths, translator.tokenizer)
    # Epochs after the first, whole ones only (a time budget may cut the last).
    later = [(s, b) for s, b in zip(timer.seconds[1:], timer.batches[1:]) if b == batches]
    if not later:
        later = list(zip(timer.seconds, timer.batches))
    tokens_per_s = sum(tokens * b / batches for _, b in later) / sum(s for s, _ in later)
    median_tokens_per_s = statistics.median(tokens * b / batches / s for s, b in later)

    exports, served = score_exports(translator, work_dir, paths, bfloat16_matmuls, xla_search,
                                    shortlist, parallel_searches)
    figures = {
        "recipe": recipe.name,
        **exports,
        "train_target_tokens_per_s": round(tokens_per_s),
        # Not moved by an epoch that stalls (stalls of half a minute or more
        # were seen in both toolkits' runs); compare with the peers' median.
        "train_target_tokens_per_s_median": round(median_tokens_per_s),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "minutes": round(minutes, 2),
        "epochs": len(history.history.get("loss", [])),
        "batch_tokens": recipe.training["batch_tokens"],
        "mixed_precision": recipe.training["mixed_precision"],
        "machine": machine(),
    }
    return figures, served, paths


def score_run(recipe_name, data, work_dir, bfloat16_matmuls=False, xla_search=False,
              shortlist=0, parallel_searches=1):
    """`score_exports` of the run an earlier `train_and_score` left in
    `work_dir`, with the machine named (no training figures)."""
    task = task_for(load_recipe(recipe_name, data_dir=data))
    task.prepare(work_dir)
    figures, _ = score_exports(RunFolder(work_dir).load(), work_dir, task.paths,
                               bfloat16_matmuls, xla_search, shortlist, parallel_searches)
    return {"recipe": recipe_name, "run": work_dir, **figures, "machine": machine()}


def score_exports(translator, work_dir, paths, bfloat16_matmuls=False, xla_search=False,
                  shortlist=0, parallel_searches=1):
    """Exports a trained model under `work_dir` and scores the export on the
    test files of `paths`: `(figures, serving_default)`, the figures as
    `score_export`'s, with those of the `bfloat16_matmuls` and `xla_search`
    exports under those keys when asked for; with `shortlist` (outputs a
    source token, `keras-seq2seq export --shortlist`, built from the
    training files), those of the float32 export and (with `xla_search`)
    the XLA export with that shortlist, under "shortlist" and
    "xla_search_shortlist"; with `parallel_searches` N > 1 (`keras-seq2seq
    export --parallel-searches`), those of the float32 export searching
    each request as N searches, and of the shortlisted ones so, under
    "parallel_searches", "shortlist_parallel_searches" and
    "xla_search_shortlist_parallel_searches"."""
    sources = list(iter_lines(paths["test"][0]))
    references = list(iter_lines(paths["test"][1]))
    # The plain export, whatever the recipe's `export` section adds: the
    # variants below are each measured against it.
    translator = (translator.without_shortlist().with_parallel_searches(1)
                  .with_bfloat16_matmuls(False).with_xla_search(False))
    figures, served, _ = score_export(translator, os.path.join(work_dir, "export"), sources,
                                      references)
    variants = {}
    if bfloat16_matmuls:
        variants["bfloat16_matmuls"] = translator.with_bfloat16_matmuls()
    if xla_search:
        variants["xla_search"] = translator.with_xla_search()
    if shortlist:
        shortlisted = translator.with_shortlist(*map(iter_lines, paths["train"]), shortlist)
        variants["shortlist"] = shortlisted
        if xla_search:
            variants["xla_search_shortlist"] = shortlisted.with_xla_search()
    if parallel_searches > 1:
        for name, variant in [("", translator)] + list(variants.items()):
            if name in ("", "shortlist", "xla_search_shortlist"):
                variants[(name + "_" if name else "") + "parallel_searches"] = (
                    variant.with_parallel_searches(parallel_searches))
    for name, variant in variants.items():
        figures[name], _, _ = score_export(
            variant, os.path.join(work_dir, "export-" + name.replace("_", "-")), sources,
            references)
    return figures, served


def add_export_variant_arguments(parser):
    """`--shortlist` and `--parallel-searches`: exports scored beside the
    plain one (`score_exports`)."""
    parser.add_argument("--shortlist", type=int, default=0, metavar="PER_TOKEN",
                        help="also score exports with a lexical shortlist of this many outputs "
                        "a source token (float32, and XLA where an XLA export is scored)")
    parser.add_argument("--parallel-searches", type=int, default=1, metavar="N",
                        help="also score exports searching each request as N searches side "
                        "by side (float32, and with the shortlist)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the multi30k folder")
    parser.add_argument("--max-minutes", type=float, required=True)
    parser.add_argument("--recipe", default="multi30k-de-en-attention")
    parser.add_argument("--work-dir", default=os.path.join("runs", "bench-multi30k"))
    add_precision_arguments(parser)
    parser.add_argument("--bfloat16-matmuls", action="store_true",
                        help="also score an export with bfloat16 matrix products")
    parser.add_argument("--xla", action="store_true",
                        help="also score an export whose one-sentence search XLA compiles")
    add_export_variant_arguments(parser)
    add_thread_arguments(parser)
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the recipe's epochs (and so its learning-rate schedule), "
                        "to fill a longer budget")
    parser.add_argument("--batch-tokens", type=int, default=None, metavar="N",
                        help="batches of up to N tokens (training.batch_tokens) instead of the "
                        "recipe's sentences a batch")
    args = parser.parse_args()
    threads = apply_thread_arguments(args)
    figures, _, _ = train_and_score(args.recipe, args.data, args.max_minutes, args.work_dir,
                                    args.mixed_precision, args.epochs, args.bfloat16_matmuls,
                                    args.xla, args.shortlist, args.parallel_searches,
                                    args.batch_tokens)
    print(json.dumps({**figures, **threads}), flush=True)


if __name__ == "__main__":
    main()
