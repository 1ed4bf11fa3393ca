"""The `keras-seq2seq` command line: it parses and prints, nothing else.

    keras-seq2seq quickstart                       train dates-attention, export, show
    keras-seq2seq train --recipe NAME [--data DIR] train a built-in recipe and export it
    keras-seq2seq train --config FILE.yaml         train a recipe file of your own
    keras-seq2seq train --train S T --val S T      train on your own parallel files
    keras-seq2seq translate --model EXPORT         translate stdin or a file
    keras-seq2seq score --model EXPORT --source S --target T   log p(target | source) a line
    keras-seq2seq evaluate --hypotheses H --references R   BLEU, chrF, ROUGE as JSON
    keras-seq2seq export --run RUN --export-dir D  export a trained run (--run twice: an ensemble)
    keras-seq2seq average --run RUN --last N       average a run's last N epochs' weights
    keras-seq2seq tflite EXPORT OUT.tflite         convert an export to TFLite
    keras-seq2seq zoo [--show NAME]                list the recipes, or print one

`--help` and `zoo` never import TensorFlow; the other commands import it
only after their arguments are parsed, with its start-up log lines hidden
unless `--verbose` is given.
"""

import argparse
import os
import sys
import time

import keras_seq2seq

QUICKSTART_EXAMPLES = [
    "3rd of March 1999",
    "Saturday, July 4, 1970",
    "12/25/07",
    "the 1st of January 2000",
    "31.10.2049",
]
# `train --train ...` without --like trains this recipe's model and settings.
DEFAULT_LIKE = "multi30k-de-en-attention"
# They run with TensorFlow's oneDNN kernels (`keras_seq2seq.prefer_onednn_kernels`).
TRAINING_COMMANDS = ("quickstart", "train")


def _start_tensorflow(verbose, strategy_name=None):
    """Imports TensorFlow (and makes the `tf.distribute` strategy, which must
    come before any other TensorFlow work); its C++ start-up lines (oneDNN,
    CUDA probing, CPU-feature banners) and Python warnings show only with
    --verbose. Returns the strategy (None without `strategy_name`)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TF 2.21 writes its start-up lines through absl before reading
    # TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442), so the import and
    # the first device creation run with file descriptor 2 on /dev/null.
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        if not verbose:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
        import tensorflow as tf
        import tensorflow_text  # noqa: F401

        strategy = None
        if strategy_name:
            from keras_seq2seq.distribute import distribution_strategy

            strategy = distribution_strategy(strategy_name)
        tf.constant(0) + 1
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    if not verbose:
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
    return strategy


# -- training ---------------------------------------------------------------------


def _train_options(args):
    return dict(
        max_minutes=args.max_minutes,
        backup_dir=args.backup_dir,
        on_bad_line=args.on_bad_line,
        strategy=args.distribution,
        callback_options=dict(
            patience=args.patience,
            tensorboard=not args.no_tensorboard,
            best_checkpoint=not args.no_best_checkpoint,
            terminate_on_nan=not args.no_terminate_on_nan,
        ),
    )


def _with_command_line_settings(recipe, args):
    """The recipe with --epochs and --[no-]mixed-precision applied."""
    training = {}
    if args.epochs:
        training["epochs"] = args.epochs
    if args.mixed_precision is not None:
        training["mixed_precision"] = args.mixed_precision
    return recipe.replace(training=training) if training else recipe


def _train_evaluate_export(recipe, args):
    """Trains, prints the held-out figures, exports; returns the export path."""
    from keras_seq2seq import tasks, training

    recipe = _with_command_line_settings(recipe, args)
    task = tasks.task_for(recipe, init_from=args.init_from)
    if args.init_from:
        print(f"Fine-tuning from {task.init_from.path}: its model and tokenizer, "
              f"the recipe's data and training settings")
    result = training.train(task, args.work_dir, **_train_options(args))
    if result.exportable is None:
        print(f"\nTrained {recipe.name} in {result.minutes:.1f} minutes as a worker; "
              "the chief saves and exports the run")
        return None
    print(f"\nTrained {recipe.name} in {result.minutes:.1f} minutes; run saved to {args.work_dir}")
    print(task.describe(task.evaluate(result.exportable)))
    path = training.export(result.exportable, args.export_dir, check=not args.no_check)
    print(f"SavedModel exported to {path}")
    chosen = recipe.export_settings_chosen()
    if chosen:
        print("Exported with the recipe's export settings (`keras-seq2seq export` flags change "
              f"them): {', '.join(f'{key} {value}' for key, value in chosen.items())}")
    if not args.no_check:
        print("Checked: the export, loaded with only tensorflow and tensorflow_text, gives the "
              "model's outputs and scores on its check inputs")
    return path


def cmd_quickstart(args):
    from keras_seq2seq.zoo import load_recipe

    recipe = load_recipe("dates-attention")
    if args.train_size:
        recipe = recipe.replace(data={"train_size": args.train_size})
    path = _train_evaluate_export(recipe, args)
    if path is None:
        return
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    loaded = tf.saved_model.load(path)
    result = loaded.signatures["serving_default"](text=tf.constant(QUICKSTART_EXAMPLES))
    print("\nExample translations, from the exported SavedModel:")
    for source, target in zip(QUICKSTART_EXAMPLES, result["translation"].numpy()):
        print(f"  {source:28s} -> {target.decode('utf-8')}")


def _recipe_of(args, parser):
    """The recipe `train` was given: --recipe, --config, or --train files."""
    from keras_seq2seq.zoo import load_recipe

    given = [flag for flag, value in (("--recipe", args.recipe), ("--config", args.config),
                                      ("--train", args.train)) if value]
    if len(given) != 1:
        parser.error("give exactly one of --recipe NAME, --config FILE or --train SRC TGT "
                     f"(got {', '.join(given) or 'none'})")
    if args.train:
        if not args.val:
            parser.error("--train needs --val SRC TGT (validation files)")
        if args.data:
            parser.error("--data is for --recipe; --train takes the files themselves")
        recipe = load_recipe(args.like or DEFAULT_LIKE, resolve_data=False)
        return recipe.on_files(args.train, args.val, args.test,
                               name=args.name or os.path.basename(args.export_dir or "") or
                               "own-data")
    if args.like or args.val or args.test:
        parser.error("--like, --val and --test go with --train")
    if args.config:
        return load_recipe(args.config, data_dir=args.data)
    return load_recipe(args.recipe, data_dir=args.data)


def cmd_train(args, parser):
    recipe = _recipe_of(args, parser)
    args.work_dir = args.work_dir or os.path.join("runs", recipe.name)
    args.export_dir = args.export_dir or os.path.join("exports", recipe.name)
    _train_evaluate_export(recipe, args)


def _int_at_least(text, least):
    value = int(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _at_least_one(text):
    """argparse type: an int of at least 1."""
    return _int_at_least(text, 1)


def _at_least_zero(text):
    """argparse type: an int of at least 0."""
    return _int_at_least(text, 0)


def cmd_export(args):
    from keras_seq2seq import training
    from keras_seq2seq.export import RunFolder, Translator

    # Each run as its recipe's `export` section had it exported; flags change that.
    exportables = [RunFolder(run).load() for run in args.run]
    if args.bfloat16_matmuls is not None:
        exportables = [exportable.with_bfloat16_matmuls(args.bfloat16_matmuls)
                       for exportable in exportables]
    if args.xla is not None:
        exportables = [exportable.with_xla_search(args.xla) for exportable in exportables]
    if args.parallel_searches is not None:
        exportables = [exportable.with_parallel_searches(args.parallel_searches)
                       for exportable in exportables]
    if len(exportables) == 1:
        exportable = exportables[0]
    else:
        exportable = Translator.ensemble(exportables, names=args.run)
        print(f"Ensemble of {len(exportables)} runs (the first run's search settings)")
    if args.shortlist == 0:
        exportable = exportable.without_shortlist()
    elif args.shortlist:
        exportable = _with_shortlist(exportable, args)
    path = training.export(exportable, args.export_dir, check=not args.no_check)
    print(f"SavedModel exported to {path}")


def _with_shortlist(exportable, args):
    """The exportable with a shortlist of `args.shortlist` outputs a source
    token, from `--shortlist-data` or the first run's training files."""
    from keras_seq2seq.data import iter_lines
    from keras_seq2seq.errors import UserError
    from keras_seq2seq.export import RunFolder, Translator

    if not isinstance(exportable, Translator):
        raise UserError("--shortlist is an option of translation exports (text in, text out)")
    files = args.shortlist_data or RunFolder(args.run[0]).training_files()
    if not files:
        raise UserError(f"{args.run[0]} was not trained on a pair of line files: give "
                        "--shortlist-data SOURCE TARGET (its training pairs)")
    for path in files:
        if not os.path.exists(path):
            raise UserError(f"{path}: no such file (the shortlist's training pairs; give "
                            "--shortlist-data SOURCE TARGET)")
    shortlisted = exportable.with_shortlist(iter_lines(files[0]), iter_lines(files[1]),
                                            args.shortlist, args.shortlist_frequent)
    print(f"Shortlist: {args.shortlist} outputs a source token, the "
          f"{len(shortlisted.shortlist.frequent)} commonest for every request, from {files[0]}")
    return shortlisted


def cmd_average(args):
    from keras_seq2seq import training

    training.average_checkpoints(args.run, args.last)
    print(f"{args.run}/model.keras is now the average of its last {args.last} epochs' "
          f"weights; export it with: keras-seq2seq export --run {args.run} --export-dir DIR")


# -- using a model ------------------------------------------------------------------


def _read_lines(path):
    """The lines of `path` (stdin for None), without their newlines."""
    if path is None:
        return [line.rstrip("\n") for line in sys.stdin]
    from keras_seq2seq.errors import UserError

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in f]
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def _parallel_lines(path, other_path, lines):
    """The lines of `other_path`, which must have as many as `lines` (of `path`)."""
    from keras_seq2seq.errors import UserError

    other = _read_lines(other_path)
    if len(other) != len(lines):
        raise UserError(f"{other_path} has {len(other)} lines but {path or 'the input'} "
                        f"has {len(lines)}: they must be parallel, one line per line")
    return other


def cmd_translate(args):
    from keras_seq2seq.errors import UserError
    from keras_seq2seq.export import RunFolder
    from keras_seq2seq.export.clients import aligned_translations, n_best, text_searcher

    lines = _read_lines(args.input)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    if args.alignments:
        if args.n_best > 1 or args.sampling or args.target_prefix:
            raise UserError("--alignments gives the best translation of the export's own "
                            "search: no --n-best, --sampling or --target-prefix with it")
        with open(args.alignments, "w", encoding="utf-8") as pairs:
            for text, alignment in aligned_translations(args.model, lines, args.batch_size):
                out.write(text + "\n")
                pairs.write(" ".join(f"{i}-{j}" for i, j in alignment) + "\n")
        out.flush()
        return
    prefixes = None
    if args.target_prefix:
        prefixes = _parallel_lines(args.input, args.target_prefix, lines)
    sampling = (args.temperature, args.top_k, args.top_p, args.seed) if args.sampling else None
    search = text_searcher(args.model, args.beam, args.alpha, args.beta, args.max_length,
                           sampling, args.xla)
    if args.plot_attention and lines:
        from keras_seq2seq.plots import plot_attention

        plot_attention(RunFolder.of(args.model).load(), lines[0], args.plot_attention)
        print(f"Attention of the first line written to {args.plot_attention}", file=sys.stderr)
    for row_texts, row_scores in n_best(search, lines, args.batch_size, prefixes):
        if args.n_best <= 1:
            out.write(row_texts[0].decode("utf-8") + "\n")
            continue
        for text, score in list(zip(row_texts, row_scores))[: args.n_best]:
            out.write(f"{score:.4f}\t{text.decode('utf-8')}\n")
        out.write("\n")
    out.flush()


def cmd_read(args):
    from keras_seq2seq.export.clients import read_files, reading_attention

    for path, (text, score) in zip(args.files, read_files(args.model, args.files,
                                                          args.batch_size)):
        print(f"{path}\t{text}\t{score:.4f}" if args.scores else f"{path}\t{text}")
    if args.plot_attention and args.files:
        from keras_seq2seq.plots import plot_image_attention, plot_spectrogram_attention

        input_name, *drawn = reading_attention(args.model, args.files[0])
        plot = {"image": plot_image_attention, "audio": plot_spectrogram_attention}[input_name]
        plot(*drawn, args.plot_attention)
        print(f"Attention over {args.files[0]} written to {args.plot_attention}", file=sys.stderr)


def cmd_score(args):
    from keras_seq2seq.export.clients import scores_of

    sources = _read_lines(args.source)
    targets = _parallel_lines(args.source, args.target, sources)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    for log_prob, tokens in scores_of(args.model, sources, targets, args.batch_size):
        out.write(f"{log_prob:.6f}\t{tokens}\n" if args.tokens else f"{log_prob:.6f}\n")
    out.flush()


def cmd_evaluate(args):
    import json

    from keras_seq2seq.data import iter_lines
    from keras_seq2seq.errors import UserError
    from keras_seq2seq.metrics import score_text

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    references = list(iter_lines(args.references))
    result = {}
    if args.hypotheses:
        hypotheses = list(iter_lines(args.hypotheses))
    else:
        from keras_seq2seq.export.clients import best_translations, perplexity_of, text_searcher

        if not (args.model and args.source):
            raise UserError("evaluate needs --hypotheses, or --model and --source")
        sources = list(iter_lines(args.source))
        if len(sources) != len(references):
            raise UserError(f"{args.source} has {len(sources)} lines but {args.references} "
                            f"has {len(references)}")
        start = time.monotonic()
        search = text_searcher(args.model, args.beam, args.alpha, args.beta, args.max_length)
        hypotheses = best_translations(search, sources, args.batch_size)
        result["sentences_per_s"] = round(len(sources) / (time.monotonic() - start), 1)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write("".join(h + "\n" for h in hypotheses))
        if "perplexity" in metrics:
            result["perplexity"] = perplexity_of(args.model, args.source, args.references)
    try:
        scores = score_text(hypotheses, references, [m for m in metrics if m != "perplexity"])
    except ValueError as e:
        raise UserError(str(e)) from None
    print(json.dumps(dict(scores, **result, sentences=len(references))))


def cmd_tflite(args):
    from keras_seq2seq.export import convert_to_tflite
    from keras_seq2seq.export.saved_model import resolve_export

    sizes = convert_to_tflite(resolve_export(args.export), args.output, quantize=args.quantize)
    for path, size in sizes.items():
        print(f"{path}: {size / 1e6:.2f} MB")


def cmd_zoo(args):
    from keras_seq2seq.zoo import builtin_names, load_recipe, read_builtin

    if args.show:
        sys.stdout.write(read_builtin(args.show))
        return
    for name in builtin_names():
        # Listed without their data files, which need --data.
        recipe = load_recipe(name, resolve_data=False)
        measured = ", ".join(f"{k}: {v}" for k, v in recipe.measured.items()) or \
            "not yet measured"
        print(f"{name:34s} {recipe.description}\n{'':34s} measured: {measured}")


# -- the parser ---------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-seq2seq",
        description="Sequence-to-sequence models for TensorFlow/Keras.",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up log lines and warnings")
    parser.set_defaults(needs_parser=False, strategy=None, init_from=None)
    commands = parser.add_subparsers(dest="command", required=True)

    def training_options(p, default_export):
        p.add_argument("--export-dir", default=default_export,
                       help="SavedModels go to the next integer version under it "
                            f"(default: {default_export or 'exports/NAME'})")
        p.add_argument("--max-minutes", type=float, default=None,
                       help="stop training cleanly after this many minutes")
        p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
        p.add_argument("--no-check", action="store_true",
                       help="skip reloading the export in a clean process to compare outputs")
        p.add_argument("--on-bad-line", choices=["fail", "skip"], default="fail",
                       help="a blank, non-UTF-8 or over-long (the recipe's max_line_chars, "
                            "default 1,000) line pair: stop with its file and line number "
                            "(fail, the default) or drop it and report the count (skip)")
        p.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction,
                       default=None,
                       help="train in mixed_bfloat16 (CPU) or mixed_float16 (GPU), or "
                            "not (--no-mixed-precision), whatever the recipe's "
                            "training.mixed_precision says; exports stay float32")
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

    p = commands.add_parser("quickstart",
                            help="train the dates-attention recipe, export it, show examples")
    training_options(p, os.path.join("exports", "quickstart"))
    p.add_argument("--work-dir", default=os.path.join("runs", "quickstart"),
                   help="run folder: data, tokenizer, logs, checkpoints (default: runs/quickstart)")
    p.add_argument("--train-size", type=int, default=None,
                   help="generated training pairs (default: the recipe's 20,000)")
    p.set_defaults(func=cmd_quickstart)

    p = commands.add_parser(
        "train", help="train a recipe (built-in, a file, or your own files) and export it",
        description="Train, print held-out figures, export a SavedModel and check it. "
                    "Give one of --recipe, --config or --train.")
    p.add_argument("--recipe", default=None, help="a built-in recipe (see `keras-seq2seq zoo`)")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="a recipe file (`keras-seq2seq zoo --show NAME` prints one to start "
                        "from); relative paths in it resolve against its folder")
    p.add_argument("--data", default=None,
                   help="the folder a recipe's relative data paths resolve against "
                        "(for Multi30k, ../shared/data/multi30k)")
    p.add_argument("--train", nargs=2, default=None, metavar=("SRC", "TGT"),
                   help="your own parallel training files (any names, any language pair, "
                        "plain or .gz); the vocabulary is built from them")
    p.add_argument("--val", nargs=2, default=None, metavar=("SRC", "TGT"),
                   help="validation files, with --train")
    p.add_argument("--test", nargs=2, default=None, metavar=("SRC", "TGT"),
                   help="test files, with --train (scored after training; default: --val)")
    p.add_argument("--like", default=None, metavar="RECIPE",
                   help=f"with --train: the built-in recipe whose model and settings to "
                        f"train (default {DEFAULT_LIKE})")
    p.add_argument("--name", default=None,
                   help="with --train: the run's name (default: the --export-dir's name)")
    p.add_argument("--init-from", default=None, metavar="RUN_OR_EXPORT",
                   help="fine-tune: start from this run's (or export's) model and keep its "
                        "tokenizer")
    p.add_argument("--work-dir", default=None, help="run folder (default: runs/NAME)")
    training_options(p, None)
    p.set_defaults(func=cmd_train, needs_parser=True)

    p = commands.add_parser("export", help="export a trained run folder as a SavedModel")
    p.add_argument("--run", required=True, action="append",
                   help="run folder written by train or quickstart; give it more than once "
                        "to export an ensemble of runs that share a tokenizer")
    p.add_argument("--export-dir", required=True, help="export to the next version under it")
    p.add_argument("--no-check", action="store_true",
                   help="skip reloading the export in a clean process to compare outputs")
    # Unset flags keep what the run's recipe (its `export` section) chose.
    _SEE_SERVING = " (see README, Serving; default: the recipe's export setting)"
    p.add_argument("--bfloat16-matmuls", action=argparse.BooleanOptionalAction, default=None,
                   help="models that write text: the search's matrix products in bfloat16, "
                        "faster at batch 32 on CPUs with AMX, slower where bfloat16 is "
                        "emulated" + _SEE_SERVING)
    p.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                   help="models that write text: one-item requests (a sentence, image or "
                        "recording) run an XLA-compiled search, 2-3x faster on CPU; TF "
                        "Serving must then be started with --xla_cpu_compilation_enabled=true"
                        + _SEE_SERVING)
    p.add_argument("--parallel-searches", type=_at_least_one, default=None, metavar="N",
                   help="models that write text: search each request as N independent "
                        "searches over parts of its batch, side by side on the server's "
                        "threads; with TF Serving's --tensorflow_intra_op_parallelism=1, N "
                        "as many as its cores" + _SEE_SERVING)
    p.add_argument("--shortlist", type=_at_least_zero, default=None, metavar="PER_TOKEN",
                   help="translation: each sentence's search scores only its source tokens' "
                        "PER_TOKEN likeliest translations (from training pairs) and the "
                        "commonest output tokens: faster, translations may change; 0: the "
                        "whole vocabulary" + _SEE_SERVING)
    p.add_argument("--shortlist-frequent", type=int, default=100, metavar="N",
                   help="with --shortlist: the N commonest output tokens, in every request")
    p.add_argument("--shortlist-data", nargs=2, default=None, metavar=("SOURCE", "TARGET"),
                   help="with --shortlist: the training pairs to count (default: the run's "
                        "training files)")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser(
        "average", help="make a run's model the average of its last epochs' weights")
    p.add_argument("--run", required=True, help="a run trained with training.average_last")
    p.add_argument("--last", type=int, required=True, help="how many epochs to average")
    p.set_defaults(func=cmd_average)

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
    p.add_argument("--beta", type=float, default=None,
                   help="GNMT coverage penalty (models with attention only)")
    p.add_argument("--max-length", type=int, default=None, help="longest output, in tokens")
    p.add_argument("--n-best", type=int, default=1,
                   help="print this many hypotheses per input as 'score<TAB>text' "
                        "lines, blocks separated by a blank line")
    p.add_argument("--sampling", action="store_true",
                   help="sample instead of searching (the `sampling` signature)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--xla", action="store_true",
                   help="compile the search with XLA (run folders only; faster on CPU)")
    p.add_argument("--plot-attention", default=None, metavar="PNG",
                   help="also draw the attention heatmap of the first line's translation")
    p.add_argument("--target-prefix", default=None, metavar="FILE",
                   help="a file parallel to the input: each translation starts with its "
                        "line (an empty line: no prefix)")
    p.add_argument("--alignments", default=None, metavar="FILE",
                   help="also write each translation's word alignment to FILE, as "
                        "Pharaoh 'source-target' index pairs (the export's own search)")
    p.set_defaults(func=cmd_translate)

    p = commands.add_parser(
        "read", help="read image or sound files into text with an image or speech model: "
                     "'FILE<TAB>text' lines")
    p.add_argument("--model", required=True,
                   help="an export folder (or one of its versions), or a run folder")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="PNG, JPEG, GIF or BMP files (image models), WAV files (speech models)")
    p.add_argument("--scores", action="store_true", help="add each reading's score")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--plot-attention", default=None, metavar="PNG",
                   help="also draw where the model looked (or listened) in the first file, "
                        "token by token")
    p.set_defaults(func=cmd_read)

    p = commands.add_parser(
        "score", help="the model's log-probability of given translations, one a line")
    p.add_argument("--model", required=True,
                   help="an export folder (or one of its versions), or a run folder")
    p.add_argument("--source", required=True, help="source sentences, one a line")
    p.add_argument("--target", required=True, help="their translations, one a line")
    p.add_argument("--output", default=None, help="output file (default: stdout)")
    p.add_argument("--tokens", action="store_true",
                   help="write 'log_prob<TAB>tokens' (tokens scored, end included)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_score)

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
    p.add_argument("--show", default=None, metavar="NAME",
                   help="print a recipe's file, to copy and edit for `train --config`")
    p.set_defaults(func=cmd_zoo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from keras_seq2seq.errors import UserError

    try:
        if args.command in TRAINING_COMMANDS:
            keras_seq2seq.prefer_onednn_kernels()
        if args.command != "zoo":
            try:
                args.distribution = _start_tensorflow(args.verbose, args.strategy)
            except ValueError as e:
                parser.error(str(e))
        if args.needs_parser:
            args.func(args, parser)
        else:
            args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
