"""`ImageTextTask`: images in, text out (digit strings read from images)."""

import math
import os

from keras_seq2seq.data.digit_strings import read_digit_strings, targets_path, write_digit_strings
from keras_seq2seq.data.images import image_text_dataset
from keras_seq2seq.data.text_files import iter_lines
from keras_seq2seq.distribute import shard_batches
from keras_seq2seq.export import ImageReader
from keras_seq2seq.tasks.base import Task
from keras_seq2seq.text import SubwordTokenizer, character_tokenizer, load_tokenizer


class ImageTextTask(Task):
    """A recipe whose inputs are images and whose outputs are text.

    Data: `data.generate: digit_strings`: images of strings of 1 to
    `data.max_digits` handwritten digits, composed once into the run folder
    from the digits of `data.images` / `data.labels` (IDX files), each
    split from its own digits (`data.digit_strings`). Tokenizer: characters.
    Model: `models.ImageToText` (its `image_height` and `image_width` are
    the pixels every image is fitted to); exportable: `ImageReader`.
    Metrics, through the exportable's search on the encoded test images as
    a client sends them: sequence accuracy (the whole string right) and
    the character (digit) error rate.
    """

    task_model_options = ("vocabulary_size",)

    def __init__(self, recipe, init_from=None):
        super().__init__(recipe, init_from=init_from)
        # The pixels images are fitted to: the model's (its defaults included).
        model = self._construct(build=False, **self.trial_arguments())
        self.image_size = (model.image_height, model.image_width)

    def prepare(self, work_dir, on_bad_line="fail", strategy=None):
        self.strategy = strategy
        data = self.recipe.data
        sizes = {"train": data["train_size"] or 50_000, "val": data["val_size"] or 1000,
                 "test": data["test_size"] or 2000}
        self.sizes = sizes
        self.paths = write_digit_strings(os.path.join(work_dir, "data"), data["images"],
                                         data["labels"], sizes, max_digits=data["max_digits"],
                                         seed=self.recipe.training["seed"])
        if self.init_from is not None:
            self.tokenizer = load_tokenizer(self.init_from.path)
        else:
            path = os.path.join(work_dir, SubwordTokenizer.file_name)
            if os.path.exists(path):
                self.tokenizer = SubwordTokenizer.from_file(path)
            else:
                self.tokenizer = character_tokenizer(
                    list(iter_lines(targets_path(self.paths["train"]))))
                self.tokenizer.save(path)
        return self

    def notes(self):
        return ["digit strings composed: " + ", ".join(
            f"{count:,} {split}" for split, count in self.sizes.items())]

    def datasets(self):
        training = self.recipe.training

        def batches(split, shuffle):
            return shard_batches(image_text_dataset(
                self.paths[split], targets_path(self.paths[split]), self.tokenizer,
                *self.image_size, batch_size=training["batch_size"],
                max_target_length=training["max_target_length"], shuffle=shuffle,
                seed=training["seed"]), self.strategy)

        return batches("train", shuffle=True), batches("val", shuffle=False)

    @property
    def steps_per_epoch(self):
        return math.ceil(self.sizes["train"] / self.recipe.training["batch_size"])

    def new_model(self):
        return self._construct(vocabulary_size=self.tokenizer.vocab_size)

    def trial_arguments(self):
        return {"vocabulary_size": 8}

    def exportable(self, model):
        decoding = self.recipe.decoding
        images, _ = read_digit_strings(self.paths["test"])
        return ImageReader(model, self.tokenizer, self.recipe.training["max_target_length"],
                           beam_size=decoding["beam_size"], alpha=decoding["alpha"],
                           check_items=images[:6])

    def test_items(self, split="test"):
        """`(encoded images, texts)` of a split, as a client would send them."""
        return read_digit_strings(self.paths[split])

    def evaluate(self, exportable, split="test"):
        """Sequence accuracy and digit error rate on `split`'s encoded images."""
        images, targets = self.test_items(split)
        texts = read_images(exportable.serving_default, images)
        return image_text_scores(texts, targets, split, f"beam {exportable.beam_size}")

    def describe(self, scores):
        return (f"{scores['split']} ({scores['images']} images, {scores['search']}): "
                f"sequence accuracy {scores['sequence_accuracy']:.2%}, "
                f"character error rate {scores['character_error_rate']:.2%}")


def read_images(signature, images, batch_size=128):
    """Texts (str) a signature (`image` string [B] -> `translation` [B]) reads
    from encoded images, in batches."""
    import tensorflow as tf

    texts = []
    for i in range(0, len(images), batch_size):
        out = signature(image=tf.constant(images[i: i + batch_size]))["translation"].numpy()
        texts += [t.decode("utf-8") for t in out]
    return texts


def image_text_scores(texts, targets, split, search):
    """`{split, images, search, sequence_accuracy, character_error_rate}`."""
    from keras_seq2seq.metrics import error_rate, exact_match

    return {"split": split, "images": len(targets), "search": search,
            "sequence_accuracy": exact_match(texts, targets),
            "character_error_rate": error_rate(texts, targets)}
