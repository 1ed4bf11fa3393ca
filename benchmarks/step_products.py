"""The matrix products of one decoder step, alone, against the step and the search.

A beam search step of the Multi30k recipe's model multiplies its rows (beam
x sentences) by every weight matrix the step reads: each decoder LSTM
layer's input and recurrent kernels, the attentional layer's and the output
layer's (Luong's matrix is applied to the memory once, before the loop). At
one sentence (5 rows) those products stream the weights from memory for
little arithmetic, so their time alone bounds how fast a sentence can be
searched, whatever the rest of the step costs. This script builds the
recipe-sized model (random weights; `decode_speed.py`'s sizes with the
recipe's 3,853 English outputs), then times the products, and the output
layer's alone, in a `tf.while_loop` of `--steps` iterations, in float32
and in bfloat16 (as `keras-seq2seq export --bfloat16-matmuls` makes them).
Then, for one sentence of 15 tokens (5 rows), the model's whole `step` in
a loop of 16 steps fed its own greedy choices (no search), and the beam-5
search of 16 steps (`generate`, as `decode_speed.py` times it), each a
microseconds-a-step figure with the encoder's time in it: where the three
part, the step's other work or the search's is what costs.

    python benchmarks/step_products.py [--rows 5 160] [--intra-op-threads 1]

Prints one JSON line: for each row count and dtype, microseconds a step,
the megabytes of weights read and the rate they were read at; the step
and the search in microseconds a step.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import add_thread_arguments, apply_thread_arguments, machine  # noqa: E402
from benchmarks.decode_speed import (  # noqa: E402
    BEAM, OUTPUT_STEPS, attention_model, beam_search, random_sources)
from keras_seq2seq.decoding.search import tile_beams  # noqa: E402


def step_kernels(model):
    """`{name: kernel}`: every weight matrix one decoder step multiplies by,
    as `step_weights` hands them to the step."""
    weights = model.step_weights()
    kernels = {}
    for i, (kernel, recurrent_kernel, _) in enumerate(weights["decoder"]["rnn"]):
        kernels[f"lstm_{i}_kernel"] = kernel
        kernels[f"lstm_{i}_recurrent_kernel"] = recurrent_kernel
    kernels["attentional"] = weights["decoder"]["attentional"]
    kernels["output"] = weights["output"][0]
    return kernels


def _best_seconds(fn, *args, runs=1):
    """Seconds a call: the fastest of three timings of `runs` calls, after
    one untimed call."""
    fn(*args)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(runs):
            fn(*args)
        best = min(best, (time.perf_counter() - start) / runs)
    return best


def microseconds_a_step(kernels, rows, dtype, steps):
    weights = [tf.cast(k, dtype) for k in kernels]
    inputs = [tf.random.normal([rows, k.shape[0]], dtype=tf.float32) for k in kernels]
    inputs = [tf.cast(x, dtype) for x in inputs]

    @tf.function(autograph=False)
    def loop(weights, inputs):
        def body(i, carry):
            total = carry
            for x, w in zip(inputs, weights):
                # The carry feeds every product, so none is hoisted out of the loop.
                product = tf.matmul(x + tf.cast(carry, dtype), w)
                total += tf.cast(product[:1, :1], tf.float32) * 0
            return i + 1, total
        return tf.while_loop(lambda i, _: i < steps, body, (0, tf.zeros([1, 1])))[1]

    return _best_seconds(lambda: loop(weights, inputs).numpy()) / steps * 1e6


def step_and_search_microseconds(model):
    """`(step, search)`: microseconds a step for one sentence, the encoder
    included, of the model's step alone and of the beam search."""
    ids = random_sources(1, np.random.default_rng(0))

    @tf.function(autograph=False)
    def steps(ids):
        context, state = model.encode(ids)
        weights = model.step_weights()
        state = tile_beams(state, BEAM)

        def body(i, tokens, state):
            log_probs, state = model.step(tokens, state, context, weights)
            return i + 1, tf.cast(tf.argmax(log_probs, -1), tf.int32), state
        return tf.while_loop(lambda i, *_: i < OUTPUT_STEPS, body,
                             (0, tf.fill([BEAM], 1), state))[1]

    search = tf.function(beam_search(model), autograph=False)
    return tuple(_best_seconds(fn, ids, runs=20) / OUTPUT_STEPS * 1e6 for fn in (steps, search))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5, 160],
                        help="rows a step (beam 5 x sentences)")
    parser.add_argument("--target-vocabulary-size", type=int, default=3853)
    parser.add_argument("--steps", type=int, default=400, help="loop iterations timed")
    add_thread_arguments(parser)
    args = parser.parse_args()
    threads = apply_thread_arguments(args)

    keras.utils.set_random_seed(0)
    model = attention_model(args.target_vocabulary_size)
    kernels = step_kernels(model)
    result = {"kernels": {name: list(k.shape) for name, k in kernels.items()}, **threads}
    for rows in args.rows:
        for dtype in ("float32", "bfloat16"):
            for name, chosen in (("all", list(kernels.values())), ("output", [kernels["output"]])):
                size = 4 if dtype == "float32" else 2
                megabytes = sum(int(np.prod(k.shape)) for k in chosen) * size / 1e6
                us = microseconds_a_step(chosen, rows, dtype, args.steps)
                result[f"rows{rows}_{dtype}_{name}"] = {
                    "us_a_step": round(us, 1), "weights_mb": round(megabytes, 2),
                    "gb_per_s": round(megabytes / us * 1e3, 1)}
    step, search = step_and_search_microseconds(model)
    result["rows5_float32_model_step_us"] = round(step, 1)
    result["rows5_float32_search_step_us"] = round(search, 1)
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
