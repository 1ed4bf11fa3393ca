"""Decode speed of a trained text run's export, as TF Serving runs it; A/B of two exports.

    python benchmarks/serving_speed.py --run runs/multi30k-de-en-attention \\
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --keep-export /tmp/before
    (change the search or the step)
    python benchmarks/serving_speed.py --run runs/multi30k-de-en-attention \\
        --source ../shared/data/multi30k/test_2016_flickr.de.gz --baseline /tmp/before/1

Exports the run with the code as it is now (beam, penalties and the recipe's
export settings as the run keeps them, then the flags below), loads its `serving_default` and times it on three request forms:
32 lines in file order (as a server receives them), 32 length-sorted lines,
and one line at a time (the first `--single` lines). With `--baseline` (an
export of the same run made by other code, e.g. by `--keep-export` before a
change) the two alternate request by request, so that a machine whose speed
drifts (this one's varies 10-15% within minutes) slows both alike, and each
round's ratio is printed beside the medians; both exports' translations of
the source file are compared. `--xla` exports the run with its
one-sentence search compiled by XLA (`keras-seq2seq export --xla`): with
`--baseline` a plain export of the same run, the A/B of the two searches.
`--shortlist PER_TOKEN` exports it with a lexical shortlist built from the
run's training files (`keras-seq2seq export --shortlist`): with
`--baseline` a plain export of the same run, the A/B of the shortlist.
`--bfloat16-matmuls` exports it with bfloat16 matrix products (`keras-seq2seq
export --bfloat16-matmuls`). `--parallel-searches N` exports it searching each
request as N searches side by side (`keras-seq2seq export --parallel-searches`;
with `--intra-op-threads 1`, as TF Serving runs on 2 cores). `--reference` (the source's translations) adds each export's BLEU and chrF
(sacrebleu) of the source file.
`--inter-op-threads` and `--intra-op-threads`
set TensorFlow's thread pools as TF Serving's flags of those names would
(on 2 cores, `--intra-op-threads 1` decodes faster). Prints one JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.common import (  # noqa: E402
    add_thread_arguments, apply_thread_arguments, machine, request_batches)
from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.export import RunFolder, export_saved_model, load_run  # noqa: E402
from keras_seq2seq.tasks import translate_texts  # noqa: E402


def timed_rounds(signatures, batches, rounds):
    """`{name: [sentences/s of each round]}`, the signatures taking turns on
    each request (who goes first alternates)."""
    import tensorflow as tf

    names = list(signatures)
    per_s = {name: [] for name in names}
    for r in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for i, batch in enumerate(batches):
            batch = tf.constant(batch)
            for name in (names if (i + r) % 2 == 0 else names[::-1]):
                start = time.perf_counter()
                signatures[name](text=batch)
                spent[name] += time.perf_counter() - start
        for name in names:
            per_s[name].append(sum(len(b) for b in batches) / spent[name])
    return per_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained text run folder")
    parser.add_argument("--source", required=True, help="source lines, one a sentence")
    parser.add_argument("--baseline", default=None, help="another export of the run, to A/B")
    parser.add_argument("--keep-export", default=None,
                        help="export here (a versioned folder) instead of a temporary one")
    parser.add_argument("--xla", action="store_true",
                        help="export with the one-sentence search compiled by XLA "
                        "(`keras-seq2seq export --xla`)")
    parser.add_argument("--bfloat16-matmuls", action="store_true",
                        help="export with bfloat16 matrix products "
                        "(`keras-seq2seq export --bfloat16-matmuls`)")
    parser.add_argument("--shortlist", type=int, default=0, metavar="PER_TOKEN",
                        help="export with a lexical shortlist of this many outputs a source "
                        "token (`keras-seq2seq export --shortlist`)")
    parser.add_argument("--shortlist-frequent", type=int, default=100)
    parser.add_argument("--parallel-searches", type=int, default=1, metavar="N",
                        help="export searching each request as N searches side by side "
                        "(`keras-seq2seq export --parallel-searches`)")
    parser.add_argument("--reference", default=None,
                        help="reference translations of --source: BLEU and chrF of each export")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over each form")
    parser.add_argument("--single", type=int, default=150, help="lines decoded one at a time")
    add_thread_arguments(parser)
    args = parser.parse_args()
    threads = apply_thread_arguments(args)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

    lines = list(iter_lines(args.source))
    forms = {
        "batch32_file_order": request_batches(lines, 32, sort=False),
        "batch32_sorted": request_batches(lines, 32, sort=True),
        "batch1": [[line] for line in lines[: args.single]],
    }
    with tempfile.TemporaryDirectory() as folder:
        translator = load_run(args.run)
        if args.xla:
            translator = translator.with_xla_search()
        if args.bfloat16_matmuls:
            translator = translator.with_bfloat16_matmuls()
        if args.parallel_searches != 1:
            translator = translator.with_parallel_searches(args.parallel_searches)
        if args.shortlist:
            source, target = RunFolder(args.run).training_files()
            translator = translator.with_shortlist(iter_lines(source), iter_lines(target),
                                                   args.shortlist, args.shortlist_frequent)
        path = export_saved_model(translator, args.keep_export or folder)
        signatures = {"current": tf.saved_model.load(path).signatures["serving_default"]}
        if args.baseline:
            signatures["baseline"] = tf.saved_model.load(args.baseline).signatures[
                "serving_default"]
        translations = {name: translate_texts(s, lines, 32) for name, s in signatures.items()}
        # Warm-up at each request size; one sentence at a time, on every
        # line timed, so that an XLA search has compiled each source-length
        # bucket (as a server does once) before the timing.
        for s in signatures.values():
            for batch in forms["batch1"]:
                s(text=tf.constant(batch))
        result = {}
        for form, batches in forms.items():
            per_s = timed_rounds(signatures, batches, args.rounds)
            figures = {f"{name}_sentences_per_s": round(statistics.median(v), 1)
                       for name, v in per_s.items()}
            if args.baseline:
                ratios = [c / b for c, b in zip(per_s["current"], per_s["baseline"])]
                figures["ratio_per_round"] = [round(r, 3) for r in ratios]
                figures["ratio_median"] = round(statistics.median(ratios), 3)
            result[form] = figures
    report = {"run": args.run, "source": args.source, "lines": len(lines),
              "beam_size": translator.beam_size, "alpha": translator.alpha,
              "xla": args.xla, "matmul_dtype": translator.matmul_dtype,
              "shortlist": translator.settings["shortlist"],
              "parallel_searches": translator.parallel_searches,
              "decode": result, **threads, "machine": machine()}
    if args.baseline:
        differ = sum(a != b for a, b in zip(translations["current"], translations["baseline"]))
        report["translations_that_differ"] = differ
    if args.reference:
        import sacrebleu

        references = [list(iter_lines(args.reference))]
        report["quality"] = {
            name: {"bleu": round(sacrebleu.corpus_bleu(t, references).score, 2),
                   "chrf": round(sacrebleu.corpus_chrf(t, references).score, 2)}
            for name, t in translations.items()}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
