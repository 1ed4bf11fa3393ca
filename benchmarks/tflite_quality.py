"""TFLite models of an export: size, agreement with the SavedModel, held-out quality.

For each of --quantize none, dynamic and float16, converts the export's
beam search, runs it in the LiteRT interpreter on a held-out set, one sentence
per call, and compares the best hypothesis with the SavedModel's
`translate_ids`. Quality is exact match and sacrebleu BLEU/chrF against the
references. Prints one JSON line.

Usage (after `keras-seq2seq quickstart`):
    python benchmarks/tflite_quality.py --export exports/quickstart/1 \
        --source runs/quickstart/data/test.src --references runs/quickstart/data/test.tgt
"""

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import sacrebleu  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from keras_seq2seq.export import convert_to_tflite  # noqa: E402
from keras_seq2seq.text import load_tokenizer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", required=True, help="a SavedModel version folder")
    parser.add_argument("--source", required=True)
    parser.add_argument("--references", required=True)
    parser.add_argument("--limit", type=int, default=1000, help="sentences to use")
    args = parser.parse_args()

    sources = open(args.source, encoding="utf-8").read().splitlines()[: args.limit]
    references = open(args.references, encoding="utf-8").read().splitlines()[: args.limit]
    settings = json.load(open(os.path.join(args.export, "assets.extra", "settings.json")))
    tokenizer = load_tokenizer(os.path.join(args.export, "assets.extra"))
    translate_ids = tf.saved_model.load(args.export).signatures["translate_ids"]
    source_ids = [tokenizer.encode(tf.constant([s]), settings["max_source_length"]).numpy()
                  for s in sources]
    reference_best = [translate_ids(source_ids=tf.constant(ids))["target_ids"].numpy()[0, 0]
                      for ids in source_ids]

    def score(best_ids):
        decoded = tokenizer.decode(np.stack(best_ids), source=tf.constant(sources),
                                   max_source_length=settings["max_source_length"])
        hypotheses = [t.decode("utf-8") for t in decoded.numpy()]
        return {
            "exact_match": round(float(np.mean([h == r for h, r in zip(hypotheses, references)])), 4),
            "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
        }

    result = {"sentences": len(sources), "beam": settings["beam_size"],
              "savedmodel": score(reference_best)}
    with tempfile.TemporaryDirectory() as tmp:
        for quantize in ("none", "dynamic", "float16"):
            path = os.path.join(tmp, f"{quantize}.tflite")
            convert_to_tflite(args.export, path, quantize=quantize)
            decode = Interpreter(model_path=path).get_signature_runner("decode")
            start = time.perf_counter()
            best = [decode(source_ids=ids)["target_ids"][0, 0] for ids in source_ids]
            seconds = time.perf_counter() - start
            agree = np.mean([np.array_equal(a, b) for a, b in zip(best, reference_best)])
            result[quantize] = dict(
                score(best),
                megabytes=round(os.path.getsize(path) / 1e6, 3),
                agreement_with_savedmodel=round(float(agree), 4),
                ms_per_sentence=round(1000 * seconds / len(sources), 2),
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
