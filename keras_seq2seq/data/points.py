"""Generated geometric tasks for pointer networks (Vinyals et al. 2015).

Inputs are points uniform in the unit square; outputs are positions in the
input:

- convex hull: the hull's vertices once each, counter-clockwise, starting
  from the vertex with the lowest index;
- TSP: a shortest closed tour as a permutation starting at position 0, in
  the direction whose second city has the lower index of the two
  neighbours of 0 (so that every tour has exactly one written form). Exact
  (Held-Karp dynamic programming) for n <= 10, nearest neighbour improved
  by 2-opt beyond;
- sorting: the positions of the points in order of their first coordinate
  (a smoke task).

Targets are written in the pointer networks' token space (see
`keras_seq2seq.models.pointer_network`): 0 is padding (and the decoder's
start input), 1 ends the output, and position i is token i + 2.

Everything is deterministic by seed.
"""

import os

import numpy as np

from keras_seq2seq.data.atomic import atomic_path

END_TOKEN = 1
POINTER_OFFSET = 2
PROBLEMS = ("convex_hull", "tsp", "sort")
EXACT_TSP_LIMIT = 10


def random_points(count, n, seed, dims=2):
    """float32 [count, n, dims], uniform in the unit square (cube)."""
    return np.random.default_rng(seed).random((count, n, dims), dtype=np.float64).astype(np.float32)


# -- convex hull -------------------------------------------------------------


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull(points):
    """Hull vertices of one [n, 2] point set: counter-clockwise, starting at
    the lowest index (Andrew's monotone chain; collinear points left out)."""
    points = np.asarray(points, np.float64)
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    if len(order) < 3:
        return order

    def chain(indices):
        out = []
        for i in indices:
            while len(out) >= 2 and _cross(points[out[-2]], points[out[-1]], points[i]) <= 0:
                out.pop()
            out.append(i)
        return out

    lower, upper = chain(order), chain(reversed(order))
    hull = lower[:-1] + upper[:-1]
    start = hull.index(min(hull))
    return hull[start:] + hull[:start]


def polygon_area(points, indices):
    """Shoelace area of the polygon visiting `points[indices]` in order."""
    if len(indices) < 3:
        return 0.0
    p = np.asarray(points, np.float64)[list(indices)]
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# -- travelling salesman -----------------------------------------------------


def distance_matrices(points):
    """[count, n, n] Euclidean distances."""
    points = np.asarray(points, np.float64)
    return np.sqrt(((points[:, :, None, :] - points[:, None, :, :]) ** 2).sum(-1))


def tour_lengths(points, tours):
    """Closed-tour lengths: [count] for points [count, n, 2], tours [count, n]."""
    points = np.asarray(points, np.float64)
    tours = np.asarray(tours)
    ordered = np.take_along_axis(points, tours[:, :, None], axis=1)
    return np.sqrt(((ordered - np.roll(ordered, -1, axis=1)) ** 2).sum(-1)).sum(-1)


def canonical_tour(tour):
    """The written form of a closed tour: starts at 0, second city < last."""
    tour = list(tour)
    start = tour.index(0)
    tour = tour[start:] + tour[:start]
    if len(tour) > 2 and tour[1] > tour[-1]:
        tour = [tour[0]] + tour[1:][::-1]
    return tour


def held_karp(points):
    """Exact shortest tours of a batch, vectorised over the batch.

    Args:
        points: [count, n, 2] with n <= 12 (memory grows as 2**n).

    Returns:
        int [count, n] canonical tours (see `canonical_tour`).
    """
    dist = distance_matrices(points)
    count, n = dist.shape[:2]
    if n <= 3:
        return np.tile(np.arange(n), (count, 1))
    m = n - 1  # cities 1..n-1, bit k for city k + 1
    full = 1 << m
    cost = np.full((full, m, count), np.inf)
    parent = np.zeros((full, m, count), np.int8)
    between = dist[:, 1:, 1:].transpose(1, 2, 0)  # [m, m, count]
    for k in range(m):
        cost[1 << k, k] = dist[:, 0, k + 1]
    for subset in sorted(range(1, full), key=lambda s: bin(s).count("1")):
        members = [k for k in range(m) if subset >> k & 1]
        if len(members) < 2:
            continue
        for j in members:
            previous = subset ^ (1 << j)
            candidates = cost[previous] + between[:, j, :]  # [m, count]
            best = np.argmin(candidates, axis=0)
            cost[subset, j] = np.take_along_axis(candidates, best[None], 0)[0]
            parent[subset, j] = best
    closing = cost[full - 1] + dist[:, 1:, 0].T  # [m, count]
    last = np.argmin(closing, axis=0)
    tours = np.zeros((count, n), np.int64)
    subset = np.full(count, full - 1)
    rows = np.arange(count)
    for position in range(n - 1, 0, -1):
        tours[:, position] = last + 1
        previous = parent[subset, last, rows]
        subset = subset ^ (1 << last)
        last = previous.astype(np.int64)
    return np.array([canonical_tour(t) for t in tours])


def two_opt(points, tour, max_rounds=1000):
    """Improves one closed tour by 2-opt moves until none helps."""
    dist = distance_matrices(np.asarray(points)[None])[0]
    tour = np.array(tour)
    n = len(tour)
    for _ in range(max_rounds):
        a, b = tour, np.roll(tour, -1)
        # Gain of reversing tour[i+1 .. j] for every i < j.
        gain = dist[a[:, None], a[None, :]] + dist[b[:, None], b[None, :]] \
            - dist[a, b][:, None] - dist[a, b][None, :]
        gain = np.triu(gain, k=2)
        if n > 2:
            gain[0, n - 1] = 0.0
        i, j = np.unravel_index(np.argmin(gain), gain.shape)
        if gain[i, j] > -1e-12:
            break
        tour[i + 1 : j + 1] = tour[i + 1 : j + 1][::-1]
    return canonical_tour(tour)


def nearest_neighbour_tour(points):
    dist = distance_matrices(np.asarray(points)[None])[0]
    tour, left = [0], set(range(1, len(dist)))
    while left:
        nearest = min(left, key=lambda k: dist[tour[-1], k])
        tour.append(nearest)
        left.remove(nearest)
    return tour


def tsp_tours(points):
    """Canonical tours: exact for n <= 10 (Held-Karp), else 2-opt from nearest neighbour."""
    points = np.asarray(points)
    if points.shape[1] <= EXACT_TSP_LIMIT:
        return held_karp(points)
    return np.array([two_opt(p, nearest_neighbour_tour(p)) for p in points])


# -- targets and datasets ------------------------------------------------------


def solve(problem, points):
    """The target positions of each instance: a list of lists of ints."""
    if problem == "convex_hull":
        return [convex_hull(p) for p in points]
    if problem == "tsp":
        return [list(t) for t in tsp_tours(points)]
    if problem == "sort":
        return [list(np.argsort(p[:, 0], kind="stable")) for p in points]
    raise ValueError(f"unknown problem {problem!r}; choose one of {PROBLEMS}")


def target_tokens(solutions, n):
    """[count, n + 1] int32 tokens: positions + 2, then END, then padding."""
    tokens = np.zeros((len(solutions), n + 1), np.int32)
    for row, positions in enumerate(solutions):
        tokens[row, : len(positions)] = np.asarray(positions, np.int32) + POINTER_OFFSET
        tokens[row, len(positions)] = END_TOKEN
    return tokens


def generate_instances(problem, count, n, seed, chunk=20_000):
    """`(points [count, n, 2], targets [count, n + 1])`, deterministic by seed."""
    points = random_points(count, n, seed)
    targets = np.concatenate([
        target_tokens(solve(problem, points[i : i + chunk]), n)
        for i in range(0, count, chunk)
    ]) if count else np.zeros((0, n + 1), np.int32)
    return points, targets


def cached_instances(path, problem, count, n, seed):
    """`generate_instances`, kept in an .npz file so reruns and resumes reuse
    it; a file generated for another problem, size or seed is generated
    again (instances are a function of those four)."""
    if os.path.exists(path):
        with np.load(path) as cached:
            if (cached["points"].shape == (count, n, 2) and "problem" in cached
                    and str(cached["problem"]) == problem and int(cached["seed"]) == seed):
                return cached["points"], cached["targets"]
    points, targets = generate_instances(problem, count, n, seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, extension=".npz") as part:
        np.savez(part, points=points, targets=targets, problem=problem, seed=seed)
    return points, targets


def pointer_dataset(points, targets, batch_size, shuffle=False, seed=0):
    """Teacher-forced batches `({"points", "decoder_input_ids"}, target_ids)`.

    The decoder's input at step t is the token chosen at step t - 1 (the
    start token 0 first); rows are trimmed to the batch's longest target.
    """
    import tensorflow as tf

    decoder_inputs = np.concatenate(
        [np.zeros_like(targets[:, :1]), np.where(targets[:, :-1] == END_TOKEN, 0, targets[:, :-1])],
        axis=1,
    )
    dataset = tf.data.Dataset.from_tensor_slices((points, decoder_inputs, targets))
    if shuffle:
        dataset = dataset.shuffle(min(len(points), 100_000), seed=seed, reshuffle_each_iteration=True)

    def trim(points, decoder_inputs, targets):
        length = tf.reduce_max(tf.reduce_sum(tf.cast(targets != 0, tf.int32), axis=1))
        return (
            {"points": points, "decoder_input_ids": decoder_inputs[:, :length]},
            targets[:, :length],
        )

    return dataset.batch(batch_size).map(trim).prefetch(tf.data.AUTOTUNE)
