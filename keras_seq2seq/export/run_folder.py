"""`RunFolder`: the one owner of the run-folder format.

A run folder (`runs/NAME/`, and `assets.extra/run/` inside every export):

    run.json        {"layout": 2, "recipe": {...}, "exportable": "Translator",
                     "settings": {...}}: the recipe it was trained from (as
                     validated), and the exportable's class and constructor
                     settings once training has finished
    model.keras     the trained Keras model
    tokenizer.model or words.txt   (text models)
    data/ logs/ checkpoints/ backup/   written by training

`claim` is called before training writes anything: a new or empty folder is
made a run of this recipe; a run of the same recipe is resumed; anything else
(an older layout, a run of another recipe, a folder that is not a run) is
refused with a `RunFolderError`, so nothing of it is overwritten.
"""

import json
import os

from keras_seq2seq.data.atomic import atomic_path
from keras_seq2seq.errors import RunFolderError
from keras_seq2seq.export.saved_model import resolve_export, versions

LAYOUT = 2
RUN_FILE = "run.json"
# Files of layout 1 (before run.json): a Translator's or a PointerSolver's.
_LAYOUT_1_FILES = ("translator.json", "solver.json")
# Exportable classes by name, filled by `register_exportable`.
_EXPORTABLES = {}


def register_exportable(cls):
    """Class decorator: `load` can rebuild runs saved by `cls`."""
    _EXPORTABLES[cls.__name__] = cls
    return cls


class RunFolder:
    """A trained run on disk (see the module docstring).

    Args:
        path: the folder.

    Example:

    >>> folder = RunFolder("runs/dates-attention")
    >>> translator = folder.load()            # the Translator it holds
    >>> folder.recipe["model"]["class"]
    'attention_seq2seq'
    """

    def __init__(self, path):
        self.path = str(path)

    @classmethod
    def of(cls, path):
        """The run folder behind `path`: a run folder, an export's version
        folder (its `assets.extra/run`), or an export folder (its newest
        version's)."""
        path = str(path)
        if not os.path.isdir(path):
            raise RunFolderError(f"{path}: no such run folder or export")
        if os.path.exists(os.path.join(path, RUN_FILE)):
            return cls(path)
        if os.path.exists(os.path.join(path, "saved_model.pb")) or versions(path):
            return cls(os.path.join(resolve_export(path), "assets.extra", "run"))
        return cls(path)

    def file(self, *names):
        return os.path.join(self.path, *names)

    # -- reading --------------------------------------------------------------

    def read(self):
        """run.json's contents, after checking the layout."""
        run_file = self.file(RUN_FILE)
        if not os.path.exists(run_file):
            if any(os.path.exists(self.file(name)) for name in _LAYOUT_1_FILES):
                raise RunFolderError(
                    f"{self.path} is a run of an older keras-seq2seq layout (1, "
                    "translator.json/solver.json); this version reads layout "
                    f"{LAYOUT}: train it again, or load it with keras-seq2seq 0.1")
            raise RunFolderError(f"{self.path} is not a keras-seq2seq run folder (no {RUN_FILE})")
        try:
            with open(run_file, encoding="utf-8") as f:
                contents = json.load(f)
        except (OSError, ValueError) as e:
            raise RunFolderError(f"{run_file}: unreadable ({e})") from None
        if not isinstance(contents, dict) or contents.get("layout") != LAYOUT:
            layout = contents.get("layout") if isinstance(contents, dict) else None
            raise RunFolderError(f"{run_file}: run-folder layout {layout!r}; this version "
                                 f"reads layout {LAYOUT}")
        return contents

    @property
    def recipe(self):
        """The recipe the run was trained from (a dict), or None."""
        return self.read().get("recipe")

    def training_files(self):
        """`(source file, target file)` of the recipe's training pairs, or None
        when it was trained on anything else (generated data, records)."""
        train = ((self.recipe or {}).get("data") or {}).get("train") or {}
        if "source" not in train:
            return None
        return train["source"], train["target"]

    @property
    def is_trained(self):
        """Whether training finished and saved its exportable here."""
        return os.path.exists(self.file(RUN_FILE)) and "exportable" in self.read()

    def load_model(self):
        """The trained Keras model, uncompiled (its optimizer is training's)."""
        import keras

        import keras_seq2seq.models  # noqa: F401  (registers the model classes)

        return keras.saving.load_model(self.file("model.keras"), compile=False)

    def load(self, **overrides):
        """The exportable saved here; keyword arguments override its settings."""
        contents = self.read()
        if "exportable" not in contents:
            raise RunFolderError(f"{self.path} holds no trained model yet (training "
                                 "has not finished: run the same train command to resume)")
        name = contents["exportable"]
        if name not in _EXPORTABLES:
            import keras_seq2seq.export  # noqa: F401  (registers the exportables)
        if name not in _EXPORTABLES:
            raise RunFolderError(f"{self.file(RUN_FILE)}: unknown exportable {name!r}")
        return _EXPORTABLES[name].from_run(self, dict(contents["settings"], **overrides))

    # -- writing --------------------------------------------------------------

    def claim(self, recipe):
        """Makes the folder a run of `recipe` (a dict), or checks it already is.

        Returns:
            True if the folder was already a run of this recipe (training
            resumes or starts again there), False if it was new or empty.

        Raises:
            RunFolderError: the folder holds something else.
        """
        # Workers of a multi-worker run keep their own folders inside (worker-I).
        entries = [e for e in os.listdir(self.path) if not e.startswith("worker-")] \
            if os.path.isdir(self.path) else []
        if entries:
            if not os.path.exists(self.file(RUN_FILE)):
                self.read()  # raises, naming what the folder is
            contents = self.read()
            if contents.get("recipe") != recipe:
                theirs = (contents.get("recipe") or {}).get("name")
                raise RunFolderError(
                    f"{self.path} is a run of another recipe ({theirs!r}, or the same name "
                    "with other settings): give another --work-dir, or remove it")
            return True
        os.makedirs(self.path, exist_ok=True)
        self._write({"layout": LAYOUT, "recipe": recipe})
        return False

    def save(self, exportable, model, settings):
        """Writes a trained model and its exportable's settings (run.json last,
        so a folder whose run.json names an exportable is complete)."""
        os.makedirs(self.path, exist_ok=True)
        model.save(self.file("model.keras"))
        exportable.write_run_files(self.path)
        contents = self.read() if os.path.exists(self.file(RUN_FILE)) else {"layout": LAYOUT}
        contents.update(exportable=exportable.__class__.__name__, settings=settings)
        self._write(contents)

    def _write(self, contents):
        with atomic_path(self.file(RUN_FILE)) as part, open(part, "w", encoding="utf-8") as f:
            json.dump(contents, f, indent=2, default=str)


def load_run(directory, **overrides):
    """The `Translator` or `PointerSolver` saved in a run folder."""
    return RunFolder(directory).load(**overrides)
