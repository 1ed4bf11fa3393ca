"""Beam search with and without retiring finished sentences, on a trained text run.

    python benchmarks/beam_retirement.py --run runs/multi30k-de-en-attention \\
        --source ../shared/data/multi30k/test_2016_flickr.de.gz

Decodes the source file with the run's model and search settings (beam,
penalties, n-gram blocking) in a `tf.function` over text, as the export's
`serving_default` does: requests of `--batch-size` lines in file order (as a
server receives them) and length-sorted, and one line at a time (the first
`--single` lines); each with `retire_finished` on (the default search) and
off (every row steps until the batch's last sentence ends). Checks that both
give the same n-best ids (scores within 1e-5), and prints one JSON line:
sentences/s of each, their ratio, and the share of sentence-steps that ran
after the sentence had finished without retirement (from the outputs'
lengths: what retirement can save).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.common import machine, request_batches  # noqa: E402
from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.decoding import generate  # noqa: E402
from keras_seq2seq.export import load_run  # noqa: E402
from keras_seq2seq.text import PAD_ID  # noqa: E402


def traced_search(translator, retire):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def search(text):
        return generate(translator.model, translator.encode_text(text),
                        translator.max_target_length, beam_size=translator.beam_size,
                        alpha=translator.alpha, beta=translator.beta,
                        no_repeat_ngram_size=translator.no_repeat_ngram_size,
                        retire_finished=retire)

    return search


def timed(search, batches):
    """`(outputs, sentences/s)` of `search` over `batches` (lists of lines)."""
    import tensorflow as tf

    search(tf.constant(batches[0]))  # traces once, outside the timing
    outputs = []
    start = time.perf_counter()
    for batch in batches:
        outputs.append(search(tf.constant(batch)))
    seconds = time.perf_counter() - start
    return outputs, sum(len(b) for b in batches) / seconds


def finished_step_share(outputs):
    """The share of sentence-steps a batch runs after the sentence's own
    hypotheses have all ended, when no sentence leaves before the batch's last."""
    wasted = total = 0
    for ids, _ in outputs:
        ends = (ids.numpy() != PAD_ID).sum(-1).max(-1)  # [batch]: each sentence's last step
        total += len(ends) * ends.max()
        wasted += (ends.max() - ends).sum()
    return float(wasted / total)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained text run folder")
    parser.add_argument("--source", required=True, help="source lines, one a sentence")
    parser.add_argument("--limit", type=int, default=None, help="the first N lines only")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--single", type=int, default=200,
                        help="lines decoded one at a time")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed passes of each variant, alternating; the best is kept")
    args = parser.parse_args()
    import numpy as np

    translator = load_run(args.run)
    lines = list(iter_lines(args.source))[: args.limit]
    orders = {
        "file_order": request_batches(lines, args.batch_size, sort=False),
        "length_sorted": request_batches(lines, args.batch_size, sort=True),
        "one_at_a_time": [[line] for line in lines[: args.single]],
    }
    searches = {"retire": traced_search(translator, True), "keep": traced_search(translator, False)}
    result = {}
    for order, batches in orders.items():
        best = {}
        for _ in range(args.repeats):
            for variant, search in searches.items():
                outputs, per_s = timed(search, batches)
                if per_s > best.get(variant, (None, 0.0))[1]:
                    best[variant] = (outputs, per_s)
        for (want_ids, want_scores), (got_ids, got_scores) in zip(best["keep"][0], best["retire"][0]):
            np.testing.assert_array_equal(got_ids.numpy(), want_ids.numpy())
            np.testing.assert_allclose(got_scores.numpy(), want_scores.numpy(), rtol=1e-5, atol=1e-5)
        result[order] = {
            "sentences": sum(len(b) for b in batches),
            "sentences_per_s_retire": round(best["retire"][1], 1),
            "sentences_per_s_keep": round(best["keep"][1], 1),
            "speedup": round(best["retire"][1] / best["keep"][1], 3),
            "finished_step_share": round(finished_step_share(best["keep"][0]), 3),
        }
    print(json.dumps({
        "run": args.run, "source": args.source, "lines": len(lines), "beam_size": translator.beam_size,
        "alpha": translator.alpha, "batch_size": args.batch_size, **result,
        "same_outputs": True, "machine": machine(),
    }), flush=True)


if __name__ == "__main__":
    main()
