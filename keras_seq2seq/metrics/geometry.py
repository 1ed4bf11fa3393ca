"""Metrics of pointer-network outputs: convex hulls and TSP tours.

Predictions are 0-based input positions per instance, -1 after the output
ends (as `PointerSolver.search` and the SavedModel's `indices` give).
"""

import numpy as np

from keras_seq2seq.data.points import convex_hull, polygon_area, tour_lengths


def _positions(row):
    row = np.asarray(row)
    return [int(i) for i in row[row >= 0]]


def convex_hull_metrics(points, predicted):
    """Accuracy and area coverage of predicted convex hulls.

    Accuracy counts an output as correct when it lists exactly the hull's
    vertices, each once, counter-clockwise; the starting vertex is free (a
    cyclic rotation is the same hull). Area coverage (Vinyals et al. 2015) is
    the predicted polygon's area over the true hull's, averaged over the
    instances whose output is a valid polygon (at least 3 distinct vertices,
    not self-intersecting: its signed area, counter-clockwise, equals the
    area); the rest are counted in `invalid_rate`.

    Args:
        points: [count, n, 2].
        predicted: int [count, length] positions, -1 padded.

    Returns:
        dict with `accuracy`, `area_coverage` and `invalid_rate`.
    """
    correct, coverage, invalid = 0, [], 0
    for p, row in zip(np.asarray(points), predicted):
        got, hull = _positions(row), convex_hull(p)
        if len(got) == len(hull) and len(got) and got[0] in hull:
            start = hull.index(got[0])
            correct += got == hull[start:] + hull[:start]
        if len(set(got)) != len(got) or len(got) < 3 or not _is_simple_ccw(p, got):
            invalid += 1
            continue
        coverage.append(polygon_area(p, got) / polygon_area(p, hull))
    count = max(len(predicted), 1)
    return {
        "accuracy": correct / count,
        "area_coverage": float(np.mean(coverage)) if coverage else 0.0,
        "invalid_rate": invalid / count,
    }


def _segments_cross(a, b, c, d):
    def orient(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0


def _is_simple_ccw(points, order):
    """Whether the polygon through `points[order]` is simple and counter-clockwise."""
    p = np.asarray(points, np.float64)[order]
    x, y = p[:, 0], p[:, 1]
    if np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) <= 0:
        return False
    edges = [(p[i], p[(i + 1) % len(p)]) for i in range(len(p))]
    for i in range(len(edges)):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue  # neighbours through the closing edge
            if _segments_cross(*edges[i], *edges[j]):
                return False
    return True


def tsp_metrics(points, predicted, optimal):
    """Tour lengths of predicted TSP tours against reference tours.

    Args:
        points: [count, n, 2].
        predicted: int [count, length] positions, -1 padded.
        optimal: int [count, n] reference tours (exact for n <= 10).

    Returns:
        dict with `mean_length` (closed tours, over valid outputs),
        `optimal_length` (the references' mean over the same instances),
        `ratio` (their quotient) and `invalid_rate` (outputs that are not a
        permutation of all n positions).
    """
    points = np.asarray(points)
    n = points.shape[1]
    tours = [_positions(row) for row in predicted]
    valid = np.array([sorted(t) == list(range(n)) for t in tours], bool)
    if not valid.any():
        return {"mean_length": float("nan"), "optimal_length": float("nan"),
                "ratio": float("nan"), "invalid_rate": 1.0}
    lengths = tour_lengths(points[valid], np.array([t for t, ok in zip(tours, valid) if ok]))
    best = tour_lengths(points[valid], np.asarray(optimal)[valid])
    return {
        "mean_length": float(lengths.mean()),
        "optimal_length": float(best.mean()),
        "ratio": float(lengths.mean() / best.mean()),
        "invalid_rate": float(1.0 - valid.mean()),
    }
