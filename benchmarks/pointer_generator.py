"""The pointer-generator against the attention recipe on Multi30k De->En.

    python benchmarks/pointer_generator.py --data ../shared/data/multi30k --max-minutes 20

Trains `multi30k-de-en-pointer-generator` and `multi30k-de-en-attention`, one
after the other, each for the same budget, and scores both exports (beam 5,
through `serving_default`) as `train_multi30k.py` does. Then it measures how
often invented names (`keras_seq2seq.data.names.name_probes`: the subject of
each test sentence that starts with "Ein Mann", "Eine Frau", ... replaced by
a name found nowhere in the training data) come out verbatim in the
English translation of each export. Prints one JSON line: per model the
`train_multi30k.py` figures plus `names_verbatim` (share of probes whose
output contains the name as a word) and `names_probes`, and the BLEU
difference.
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.common import add_precision_arguments  # noqa: E402
from benchmarks.train_multi30k import train_and_score  # noqa: E402

from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.data.names import name_probes  # noqa: E402
from keras_seq2seq.tasks import translate_texts  # noqa: E402

RECIPES = ("multi30k-de-en-pointer-generator", "multi30k-de-en-attention")


def training_words(paths):
    """Every word (letters and digits) of both training files."""
    words = set()
    for path in paths["train"]:
        for line in iter_lines(path):
            words.update(re.findall(r"\w+", line))
    return words


def names_verbatim(served, probes):
    outputs = translate_texts(served, [sentence for sentence, _ in probes], 32)
    hits = [bool(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", out))
            for out, (_, name) in zip(outputs, probes)]
    return sum(hits) / len(hits), list(zip(probes, outputs))[:5]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the multi30k folder")
    parser.add_argument("--max-minutes", type=float, required=True,
                        help="training budget of each model")
    parser.add_argument("--work-dir", default=os.path.join("runs", "bench-pointer-generator"))
    add_precision_arguments(parser)
    parser.add_argument("--recipes", default=",".join(RECIPES),
                        help="comma-separated; the default trains both")
    args = parser.parse_args()

    results = {}
    for name in args.recipes.split(","):
        figures, served, paths = train_and_score(
            name, args.data, args.max_minutes, os.path.join(args.work_dir, name),
            args.mixed_precision)
        probes = name_probes(list(iter_lines(paths["test"][0])), training_words(paths))
        figures["names_verbatim"], examples = names_verbatim(served, probes)
        figures["names_verbatim"] = round(figures["names_verbatim"], 4)
        figures["names_probes"] = len(probes)
        print(json.dumps({"progress": figures, "examples": examples}, ensure_ascii=False),
              file=sys.stderr, flush=True)
        results[name] = figures
    line = {"models": results}
    if set(RECIPES) <= set(results):
        line["bleu_difference"] = round(
            results[RECIPES[0]]["bleu"] - results[RECIPES[1]]["bleu"], 2)
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
