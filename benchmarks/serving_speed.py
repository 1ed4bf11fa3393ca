"""Decode speed of a trained text run's export, as TF Serving would run it.

    python benchmarks/serving_speed.py --run runs/multi30k-de-en-attention \\
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --outputs before.json

Exports the run with the code as it is now (into a temporary folder), loads
the SavedModel's `serving_default` and times it as `train_multi30k.py` does
(beam and penalties as the run says): requests of 32 lines in file order
and length-sorted, and one line at a time. The same run measured before
and after a change of the search or the step, in alternating calls, is an
A/B of that change; `--outputs` writes the translations (and `--same-as` checks
them against an earlier run's file), so a change that should not change any
output is shown not to. Prints one JSON line.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.images_and_speech import machine  # noqa: E402
from benchmarks.train_multi30k import decode_speed  # noqa: E402
from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.export import export_saved_model, load_run  # noqa: E402
from keras_seq2seq.tasks import translate_texts  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained text run folder")
    parser.add_argument("--source", required=True, help="source lines, one a sentence")
    parser.add_argument("--seconds", type=float, default=20.0, help="timing of each request form")
    parser.add_argument("--outputs", default=None, help="write the translations here (JSON)")
    parser.add_argument("--same-as", default=None,
                        help="an earlier --outputs file the translations must equal")
    args = parser.parse_args()
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

    lines = list(iter_lines(args.source))
    with tempfile.TemporaryDirectory() as folder:
        path = export_saved_model(load_run(args.run), folder)
        served = tf.saved_model.load(path).signatures["serving_default"]
        translations = translate_texts(served, lines, 32)
        figures = {
            "beam5_batch32_file_order": round(decode_speed(served, lines, 32, args.seconds,
                                                           sort=False), 1),
            "beam5_batch32": round(decode_speed(served, lines, 32, args.seconds), 1),
            "beam5_batch1": round(decode_speed(served, lines, 1, args.seconds), 1),
        }
    same = None
    if args.same_as:
        with open(args.same_as) as f:
            earlier = json.load(f)
        same = earlier == translations
        if not same:
            differ = sum(a != b for a, b in zip(earlier, translations))
            print(f"{differ} of {len(lines)} translations differ from {args.same_as}",
                  file=sys.stderr)
    if args.outputs:
        with open(args.outputs, "w") as f:
            json.dump(translations, f, ensure_ascii=False)
    print(json.dumps({"run": args.run, "source": args.source, "lines": len(lines),
                      "decode_sentences_per_s": figures, "same_translations": same,
                      "machine": machine()}), flush=True)
    if same is False:
        sys.exit(1)


if __name__ == "__main__":
    main()
