"""Reading tasks: images or recordings in, text out (digit strings)."""

import json
import math
import os

from keras_seq2seq.data.atomic import atomic_path
from keras_seq2seq.data.audio import speech_text_dataset
from keras_seq2seq.data.digit_strings import read_digit_strings, targets_path, write_digit_strings
from keras_seq2seq.data.images import image_text_dataset
from keras_seq2seq.data.spoken_digits import write_spoken_digit_strings
from keras_seq2seq.data.text_files import iter_lines
from keras_seq2seq.distribute import shard_batches
from keras_seq2seq.errors import RunFolderError
from keras_seq2seq.export import ImageReader, SpeechReader
from keras_seq2seq.tasks.base import Task
from keras_seq2seq.text import SubwordTokenizer, character_tokenizer, load_tokenizer

# The recipe's data keys that change what is composed (file paths do not:
# a data folder may move).
COMPOSITION_KEYS = ("generate", "max_digits", "speed_perturbation", "training_noise",
                    "training_levels", "training_equalization")
# Keys added since run folders began recording their composition, with the
# value a record that lacks one was composed under.
COMPOSITION_KEYS_ADDED = {"data.training_equalization": 0.0}


class ReadingTask(Task):
    """A recipe whose inputs are encoded files (images, recordings) composed
    into the run folder, and whose outputs are their text.

    Data: each split composed once into `RUN/data/SPLIT.tfrecord` (one
    encoded file a record) beside `SPLIT.txt` (its text), from source
    material split before composing (`compose`). Tokenizer: characters of
    the training texts. Metrics, through the exportable's `serving_default`
    on the test split's encoded files as a client sends them: sequence
    accuracy (the whole text right) and character error rate (whitespace
    ignored: for digit strings, the digit error rate).

    Subclasses implement `compose`, `dataset` and `exportable`.
    """

    task_model_options = ("vocabulary_size",)
    default_sizes = {"train": 50_000, "val": 1000, "test": 2000}

    def prepare(self, work_dir, on_bad_line="fail", strategy=None):
        self.strategy = strategy
        data = self.recipe.data
        self.sizes = {split: data[f"{split}_size"] or count
                      for split, count in self.default_sizes.items()}
        folder = os.path.join(work_dir, "data")
        self._record_composition(folder)
        self.paths = self.compose(folder)
        if self.init_from is not None:
            self.tokenizer = load_tokenizer(self.init_from.path)
        else:
            path = os.path.join(work_dir, SubwordTokenizer.file_name)
            if os.path.exists(path):
                self.tokenizer = SubwordTokenizer.from_file(path)
            else:
                self.tokenizer = character_tokenizer(
                    list(iter_lines(targets_path(self.paths["train"]))))
                with atomic_path(path) as part:  # a resumed run reads it back
                    self.tokenizer.save(part)
        return self

    def _record_composition(self, folder):
        """Checks this recipe's composition settings against those `folder`
        was composed with (`composed.json`), or records them in a folder
        that holds no records yet, before composing (so that a composition
        cut short goes on with the same settings). A run folder's data is
        composed once and kept: a recipe that would compose other strings
        fails here, before training, rather than train on the old ones.
        (A folder composed before these records existed is read as it is.)"""
        settings = {f"data.{key}": self.recipe.data[key] for key in COMPOSITION_KEYS}
        settings.update({f"data.{split}_size": count for split, count in self.sizes.items()})
        settings["training.seed"] = self.recipe.training["seed"]
        path = os.path.join(folder, "composed.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                composed = json.load(f)
            composed = {**COMPOSITION_KEYS_ADDED, **composed}
            changed = [key for key in settings if key in composed and composed[key] != settings[key]]
            if changed:
                raise RunFolderError(
                    f"{folder} was composed with " + ", ".join(
                        f"{key} {composed[key]!r} (the recipe says {settings[key]!r})"
                        for key in changed)
                    + ": train into a new run folder, or delete its data folder to compose again")
        elif not os.path.exists(os.path.join(folder, "train.tfrecord")):
            os.makedirs(folder, exist_ok=True)
            with atomic_path(path) as part, open(part, "w", encoding="utf-8") as f:
                json.dump(settings, f, indent=1)

    def compose(self, folder):
        """Writes the splits' records into `folder`; `{split: tfrecord path}`."""
        raise NotImplementedError

    def dataset(self, split, shuffle):
        """The batches `fit` reads of a split."""
        raise NotImplementedError

    def notes(self):
        return [f"{self.recipe.data['generate']} composed: " + ", ".join(
            f"{count:,} {split}" for split, count in self.sizes.items())]

    def datasets(self):
        return (shard_batches(self.dataset("train", shuffle=True), self.strategy),
                shard_batches(self.dataset("val", shuffle=False), self.strategy))

    @property
    def steps_per_epoch(self):
        return math.ceil(self.sizes["train"] / self.recipe.training["batch_size"])

    def new_model(self):
        return self._construct(vocabulary_size=self.tokenizer.vocab_size)

    def trial_arguments(self):
        return {"vocabulary_size": 8}

    def reader_arguments(self):
        """The `Reader` arguments besides the model: tokenizer, lengths, search, checks."""
        decoding = self.recipe.decoding
        items, _ = self.test_items()
        return dict(tokenizer=self.tokenizer,
                    max_target_length=self.recipe.training["max_target_length"],
                    beam_size=decoding["beam_size"], alpha=decoding["alpha"],
                    check_items=items[:6])

    def test_items(self, split="test"):
        """`(encoded files, texts)` of a split, as a client would send them."""
        return read_digit_strings(self.paths[split])

    def evaluate(self, exportable, split="test"):
        """Sequence accuracy and character error rate on `split`'s encoded files."""
        items, targets = self.test_items(split)
        texts = read_items(exportable.serving_default, exportable.input_name, items)
        return reading_scores(texts, targets, split, f"beam {exportable.beam_size}")

    def describe(self, scores):
        return (f"{scores['split']} ({scores['items']} items, {scores['search']}): "
                f"sequence accuracy {scores['sequence_accuracy']:.2%}, "
                f"character error rate {scores['character_error_rate']:.2%}")


class ImageTextTask(ReadingTask):
    """Images of handwritten digit strings in, the digits out.

    `data.generate: digit_strings`: strings of 1 to `data.max_digits`
    digits composed from the digits of `data.images` / `data.labels` (IDX
    files), each split from its own digits (`data.digit_strings`). Model:
    `models.ImageToText` (its `image_height` and `image_width` are the
    pixels every image is fitted to); exportable: `ImageReader`.
    """

    def __init__(self, recipe, init_from=None):
        super().__init__(recipe, init_from=init_from)
        # The pixels images are fitted to: the model's (its defaults included).
        self.image_size = (self.trial_model.image_height, self.trial_model.image_width)

    def compose(self, folder):
        data = self.recipe.data
        return write_digit_strings(folder, data["images"], data["labels"], self.sizes,
                                   max_digits=data["max_digits"],
                                   seed=self.recipe.training["seed"])

    def dataset(self, split, shuffle):
        training = self.recipe.training
        return image_text_dataset(
            self.paths[split], targets_path(self.paths[split]), self.tokenizer,
            *self.image_size, batch_size=training["batch_size"],
            max_target_length=training["max_target_length"], shuffle=shuffle,
            seed=training["seed"])

    def exportable(self, model):
        return ImageReader(model, **self.reader_arguments())


class SpeechTextTask(ReadingTask):
    """Recordings of spoken digit strings in, the digits out ("4 0 7").

    `data.generate: spoken_digit_strings`: strings of 1 to `data.max_digits`
    digits composed from the clips in `data.recordings` (the Free Spoken
    Digit Dataset's folder), each split from its own clip indexes
    (`data.spoken_digits`). Model: `models.SpeechToText`; exportable:
    `SpeechReader`.
    """

    default_sizes = {"train": 20_000, "val": 500, "test": 1000}

    def __init__(self, recipe, init_from=None):
        super().__init__(recipe, init_from=init_from)
        self.sample_rate = self.trial_model.sample_rate

    def compose(self, folder):
        data = self.recipe.data
        return write_spoken_digit_strings(folder, data["recordings"], self.sizes,
                                          max_digits=data["max_digits"],
                                          seed=self.recipe.training["seed"],
                                          speed_perturbation=data["speed_perturbation"],
                                          training_noise=data["training_noise"],
                                          training_levels=data["training_levels"],
                                          training_equalization=data["training_equalization"])

    def dataset(self, split, shuffle):
        training = self.recipe.training
        return speech_text_dataset(
            self.paths[split], targets_path(self.paths[split]), self.tokenizer,
            batch_size=training["batch_size"], max_target_length=training["max_target_length"],
            shuffle=shuffle, seed=training["seed"], sample_rate=self.sample_rate)

    def exportable(self, model):
        return SpeechReader(model, **self.reader_arguments())


def read_items(signature, input_name, items, batch_size=128):
    """Texts (str) a signature (`input_name` string [B] -> `translation` [B])
    reads from encoded files, in batches."""
    import tensorflow as tf

    texts = []
    for i in range(0, len(items), batch_size):
        out = signature(**{input_name: tf.constant(items[i: i + batch_size])})["translation"]
        texts += [t.decode("utf-8") for t in out.numpy()]
    return texts


def reading_scores(texts, targets, split, search):
    """`{split, items, search, sequence_accuracy, character_error_rate}`."""
    from keras_seq2seq.metrics import error_rate, exact_match

    return {"split": split, "items": len(targets), "search": search,
            "sequence_accuracy": exact_match(texts, targets),
            "character_error_rate": error_rate(texts, targets)}
