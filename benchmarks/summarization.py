"""Summarizing SAMSum dialogues: ROUGE and how the summaries were made,
through the exported SavedModel, for each SAMSum recipe at one budget.

For each recipe: trains it (as `keras-seq2seq train --recipe NAME --data
DIR --max-minutes M` does; or takes the run in its work folder with
`--skip-training`); tunes the length penalty `alpha` (and, for a model with
coverage, the coverage penalty `beta`) on the validation dialogues, never
the test ones; exports with the chosen values; loads the export in this
process with `tf.saved_model.load` and summarizes the 819 test dialogues
through `serving_default` in file order, 32 a request. Prints one JSON line
per recipe: ROUGE-1/2/L/Lsum F1 x 100 (rouge-score, Porter stemming; Lsum
over sentences split by `metrics.split_sentences`), novel unigram and bigram
rates, repeated trigram rate, mean summary words, training minutes and
dialogues/s; and the repeated trigram rate of the same beam search
without trigram blocking (the model's own repetition, which blocking hides).
With one alpha and one beta there is nothing to tune: validation is not
decoded.

    python benchmarks/summarization.py --data ../shared/data/samsum --max-minutes 30
"""

import argparse
import itertools
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
from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.export import export_saved_model  # noqa: E402
from keras_seq2seq.metrics import corpus_rouge, repeated_ngram_rate, summary_statistics  # noqa: E402
from keras_seq2seq.tasks import task_for  # noqa: E402
from keras_seq2seq.tasks.text import translate_texts  # noqa: E402
from keras_seq2seq.zoo import load_recipe  # noqa: E402

RECIPES = ("samsum-pointer-generator", "samsum-attention")


def rouge_x100(hypotheses, references):
    return {k: 100 * v for k, v in corpus_rouge(hypotheses, references).items()}


def summarize_all(signature, sources, batch_size):
    """Summaries of `sources` in file order, and dialogues/s."""
    import tensorflow as tf

    summaries = []
    start = time.perf_counter()
    for i in range(0, len(sources), batch_size):
        out = signature(text=tf.constant(sources[i: i + batch_size]))["translation"]
        summaries += [t.decode("utf-8") for t in out.numpy()]
    return summaries, len(sources) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the SAMSum folder")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--max-minutes", type=float, default=30.0)
    parser.add_argument("--work-root", default="runs", help="run folders go in ROOT/NAME")
    parser.add_argument("--skip-training", action="store_true",
                        help="measure the runs already in the work folders")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.6, 1.0, 1.5])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 2.0])
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    for name in args.recipes:
        recipe = load_recipe(name, data_dir=args.data)
        work_dir = os.path.join(args.work_root, recipe.name)
        task = task_for(recipe)
        translator, minutes = train_or_load(task, work_dir, args.max_minutes, args.skip_training)

        val_sources, val_references = (list(iter_lines(p)) for p in task.paths["val"])
        betas = args.betas if translator.model.has_coverage else [0.0]
        tuned, table = choose_on_validation(
            translator,
            [{"alpha": a, "beta": b} for a, b in itertools.product(args.alphas, betas)],
            lambda candidate: rouge_x100(
                translate_texts(candidate.serving_default, val_sources, 64), val_references),
            rank=lambda row: row["rouge1"] + row["rouge2"] + row["rougeL"])
        export = export_saved_model(tuned, os.path.join(work_dir, "bench-export"), check=True)

        signature = tf.saved_model.load(export).signatures["serving_default"]
        sources, references = (list(iter_lines(p)) for p in task.paths["test"])
        summarize_all(signature, sources[:32], 32)  # traces once, outside the timing
        summaries, per_s = summarize_all(signature, sources, 32)
        scores = rouge_x100(summaries, references)
        statistics = summary_statistics(summaries, sources)
        # The model's own repetition, which trigram blocking hides: the
        # same search without it (coverage is meant to make it rare).
        unblocked = tuned.with_settings(no_repeat_ngram_size=0)
        repeats = repeated_ngram_rate(translate_texts(unblocked.serving_default, sources, 32), 3)
        print(json.dumps({
            "recipe": recipe.name,
            "test_dialogues": len(sources),
            **{k: round(v, 2) for k, v in scores.items()},
            "rouge": "rouge-score 0.1.2, F1 x 100, Porter stemmer; Lsum on split_sentences",
            **{k: round(v, 4) for k, v in statistics.items()},
            "repeated_trigrams_without_blocking": round(repeats, 4),
            "reference_mean_words": round(sum(len(r.split()) for r in references)
                                          / len(references), 2),
            "training_minutes": round(minutes, 1) if minutes is not None else None,
            "dialogues_per_s_batch_32": round(per_s, 1),
            "search": (f"beam {tuned.beam_size}, alpha {tuned.alpha}, beta {tuned.beta}, "
                       f"no repeated {tuned.no_repeat_ngram_size}-grams"),
            "tuned_on": "validation: " + json.dumps(table),
            "through": "SavedModel serving_default, test file order, 32 a request",
            "export": export,
            "machine": machine(),
        }), flush=True)


if __name__ == "__main__":
    main()
