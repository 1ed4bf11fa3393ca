"""`PointsTask`: point sets in, positions out (convex hull, TSP, sorting).

Everything pointer-network specific about a run is here: the generated
instances, the model, the solver it is exported as and the geometric
metrics; the model (`models.PointerNetwork`), the solver
(`export.PointerSolver`) and the data generators (`data.points`) stay in
their layers.
"""

import math
import os
import time

import numpy as np

from keras_seq2seq.data.points import cached_instances, pointer_dataset, solve
from keras_seq2seq.distribute import shard_batches
from keras_seq2seq.export import PointerSolver
from keras_seq2seq.metrics import convex_hull_metrics, tsp_metrics
from keras_seq2seq.tasks.base import Task


class PointsTask(Task):
    """A recipe whose inputs are points and whose outputs are their positions.

    Data: `data.generate` (convex_hull, tsp, sort) instances of `data.points`
    points, `train_size` and `val_size` of them, seeded by the recipe's seed
    and cached in the run folder. Metrics on the validation instances,
    through the solver's beam search: convex hull accuracy and area
    coverage, or tour length against the optimum.
    """

    def prepare(self, work_dir, on_bad_line="fail", strategy=None):
        self.strategy = strategy
        data, seed = self.recipe.data, self.recipe.training["seed"]
        start = time.monotonic()
        folder = os.path.join(work_dir, "data")
        self.instances = {
            split: cached_instances(os.path.join(folder, f"{split}.npz"), data["generate"], size,
                                    data["points"], offset + seed)
            for split, size, offset in (("train", data["train_size"] or 500_000, 1000),
                                        ("val", data["val_size"] or 1000, 2000))
        }
        self.ready_message = (f"{data['generate']}, n={data['points']}: "
                              f"{len(self.instances['train'][0]):,} training instances ready in "
                              f"{time.monotonic() - start:.0f} s")
        return self

    def notes(self):
        return [self.ready_message]

    def datasets(self):
        training = self.recipe.training
        train = pointer_dataset(*self.instances["train"], training["batch_size"], shuffle=True,
                                seed=training["seed"])
        val = pointer_dataset(*self.instances["val"], 1000)
        return shard_batches(train, self.strategy), shard_batches(val, self.strategy)

    @property
    def steps_per_epoch(self):
        return math.ceil(len(self.instances["train"][0]) / self.recipe.training["batch_size"])

    def new_model(self):
        return self._construct()

    def exportable(self, model):
        decoding = self.recipe.decoding
        return PointerSolver(model, self.recipe.data["points"], max_points=decoding["max_points"],
                             beam_size=decoding["beam_size"])

    def evaluate(self, exportable, points=None, beam_size=None):
        """Convex hull or TSP metrics of the solver's best outputs on the
        validation instances (or `points` [count, n, 2])."""
        points = self.instances["val"][0] if points is None else points
        return solver_metrics(exportable, self.recipe.data["generate"], points, beam_size)

    def describe(self, scores):
        width = self.recipe.decoding["beam_size"]
        return (f"Validation ({len(self.instances['val'][0])} instances, beam {width}): "
                + super().describe(scores))


def solver_metrics(solver, problem, points, beam_size=None, batch_size=500):
    """Convex hull or TSP metrics of a solver's outputs on `points` [count, n, 2]."""
    import tensorflow as tf

    search = tf.function(lambda chunk: solver.search(chunk, beam_size=beam_size)[0][:, 0])
    rows = [search(points[i : i + batch_size]).numpy() for i in range(0, len(points), batch_size)]
    predicted = np.concatenate(rows)
    if problem == "convex_hull":
        return convex_hull_metrics(points, predicted)
    if problem == "tsp":
        return tsp_metrics(points, predicted, solve("tsp", points))
    raise ValueError(f"no metrics for {problem!r}")
