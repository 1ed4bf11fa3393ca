"""SavedModels in TF Serving's layout: `<export_dir>/<version>/`."""

import base64
import json
import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from keras_seq2seq.errors import RunFolderError


def versions(export_dir):
    """The integer versions under `export_dir` (TF Serving's layout), as ints."""
    names = os.listdir(export_dir) if os.path.isdir(export_dir) else []
    return [int(name) for name in names if re.fullmatch(r"\d+", name)]


def next_version_dir(export_dir):
    """`export_dir/<n+1>` where n is the highest integer version there (0 if none)."""
    return os.path.join(export_dir, str(max(versions(export_dir), default=0) + 1))


def resolve_export(path):
    """A version folder as it is, or an export folder's newest version."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not versions(path):
        raise RunFolderError(f"{path} holds no SavedModel (no saved_model.pb, no version "
                             "folders) and no trained run (no run.json)")
    return os.path.join(path, str(max(versions(path))))


def export_saved_model(exportable, export_dir, check=False, check_inputs=None):
    """Saves an `Exportable` as the next version under `export_dir`, atomically.

    The version is written (and, with `check`, verified in a clean process)
    in a hidden folder beside the versions, then renamed into place: TF
    Serving, which loads the highest integer folder it sees, never sees a
    partial one, and a crash leaves only the hidden folder. Two exports at
    once take different versions (a rename onto an existing version fails,
    and the next number is tried).

    Its settings go to `assets.extra/settings.json` (and a text model's
    tokenizer beside it), where TF Serving ignores them and clients and
    tools can read them; `assets.extra/run/` holds the Keras model and
    settings (a run folder), which the TFLite conversion retraces.

    Args:
        check: reload the export in a process that imports only tensorflow
            and tensorflow_text and compare outputs (`verify_export`) before
            publishing it; raises `RuntimeError` and publishes nothing if
            they differ.
        check_inputs: the inputs of that check (default
            `exportable.check_inputs()`).

    Returns:
        The version directory written.
    """
    os.makedirs(export_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".writing-", dir=export_dir)
    try:
        path = os.path.join(staging, "model")
        module = exportable.for_export()
        tf.saved_model.save(module, path, signatures=module.signatures())
        extra = os.path.join(path, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "settings.json"), "w") as f:
            json.dump(exportable.settings, f, indent=2, default=str)
        exportable.write_assets(extra)
        # The Keras model, for conversions that must retrace the decode (TFLite).
        exportable.save_run(os.path.join(extra, "run"))
        if check:
            if check_inputs is None:
                check_inputs = exportable.check_inputs()
            for request in exportable.check_requests(check_inputs):
                verify_export(exportable, path, request)
        while True:
            version = next_version_dir(export_dir)
            try:
                os.rename(path, version)
                return version
            except OSError:
                if not os.path.isdir(version):
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# Runs in a fresh interpreter that imports only tensorflow and tensorflow_text.
# Inputs and outputs travel as JSON: {name: {"dtype": ..., "value": lists}};
# string inputs (text, or an image's bytes) as a flat list of base64 strings.
_CLEAN_PROCESS_CHECK = """
import base64, json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
def tensor(v):
    if v["dtype"] == "string":
        return tf.constant([base64.b64decode(s) for s in v["value"]], tf.string)
    return tf.constant(v["value"], dtype=v["dtype"])
inputs = {k: tensor(v) for k, v in json.loads(sys.stdin.read()).items()}
out = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](**inputs)
def plain(t):
    if t.dtype == tf.string:
        t = tf.strings.unicode_transcode(t, "UTF-8", "UTF-8", errors="replace")
        return {"dtype": "string", "value": [[s.decode() for s in t.numpy().reshape(-1)], list(t.shape)]}
    return {"dtype": t.dtype.name, "value": t.numpy().tolist()}
print(json.dumps({
    "foreign_modules": sorted(m for m in sys.modules if m.startswith("keras_seq2seq")),
    "outputs": {k: plain(v) for k, v in out.items()},
}))
"""


def _decoded(array):
    """Bytes elements as str (invalid UTF-8 replaced), the same shape."""
    flat = [b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b) for b in array.ravel()]
    return np.array(flat, dtype=object).reshape(array.shape)


def _as_bytes(value):
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _as_json(value):
    value = np.asarray(value, dtype=object if _is_strings(value) else None)
    if value.dtype.kind in "OSU":
        return {"dtype": "string",
                "value": [base64.b64encode(_as_bytes(v)).decode("ascii") for v in value.ravel()]}
    return {"dtype": value.dtype.name, "value": value.tolist()}


def _is_strings(value):
    return len(value) > 0 and isinstance(value[0], (bytes, str))


def _as_tensor(value):
    if value["dtype"] == "string":
        return tf.constant([base64.b64decode(v) for v in value["value"]], tf.string)
    return tf.constant(value["value"], dtype=value["dtype"])


def verify_export(exportable, path, inputs=None, atol=1e-4):
    """Reloads `path` in a clean subprocess and compares its `serving_default`
    with `exportable`'s on `inputs` (a dict of arrays or lists; default
    `exportable.check_inputs()`).

    The subprocess imports only `tensorflow` and `tensorflow_text`, as TF
    Serving clients do. Raises `RuntimeError` naming the first difference.

    Returns:
        The number of examples compared.
    """
    import subprocess
    import sys

    if inputs is None:
        inputs = exportable.check_inputs()
    first_input = list(next(iter(inputs.values())))
    inputs = {k: _as_json(v) for k, v in inputs.items()}
    expected = exportable.serving_default(**{k: _as_tensor(v) for k, v in inputs.items()})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _CLEAN_PROCESS_CHECK, path],
        input=json.dumps(inputs), capture_output=True, text=True, env=env, timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the export at {path} failed to load and run:\n{result.stderr[-2000:]}")
    got = json.loads(result.stdout.strip().splitlines()[-1])
    if got["foreign_modules"]:
        raise RuntimeError(f"loading the export imported {got['foreign_modules']}")
    for name, tensor in expected.items():
        want, have = tensor.numpy(), got["outputs"][name]["value"]
        if want.dtype == object:
            want, (flat, shape) = _decoded(want), have
            have = np.array(flat, dtype=object).reshape(shape)
        else:
            have = np.asarray(have, dtype=want.dtype)
        if want.dtype.kind == "f":
            differs = np.abs(have - want) > atol
        else:
            differs = have != want
        differs = differs.reshape(len(want), -1).any(axis=1) if want.size else differs
        if differs.any():
            i = int(np.argmax(differs))
            raise RuntimeError(
                f"the export at {path} differs from the model in {name!r} on input "
                f"{first_input[i]!r:.200}: {have[i]!r} vs {want[i]!r}"
            )
    return len(first_input)
