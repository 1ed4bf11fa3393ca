"""Images in the graph: client bytes -> the pixels an image model reads.

The same two functions prepare training images (`tasks.ImageTextTask`) and
serve requests (`export.ImageReader`), so a model sees in serving exactly
what it saw in training:

- `decode_image`: PNG, JPEG, GIF or BMP bytes -> grey levels, after checking
  the size caps below (a request over a cap fails with an InvalidArgument
  error naming the cap, before anything large is allocated);
- `fit_image`: any size -> the model's `height` x `width`, aspect ratio
  kept (scaled to fit, antialiased, centred on a black background), light
  ink on a dark background (an image whose mean is over one half, dark ink
  on light paper, is inverted), float32 in [0, 1].
"""

import tensorflow as tf

# An encoded image may have at most this many bytes ...
MAX_IMAGE_BYTES = 8 * 1024 * 1024
# ... and, for PNG and JPEG (whose headers say it before decoding), at most
# this many pixels on a side: a 100-byte PNG can claim to be 60,000 x 60,000.
MAX_IMAGE_SIDE = 4096

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"


def _claimed_size(data):
    """int32 [2] (height, width) an image's header claims; 0s if it says
    none (GIF, BMP, or not an image: decoding then tells)."""
    png = tf.logical_and(tf.strings.substr(data, 0, 8) == _PNG_SIGNATURE,
                         tf.strings.length(data) >= 24)
    jpeg = tf.strings.substr(data, 0, 3) == _JPEG_SIGNATURE

    def png_size():
        # IHDR: width and height, big-endian uint32, at bytes 16-23.
        words = tf.io.decode_raw(tf.strings.substr(data, 16, 8), tf.int32, little_endian=False)
        return tf.stack([words[1], words[0]])

    def jpeg_size():
        return tf.image.extract_jpeg_shape(data)[:2]

    return tf.case([(png, png_size), (jpeg, jpeg_size)],
                   default=lambda: tf.zeros([2], tf.int32))


def decode_image(data):
    """Encoded image bytes (a string scalar) -> uint8 [h, w, 1] grey levels.

    Raises (at run time) InvalidArgument for bytes that are no image, a
    truncated one, more than `MAX_IMAGE_BYTES`, or a PNG/JPEG header that
    claims a side over `MAX_IMAGE_SIDE` (or not positive).
    """
    checks = [tf.debugging.assert_less_equal(
        tf.strings.length(data), MAX_IMAGE_BYTES,
        message=f"an image may have at most {MAX_IMAGE_BYTES} bytes")]
    size = _claimed_size(data)
    checks.append(tf.debugging.assert_less_equal(
        tf.reduce_max(size), MAX_IMAGE_SIDE,
        message=f"an image may have at most {MAX_IMAGE_SIDE} pixels on a side"))
    checks.append(tf.debugging.assert_non_negative(
        size, message="the image header claims a negative size"))
    with tf.control_dependencies(checks):
        data = tf.identity(data)
    image = tf.io.decode_image(data, channels=1, expand_animations=False)
    image.set_shape([None, None, 1])
    return image


def fit_image(image, height, width):
    """uint8 or float [h, w, c] -> float32 [height, width, 1] in [0, 1].

    Grey levels, scaled to fit (aspect kept), centred, light ink on dark
    (see the module docstring). An empty image (a side of 0) gives zeros.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    image = tf.cast(image, tf.float32)
    if image.shape[-1] != 1:
        image = tf.image.rgb_to_grayscale(image[..., :3])
    image = tf.cond(tf.reduce_mean(image) > 0.5, lambda: 1.0 - image, lambda: image)
    empty = tf.equal(tf.reduce_prod(tf.shape(image)[:2]), 0)
    fitted = tf.cond(empty, lambda: tf.zeros([height, width, 1]),
                     lambda: _resize_with_pad(image, height, width))
    return tf.clip_by_value(tf.ensure_shape(fitted, [height, width, 1]), 0.0, 1.0)


def _resize_with_pad(image, height, width):
    """`tf.image.resize_with_pad(image, height, width, antialias=True)`, the
    same pixels, except that a side it would scale to 0 pixels (a 3 x 700
    image fitted to 32 x 192: "output dimensions must be positive") keeps 1."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    target = tf.constant([height, width], tf.float32)
    scaled = size / tf.reduce_max(size / target)
    resized = tf.image.resize(image, tf.maximum(tf.cast(tf.floor(scaled), tf.int32), 1),
                              antialias=True)
    offset = tf.maximum(tf.cast(tf.floor((target - scaled) / 2), tf.int32), 0)
    return tf.image.pad_to_bounding_box(resized, offset[0], offset[1], height, width)


def images_from_bytes(data, height, width):
    """Encoded images, string [batch] -> float32 [batch, height, width, 1]."""
    return tf.map_fn(lambda one: fit_image(decode_image(one), height, width), data,
                     fn_output_signature=tf.TensorSpec([height, width, 1], tf.float32))


def image_text_dataset(records_path, targets_path, tokenizer, height, width, batch_size=64,
                       max_target_length=100, shuffle=False, seed=None):
    """Batches of `({"images", "decoder_input_ids"}, target_ids)` for `fit`:
    `pipeline.records_dataset` of encoded images, fitted to `height` x
    `width` by the functions the export runs on a client's bytes."""
    from keras_seq2seq.data.pipeline import records_dataset

    return records_dataset(records_path, targets_path, tokenizer,
                           lambda data: {"images": images_from_bytes(data, height, width)},
                           batch_size, max_target_length, shuffle, seed)
