"""The `keras-seq2seq` command line.

    keras-seq2seq quickstart                       train dates-attention, export, show
    keras-seq2seq train --recipe NAME ...          train a recipe and export it
    keras-seq2seq translate --model EXPORT         translate stdin or a file
    keras-seq2seq export --run RUN --export-dir D  export a trained run
    keras-seq2seq zoo                              list the recipes
"""

import argparse
import dataclasses
import functools
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _train_and_export(recipe, args, data_dir=None):
    from keras_seq2seq.export import export_saved_model
    from keras_seq2seq.training import evaluate_exact_match, train_recipe

    start = time.monotonic()
    translator, paths, _ = train_recipe(
        recipe,
        work_dir=args.work_dir,
        data_dir=data_dir,
        max_minutes=args.max_minutes,
        epochs=args.epochs,
    )
    minutes = (time.monotonic() - start) / 60
    print(f"\nTrained {recipe.name} in {minutes:.1f} minutes; run saved to {args.work_dir}")
    if recipe.metric == "exact_match":
        accuracy = evaluate_exact_match(translator, *paths["test"])
        print(f"Held-out exact match (greedy, {paths['test'][0]}): {accuracy:.2%}")
    path = export_saved_model(translator, args.export_dir)
    print(f"SavedModel exported to {path}")
    return translator, path


def cmd_quickstart(args):
    from keras_seq2seq.zoo import get_recipe
    from keras_seq2seq.zoo.recipes import _generated_dates

    recipe = get_recipe("dates-attention")
    if args.train_size:
        recipe = dataclasses.replace(
            recipe, prepare_data=functools.partial(_generated_dates, train=args.train_size)
        )
    translator, path = _train_and_export(recipe, args)

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
    from keras_seq2seq.export import Translator, export_saved_model

    path = export_saved_model(Translator.load_run(args.run), args.export_dir)
    print(f"SavedModel exported to {path}")


def _resolve_export(path):
    """An export folder's newest version, or the given version folder."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [v for v in os.listdir(path) if v.isdigit()] if os.path.isdir(path) else []
    if not versions:
        raise SystemExit(f"error: {path} holds no SavedModel (no saved_model.pb, no version folders)")
    return os.path.join(path, max(versions, key=int))


def cmd_translate(args):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    signature = tf.saved_model.load(_resolve_export(args.model)).signatures["serving_default"]
    source = open(args.input, encoding="utf-8", errors="replace") if args.input else sys.stdin
    lines = [line.rstrip("\n") for line in source]
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    for i in range(0, len(lines), args.batch_size):
        result = signature(text=tf.constant(lines[i : i + args.batch_size]))
        for translation in result["translation"].numpy():
            out.write(translation.decode("utf-8") + "\n")
    out.flush()


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
                            f"(default: {default_export})")
        p.add_argument("--max-minutes", type=float, default=None,
                       help="stop training cleanly after this many minutes")
        p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")

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
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("translate", help="translate lines from stdin or a file")
    p.add_argument("--model", required=True, help="an export folder or one of its versions")
    p.add_argument("--input", default=None, help="input file (default: stdin)")
    p.add_argument("--output", default=None, help="output file (default: stdout)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_translate)

    p = commands.add_parser("zoo", help="list the recipes and their measured scores")
    p.set_defaults(func=cmd_zoo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "train" and args.export_dir is None:
        args.export_dir = os.path.join("exports", args.recipe)
    from keras_seq2seq.data import DataError

    try:
        args.func(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
