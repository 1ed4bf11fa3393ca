"""Pointer networks against Vinyals et al. (2015), Tables 1 and 2.

Trains each recipe (as `keras-seq2seq train --recipe NAME` does), then
decodes 1,000 fresh instances (a seed no recipe trains or validates on)
with the export's beam search and greedy search, and prints one JSON line
per recipe: the measured figures, the paper's, and the training minutes on
this machine.

    python benchmarks/pointer_networks.py --recipes convex-hull-5,tsp-5 \
        --work-dir runs/pointer-bench [--max-minutes 10]
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

from benchmarks.common import machine  # noqa: E402
from keras_seq2seq.data.points import random_points  # noqa: E402
from keras_seq2seq.tasks import task_for  # noqa: E402
from keras_seq2seq.training import train  # noqa: E402
from keras_seq2seq.zoo import load_recipe  # noqa: E402

# Vinyals et al. 2015: Table 1 (convex hull, Ptr-Net trained on 5-50 points)
# and Table 2 (TSP, mean tour length; "optimal" is their exact solver's).
PAPER = {
    "convex-hull-5": {"accuracy": 0.920, "area_coverage": 0.996},
    "convex-hull-10": {"accuracy": 0.870},
    "tsp-5": {"mean_length": 2.12, "optimal_length": 2.12},
    "tsp-10": {"mean_length": 2.88, "optimal_length": 2.87},
}
TEST_SEED = 987_654


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="convex-hull-5,convex-hull-10,tsp-5,tsp-10")
    parser.add_argument("--work-dir", default=os.path.join("runs", "pointer-bench"))
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="training budget per recipe (default: the recipe's epochs)")
    parser.add_argument("--test-size", type=int, default=1000)
    args = parser.parse_args()

    for name in args.recipes.split(","):
        task = task_for(load_recipe(name))
        work_dir = os.path.join(args.work_dir, name)
        start = time.monotonic()
        result = train(task, work_dir, max_minutes=args.max_minutes, verbose=2)
        solver, history = result.exportable, result.history
        minutes = (time.monotonic() - start) / 60
        points = random_points(args.test_size, task.recipe.data["points"], seed=TEST_SEED)
        start = time.monotonic()
        beam = task.evaluate(solver, points=points)
        decode_seconds = time.monotonic() - start
        greedy = task.evaluate(solver, points=points, beam_size=1)
        print(json.dumps({
            "recipe": name,
            "test_instances": args.test_size,
            f"beam{solver.beam_size}": beam,
            "greedy": greedy,
            "paper_ptr_net": PAPER.get(name),
            "train_minutes_including_data": round(minutes, 2),
            "epochs": len(history.history.get("loss", [])),
            "beam_decode_instances_per_s": round(args.test_size / decode_seconds, 1),
            "machine": machine(),
        }), flush=True)


if __name__ == "__main__":
    main()
