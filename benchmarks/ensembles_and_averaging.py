"""BLEU of one model, of its last epochs averaged, and of an ensemble of two seeds.

    python benchmarks/ensembles_and_averaging.py --data ../shared/data/multi30k --max-minutes 20

Trains the multi30k-de-en-attention recipe twice, with seeds 0 and 1, each
for the same budget and with `training.average_last` (default 3), then
scores on test_2016_flickr (sacrebleu, cased 13a, beam 5, the recipe's
alpha): each run's model as training left it ("single"), the average of
its last epochs ("averaged"), and the ensembles of the two singles and of
the two averages. Prints one JSON line with those BLEU and chrF figures,
each run's epochs and minutes, the decode speed of a single model and of an
ensemble, and the machine.
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

import keras  # noqa: E402

from benchmarks.common import machine  # noqa: E402
from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.export import RunFolder, Translator  # noqa: E402
from keras_seq2seq.tasks import task_for, translate_texts  # noqa: E402
from keras_seq2seq.training import train  # noqa: E402
from keras_seq2seq.zoo import load_recipe  # noqa: E402


class FinalWeights(keras.callbacks.Callback):
    """The model's weights when training ends (before any averaging)."""

    def on_train_end(self, logs=None):
        self.weights = self.model.get_weights()


def scores(translator, sources, references):
    import sacrebleu

    start = time.monotonic()
    hypotheses = translate_texts(translator.serving_default, sources, 32)
    seconds = time.monotonic() - start
    return {"bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
            "sentences_per_s": round(len(sources) / seconds, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the multi30k folder of ../shared/data")
    parser.add_argument("--max-minutes", type=float, default=20.0, help="per run")
    parser.add_argument("--average", type=int, default=3, help="epochs averaged")
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 1])
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--work-dir", default="runs/ensembles-and-averaging")
    args = parser.parse_args()

    runs, singles, averaged = [], [], []
    for seed in args.seeds:
        recipe = load_recipe("multi30k-de-en-attention", data_dir=args.data).replace(
            name=f"multi30k-de-en-attention-seed{seed}",
            training={"seed": seed, "average_last": args.average,
                      "mixed_precision": args.mixed_precision})
        task = task_for(recipe)
        final = FinalWeights()
        start = time.monotonic()
        result = train(task, os.path.join(args.work_dir, f"seed{seed}"),
                       max_minutes=args.max_minutes, verbose=2, extra_callbacks=[final])
        runs.append({"seed": seed, "minutes": round((time.monotonic() - start) / 60, 2),
                     "epochs": len(result.history.history.get("loss", []))})
        averaged.append(result.exportable)
        single = RunFolder(result.work_dir).load()
        single.model.set_weights(final.weights)
        singles.append(single)
    sources = list(iter_lines(task.paths["test"][0]))
    references = list(iter_lines(task.paths["test"][1]))
    figures = {
        "recipe": "multi30k-de-en-attention",
        "test": os.path.basename(task.paths["test"][1]),
        "max_minutes_per_run": args.max_minutes,
        "averaged_epochs": args.average,
        "runs": runs,
    }
    for seed, single, average in zip(args.seeds, singles, averaged):
        figures[f"single_seed{seed}"] = scores(single, sources, references)
        figures[f"averaged_seed{seed}"] = scores(average, sources, references)
    figures["ensemble_of_singles"] = scores(Translator.ensemble(singles), sources, references)
    figures["ensemble_of_averages"] = scores(Translator.ensemble(averaged), sources, references)
    figures["mixed_precision"] = args.mixed_precision
    figures["machine"] = machine()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
