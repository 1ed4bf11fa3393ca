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

    The translator's settings go to `assets.extra/settings.json`, where TF
    Serving ignores them and tools can read them.

    Returns:
        The version directory written.
    """
    path = next_version_dir(export_dir)
    tf.saved_model.save(translator, path, signatures=translator.signatures())
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "settings.json"), "w") as f:
        json.dump(translator.settings, f, indent=2, default=str)
    return path
