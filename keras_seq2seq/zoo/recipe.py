"""Recipe files: what a run trains, as YAML, checked before anything trains.

A recipe names its task and fixes its data, tokenizer, model, training,
decoding and export settings (the built-in ones are the files in `zoo/recipes/`;
`keras-seq2seq zoo --show NAME` prints one to copy):

    name: my-en-fr
    description: English -> French, the Multi30k recipe's model
    task: text                      # text | points | image
    data:                           # paths relative to this file's folder
      train: {source: corpus/train.en, target: corpus/train.fr}
      val:   {file: corpus/val.tsv, format: tsv, source: 0, target: 1}
      test:  {file: corpus/test.jsonl.gz, format: jsonl, source: en, target: fr}
    tokenizer: {type: sentencepiece, vocabulary_size: 8000}
    model: {class: attention_seq2seq, units: 256, attention: luong_general}
    training: {batch_size: 64, epochs: 15, learning_rate: 0.001, schedule: cosine}
    decoding: {beam_size: 5, alpha: 0.6}
    export: {shortlist: 10, parallel_searches: 2}   # how `train` exports it
    metric: bleu

Every key is checked: an unknown key (with the closest valid one
suggested), a wrong type, a value outside its choices, a missing file, or a
combination that makes no sense raises `RecipeError` naming the file, the
line and the key. Model options are checked against the model class when the
task builds it (`tasks`), still before training.
"""

import copy
import os

import yaml

from keras_seq2seq.errors import RecipeError, did_you_mean

BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")

# Sentinel for "no default: the key is required".
REQUIRED = object()


class Choice:
    """A str among `options`."""

    def __init__(self, *options):
        self.options = options


class Number:
    """An int or float (a YAML int where a float is wanted is fine)."""


class Numbers:
    """A list of `count` numbers (each as `Number`)."""

    def __init__(self, count):
        self.count = count


class Optional:
    """A value of `kind`, or null."""

    def __init__(self, kind):
        self.kind = kind


class FreeForm:
    """A mapping not checked here (model options: the task checks them)."""


# Each split of `data` is a pair of files or one file with two fields.
_FILE_SPLIT = {
    "file": (str, REQUIRED),
    "format": (Choice("tsv", "csv", "jsonl"), REQUIRED),
    "source": ((str, int), REQUIRED),
    "target": ((str, int), REQUIRED),
}
# Or a file of conversations, one a line: each turn after the first is a
# target, the `context_turns` turns before it (one a line) its source.
_DIALOGUE_SPLIT = {
    "file": (str, REQUIRED),
    "format": (Choice("turns"), REQUIRED),
    "separator": (str, "__eou__"),
    "context_turns": (int, 3),
}

_PAIR_SPLIT = {
    "source": (str, REQUIRED),
    "target": (str, REQUIRED),
}

SCHEMA = {
    "name": (str, REQUIRED),
    "description": (str, ""),
    "task": (Choice("text", "points", "image", "speech"), REQUIRED),
    "data": {
        # Generated data (text: dates; points: convex_hull, tsp, sort;
        # image: digit_strings, composed from the digits of `images`/`labels`;
        # speech: spoken_digit_strings, composed from the clips in `recordings`).
        "generate": (Optional(Choice("dates", "convex_hull", "tsp", "sort", "digit_strings",
                                     "spoken_digit_strings")), None),
        "train_size": (Optional(int), None),
        "val_size": (Optional(int), None),
        "test_size": (Optional(int), None),
        "points": (Optional(int), None),
        # Digit images and labels (IDX files, gzipped) to compose strings from.
        "images": (Optional(str), None),
        "labels": (Optional(str), None),
        # A folder of spoken digit clips, {digit}_{speaker}_{index}.wav.
        "recordings": (Optional(str), None),
        "max_digits": (int, 8),
        # Speech: training clips play at speeds in [1 - d, 1 + d] (0: as recorded).
        "speed_perturbation": (Number(), 0.0),
        # Speech: the upper end of the training strings' noise level (standard
        # deviation, full scale 1; validation and test strings keep 0.01).
        "training_noise": (Number(), 0.01),
        # Speech: [low, high] root-mean-square levels the training clips are
        # played at, drawn log-uniformly for each use (null: random gains in
        # [0.5, 1.5], as validation and test clips keep).
        "training_levels": (Optional(Numbers(2)), None),
        # Speech: the largest gain (dB, +-) of the random smooth equalizer
        # each training clip passes through (0: none).
        "training_equalization": (Number(), 0.0),
        # Files (text tasks).
        "train": (Optional("split"), None),
        "val": (Optional("split"), None),
        "test": (Optional("split"), None),
        "augment": (Optional(Choice("invented_names")), None),
        "max_line_chars": (int, 1000),
    },
    "tokenizer": {
        "type": (Choice("sentencepiece", "characters", "words"), "sentencepiece"),
        "vocabulary_size": (Optional(int), None),
        "split_digits": (bool, False),
        "side_vocabularies": (bool, False),
        "min_word_count": (int, 1),
    },
    "model": FreeForm(),
    "training": {
        "batch_size": (int, 64),
        # Text tasks: batches of up to this many tokens (a length bucket's
        # longest length times its sentences) instead of batch_size sentences.
        "batch_tokens": (Optional(int), None),
        "epochs": (int, 10),
        "learning_rate": (Number(), 1e-3),
        "schedule": (Choice("constant", "cosine"), "constant"),
        "label_smoothing": (Number(), 0.0),
        "clipnorm": (Optional(Number()), 5.0),
        "mixed_precision": (bool, False),
        "max_minutes": (Optional(Number()), None),
        "seed": (int, 0),
        # Keep the last N epochs' weights; the run's model is their average.
        "average_last": (int, 0),
        # Train with an exponential moving average of the weights (Polyak
        # averaging) at this momentum; the run's model is the average.
        "ema_momentum": (Optional(Number()), None),
        # Decoupled weight decay (AdamW, Loshchilov and Hutter 2019): each
        # step shrinks every kernel and embedding by learning rate * this
        # (biases are left alone); 0 is off.
        "weight_decay": (Number(), 0.0),
        "max_source_length": (int, 100),
        # Cut longer sources to max_source_length (counted and reported)
        # instead of dropping the pair; the export always cuts.
        "truncate_source": (bool, False),
        "max_target_length": (int, 100),
    },
    "decoding": {
        "beam_size": (int, 5),
        "alpha": (Number(), 0.6),
        "beta": (Number(), 0.0),
        # Forbid repeating any n-gram of this size in an output (0: off).
        "no_repeat_ngram_size": (int, 0),
        "max_points": (int, 50),
    },
    # How the trained model is exported (`train --export-dir`; the run keeps
    # them, and `keras-seq2seq export` flags override them): see README,
    # Serving, for what each measured.
    "export": {
        # Each sentence's search scores only this many likeliest outputs a
        # source token, and the commonest `shortlist_frequent` (text tasks;
        # 0: the whole output vocabulary).
        "shortlist": (int, 0),
        "shortlist_frequent": (int, 100),
        # Search a request as this many searches over parts of its batch.
        "parallel_searches": (int, 1),
        "bfloat16_matmuls": (bool, False),
        # One-item requests through an XLA-compiled search (TF Serving then
        # needs --xla_cpu_compilation_enabled=true).
        "xla": (bool, False),
    },
    "metric": (Optional(Choice("exact_match", "bleu", "chrf", "rouge", "response",
                               "convex_hull", "tsp")),
               None),
    "measured": (dict, {}),
}

# The keys of `data` that name files (a split: its files).
_DATA_FILES = ("train", "val", "test", "images", "labels", "recordings")

# Keys that do not change what is trained: a run resumes across them.
_NOT_IDENTITY = (("description",), ("measured",), ("training", "max_minutes"), ("export",))


class Recipe:
    """A validated recipe: nested dicts with every default filled in.

    Attributes:
        name, task, data, tokenizer, model, training, decoding, export, metric,
        measured: the sections (dicts) and values of the file.
        source: where it came from (a file path), for messages.

    Example:

    >>> recipe = load_recipe("dates-attention")
    >>> recipe.training["epochs"]
    10
    """

    def __init__(self, values, source):
        self.values = values
        self.source = source

    def __getattr__(self, key):
        values = self.__dict__.get("values")
        if values is None or key not in values:
            raise AttributeError(key)
        return values[key]

    def to_dict(self):
        return copy.deepcopy(self.values)

    def identity(self):
        """The recipe without the keys a resumed run may change."""
        values = self.to_dict()
        for path in _NOT_IDENTITY:
            section = values
            for key in path[:-1]:
                section = section.get(key, {})
            section.pop(path[-1], None)
        return values

    def export_settings_chosen(self):
        """The `export` settings the recipe sets to other than their defaults."""
        return {key: value for key, value in self.export.items()
                if value != SCHEMA["export"][key][1]}

    def replace(self, **sections):
        """A copy with `section={key: value}` updates, validated again."""
        values = self.to_dict()
        for section, updates in sections.items():
            if isinstance(values.get(section), dict) and isinstance(updates, dict):
                values[section].update(updates)
            else:
                values[section] = updates
        return Recipe(_validated(values, self.source, {}), self.source)

    def on_files(self, train, val, test=None, name=None):
        """This recipe's model and settings on other parallel files.

        Args:
            train, val, test: `(source, target)` file pairs (test optional),
                relative to the current folder.
            name: the new recipe's name (default: this one's + "-own-data").
        """
        values = self.to_dict()
        data = {key: rule[1] for key, rule in SCHEMA["data"].items()}
        for split, pair in (("train", train), ("val", val), ("test", test)):
            if pair:
                data[split] = {"source": pair[0], "target": pair[1]}
        values.update(
            name=name or f"{self.name}-own-data",
            description=f"{self.name}'s model and settings on {train[0]} -> {train[1]}",
            data=data, measured={})
        values = resolve_paths(_validated(values, self.source, {}), os.curdir, "--train/--val/--test")
        return Recipe(values, f"{self.source} (--like), on own files")

    @property
    def needs_files(self):
        return any(self.data[key] for key in _DATA_FILES)


def builtin_names():
    """The built-in recipes' names, sorted."""
    return sorted(f[: -len(".yaml")] for f in os.listdir(BUILTIN_DIR) if f.endswith(".yaml"))


def builtin_path(name):
    path = os.path.join(BUILTIN_DIR, f"{name}.yaml")
    if not os.path.exists(path):
        raise RecipeError(f"unknown recipe {name!r}{did_you_mean(name, builtin_names())}; "
                          "`keras-seq2seq zoo` lists them")
    return path


def read_builtin(name):
    """A built-in recipe file's text, as `zoo --show` prints it."""
    with open(builtin_path(name), encoding="utf-8") as f:
        return f.read()


def load_recipe(name_or_path, data_dir=None, resolve_data=True):
    """Reads, validates and resolves a recipe.

    Args:
        name_or_path: a built-in recipe's name, or a YAML file.
        data_dir: the folder relative data paths resolve against. Default:
            the recipe file's folder; a built-in recipe that reads files
            needs it (`--data DIR`).
        resolve_data: False leaves data paths as written and unchecked, for
            a recipe whose data `Recipe.on_files` replaces (`train --like`).

    Raises:
        RecipeError: naming the file, line and key of the first problem.
    """
    builtin = not (os.sep in str(name_or_path) or str(name_or_path).endswith((".yaml", ".yml")))
    path = builtin_path(name_or_path) if builtin else str(name_or_path)
    if not os.path.exists(path):
        raise RecipeError(f"{path}: no such recipe file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        raw = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise RecipeError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{path}: unreadable ({e})") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections (name, task, data, ...)")
    values = _validated(raw, path, lines)
    recipe = Recipe(values, path)
    if not resolve_data:
        return recipe
    if builtin and recipe.needs_files and data_dir is None:
        raise RecipeError(f"recipe {recipe.name!r} reads files: give --data DIR, the folder "
                          "that holds them (for Multi30k, ../shared/data/multi30k; for digit strings, "
                          "../shared/data/mnist-digits; for spoken ones, ../shared/data/fsdd)")
    base = data_dir if data_dir is not None else os.path.dirname(os.path.abspath(path))
    return Recipe(resolve_paths(values, base, path, lines), path)


def recipe_from_dict(values, base_dir=os.curdir, source="<recipe dict>"):
    """A recipe from a dict shaped like a recipe file, with the same checks;
    relative data paths resolve against `base_dir`."""
    return Recipe(resolve_paths(_validated(copy.deepcopy(values), source, {}), base_dir, source),
                  source)


def resolve_paths(values, base, source="recipe", lines=None):
    """`values` with each data file made absolute against `base`, checked to exist."""
    values = copy.deepcopy(values)

    def resolved(path, where):
        path = os.path.abspath(os.path.join(base, os.path.expanduser(path)))
        if not os.path.exists(path):
            raise RecipeError(f"{_where(source, lines or {}, where)}: {path}: no such file")
        return path

    data = values["data"]
    for key in ("images", "labels", "recordings"):
        if data.get(key):
            data[key] = resolved(data[key], ("data", key))
    for split in ("train", "val", "test"):
        spec = data.get(split)
        if not spec:
            continue
        for key in ("file",) if "file" in spec else ("source", "target"):
            spec[key] = resolved(spec[key], ("data", split, key))
    return values


def _validated(raw, source, lines):
    values = _check_section(raw, SCHEMA, (), source, lines)
    _check_combinations(values, source, lines)
    return values


def _where(source, lines, path):
    line = None
    for depth in range(len(path), 0, -1):
        line = lines.get(path[:depth])
        if line:
            break
    return f"{source}, line {line}: {'.'.join(map(str, path))}" if line else \
        f"{source}: {'.'.join(map(str, path))}"


def _check_section(raw, schema, path, source, lines):
    if not isinstance(raw, dict):
        raise RecipeError(f"{_where(source, lines, path)}: expected a mapping, got "
                          f"{type(raw).__name__}")
    for key in raw:
        if key not in schema:
            hint = did_you_mean(key, schema) or f" (valid keys: {', '.join(schema)})"
            raise RecipeError(f"{_where(source, lines, path + (key,))}: unknown key{hint}")
    values = {}
    for key, rule in schema.items():
        here = path + (key,)
        if isinstance(rule, dict):
            values[key] = _check_section(raw.get(key) or {}, rule, here, source, lines)
            continue
        if isinstance(rule, FreeForm):
            section = raw.get(key) or {}
            if not isinstance(section, dict):
                raise RecipeError(f"{_where(source, lines, here)}: expected a mapping")
            values[key] = copy.deepcopy(section)
            continue
        kind, default = rule
        if key not in raw:
            if default is REQUIRED:
                raise RecipeError(f"{_where(source, lines, path)}: missing key {key!r}")
            values[key] = copy.deepcopy(default)
            continue
        values[key] = _check_value(raw[key], kind, here, source, lines)
    return values


def _check_value(value, kind, path, source, lines):
    where = _where(source, lines, path)
    if isinstance(kind, Optional):
        return None if value is None else _check_value(value, kind.kind, path, source, lines)
    if kind == "split":
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: a split is {{source: FILE, target: FILE}} or "
                              "{file: FILE, format: tsv|csv|jsonl, source: FIELD, target: FIELD} "
                              "or {file: FILE, format: turns, separator: STR, context_turns: N}")
        schema = (_DIALOGUE_SPLIT if value.get("format") == "turns" else
                  _FILE_SPLIT if "file" in value or "format" in value else _PAIR_SPLIT)
        return _check_section(value, schema, path, source, lines)
    if isinstance(kind, Choice):
        if value not in kind.options:
            raise RecipeError(f"{where}: {value!r} is not one of "
                              f"{', '.join(kind.options)}{did_you_mean(value, kind.options)}")
        return value
    if isinstance(kind, Number):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(kind, Numbers):
        if not isinstance(value, list) or len(value) != kind.count:
            raise RecipeError(f"{where}: expected a list of {kind.count} numbers, got {value!r}")
        return [_check_value(item, Number(), path, source, lines) for item in value]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # YAML's true/false are not numbers here, though Python's bool is an int.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise RecipeError(f"{where}: expected {names}, got {value!r}")
    return value


def _check_combinations(values, source, lines):
    data, tokenizer, training = values["data"], values["tokenizer"], values["training"]

    def fail(path, message):
        raise RecipeError(f"{_where(source, lines, path)}: {message}")

    if values["task"] == "points":
        if data["generate"] not in ("convex_hull", "tsp", "sort"):
            fail(("data", "generate"), "a points task generates convex_hull, tsp or sort data")
        if not data["points"]:
            fail(("data", "points"), "a points task needs the number of points per instance")
    elif values["task"] in ("image", "speech"):
        generate, files = {"image": ("digit_strings", ("images", "labels")),
                           "speech": ("spoken_digit_strings", ("recordings",))}[values["task"]]
        if data["generate"] != generate:
            fail(("data", "generate"), f"a {values['task']} task generates {generate}")
        for key in files:
            if not data[key]:
                fail(("data",), f"{generate} are composed from data.{key}, which is missing")
        if not 1 <= data["max_digits"] <= 32:
            fail(("data", "max_digits"), f"must be in [1, 32], got {data['max_digits']}")
        if data["speed_perturbation"] and values["task"] != "speech":
            fail(("data", "speed_perturbation"), "only speech clips play at other speeds")
        if not 0 <= data["speed_perturbation"] < 0.5:
            fail(("data", "speed_perturbation"),
                 f"must be in [0, 0.5), got {data['speed_perturbation']}")
        if data["training_noise"] != 0.01 and values["task"] != "speech":
            fail(("data", "training_noise"), "only speech strings take added noise")
        if not 0.001 <= data["training_noise"] <= 0.1:
            fail(("data", "training_noise"), f"must be in [0.001, 0.1], got {data['training_noise']}")
        levels = data["training_levels"]
        if levels is not None and values["task"] != "speech":
            fail(("data", "training_levels"), "only speech clips are played at other levels")
        if levels is not None and not 0 < levels[0] <= levels[1] <= 1:
            fail(("data", "training_levels"),
                 f"must be [low, high] with 0 < low <= high <= 1, got {levels}")
        if data["training_equalization"] and values["task"] != "speech":
            fail(("data", "training_equalization"), "only speech clips pass through equalizers")
        if not 0 <= data["training_equalization"] <= 20:
            fail(("data", "training_equalization"),
                 f"must be in [0, 20] dB, got {data['training_equalization']}")
    elif data["generate"] not in (None, "dates"):
        fail(("data", "generate"), f"a text task cannot generate {data['generate']!r} data")
    elif not data["generate"]:
        for split in ("train", "val"):
            if not data[split]:
                fail(("data",), f"a text task reads files: data.{split} is missing")
    for split in ("train", "val", "test"):
        spec = data[split]
        if spec and spec.get("format") == "turns" and spec["context_turns"] < 1:
            fail(("data", split, "context_turns"), f"must be at least 1, got {spec['context_turns']}")
    if tokenizer["type"] == "characters" and tokenizer["vocabulary_size"] is not None:
        fail(("tokenizer", "vocabulary_size"), "a characters tokenizer's vocabulary is the "
             "characters of the training data: leave vocabulary_size out")
    if values["task"] in ("image", "speech") and tokenizer["type"] != "characters":
        fail(("tokenizer", "type"), f"a {values['task']} task writes characters: "
             "type characters")
    if tokenizer["type"] != "characters" and values["task"] == "text" \
            and tokenizer["vocabulary_size"] is None:
        fail(("tokenizer", "vocabulary_size"), f"a {tokenizer['type']} tokenizer needs a "
             "vocabulary_size")
    if tokenizer["vocabulary_size"] is not None and tokenizer["vocabulary_size"] < 8:
        fail(("tokenizer", "vocabulary_size"), "must be at least 8 (4 special tokens)")
    for key in ("batch_size", "epochs", "max_source_length", "max_target_length"):
        if training[key] < 1:
            fail(("training", key), f"must be at least 1, got {training[key]}")
    if training["batch_tokens"] is not None:
        longest = max(training["max_source_length"], training["max_target_length"])
        if values["task"] != "text":
            fail(("training", "batch_tokens"), f"token batches are for text tasks; a "
                 f"{values['task']} task batches batch_size items")
        elif training["batch_tokens"] < longest:
            fail(("training", "batch_tokens"), f"must hold the longest pair the length limits "
                 f"let in ({longest} tokens), got {training['batch_tokens']}")
    if training["average_last"] < 0:
        fail(("training", "average_last"), f"must be 0 (off) or more, got {training['average_last']}")
    if training["ema_momentum"] is not None and not 0 < training["ema_momentum"] < 1:
        fail(("training", "ema_momentum"), f"must be in (0, 1), got {training['ema_momentum']}")
    if not 0 <= training["weight_decay"] < 1:
        fail(("training", "weight_decay"), f"must be in [0, 1), got {training['weight_decay']}")
    if training["learning_rate"] <= 0:
        fail(("training", "learning_rate"), "must be positive")
    if not 0 <= training["label_smoothing"] < 1:
        fail(("training", "label_smoothing"), "must be in [0, 1)")
    if values["decoding"]["beam_size"] < 1:
        fail(("decoding", "beam_size"), "must be at least 1")
    export = values["export"]
    for key, least in (("shortlist", 0), ("shortlist_frequent", 0), ("parallel_searches", 1)):
        if export[key] < least:
            fail(("export", key), f"must be at least {least}, got {export[key]}")
    if export["shortlist"] and values["task"] != "text":
        fail(("export", "shortlist"), "a shortlist lists outputs for source tokens: an option "
             "of text tasks")
    if values["task"] == "points":
        for key in ("parallel_searches", "bfloat16_matmuls", "xla"):
            if export[key] != SCHEMA["export"][key][1]:
                fail(("export", key), "a points task's export searches a request as one, in "
                     f"float32, without XLA: leave {key} out")
    model = values["model"]
    if "class" not in model:
        fail(("model",), "missing key 'class' (the model, e.g. attention_seq2seq)")


def _key_lines(node, path=()):
    """{key path: 1-based line} for every mapping key of a composed YAML node."""
    lines = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            here = path + (key_node.value,)
            lines[here] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, here))
    return lines
