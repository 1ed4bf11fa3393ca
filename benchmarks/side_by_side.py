"""keras-seq2seq and OpenNMT-py on Multi30k De->En, one after the other, in one run.

    python benchmarks/side_by_side.py --data ../shared/data/multi30k \\
        --peers ../shared/peers --max-minutes 20

Trains OpenNMT-py 3.5.1's RNN with the scripts in `--peers` (their own
virtual environment under /tmp/peers, set up here if missing) and
`multi30k-de-en-attention` with the recipe's settings (`--[no-]mixed-precision`
overrides its precision), each for the same wall-clock budget: OpenNMT-py
trains by steps, so a probe of 500 steps first measures its start-up and its
rate after it here, and its steps are what the budget holds at those (rounded
to its 500-step checkpoints). Both are scored on test_2016_flickr with beam
5: BLEU and chrF by sacrebleu, ours through the exported SavedModel as
`train_multi30k.py` does, theirs with the peers' scripts. Decode speed at
batch 32 is measured twice, on batches of similar length (as both command
lines batch a file) and on the file's lines in order (as a server receives
requests; OpenNMT-py through `onmt_translate_in_file_order.py`), and at batch
1; OpenNMT-py's from `onmt_translate -report_time` (model loading excluded).
Our trained model is exported three times, in float32, with bfloat16
matrix products (`keras-seq2seq export --bfloat16-matmuls`) and with its
one-sentence search compiled by XLA (`keras-seq2seq export --xla`), each
scored and timed; with `--shortlist PER_TOKEN`, twice more, float32 and
XLA, with a lexical shortlist (`keras-seq2seq export --shortlist`); with
`--parallel-searches N`, once more (float32) or three times more (float32,
and with the shortlist in float32 and XLA) searching each request as N
searches side by side (`keras-seq2seq export --parallel-searches`).
`--intra-op-threads 1` runs our side as TF Serving started with
`--tensorflow_intra_op_parallelism=1` (README, Serving: "Threads").
Prints one JSON line: the figures of both and keras-seq2seq's ratios to
OpenNMT-py's.

With `--decode-only` nothing trains: the models an earlier run left (ours
in `--work-dir`, OpenNMT-py's last checkpoint under /tmp/peers) are
exported, scored and timed again, both in this run, for decode figures
without the hour of training (no training figures then). OpenNMT-py is
then timed before and after ours (the ratios take the mean of its two
timings; both are printed), since the machine's speed drifts over the
half hour our exports take.
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import keras_seq2seq  # noqa: E402

keras_seq2seq.prefer_onednn_kernels()  # it trains, as `keras-seq2seq train`

from benchmarks.common import (  # noqa: E402
    add_precision_arguments, add_thread_arguments, apply_thread_arguments)
from benchmarks.train_multi30k import (  # noqa: E402
    DECODE_REQUESTS, add_export_variant_arguments, score_run, train_and_score)

PEERS_ROOT = "/tmp/peers"


def _run(script, *args, peers):
    subprocess.run(["bash", os.path.join(peers, script), *map(str, args)], check=True)


PROBE_STEPS = 500  # OpenNMT-py's checkpoint interval in the peers' script


def _wall_seconds(run_dir, name):
    with open(os.path.join(run_dir, f"{name}.wall")) as f:
        return f.read()


def _sentences_per_s(log):
    """From an `onmt_translate -report_time` log: 1000 / average ms per sentence."""
    with open(log) as f:
        milliseconds = float(re.search(r"Average translation time \(ms\): ([\d.]+)",
                                       f.read()).group(1))
    return round(1000.0 / milliseconds, 2)


def _report_rates(out_log):
    """OpenNMT-py's target tokens/s from its report lines ("Step 100/ 6000;
    ... 3745/4056 tok/s;     39 sec;"), the first (start-up) left out:
    `(tokens / seconds, median of the reports' rates)`.

    Tokens over seconds is how ours is counted (`train_multi30k.py`: an
    epoch's tokens over its seconds). The peers' script prints the mean of
    the reports' rates, which weighs a report that stalled for a minute as
    one of a hundred ten-second ones; the medians of both sides leave such
    stalls out. Their seconds hold their validations (every 1,000 steps,
    about 1.5 s each: about 1% of a run), ours none.
    """
    import statistics

    reports = _reports(out_log)
    tokens = seconds = 0.0
    for (_, _, before), (_, rate, sec) in zip(reports[1:], reports[2:]):
        tokens += rate * (sec - before)
        seconds += sec - before
    return tokens / seconds, statistics.median(rate for _, rate, _ in reports[1:])


def _reports(out_log):
    """OpenNMT-py's report lines as `(step, target tokens/s, seconds since
    the start)`."""
    with open(out_log) as f:
        return [(int(step), float(rate), int(sec)) for step, rate, sec in re.findall(
            r"Step\s+(\d+)/\s*\d+;.*?\d+/\s*(\d+) tok/s;\s+(\d+) sec;", f.read())]


def opennmt_py(peers, minutes, name="side-by-side"):
    """Trains OpenNMT-py for about `minutes` and scores it; returns figures
    keyed as train_and_score's."""
    if not os.path.exists(os.path.join(PEERS_ROOT, "onmt-py", "bin", "onmt_train")):
        _run("setup_onmt_py.sh", peers=peers)
    if not os.path.exists(os.path.join(PEERS_ROOT, "data", "sp", "spm8k.model")):
        _run("prepare_data.sh", peers=peers)
    run_dir = os.path.join(PEERS_ROOT, "onmt-py-run")
    _run("run_onmt_py_train.sh", "probe", PROBE_STEPS, peers=peers)
    probe_seconds = float(re.search(r"wall_seconds=(\d+)",
                                    _wall_seconds(run_dir, "probe")).group(1))
    # The probe's wall time holds start-up and the first, slower steps; a
    # longer run pays those once, then steps at the rate of the probe's
    # later reports ("Step 500/ 500; ... 110 sec;").
    reports = _reports(os.path.join(run_dir, "probe.out"))
    (first_step, _, first_sec), (last_step, _, last_sec) = reports[1], reports[-1]
    steps_per_s = (last_step - first_step) / (last_sec - first_sec)
    steps = PROBE_STEPS + (minutes * 60 - probe_seconds) * steps_per_s
    steps = max(1, round(steps / PROBE_STEPS)) * PROBE_STEPS
    print(json.dumps({"opennmt_py_probe": {"steps": PROBE_STEPS, "seconds": probe_seconds,
                                           "steps_per_s_after_start": round(steps_per_s, 2),
                                           "steps_for_budget": steps}}),
          file=sys.stderr, flush=True)
    start = time.monotonic()
    _run("run_onmt_py_train.sh", name, steps, peers=peers)
    trained_minutes = (time.monotonic() - start) / 60
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    mean_of_reports = float(re.search(r"mean_tgt_tok_s=([\d.]+)",
                                      _wall_seconds(run_dir, name)).group(1))
    tokens_per_s, median_tokens_per_s = _report_rates(os.path.join(run_dir, f"{name}.out"))
    return {
        **opennmt_py_scores(peers, os.path.join(run_dir, f"{name}_step_{steps}.pt"), name),
        "train_target_tokens_per_s": round(tokens_per_s),
        "train_target_tokens_per_s_median": round(median_tokens_per_s),
        "train_target_tokens_per_s_mean_of_reports": round(mean_of_reports),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "minutes": round(trained_minutes, 2),
        "steps": steps,
    }


def opennmt_py_scores(peers, checkpoint, name="side-by-side"):
    """BLEU, chrF and decode speeds of an OpenNMT-py checkpoint, with the
    peers' evaluation script and `onmt_translate_in_file_order.py`."""
    evaluation = os.path.join(PEERS_ROOT, "onmt-py-run", f"eval_{name}")
    _run("run_onmt_py_eval.sh", checkpoint, evaluation, peers=peers)
    file_order_log = os.path.join(evaluation, "beam5_b32_file_order.log")
    with open(file_order_log, "w") as log:
        subprocess.run(
            [os.path.join(PEERS_ROOT, "onmt-py", "bin", "python"),
             os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "onmt_translate_in_file_order.py"),
             "-model", checkpoint, "-src", os.path.join(PEERS_ROOT, "data", "sp",
                                                        "test_2016_flickr.de"),
             "-output", os.path.join(evaluation, "beam5_b32_file_order.pieces"),
             "-beam_size", "5", "-batch_size", "32", "-batch_type", "sents",
             "-max_length", "100", "-report_time"],
            stdout=log, stderr=subprocess.STDOUT, check=True,
            env=dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1"))
    with open(os.path.join(evaluation, "speed.txt")) as f:
        speed = {line.split()[0]: float(re.search(r"sent_per_s=([\d.]+)", line).group(1))
                 for line in f if line.strip()}
    with open(os.path.join(evaluation, "scores.jsonl")) as f:
        scores = [json.loads(line) for line in f if line.strip()]
    beam = next(s for s in scores if "beam5_b32" in s["hyp"])
    return {
        "toolkit": "OpenNMT-py 3.5.1",
        "checkpoint": checkpoint,
        "bleu": beam["bleu"],
        "chrf": beam["chrf"],
        "decode_sentences_per_s": {
            "beam5_batch32": speed["beam5_b32"],
            "beam5_batch32_file_order": _sentences_per_s(file_order_log),
            "beam5_batch1": speed["beam5_b1"],
        },
    }


def _before_and_after(before, after):
    """OpenNMT-py's figures timed before and after ours: decode speeds the
    mean of the two, each kept beside it."""
    speeds = {key: round((before["decode_sentences_per_s"][key]
                          + after["decode_sentences_per_s"][key]) / 2, 2)
              for key in before["decode_sentences_per_s"]}
    return dict(after, decode_sentences_per_s=speeds,
                decode_sentences_per_s_before=before["decode_sentences_per_s"],
                decode_sentences_per_s_after=after["decode_sentences_per_s"])


def last_checkpoint(name="side-by-side"):
    """The last checkpoint an earlier run of `opennmt_py` wrote (its final
    one: the folder may also hold older runs' checkpoints of more steps)."""
    run_dir = os.path.join(PEERS_ROOT, "onmt-py-run")
    paths = [os.path.join(run_dir, f) for f in os.listdir(run_dir)
             if re.fullmatch(rf"{name}_step_\d+\.pt", f)]
    if not paths:
        sys.exit(f"--decode-only: {run_dir} holds no {name}_step_N.pt: run without it first")
    return max(paths, key=os.path.getmtime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the multi30k folder")
    parser.add_argument("--peers", required=True, help="the shared peers folder (its scripts)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="each system's training budget (needed unless --decode-only)")
    parser.add_argument("--work-dir", default=os.path.join("runs", "bench-side-by-side"))
    parser.add_argument("--decode-only", action="store_true",
                        help="train nothing: export and time the models an earlier run left "
                        "(ours in --work-dir, OpenNMT-py's last checkpoint under "
                        f"{PEERS_ROOT}), both in this run")
    add_export_variant_arguments(parser)
    add_precision_arguments(parser)
    add_thread_arguments(parser)
    args = parser.parse_args()
    threads = apply_thread_arguments(args)
    if args.max_minutes is None and not args.decode_only:
        parser.error("--max-minutes is required unless --decode-only")
    peers = os.path.abspath(args.peers)

    if args.decode_only:
        before = opennmt_py_scores(peers, last_checkpoint())
        print(json.dumps({"progress": before}), file=sys.stderr, flush=True)
        ours = score_run("multi30k-de-en-attention", args.data, args.work_dir,
                         bfloat16_matmuls=True, xla_search=True, shortlist=args.shortlist,
                         parallel_searches=args.parallel_searches)
        print(json.dumps({"progress": ours}), file=sys.stderr, flush=True)
        theirs = _before_and_after(before, opennmt_py_scores(peers, last_checkpoint()))
    else:
        # OpenNMT-py first: its rate decides nothing of ours, and a failure
        # in its scripts shows before our training spends the budget.
        theirs = opennmt_py(peers, args.max_minutes)
        print(json.dumps({"progress": theirs}), file=sys.stderr, flush=True)
        ours, _, _ = train_and_score("multi30k-de-en-attention", args.data, args.max_minutes,
                                     args.work_dir, args.mixed_precision, bfloat16_matmuls=True,
                                     xla_search=True, shortlist=args.shortlist,
                                     parallel_searches=args.parallel_searches)

    def ratio(key, sub=None, figures=ours):
        a, b = (figures[key], theirs[key]) if sub is None else (figures[key][sub], theirs[key][sub])
        return round(a / b, 3)

    def export_ratios(figures):
        return {"bleu": ratio("bleu", figures=figures),
                **{f"decode_{key}": ratio("decode_sentences_per_s", key, figures=figures)
                   for key in DECODE_REQUESTS}}

    training = {} if args.decode_only else {
        "train_target_tokens_per_s": ratio("train_target_tokens_per_s"),
        "train_target_tokens_per_s_median": ratio("train_target_tokens_per_s_median")}
    print(json.dumps({
        "keras_seq2seq": {**ours, **threads},
        "opennmt_py": theirs,
        "ratios": {
            **export_ratios(ours),
            **training,
            **{name: export_ratios(ours[name])
               for name in ("bfloat16_matmuls", "xla_search", "shortlist", "xla_search_shortlist",
                            "parallel_searches", "shortlist_parallel_searches",
                            "xla_search_shortlist_parallel_searches")
               if name in ours},
        },
    }), flush=True)


if __name__ == "__main__":
    main()
