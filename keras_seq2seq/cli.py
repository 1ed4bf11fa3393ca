"""The `keras-seq2seq` command line.

    keras-seq2seq quickstart                       train dates-attention, export, show
    keras-seq2seq train --recipe NAME ...          train a recipe and export it
    keras-seq2seq translate --model EXPORT         translate stdin or a file
    keras-seq2seq evaluate --hypotheses H --references R   BLEU, chrF, ROUGE as JSON
    keras-seq2seq export --run RUN --export-dir D  export a trained run
    keras-seq2seq tflite EXPORT OUT.tflite         convert an export to TFLite
    keras-seq2seq zoo                              list the recipes
"""

import argparse
import dataclasses
import functools
import itertools
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _export_and_check(exportable, export_dir, check_inputs, check=True):
    """Exports, then reloads the export in a clean process and compares."""
    from keras_seq2seq.export import export_saved_model, verify_export

    path = export_saved_model(exportable, export_dir)
    print(f"SavedModel exported to {path}")
    if check:
        n = verify_export(exportable, path, check_inputs)
        print(f"Checked: the export, loaded with only tensorflow and tensorflow_text, "
              f"gives the model's outputs and scores on {n} inputs")
    return path


def _callback_options(args):
    return dict(
        patience=args.patience,
        tensorboard=not args.no_tensorboard,
        best_checkpoint=not args.no_best_checkpoint,
        terminate_on_nan=not args.no_terminate_on_nan,
    )


def _check_texts(source_path, n=8):
    """The first n sources of a file (if it exists), plus two awkward inputs."""
    from keras_seq2seq.data import iter_lines

    texts = list(itertools.islice(iter_lines(source_path), n)) if os.path.exists(source_path) else []
    return {"text": texts + ["", "😀 ??"]}


def _train_and_export(recipe, args, data_dir=None):
    """Trains a text or pointer recipe, reports its held-out figures, exports."""
    import json

    from keras_seq2seq import training
    from keras_seq2seq.zoo import PointerRecipe

    options = dict(
        work_dir=args.work_dir,
        max_minutes=args.max_minutes,
        epochs=args.epochs,
        backup_dir=args.backup_dir,
        mixed_precision=args.mixed_precision,
        callback_options=_callback_options(args),
        strategy=args.distribution,
    )
    start = time.monotonic()
    pointer = isinstance(recipe, PointerRecipe)
    if pointer:
        exportable, data, _ = training.train_pointer_recipe(recipe, **options)
    else:
        exportable, data, _ = training.train_recipe(
            recipe, data_dir=data_dir, on_bad_line=args.on_bad_line, **options)
    minutes = (time.monotonic() - start) / 60
    if exportable is None:
        print(f"\nTrained {recipe.name} in {minutes:.1f} minutes as a worker; "
              "the chief saves and exports the run")
        return None, None
    print(f"\nTrained {recipe.name} in {minutes:.1f} minutes; run saved to {args.work_dir}")
    if pointer:
        scores = training.evaluate_pointer(exportable, recipe.problem, data["val"][0])
        print(f"Validation ({len(data['val'][0])} instances, beam {exportable.beam_size}): "
              f"{json.dumps(scores)}")
        check_inputs = exportable.check_inputs()
    else:
        if recipe.metric == "exact_match":
            accuracy = training.evaluate_exact_match(exportable, *data["test"])
            print(f"Held-out exact match (greedy, {data['test'][0]}): {accuracy:.2%}")
        elif recipe.metric == "bleu":
            from keras_seq2seq.data import iter_lines
            from keras_seq2seq.metrics import score_text

            hypotheses = training.translate_file(exportable, data["test"][0], beam=True)
            scores = score_text(hypotheses, list(iter_lines(data["test"][1])), ("bleu", "chrf"))
            print(f"Test ({data['test'][0]}, beam {exportable.beam_size}): "
                  f"BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f}")
        check_inputs = _check_texts(data["test"][0])
    path = _export_and_check(exportable, args.export_dir, check_inputs, check=not args.no_check)
    return exportable, path


def cmd_quickstart(args):
    from keras_seq2seq.zoo import get_recipe
    from keras_seq2seq.zoo.recipes import _generated_dates

    recipe = get_recipe("dates-attention")
    if args.train_size:
        recipe = dataclasses.replace(
            recipe, prepare_data=functools.partial(_generated_dates, train=args.train_size)
        )
    translator, path = _train_and_export(recipe, args)
    if path is None:
        return

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    examples = [
        "3rd of March 1999",
        "Saturday, July 4, 1970",
        "12/25/07",
        "the 1st of January 2000",
        "31.10.2049",
    ]
    loaded = tf.saved_model.load(path)
    result = loaded.signatures["serving_default"](text=tf.constant(examples))
    print("\nExample translations, from the exported SavedModel:")
    for source, target in zip(examples, result["translation"].numpy()):
        print(f"  {source:28s} -> {target.decode('utf-8')}")


def cmd_train(args):
    from keras_seq2seq.zoo import get_recipe

    recipe = get_recipe(args.recipe)
    args.work_dir = args.work_dir or os.path.join("runs", recipe.name)
    _train_and_export(recipe, args, data_dir=args.data)


def cmd_export(args):
    from keras_seq2seq.export import PointerSolver, load_run

    exportable = load_run(args.run)
    if isinstance(exportable, PointerSolver):
        inputs = exportable.check_inputs()
    else:
        inputs = _check_texts(os.path.join(args.run, "data", "test.src"))
    _export_and_check(exportable, args.export_dir, inputs, check=not args.no_check)


def _resolve_export(path):
    """An export folder's newest version, or the given version folder."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [v for v in os.listdir(path) if v.isdigit()] if os.path.isdir(path) else []
    if not versions:
        raise SystemExit(
            f"error: {path} holds no SavedModel (no saved_model.pb, no version "
            "folders) and no trained run (no model.keras)"
        )
    return os.path.join(path, max(versions, key=int))


def _export_searcher(path, args):
    """Translate through a SavedModel's `beam_search_options` signature."""
    import json

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    if args.sampling:
        raise SystemExit("error: --sampling needs a run folder (--model runs/NAME), not an export")
    path = _resolve_export(path)
    with open(os.path.join(path, "assets.extra", "settings.json")) as f:
        settings = json.load(f)
    signature = tf.saved_model.load(path).signatures["beam_search_options"]

    def search(lines):
        out = signature(
            text=tf.constant(lines),
            beam_size=tf.constant(args.beam or settings["beam_size"]),
            alpha=tf.constant(settings["alpha"] if args.alpha is None else args.alpha, tf.float32),
            beta=tf.constant(settings["beta"] if args.beta is None else args.beta, tf.float32),
            max_length=tf.constant(args.max_length or settings["max_target_length"]),
        )
        return out["translations"].numpy(), out["scores"].numpy()

    return search


def _run_searcher(path, args):
    """Translate with a trained run folder in this process (sampling too)."""
    import numpy as np
    import tensorflow as tf

    from keras_seq2seq.export import Translator

    translator = Translator.load_run(path, jit_compile=args.xla)

    def search(lines):
        if args.sampling:
            texts = translator.sample(lines, args.temperature, args.top_k, args.top_p,
                                      (args.seed, 0)).numpy()
            return texts[:, None], np.full(texts.shape + (1,), np.nan)
        width = args.beam or translator.beam_size
        text = tf.constant(lines)
        ids, scores = translator.search(
            translator.encode_text(text), beam_size=width,
            alpha=args.alpha, beta=args.beta, max_length=args.max_length)
        return translator.decode_beams(ids, text).numpy(), scores.numpy()

    return search


def _searcher(args):
    """Translate through an export's signature, or a run folder in this process."""
    is_run = os.path.exists(os.path.join(args.model, "model.keras"))
    return (_run_searcher if is_run else _export_searcher)(args.model, args)


def cmd_translate(args):
    search = _searcher(args)
    source = open(args.input, encoding="utf-8", errors="replace") if args.input else sys.stdin
    lines = [line.rstrip("\n") for line in source]
    if args.plot_attention and lines:
        from keras_seq2seq.export import Translator
        from keras_seq2seq.plots import plot_attention

        run = _keras_run_folder(args.model)
        if run is None:
            raise SystemExit(f"error: {args.model} carries no Keras model to plot attention from")
        plot_attention(Translator.load_run(run), lines[0], args.plot_attention)
        print(f"Attention of the first line written to {args.plot_attention}", file=sys.stderr)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    for row_texts, row_scores in _n_best(search, lines, args.batch_size):
        if args.n_best <= 1:
            out.write(row_texts[0].decode("utf-8") + "\n")
            continue
        for text, score in list(zip(row_texts, row_scores))[: args.n_best]:
            out.write(f"{score:.4f}\t{text.decode('utf-8')}\n")
        out.write("\n")
    out.flush()


def _n_best(search, lines, batch_size):
    """`(translations, scores)` of each line, searched in batches of similar length."""
    from keras_seq2seq.decoding import translate_in_length_batches

    return translate_in_length_batches(lambda batch: zip(*search(batch)), lines, batch_size)


def _translate_lines(args, lines):
    """Best translations of `lines` through an export or a run folder."""
    return [texts[0].decode("utf-8") for texts, _ in _n_best(_searcher(args), lines, args.batch_size)]


def _keras_run_folder(model_path):
    """The Keras run behind a run folder or an export (its assets.extra/run)."""
    if os.path.exists(os.path.join(model_path, "model.keras")):
        return model_path
    run = os.path.join(_resolve_export(model_path), "assets.extra", "run")
    return run if os.path.exists(os.path.join(run, "model.keras")) else None


def cmd_evaluate(args):
    import json

    from keras_seq2seq.data import iter_lines
    from keras_seq2seq.metrics import score_text

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    references = list(iter_lines(args.references))
    if args.hypotheses:
        hypotheses = list(iter_lines(args.hypotheses))
        result = {}
    else:
        if not (args.model and args.source):
            raise SystemExit("error: evaluate needs --hypotheses, or --model and --source")
        sources = list(iter_lines(args.source))
        if len(sources) != len(references):
            raise SystemExit(f"error: {args.source} has {len(sources)} lines but "
                             f"{args.references} has {len(references)}")
        args.sampling, args.xla = False, False
        start = time.monotonic()
        hypotheses = _translate_lines(args, sources)
        result = {"sentences_per_s": round(len(sources) / (time.monotonic() - start), 1)}
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write("".join(h + "\n" for h in hypotheses))
        run = _keras_run_folder(args.model) if "perplexity" in metrics else None
        if run:
            from keras_seq2seq.data import parallel_text_dataset
            from keras_seq2seq.export import Translator
            from keras_seq2seq.metrics import perplexity

            translator = Translator.load_run(run)
            pairs = parallel_text_dataset(
                args.source, args.references, translator.tokenizer, batch_size=64,
                max_source_length=translator.max_source_length,
                max_target_length=translator.max_target_length, shuffle=False,
                extended_ids=translator.model.copies_source)
            result["perplexity"] = perplexity(translator.model, pairs)
    try:
        scores = score_text(hypotheses, references, [m for m in metrics if m != "perplexity"])
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print(json.dumps(dict(scores, **result, sentences=len(references))))


def cmd_tflite(args):
    from keras_seq2seq.export import convert_to_tflite

    sizes = convert_to_tflite(_resolve_export(args.export), args.output, quantize=args.quantize)
    for path, size in sizes.items():
        print(f"{path}: {size / 1e6:.2f} MB")


def cmd_zoo(args):
    from keras_seq2seq.zoo import RECIPES

    for recipe in RECIPES.values():
        measured = ", ".join(f"{k}: {v}" for k, v in recipe.measured.items()) or "not yet measured"
        print(f"{recipe.name:28s} {recipe.description}\n{'':28s} measured: {measured}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-seq2seq",
        description="Sequence-to-sequence models for TensorFlow/Keras.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def training_options(p, default_export):
        p.add_argument("--export-dir", default=default_export,
                       help="SavedModels go to the next integer version under it "
                            f"(default: {default_export or 'exports/RECIPE'})")
        p.add_argument("--max-minutes", type=float, default=None,
                       help="stop training cleanly after this many minutes")
        p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
        p.add_argument("--no-check", action="store_true",
                       help="skip reloading the export in a clean process to compare outputs")
        p.add_argument("--on-bad-line", choices=["fail", "skip"], default="fail",
                       help="a blank, non-UTF-8 or over-long (1,000 characters) line pair: "
                            "stop with its file and line number (fail, the default) or "
                            "drop it and report the count (skip)")
        p.add_argument("--mixed-precision", action="store_true",
                       help="train in mixed_bfloat16 (CPU) or mixed_float16 (GPU); "
                            "exports stay float32")
        p.add_argument("--strategy", choices=["default", "mirrored", "multi_worker"],
                       default="default",
                       help="tf.distribute strategy: one device, all local GPUs (mirrored), "
                            "or a cluster described by TF_CONFIG (multi_worker); batches "
                            "are split across replicas, only the chief writes")
        p.add_argument("--patience", type=int, default=5,
                       help="stop early after this many epochs without a lower validation "
                            "loss, keeping the best weights (0: never; default 5)")
        p.add_argument("--no-tensorboard", action="store_true",
                       help="do not write TensorBoard logs (WORK_DIR/logs)")
        p.add_argument("--no-best-checkpoint", action="store_true",
                       help="do not keep WORK_DIR/checkpoints/best.weights.h5")
        p.add_argument("--no-terminate-on-nan", action="store_true",
                       help="keep training when the loss becomes NaN")
        p.add_argument("--backup-dir", default=None,
                       help="backup after every epoch; a killed run started again with the "
                            "same command resumes there (default: WORK_DIR/backup)")

    p = commands.add_parser("quickstart", help="train the dates-attention recipe, export it, show examples")
    training_options(p, os.path.join("exports", "quickstart"))
    p.add_argument("--work-dir", default=os.path.join("runs", "quickstart"),
                   help="run folder: data, tokenizer, logs, checkpoints (default: runs/quickstart)")
    p.add_argument("--train-size", type=int, default=None,
                   help="generated training pairs (default: the recipe's 20,000)")
    p.set_defaults(func=cmd_quickstart)

    p = commands.add_parser("train", help="train a recipe and export it")
    p.add_argument("--recipe", required=True, help="recipe name (see `keras-seq2seq zoo`)")
    p.add_argument("--data", default=None, help="folder with the recipe's data files")
    p.add_argument("--work-dir", default=None, help="run folder (default: runs/RECIPE)")
    training_options(p, None)
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("export", help="export a trained run folder as a SavedModel")
    p.add_argument("--run", required=True, help="run folder written by train or quickstart")
    p.add_argument("--export-dir", required=True, help="export to the next version under it")
    p.add_argument("--no-check", action="store_true",
                   help="skip reloading the export in a clean process to compare outputs")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser(
        "translate", help="translate lines from stdin or a file, one output line per input")
    p.add_argument("--model", required=True,
                   help="an export folder (or one of its versions), or a run folder")
    p.add_argument("--input", default=None, help="input file (default: stdin)")
    p.add_argument("--output", default=None, help="output file (default: stdout)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--beam", type=int, default=None,
                   help="beam width (default: the export's; 1 is greedy; at most the export's)")
    p.add_argument("--alpha", type=float, default=None, help="GNMT length penalty")
    p.add_argument("--beta", type=float, default=None, help="GNMT coverage penalty")
    p.add_argument("--max-length", type=int, default=None, help="longest output, in tokens")
    p.add_argument("--n-best", type=int, default=1,
                   help="print this many hypotheses per input as 'score<TAB>text' "
                        "lines, blocks separated by a blank line")
    p.add_argument("--sampling", action="store_true",
                   help="sample instead of searching (run folders only)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--xla", action="store_true",
                   help="compile the search with XLA (run folders only; faster on CPU)")
    p.add_argument("--plot-attention", default=None, metavar="PNG",
                   help="also draw the attention heatmap of the first line's translation")
    p.set_defaults(func=cmd_translate)

    p = commands.add_parser(
        "evaluate", help="score translations (BLEU, chrF, ROUGE, exact match, perplexity); "
                         "prints one JSON line")
    p.add_argument("--references", required=True, help="reference file, one sentence a line")
    p.add_argument("--hypotheses", default=None, help="translations to score, one a line")
    p.add_argument("--model", default=None,
                   help="or translate --source with this export (or run folder) first")
    p.add_argument("--source", default=None, help="source file for --model")
    p.add_argument("--output", default=None, help="write --model's translations here")
    p.add_argument("--metrics", default="bleu,chrf,rouge,exact_match,perplexity",
                   help="comma-separated: bleu, chrf (sacrebleu's defaults), rouge "
                        "(rouge1, rouge2, rougeL F1), exact_match, perplexity (--model only)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the export's)")
    p.add_argument("--alpha", type=float, default=None, help="GNMT length penalty")
    p.add_argument("--beta", type=float, default=None, help="GNMT coverage penalty")
    p.add_argument("--max-length", type=int, default=None, help="longest output, in tokens")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser(
        "tflite", help="convert an export's beam search to TFLite (builtin ops only)")
    p.add_argument("export", help="an export folder or one of its versions")
    p.add_argument("output", help="the .tflite file; the vocabulary is written beside it")
    p.add_argument("--quantize", choices=["none", "dynamic", "float16"], default="none")
    p.set_defaults(func=cmd_tflite)

    p = commands.add_parser("zoo", help="list the recipes and their measured scores")
    p.set_defaults(func=cmd_zoo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.export_dir is None:
        args.export_dir = os.path.join("exports", args.recipe)
    if getattr(args, "strategy", None):
        from keras_seq2seq.distribute import distribution_strategy

        try:
            # Before any other TensorFlow work (multi-worker collectives).
            args.distribution = distribution_strategy(args.strategy)
        except ValueError as e:
            parser.error(str(e))
    from keras_seq2seq.data import DataError

    try:
        args.func(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
