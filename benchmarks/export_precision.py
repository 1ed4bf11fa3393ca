"""A trained text run exported twice, float32 and `--bfloat16-matmuls`, compared.

    python benchmarks/export_precision.py --run runs/bench-side-by-side \\
        --data ../shared/data/multi30k [--rounds 2]

Exports the run folder's model both ways (as `keras-seq2seq export` does,
with and without `--bfloat16-matmuls`), then, through each SavedModel's
`serving_default` with beam 5: BLEU and chrF (sacrebleu) of the test file
(`test_2016_flickr` for Multi30k), how many of its translations differ
between the two, and decode speed as `train_multi30k.py` measures it (batch
32 in batches of similar length and in file order, batch 1; 20 s each), the
two exports timed in alternating rounds so that a busier minute of the
machine falls on both. Prints one JSON line.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tensorflow as tf  # noqa: E402

from benchmarks.common import machine  # noqa: E402
from benchmarks.train_multi30k import DECODE_REQUESTS, decode_speed, score_export  # noqa: E402
from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.export import RunFolder  # noqa: E402

PRECISIONS = {"float32": None, "bfloat16_matmuls": "bfloat16"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained text run folder")
    parser.add_argument("--data", required=True, help="the multi30k folder")
    parser.add_argument("--test", default="test_2016_flickr",
                        help="the test files' stem (STEM.de[.gz], STEM.en[.gz])")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    def lines(language):  # the shared folder holds them gzipped
        path = os.path.join(args.data, f"{args.test}.{language}")
        return list(iter_lines(path if os.path.exists(path) else path + ".gz"))

    sources, references = lines("de"), lines("en")
    served, figures, outputs = {}, {}, []
    with tempfile.TemporaryDirectory() as exports:
        # The first round: each export scored and timed, one after the other.
        for name, dtype in PRECISIONS.items():
            figures[name], served[name], translations = score_export(
                RunFolder(args.run).load(matmul_dtype=dtype), os.path.join(exports, name),
                sources, references)
            outputs.append(translations)
            figures[name]["decode_sentences_per_s"] = {
                key: [speed] for key, speed in figures[name]["decode_sentences_per_s"].items()}
        for _ in range(args.rounds - 1):
            for name in PRECISIONS:
                for key, (batch, sort) in DECODE_REQUESTS.items():
                    figures[name]["decode_sentences_per_s"][key].append(
                        round(decode_speed(served[name], sources, batch, sort=sort), 1))
    print(json.dumps({"run": args.run, "test": args.test, **figures,
                      "translations_differing": sum(a != b for a, b in zip(*outputs)),
                      "sentences": len(sources), "machine": machine(),
                      "tensorflow": tf.__version__}), flush=True)


if __name__ == "__main__":
    main()
