"""Images of handwritten digit strings, composed from single MNIST digits.

`../shared/data/mnist-digits` holds 8,000 digits (28 x 28, IDX files). They
are split by digit image first (`split_digits`: a fixed permutation, so
every run and benchmark holds back the same digits), and each split's
strings are composed only from its own digits: no handwritten digit is in
two splits. A composed image is a string of 1 to `max_digits` digits, each
scaled, stretched, slanted and offset at random, with random gaps (touching
digits included) and margins, written as a PNG, the bytes a client sends.
Targets are the digit strings ("4071").
"""

import gzip
import io
import os

import numpy as np

from keras_seq2seq.data.atomic import atomic_path

# Digits of each split, from the fixed permutation of the 8,000.
SPLIT_DIGITS = {"test": (0, 800), "val": (800, 1600), "train": (1600, 8000)}


def read_idx_digits(images_path, labels_path):
    """`(images uint8 [n, 28, 28], labels uint8 [n])` from gzipped IDX files."""
    with gzip.open(images_path, "rb") as f:
        images = f.read()
    with gzip.open(labels_path, "rb") as f:
        labels = f.read()
    if images[:4] != b"\x00\x00\x08\x03" or labels[:4] != b"\x00\x00\x08\x01":
        raise ValueError(f"{images_path} / {labels_path}: not IDX image and label files")
    count = int.from_bytes(images[4:8], "big")
    rows, cols = int.from_bytes(images[8:12], "big"), int.from_bytes(images[12:16], "big")
    images = np.frombuffer(images[16:], np.uint8).reshape(count, rows, cols)
    labels = np.frombuffer(labels[8:], np.uint8)
    if len(labels) != count:
        raise ValueError(f"{images_path} has {count} images but {labels_path} {len(labels)} labels")
    return images, labels


def split_digits(images, labels, split):
    """The digits of `split` ("train", "val" or "test"): a fixed permutation
    (seed 0, whatever the run's seed) cut by `SPLIT_DIGITS`, scaled to the
    8,000 digits of the shared folder."""
    order = np.random.default_rng(0).permutation(len(images))
    start, stop = (round(i * len(images) / 8000) for i in SPLIT_DIGITS[split])
    chosen = order[start:stop]
    return images[chosen], labels[chosen]


def _one_digit(image, rng, height):
    """A digit cropped to its ink, scaled to `height` rows (width stretched
    by up to 20%) and slanted: uint8 [height, w]."""
    from PIL import Image

    rows, cols = np.nonzero(image > 20)
    image = image[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    width = round(image.shape[1] * height / image.shape[0] * rng.uniform(0.8, 1.2))
    width = int(np.clip(width, 2, 1.2 * height))
    digit = Image.fromarray(image).resize((width, height), Image.BILINEAR)
    shear = rng.uniform(-0.3, 0.3)
    extra = int(np.ceil(abs(shear) * height))
    # PIL maps each output (x, y) to the input (x + shear * y + shift, y):
    # rows slide by up to `extra` columns, into a canvas that wide more.
    shift = -extra if shear > 0 else 0
    digit = digit.transform((width + extra, height), Image.AFFINE,
                            (1, shear, shift, 0, 1, 0), Image.BILINEAR)
    return np.asarray(digit)


def compose_string(images, labels, rng, max_digits=8):
    """One image of a random string of 1 to `max_digits` of the given digits.

    Returns `(png bytes, digit string)`.
    """
    from PIL import Image

    count = int(rng.integers(1, max_digits + 1))
    chosen = rng.integers(0, len(images), count)
    canvas_height = 40
    pieces, x = [], int(rng.integers(0, 9))
    for i in chosen:
        height = int(rng.integers(18, 33))
        digit = _one_digit(images[i], rng, height)
        y = int(rng.integers(0, canvas_height - height + 1))
        pieces.append((digit, x, y))
        x += digit.shape[1] + int(rng.integers(-2, 8))
    width = max(x, max(px + d.shape[1] for d, px, _ in pieces)) + int(rng.integers(0, 9))
    canvas = np.zeros((canvas_height, width), np.uint8)
    for digit, px, py in pieces:
        region = canvas[py: py + digit.shape[0], px: px + digit.shape[1]]
        np.maximum(region, digit[: region.shape[0], : region.shape[1]], out=region)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue(), "".join(str(int(labels[i])) for i in chosen)


def compose_strings(images, labels, count, seed, max_digits=8):
    """`count` composed images: `(list of png bytes, list of digit strings)`."""
    rng = np.random.default_rng(seed)
    pairs = [compose_string(images, labels, rng, max_digits) for _ in range(count)]
    return [p for p, _ in pairs], [t for _, t in pairs]


def write_digit_strings(folder, images_path, labels_path, sizes, max_digits=8, seed=0):
    """Composes each split's strings from its own digits, once, into `folder`.

    Args:
        sizes: `{split: number of strings}` for "train", "val", "test".
        seed: the composition seed of the training strings (validation and
            test strings are always composed with seeds of their own, so
            they do not change with a run's seed).

    Returns:
        `{split: path}` of `SPLIT.tfrecord` files, one record a PNG, each
        beside a `SPLIT.txt` of its digit strings, a line per record.
    """
    images, labels = read_idx_digits(images_path, labels_path)

    def compose(split, count):
        split_seed = {"train": 1000 + seed, "val": 2000, "test": 3000}[split]
        return compose_strings(*split_digits(images, labels, split), count, split_seed,
                               max_digits)

    return write_records(folder, sizes, compose)


def write_records(folder, sizes, compose):
    """Writes `compose(split, count) -> (list of bytes, list of str)` of each
    split to `folder/SPLIT.tfrecord` and its `.txt` of targets, atomically,
    unless both are there already. Returns `{split: tfrecord path}`."""
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    paths = {}
    for split, count in sizes.items():
        path = os.path.join(folder, f"{split}.tfrecord")
        paths[split] = path
        if os.path.exists(path) and os.path.exists(targets_path(path)):
            continue
        items, targets = compose(split, count)
        # Both files or neither: a split is skipped only when both exist.
        with atomic_path(path) as records_part, atomic_path(targets_path(path)) as targets_part:
            with tf.io.TFRecordWriter(records_part) as writer:
                for item in items:
                    writer.write(item)
            with open(targets_part, "w", encoding="utf-8") as f:
                f.write("".join(t + "\n" for t in targets))
    return paths


def targets_path(records_path):
    """The targets file beside a `.tfrecord` of composed items."""
    return records_path[: -len(".tfrecord")] + ".txt"


def read_digit_strings(records_path):
    """`(list of record bytes, list of targets)` written by `write_records`
    (PNG images and digit strings, or WAV files and spoken digits)."""
    import tensorflow as tf

    pngs = [r.numpy() for r in tf.data.TFRecordDataset(records_path)]
    with open(targets_path(records_path), encoding="utf-8") as f:
        targets = f.read().splitlines()
    if len(pngs) != len(targets):
        raise ValueError(f"{records_path} has {len(pngs)} images but "
                         f"{targets_path(records_path)} {len(targets)} lines")
    return pngs, targets
