"""Memory of one epoch of the input pipeline over a corpus larger than it.

Writes a generated parallel corpus of about --megabytes MB (date pairs), then
streams one shuffled, tokenized, bucketed epoch through
`parallel_text_dataset`, sampling the process' resident memory every 200
batches. Reading the files whole would grow memory with the corpus; streaming
keeps it flat. Prints one JSON line. (This measures the input pipeline alone:
training an epoch of this size would take hours on the project machine.)

Usage: python benchmarks/pipeline_memory.py --megabytes 300 [--workdir DIR]
"""

import argparse
import json
import os
import random
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_seq2seq.data import parallel_text_dataset  # noqa: E402
from keras_seq2seq.data.dates import random_date_pair  # noqa: E402
from keras_seq2seq.text import SubwordTokenizer, train_sentencepiece  # noqa: E402


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_corpus(directory, megabytes, seed=0):
    rng = random.Random(seed)
    source, target = os.path.join(directory, "big.src"), os.path.join(directory, "big.tgt")
    written, pairs = 0, 0
    with open(source, "w", encoding="utf-8") as fs, open(target, "w", encoding="utf-8") as ft:
        while written < megabytes * 1e6:
            block = [random_date_pair(rng) for _ in range(10_000)]
            s = "".join(p[0] + "\n" for p in block)
            t = "".join(p[1] + "\n" for p in block)
            fs.write(s)
            ft.write(t)
            written += len(s.encode()) + len(t.encode())
            pairs += len(block)
    return source, target, pairs, written / 1e6


def measure(directory, megabytes):
    start = time.monotonic()
    source, target, pairs, corpus_mb = write_corpus(directory, megabytes)
    sample = [random_date_pair(random.Random(1)) for _ in range(20_000)]
    tokenizer = SubwordTokenizer(train_sentencepiece((s for p in sample for s in p), 400, split_digits=True))
    dataset = parallel_text_dataset(source, target, tokenizer, batch_size=64,
                                    max_source_length=48, max_target_length=24)
    baseline = rss_mb()
    samples, seen = [], 0
    for i, (_, targets) in enumerate(dataset):
        seen += int(targets.shape[0])
        if i % 200 == 0:
            samples.append(rss_mb())
    samples.append(rss_mb())
    tenth = samples[max(1, len(samples) // 10)]
    return {
        "corpus_mb": round(corpus_mb, 1),
        "pairs": pairs,
        "pairs_seen": seen,
        "rss_mb_before_epoch": round(baseline, 1),
        "rss_mb_at_10_percent": round(tenth, 1),
        "rss_mb_peak": round(max(samples), 1),
        "rss_mb_end": round(samples[-1], 1),
        "growth_mb_after_10_percent": round(max(samples) - tenth, 1),
        "seconds": round(time.monotonic() - start, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=300)
    parser.add_argument("--workdir", default=None, help="where the corpus goes (default: a temp dir)")
    args = parser.parse_args()
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        print(json.dumps(measure(args.workdir, args.megabytes)))
    else:
        with tempfile.TemporaryDirectory() as directory:
            print(json.dumps(measure(directory, args.megabytes)))


if __name__ == "__main__":
    main()
