"""keras-seq2seq and OpenNMT-py on Multi30k De->En, one after the other, in one run.

    python benchmarks/side_by_side.py --data ../shared/data/multi30k \\
        --peers ../shared/peers --max-minutes 20 --mixed-precision

Trains `multi30k-de-en-attention` for the budget and scores its export as
`train_multi30k.py` does; then trains OpenNMT-py 3.5.1's RNN of the same
sizes with the scripts in `--peers` (their own virtual environment under
/tmp/peers, set up here if missing), for as many steps as the budget allows
at OpenNMT-py's measured rate (`--onmt-steps-per-minute`), and scores it with
those scripts (sacrebleu on test_2016_flickr, beam 5; decode speed from
`onmt_translate -report_time`). Prints one JSON line: the figures of both and
keras-seq2seq's ratios to OpenNMT-py's.
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_multi30k import train_and_score  # noqa: E402

PEERS_ROOT = "/tmp/peers"


def _run(script, *args, peers):
    subprocess.run(["bash", os.path.join(peers, script), *map(str, args)], check=True)


def opennmt_py(peers, steps, name="side-by-side"):
    """Trains and scores OpenNMT-py; returns the figures train_and_score returns."""
    if not os.path.exists(os.path.join(PEERS_ROOT, "onmt-py", "bin", "onmt_train")):
        _run("setup_onmt_py.sh", peers=peers)
    if not os.path.exists(os.path.join(PEERS_ROOT, "data", "sp", "spm8k.model")):
        _run("prepare_data.sh", peers=peers)
    run_dir = os.path.join(PEERS_ROOT, "onmt-py-run")
    start = time.monotonic()
    _run("run_onmt_py_train.sh", name, steps, peers=peers)
    minutes = (time.monotonic() - start) / 60
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(os.path.join(run_dir, f"{name}.wall")) as f:
        wall = f.read()
    tokens_per_s = float(re.search(r"mean_tgt_tok_s=([\d.]+)", wall).group(1))
    evaluation = os.path.join(run_dir, f"eval_{name}")
    _run("run_onmt_py_eval.sh", os.path.join(run_dir, f"{name}_step_{steps}.pt"), evaluation,
         peers=peers)
    with open(os.path.join(evaluation, "speed.txt")) as f:
        speed = {line.split()[0]: float(re.search(r"sent_per_s=([\d.]+)", line).group(1))
                 for line in f if line.strip()}
    with open(os.path.join(evaluation, "scores.jsonl")) as f:
        scores = [json.loads(line) for line in f if line.strip()]
    beam = next(s for s in scores if "beam5_b32" in s["hyp"])
    return {
        "toolkit": "OpenNMT-py 3.5.1",
        "bleu": beam["bleu"],
        "chrf": beam["chrf"],
        "train_target_tokens_per_s": round(tokens_per_s),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "minutes": round(minutes, 2),
        "steps": steps,
        "decode_sentences_per_s": {
            "beam5_batch32": speed["beam5_b32"],
            "beam5_batch1": speed["beam5_b1"],
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the multi30k folder")
    parser.add_argument("--peers", required=True, help="the shared peers folder (its scripts)")
    parser.add_argument("--max-minutes", type=float, required=True)
    parser.add_argument("--work-dir", default=os.path.join("runs", "bench-side-by-side"))
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--onmt-steps-per-minute", type=float, default=5500 / 17.9,
                        help="OpenNMT-py's training rate here (peers/RESULTS.md: 5,500 steps "
                        "in 17.9 minutes, validations included)")
    args = parser.parse_args()

    ours, _, _ = train_and_score("multi30k-de-en-attention", args.data, args.max_minutes,
                                 args.work_dir, args.mixed_precision)
    print(json.dumps({"progress": ours}), file=sys.stderr, flush=True)
    steps = int(args.max_minutes * args.onmt_steps_per_minute) // 500 * 500
    theirs = opennmt_py(os.path.abspath(args.peers), steps)

    def ratio(key, sub=None):
        a, b = (ours[key], theirs[key]) if sub is None else (ours[key][sub], theirs[key][sub])
        return round(a / b, 3)

    print(json.dumps({
        "keras_seq2seq": ours,
        "opennmt_py": theirs,
        "ratios": {
            "bleu": ratio("bleu"),
            "train_target_tokens_per_s": ratio("train_target_tokens_per_s"),
            "decode_beam5_batch32": ratio("decode_sentences_per_s", "beam5_batch32"),
            "decode_beam5_batch1": ratio("decode_sentences_per_s", "beam5_batch1"),
        },
    }), flush=True)


if __name__ == "__main__":
    main()
