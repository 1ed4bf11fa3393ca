"""Pointer networks: generated tasks, their solvers, the model, its search and exports."""

import itertools
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq.data.points import (
    END_TOKEN,
    cached_instances,
    convex_hull,
    generate_instances,
    held_karp,
    nearest_neighbour_tour,
    pointer_dataset,
    random_points,
    target_tokens,
    tour_lengths,
    tsp_tours,
    two_opt,
)
from keras_seq2seq.export import PointerSolver, convert_to_tflite, export_saved_model, verify_export
from keras_seq2seq.losses import SequenceCrossEntropy
from keras_seq2seq.metrics import convex_hull_metrics, tsp_metrics
from keras_seq2seq.decoding import generate
from keras_seq2seq.models import PointerNetwork
from keras_seq2seq.tasks import task_for
from keras_seq2seq.training import train
from keras_seq2seq.zoo import load_recipe


def solve_points(model, points, beam_size):
    """The shared search over positions: n choices, then the end (cropped)."""
    n = points.shape[1]
    indices, scores = generate(model, points, max_length=n + 1, beam_size=beam_size)
    return indices[:, :, :n], scores


# -- generated tasks -------------------------------------------------------------


def test_held_karp_is_exact_against_every_permutation():
    points = random_points(40, 7, seed=3)
    tours = held_karp(points)
    for p, tour in zip(points, tours):
        best = min(
            tour_lengths(p[None], np.array([[0, *perm]]))[0]
            for perm in itertools.permutations(range(1, 7))
        )
        assert sorted(tour) == list(range(7))
        assert tour_lengths(p[None], tour[None])[0] == pytest.approx(best, abs=1e-9)
        assert tour[0] == 0 and tour[1] < tour[-1]  # the one written form


def test_two_opt_improves_nearest_neighbour_and_comes_near_the_optimum():
    points = random_points(30, 9, seed=4)
    greedy = np.array([nearest_neighbour_tour(p) for p in points])
    improved = np.array([two_opt(p, t) for p, t in zip(points, greedy)])
    assert all(sorted(t) == list(range(9)) for t in improved)
    assert np.all(tour_lengths(points, improved) <= tour_lengths(points, greedy) + 1e-9)
    optimal = tour_lengths(points, held_karp(points)).mean()
    assert tour_lengths(points, improved).mean() <= 1.05 * optimal
    # Beyond 10 points the reference tours come from 2-opt.
    assert sorted(tsp_tours(random_points(1, 12, seed=5))[0]) == list(range(12))


def test_convex_hull_is_counter_clockwise_from_its_lowest_index_with_every_point_inside():
    for p in random_points(200, 10, seed=6):
        hull = convex_hull(p)
        assert hull[0] == min(hull) and len(set(hull)) == len(hull) >= 3
        for a, b in zip(hull, hull[1:] + hull[:1]):
            # Every point lies left of (or on) every edge: counter-clockwise and convex.
            cross = (p[b, 0] - p[a, 0]) * (p[:, 1] - p[a, 1]) - (p[b, 1] - p[a, 1]) * (p[:, 0] - p[a, 0])
            assert np.all(cross >= -1e-7)


def test_instances_are_deterministic_by_seed_and_written_as_tokens():
    a = generate_instances("convex_hull", 50, 6, seed=1)
    b = generate_instances("convex_hull", 50, 6, seed=1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], generate_instances("convex_hull", 50, 6, seed=2)[0])
    tokens = target_tokens([[2, 0, 1]], 4)
    assert tokens.tolist() == [[4, 2, 3, END_TOKEN, 0]]


def test_cached_instances_are_generated_again_for_another_problem_or_seed(tmp_path):
    path = str(tmp_path / "train.npz")
    tsp = cached_instances(path, "tsp", 20, 5, seed=0)
    assert np.array_equal(cached_instances(path, "tsp", 20, 5, seed=0)[1], tsp[1])
    hull = cached_instances(path, "convex_hull", 20, 5, seed=0)
    assert np.array_equal(hull[1], generate_instances("convex_hull", 20, 5, seed=0)[1])
    assert not np.array_equal(hull[1], tsp[1])
    reseeded = cached_instances(path, "convex_hull", 20, 5, seed=1)
    assert not np.array_equal(reseeded[0], hull[0])


def test_pointer_dataset_feeds_the_previous_choice():
    points, targets = generate_instances("tsp", 8, 4, seed=0)
    (inputs, labels), = pointer_dataset(points, targets, batch_size=8).take(1)
    assert inputs["points"].shape == (8, 4, 2)
    assert labels.shape == (8, 5)
    np.testing.assert_array_equal(inputs["decoder_input_ids"][:, 0], 0)
    np.testing.assert_array_equal(inputs["decoder_input_ids"][:, 1:], labels[:, :-1])


# -- metrics ---------------------------------------------------------------------


def test_convex_hull_metrics():
    points = random_points(20, 8, seed=7)
    hulls = [convex_hull(p) for p in points]
    padded = np.full((20, 8), -1)
    for row, hull in zip(padded, hulls):
        row[: len(hull)] = hull
    assert convex_hull_metrics(points, padded) == {
        "accuracy": 1.0, "area_coverage": pytest.approx(1.0), "invalid_rate": 0.0}
    rotated = np.full((20, 8), -1)
    for row, hull in zip(rotated, hulls):
        row[: len(hull)] = hull[1:] + hull[:1]  # another starting vertex: the same hull
    assert convex_hull_metrics(points, rotated)["accuracy"] == 1.0
    backwards = np.full((20, 8), -1)
    for row, hull in zip(backwards, hulls):
        row[: len(hull)] = hull[::-1]  # clockwise: wrong order, and not a valid output
    scores = convex_hull_metrics(points, backwards)
    assert scores["accuracy"] == 0.0 and scores["invalid_rate"] == 1.0
    dropped = padded.copy()
    for row, hull in zip(dropped, hulls):
        row[len(hull) - 1] = -1  # a vertex missing: wrong, and less area
    scores = convex_hull_metrics(points, dropped)
    assert scores["accuracy"] == 0.0 and scores["area_coverage"] < 1.0


def test_tsp_metrics():
    points = random_points(10, 6, seed=8)
    optimal = held_karp(points)
    assert tsp_metrics(points, optimal, optimal)["ratio"] == pytest.approx(1.0)
    worse = np.tile(np.arange(6), (10, 1))
    worse[0] = [0, 1, 2, 3, 4, 4]  # not a permutation
    scores = tsp_metrics(points, worse, optimal)
    assert scores["invalid_rate"] == pytest.approx(0.1)
    assert scores["ratio"] >= 1.0


# -- the model ---------------------------------------------------------------------


def _model(**config):
    keras.utils.set_random_seed(0)
    model = PointerNetwork(units=16, **config)
    model.build()
    return model


@pytest.mark.parametrize("config", [
    dict(mask_chosen=True, permutation=True),
    dict(mask_chosen=True, glimpse="bahdanau"),
    dict(mask_chosen=False, bidirectional=True, encoder_layers=2),
])
def test_teacher_forced_call_equals_stepping(config):
    model = _model(**config)
    points, targets = generate_instances("tsp", 3, 5, seed=1)
    (inputs, labels), = pointer_dataset(points, targets, batch_size=3).take(1)
    logits = model(inputs)
    context, state = model.encode(inputs["points"])
    for t in range(labels.shape[1]):
        log_probs, state = model.step(inputs["decoder_input_ids"][:, t], state, context)
        np.testing.assert_allclose(log_probs, tf.nn.log_softmax(logits[:, t]), atol=1e-5)


def test_masks_make_every_decoded_tsp_tour_a_permutation():
    model = _model(mask_chosen=True, permutation=True)
    points = random_points(16, 7, seed=2)
    indices, _ = tf.function(lambda p: solve_points(model, p, beam_size=3))(points)
    for row in indices.numpy().reshape(-1, 7):
        assert sorted(row) == list(range(7))
    scores = tsp_metrics(points, indices.numpy()[:, 0], held_karp(points))
    assert scores["invalid_rate"] == 0.0


def test_beam_search_over_positions_equals_exhaustive_search():
    """All 3! tours of an untrained model, scored by teacher forcing, against
    the shared beam search with a beam as wide as the number of tours."""
    model = _model(mask_chosen=True, permutation=True)
    points = random_points(2, 3, seed=3)
    indices, scores = solve_points(model, points, beam_size=6)
    for i in range(2):
        tours = [list(t) for t in itertools.permutations(range(3))]
        targets = target_tokens(tours, 3)
        inputs = {
            "points": np.repeat(points[i : i + 1], len(tours), axis=0),
            "decoder_input_ids": np.concatenate([np.zeros((6, 1), np.int32), targets[:, :-1]], 1),
        }
        log_probs = tf.nn.log_softmax(model(inputs), axis=-1).numpy()
        totals = np.take_along_axis(log_probs, targets[..., None], -1)[..., 0].sum(1)
        order = np.argsort(-totals, kind="stable")
        np.testing.assert_allclose(scores[i], totals[order], atol=1e-5)
        assert indices[i].numpy().tolist() == [tours[j] for j in order]


def test_keras_round_trip(tmp_path):
    model = _model(mask_chosen=True, glimpse="bahdanau", point_dims=3)
    points = random_points(4, 6, seed=4, dims=3)
    path = tmp_path / "pointer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    expected = solve_points(model, points, beam_size=2)
    got = solve_points(loaded, points, beam_size=2)
    np.testing.assert_array_equal(expected[0], got[0])
    np.testing.assert_allclose(expected[1], got[1], atol=1e-6)


def test_permutation_needs_masking():
    with pytest.raises(ValueError, match="mask_chosen"):
        PointerNetwork(mask_chosen=False, permutation=True)


def test_sorting_is_learned():
    """The smoke task: a few seconds of training sort 5 numbers."""
    keras.utils.set_random_seed(0)
    points, targets = generate_instances("sort", 20_000, 5, seed=0)
    test_points, _ = generate_instances("sort", 300, 5, seed=1)
    model = PointerNetwork(units=64, mask_chosen=True, permutation=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=SequenceCrossEntropy())
    model.fit(pointer_dataset(points, targets, 128, shuffle=True), epochs=3, verbose=0)
    indices, _ = solve_points(model, test_points, beam_size=1)
    correct = [
        list(row) == list(np.argsort(p[:, 0], kind="stable"))
        for row, p in zip(indices.numpy()[:, 0], test_points)
    ]
    assert np.mean(correct) >= 0.9


# -- recipes and exports -----------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """convex-hull-5, shrunk to a few seconds of training."""
    recipe = load_recipe("convex-hull-5").replace(data={"train_size": 4000},
                                                   training={"epochs": 1})
    work = tmp_path_factory.mktemp("hull")
    task = task_for(recipe)
    solver = train(task, str(work / "run"), verbose=0).exportable
    return solver, task, work


def test_recipe_training_writes_a_run_that_loads(trained):
    solver, task, work = trained
    loaded = PointerSolver.load_run(str(work / "run"))
    points = task.instances["val"][0][:20]
    np.testing.assert_array_equal(loaded.beam_search(points)["indices"],
                                  solver.beam_search(points)["indices"])
    scores = task.evaluate(solver, points=task.instances["val"][0][:100])
    assert set(scores) == {"accuracy", "area_coverage", "invalid_rate"}


@pytest.fixture(scope="module")
def exported(trained):
    solver, _, work = trained
    return export_saved_model(solver, str(work / "export"))


def test_saved_model_signature(trained, exported):
    solver, _, _ = trained
    # Run in a process that imports only tensorflow and tensorflow_text, and
    # compared with the solver there.
    assert verify_export(solver, exported, solver.check_inputs()) == 8
    # serving_default as design.md 2.4 has it.
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    points = np.random.default_rng(0).random((3, 7, 2)).astype("float32")
    out = serve(points=tf.constant(points))
    assert (out["indices"].dtype, out["indices"].shape) == (tf.int32, (3, 7))
    assert (out["scores"].dtype, out["scores"].shape) == (tf.float32, (3,))
    for row in out["indices"].numpy().tolist():
        chosen = [i for i in row if i >= 0]
        # 0-based positions, each once, then -1 padding only.
        assert len(set(chosen)) == len(chosen) and all(0 <= i < 7 for i in chosen)
        assert row == chosen + [-1] * (7 - len(chosen))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most"):
        serve(points=tf.zeros([1, solver.max_points + 1, 2]))


def test_tflite_gives_the_saved_models_beams(trained, exported, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    solver, task, _ = trained
    out = str(tmp_path / "hull.tflite")
    convert_to_tflite(exported, out)
    runner = Interpreter(out).get_signature_runner("decode")
    for points in task.instances["val"][0][:10]:
        got = runner(points=points[None])
        want = solver.beam_search(points[None])
        np.testing.assert_array_equal(got["indices"], want["indices"])
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-4)
    assert os.path.getsize(out) > 0


@pytest.mark.parametrize("flags, message", [
    (["--bfloat16-matmuls"], "float32 only"),
    (["--parallel-searches", "2"], "searches a request as one"),
])
def test_export_refuses_text_search_options_for_a_pointer_solver(trained, capsys, flags, message):
    from keras_seq2seq import cli

    _, _, work = trained
    assert cli.main(["export", "--run", str(work / "run"), "--export-dir", str(work / "refused"),
                     *flags]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(work / "refused")
