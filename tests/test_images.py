"""Image input: decoding client bytes in the graph, and composed digit strings."""

import gzip
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_seq2seq.data.digit_strings import (
    compose_strings,
    read_digit_strings,
    read_idx_digits,
    split_digits,
    write_digit_strings,
)
from keras_seq2seq.data.images import (
    MAX_IMAGE_SIDE,
    decode_image,
    fit_image,
    images_from_bytes,
)
from tests.conftest import assert_each_is_read_or_refused, mutated


def image_bytes(array, kind):
    """`array`'s pixels encoded by PIL as `kind` ("PNG", "JPEG", "BMP", "GIF")."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format=kind)
    return buffer.getvalue()


def png_bytes(array):
    return image_bytes(array, "PNG")


def jpeg_bytes(array):
    return image_bytes(array, "JPEG")


def ink(height=40, width=100):
    """Light strokes on black, like the composed digit strings."""
    image = np.zeros((height, width), np.uint8)
    image[10:30, 20:25] = 255
    image[10:14, 40:90] = 200
    return image


def test_png_and_jpeg_fit_the_model_size_in_unit_range():
    for data in (png_bytes(ink()), jpeg_bytes(ink())):
        pixels = fit_image(decode_image(tf.constant(data)), 32, 160).numpy()
        assert pixels.shape == (32, 160, 1)
        assert pixels.min() >= 0.0 and pixels.max() <= 1.0
        assert pixels.max() > 0.5


def test_aspect_ratio_is_kept_and_the_image_centred():
    # 40 x 100 scaled by 0.8 to 32 x 80, centred in 160 columns: 40 black
    # columns on each side.
    pixels = fit_image(decode_image(tf.constant(png_bytes(np.full((40, 100), 255)))), 32, 160)
    columns = pixels.numpy()[16, :, 0]
    assert np.all(columns[:39] == 0) and np.all(columns[121:] == 0)
    # Fully white becomes fully black: it reads as paper with no ink.


def test_dark_ink_on_light_paper_reads_like_light_ink_on_dark():
    light = fit_image(decode_image(tf.constant(png_bytes(ink()))), 32, 160)
    dark = fit_image(decode_image(tf.constant(png_bytes(255 - ink()))), 32, 160)
    np.testing.assert_allclose(light.numpy(), dark.numpy(), atol=1e-5)


def test_colour_images_are_read_as_grey_levels():
    rgb = np.stack([ink()] * 3, axis=-1)
    grey = fit_image(decode_image(tf.constant(png_bytes(ink()))), 32, 160)
    colour = fit_image(decode_image(tf.constant(png_bytes(rgb))), 32, 160)
    np.testing.assert_allclose(grey.numpy(), colour.numpy(), atol=2 / 255)


def test_a_batch_of_bytes_and_an_empty_batch():
    batch = images_from_bytes(tf.constant([png_bytes(ink()), jpeg_bytes(ink(20, 300))]), 32, 160)
    assert batch.shape == (2, 32, 160, 1)
    empty = images_from_bytes(tf.constant([], tf.string), 32, 160)
    assert empty.shape == (0, 32, 160, 1)


@pytest.mark.parametrize("data, message", [
    (b"not an image at all", "Unknown image file format"),
    (png_bytes(ink())[:60], None),
    (b"", None),
])
def test_bytes_that_are_no_image_fail_with_an_error(data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        images_from_bytes(tf.constant([data]), 32, 160)


def test_a_header_claiming_a_huge_image_is_refused_before_decoding():
    data = bytearray(png_bytes(ink()))
    # IHDR width and height (big-endian) at bytes 16-23: 10,000 x 10,000.
    data[16:24] = (10_000).to_bytes(4, "big") * 2
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {MAX_IMAGE_SIDE} pixels"):
        decode_image(tf.constant(bytes(data)))
    wide_jpeg = jpeg_bytes(np.zeros((8, MAX_IMAGE_SIDE + 8), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {MAX_IMAGE_SIDE} pixels"):
        decode_image(tf.constant(wide_jpeg))


def write_idx(folder, count=400, seed=0):
    """Synthetic IDX files: digit d is a bar at a position of its own."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = np.zeros((count, 28, 28), np.uint8)
    for i, (image, label) in enumerate(zip(images, labels)):
        image[4:24, 2 + 2 * label: 6 + 2 * label] = 255
        image[27, :2] = i % 256, i // 256  # each digit image unique
    images_path, labels_path = folder / "images.gz", folder / "labels.gz"
    with gzip.open(images_path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
                + images.tobytes())
    with gzip.open(labels_path, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + count.to_bytes(4, "big") + labels.tobytes())
    return str(images_path), str(labels_path)


def test_splits_share_no_digit_image_and_cover_them_all(tmp_path):
    images, labels = read_idx_digits(*write_idx(tmp_path))
    index = {}
    for split in ("train", "val", "test"):
        chosen, chosen_labels = split_digits(images, labels, split)
        index[split] = {int(a[27, 0]) + 256 * int(a[27, 1]) for a in chosen}
        assert len(index[split]) == len(chosen)
        # Labels travel with their images.
        assert all(labels[i] == label for i, label in zip(
            (int(a[27, 0]) + 256 * int(a[27, 1]) for a in chosen), chosen_labels))
    assert {k: len(v) for k, v in index.items()} == {"train": 320, "val": 40, "test": 40}
    assert set.union(*index.values()) == set(range(400))
    # The split does not depend on anything but the files.
    again = split_digits(images, labels, "test")[0]
    assert np.array_equal(again, split_digits(images, labels, "test")[0])


def test_composed_strings_are_reproducible_and_within_limits(tmp_path):
    images, labels = read_idx_digits(*write_idx(tmp_path))
    pngs, targets = compose_strings(images, labels, 50, seed=3, max_digits=5)
    again, again_targets = compose_strings(images, labels, 50, seed=3, max_digits=5)
    assert pngs == again and targets == again_targets
    assert all(1 <= len(t) <= 5 and t.isdigit() for t in targets)
    assert len({len(t) for t in targets}) == 5
    decoded = images_from_bytes(tf.constant(pngs[:4]), 32, 160)
    assert decoded.shape == (4, 32, 160, 1)


def test_written_splits_read_back_and_are_not_composed_twice(tmp_path):
    paths = write_digit_strings(str(tmp_path / "data"), *write_idx(tmp_path),
                                {"train": 30, "val": 10, "test": 10}, max_digits=4)
    pngs, targets = read_digit_strings(paths["val"])
    assert len(pngs) == len(targets) == 10
    stamp = (tmp_path / "data" / "val.tfrecord").stat().st_mtime_ns
    write_digit_strings(str(tmp_path / "data"), *write_idx(tmp_path),
                        {"train": 30, "val": 10, "test": 10}, max_digits=4)
    assert (tmp_path / "data" / "val.tfrecord").stat().st_mtime_ns == stamp


def test_idx_files_of_another_kind_are_refused(tmp_path):
    images_path, labels_path = write_idx(tmp_path)
    with pytest.raises(ValueError, match="not IDX"):
        read_idx_digits(labels_path, images_path)


def test_fitting_is_resize_with_pad_and_survives_extreme_aspect_ratios():
    rng = np.random.default_rng(0)
    for height, width in [(40, 200), (40, 30), (100, 37), (33, 191), (1, 1)]:
        image = tf.constant(rng.uniform(0, 0.5, size=(height, width, 1)).astype("float32"))
        np.testing.assert_array_equal(
            fit_image(image, 32, 192),
            tf.clip_by_value(tf.image.resize_with_pad(image, 32, 192, antialias=True), 0, 1))
    # resize_with_pad itself fails on these ("output dimensions must be positive").
    for height, width in [(3, 700), (900, 2)]:
        fitted = fit_image(tf.fill([height, width, 1], 0.25), 32, 192)
        assert fitted.shape == (32, 192, 1) and float(tf.reduce_max(fitted)) > 0


def test_damaged_image_files_are_read_or_refused_one_by_one():
    pixels = np.random.default_rng(0).random((20, 30)) * 255
    files = [image_bytes(pixels, kind) for kind in ("PNG", "JPEG", "BMP", "GIF")]
    read = tf.function(lambda data: images_from_bytes(data, 32, 192),
                       input_signature=[tf.TensorSpec([None], tf.string)])
    answered = assert_each_is_read_or_refused(read, mutated(files, 300, seed=1))
    assert 0 < answered < 300
