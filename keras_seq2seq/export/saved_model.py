"""SavedModels in TF Serving's layout: `<export_dir>/<version>/`."""

import json
import os
import re

import tensorflow as tf


def next_version_dir(export_dir):
    """`export_dir/<n+1>` where n is the highest integer version there (0 if none)."""
    versions = [
        int(name)
        for name in (os.listdir(export_dir) if os.path.isdir(export_dir) else [])
        if re.fullmatch(r"\d+", name)
    ]
    return os.path.join(export_dir, str(max(versions, default=0) + 1))


def export_saved_model(translator, export_dir):
    """Saves `translator` with its signatures as the next version under `export_dir`.

    The translator's settings go to `assets.extra/settings.json` and the
    SentencePiece model to `assets.extra/tokenizer.model`, where TF Serving
    ignores them and clients and tools can read them; `assets.extra/run/`
    holds the Keras model and settings (`Translator.load_run`), which the
    TFLite conversion retraces.

    Returns:
        The version directory written.
    """
    path = next_version_dir(export_dir)
    # Save a copy whose functions are traced now, against a SentencePiece
    # resource created now: the resource is kernel-owned (tensorflow-text
    # b/318839908), a tf.random.set_seed deletes it, and functions traced
    # before that hold a handle that is dead or no longer tracked.
    copy = translator.with_fresh_tokenizer()
    tf.saved_model.save(copy, path, signatures=copy.signatures())
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "settings.json"), "w") as f:
        json.dump(translator.settings, f, indent=2, default=str)
    # Clients tokenizing themselves (translate_ids, TFLite) need the model.
    translator.tokenizer.save(os.path.join(extra, "tokenizer.model"))
    # The Keras model, for conversions that must retrace the decode (TFLite).
    translator.save_run(os.path.join(extra, "run"))
    return path


# Runs in a fresh interpreter that imports only tensorflow and tensorflow_text.
_CLEAN_PROCESS_CHECK = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
texts = json.loads(sys.stdin.read())
out = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](text=tf.constant(texts))
print(json.dumps({
    "foreign_modules": sorted(m for m in sys.modules if m.startswith("keras_seq2seq")),
    "translation": [t.decode("utf-8", "replace") for t in out["translation"].numpy()],
    "score": [float(s) for s in out["score"].numpy()],
}))
"""


def verify_export(translator, path, texts, atol=1e-4):
    """Reloads `path` in a clean subprocess and compares it with `translator`.

    The subprocess imports only `tensorflow` and `tensorflow_text`, as TF
    Serving clients do. Raises `RuntimeError` naming the first difference.
    """
    import subprocess
    import sys

    expected = translator.serving_default(tf.constant(texts))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _CLEAN_PROCESS_CHECK, path],
        input=json.dumps(texts), capture_output=True, text=True, env=env, timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the export at {path} failed to load and run:\n{result.stderr[-2000:]}")
    got = json.loads(result.stdout.strip().splitlines()[-1])
    if got["foreign_modules"]:
        raise RuntimeError(f"loading the export imported {got['foreign_modules']}")
    for i, text in enumerate(texts):
        want = expected["translation"][i].numpy().decode("utf-8", "replace")
        if got["translation"][i] != want or abs(got["score"][i] - float(expected["score"][i])) > atol:
            raise RuntimeError(
                f"the export at {path} differs from the model on {text!r}: "
                f"{got['translation'][i]!r} ({got['score'][i]:.5f}) vs {want!r} "
                f"({float(expected['score'][i]):.5f})"
            )
    return len(texts)
