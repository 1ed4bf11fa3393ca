"""Decode speed of beam search: tf.function, with XLA, and a Python loop.

The model has the Multi30k recipe's sizes (2-layer bi-LSTM 256 encoder,
2-layer LSTM 256 decoder, Luong general attention with input feeding,
embeddings 256, vocabulary 8,000, an output layer of
`--target-vocabulary-size`) with random weights: speed does not depend on
what the weights have learned. Sources are 15 tokens (14 + EOS); outputs
are 16 steps (15 tokens + EOS): EOS is forbidden before the 16th and the
length cap ends every hypothesis there. `--model pointer_generator` times
See et al.'s model at the same sizes instead (coverage attention, the copy
switch, outputs over the 8,000 words plus the source's positions), against
which the attention model's sentences/s are the mark the
pointer-generator's decode must reach; `--attention` swaps either model's
mechanism (coverage for the attention model, Luong for the
pointer-generator), to tell the copy step's cost from the attention's. The
searches are traced for any
batch and source length, as the export's signatures are: a
pointer-generator's output width (vocabulary + source) is then known only
at run time.

Variants, all the same `keras_seq2seq.decoding.translate` call:
  tf.function         the graph loop, as exported;
  _xla                the same under `jit_compile=True`;
  _python_loop        run eagerly, where `tf.while_loop` is a plain Python loop.

`--paired ROUNDS` times the pointer-generator against the attention model
instead, in one process: the two graph searches in alternating 1-second
slices (the order alternating each round; `--attention` then sets the
pointer-generator's), at batch 1 and 32, and prints
each batch's median sentences/s and the ratio of each pair of slices
(median, mean and its standard error). Separate processes drift too much
on a shared machine to resolve a few percent (an identical tree has read
5% apart at batch 1). With `--xla` both searches are compiled with XLA, as
`keras-seq2seq export --xla` compiles an export's.

Prints one JSON line. Usage: python benchmarks/decode_speed.py [--seconds S]
[--model pointer_generator] [--attention NAME] [--bfloat16-matmuls]
[--paired ROUNDS [--xla]] [--inter-op-threads N] [--intra-op-threads N]
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
from keras_seq2seq import AttentionSeq2Seq, PointerGenerator  # noqa: E402
from keras_seq2seq.decoding import generate  # noqa: E402
from keras_seq2seq.text import EOS_ID  # noqa: E402

SOURCE_TOKENS, OUTPUT_STEPS, BEAM, MAX_LENGTH = 15, 16, 5, 64
VOCABULARY = 8000
SIZES = dict(embedding_dim=256, units=256, encoder_layers=2, decoder_layers=2,
             input_feeding=True)


def attention_model(target_vocabulary_size=VOCABULARY, attention="luong_general"):
    """The Multi30k recipe's sizes, random weights, built; its outputs are
    the first `target_vocabulary_size` ids."""
    # The whole vocabulary is the model without a target vocabulary.
    target_vocabulary = (None if target_vocabulary_size == VOCABULARY
                         else list(range(target_vocabulary_size)))
    model = AttentionSeq2Seq(VOCABULARY, attention=attention,
                             target_vocabulary=target_vocabulary, **SIZES)
    model.build()
    return model


def pointer_generator_model(attention=None):
    """See et al.'s model at the same sizes, random weights, built; its
    outputs are the 8,000 words and the source's positions; coverage
    attention unless `attention` names another."""
    model = PointerGenerator(VOCABULARY, attention=attention or "coverage", **SIZES)
    model.build()
    return model


def beam_search(model, matmul_dtype=None, retire_finished=True, fused_lstm=True):
    """The timed search: `source_ids -> (ids, scores)`, beam 5, every
    hypothesis `OUTPUT_STEPS` long (`retire_finished=False` and
    `fused_lstm=False` for XLA, as an export's searches)."""
    # A pointer-generator copies the source's EOS even with random weights:
    # without min_length it would be timed over shorter outputs.
    def search(source_ids):
        return generate(model, source_ids, MAX_LENGTH, beam_size=BEAM, length_cap=OUTPUT_STEPS,
                        min_length=OUTPUT_STEPS - 1, matmul_dtype=matmul_dtype,
                        retire_finished=retire_finished, fused_lstm=fused_lstm)
    return search


def random_sources(batch, rng):
    """int32 [batch, SOURCE_TOKENS] random word ids, each ending with EOS."""
    ids = rng.integers(4, VOCABULARY, size=(batch, SOURCE_TOKENS)).astype("int32")
    ids[:, -1] = EOS_ID
    return tf.constant(ids)


def sentences_per_second(fn, source_ids, seconds, min_runs=3):
    fn(source_ids)  # trace / compile / warm up
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        fn(source_ids)
        runs += 1
    return runs * int(source_ids.shape[0]) / (time.perf_counter() - start)


def paired_rates(searches, source_ids, rounds, slice_seconds=1.0):
    """`{name: [sentences/s of each slice]}` of two searches timed in one
    process, in alternating slices of `slice_seconds`, the order
    alternating each round."""
    for search in searches.values():
        search(source_ids)  # trace, warm up
    names = list(searches)
    rates = {name: [] for name in names}
    for round_ in range(rounds):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            runs, start = 0, time.perf_counter()
            while runs < 2 or time.perf_counter() - start < slice_seconds:
                searches[name](source_ids)
                runs += 1
            rates[name].append(runs * int(source_ids.shape[0]) / (time.perf_counter() - start))
    return rates


def paired_comparison(rounds, attention=None, threads=None, xla=False):
    """The pointer-generator's sentences/s against the attention model's,
    both graph searches (with `xla`, both compiled as an `--xla` export's
    are), interleaved (`paired_rates`)."""
    keras.utils.set_random_seed(0)
    pointer_generator = pointer_generator_model(attention)
    signature = [tf.TensorSpec([None, None], tf.int32)]
    searches = {
        name: tf.function(beam_search(model, retire_finished=not xla, fused_lstm=not xla),
                          input_signature=signature, jit_compile=xla)
        for name, model in (("attention", attention_model()),
                            ("pointer_generator", pointer_generator))}
    result = {"paired_rounds": rounds, "xla": xla,
              "pointer_generator_attention": pointer_generator.attention_name, "beam": BEAM,
              "source_tokens": SOURCE_TOKENS, "output_steps": OUTPUT_STEPS,
              **(threads or {})}
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        rates = {name: np.array(values) for name, values in
                 paired_rates(searches, random_sources(batch, rng), rounds).items()}
        ratio = rates["pointer_generator"] / rates["attention"]
        result[f"b{batch}"] = {
            "attention_sent_per_s": round(float(np.median(rates["attention"])), 2),
            "pointer_generator_sent_per_s": round(float(np.median(rates["pointer_generator"])), 2),
            "ratio_median": round(float(np.median(ratio)), 3),
            "ratio_mean": round(float(ratio.mean()), 3),
            "ratio_standard_error": round(float(ratio.std(ddof=1) / np.sqrt(len(ratio))), 3),
        }
    result["machine"] = machine()
    result["tensorflow"] = tf.__version__
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per variant")
    parser.add_argument("--target-vocabulary-size", type=int, default=8000,
                        help="output layer size: a target vocabulary of the first N ids "
                        "(the Multi30k recipe's English side has 3,853)")
    parser.add_argument("--model", choices=["attention", "pointer_generator"],
                        default="attention")
    parser.add_argument("--attention", default=None,
                        help="the attention mechanism (default: the model's own, luong_general "
                        "for the attention model and coverage for the pointer-generator)")
    parser.add_argument("--bfloat16-matmuls", action="store_true",
                        help="the step's matrix products in bfloat16 (as `keras-seq2seq "
                        "export --bfloat16-matmuls`)")
    parser.add_argument("--paired", type=int, default=0, metavar="ROUNDS",
                        help="time the pointer-generator against the attention model in one "
                        "process, ROUNDS pairs of interleaved 1-second slices per batch size")
    parser.add_argument("--xla", action="store_true",
                        help="with --paired: both searches compiled with XLA, as `keras-seq2seq "
                        "export --xla` compiles them")
    add_thread_arguments(parser)
    args = parser.parse_args()
    threads = apply_thread_arguments(args)
    if args.paired:
        if args.paired < 2:
            parser.error("--paired: at least 2 rounds (the ratio's standard error needs two)")
        print(json.dumps(paired_comparison(args.paired, args.attention, threads, args.xla)))
        return
    if args.xla:
        parser.error("--xla goes with --paired; a single model is timed with and without XLA")
    matmul_dtype = "bfloat16" if args.bfloat16_matmuls else None

    keras.utils.set_random_seed(0)
    if args.model == "pointer_generator":
        if args.target_vocabulary_size != VOCABULARY:
            parser.error("a pointer-generator's outputs extend the whole vocabulary: "
                         "no --target-vocabulary-size")
        model = pointer_generator_model(args.attention)
    else:
        model = attention_model(args.target_vocabulary_size, args.attention or "luong_general")
    search = beam_search(model, matmul_dtype)

    signature = [tf.TensorSpec([None, None], tf.int32)]
    graph = tf.function(search, input_signature=signature)
    xla = tf.function(beam_search(model, matmul_dtype, retire_finished=False, fused_lstm=False),
                      input_signature=signature, jit_compile=True)
    rng = np.random.default_rng(0)
    result = {"model": args.model, "attention": model.attention_name, "beam": BEAM,
              "source_tokens": SOURCE_TOKENS, "output_steps": OUTPUT_STEPS,
              "matmul_dtype": matmul_dtype,
              "target_vocabulary_size": args.target_vocabulary_size, **threads}
    for batch in (1, 32):
        ids = random_sources(batch, rng)
        result[f"sent_per_s_b{batch}"] = sentences_per_second(graph, ids, args.seconds)
        result[f"sent_per_s_b{batch}_xla"] = sentences_per_second(xla, ids, args.seconds)
        result[f"sent_per_s_b{batch}_python_loop"] = sentences_per_second(
            search, ids, args.seconds, min_runs=2)
    result = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
    result["ms_per_sentence_b1"] = round(1000 / result["sent_per_s_b1"], 2)
    result["speedup_b32_vs_python_loop"] = round(
        result["sent_per_s_b32"] / result["sent_per_s_b32_python_loop"], 2)
    result["machine"] = machine()
    result["tensorflow"] = tf.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
