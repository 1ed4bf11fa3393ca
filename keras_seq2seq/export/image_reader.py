"""`ImageReader`: an image model and its tokenizer as one `tf.Module`,
encoded images in, text out.

Its `tf.function`s are the SavedModel's signatures (design.md 2.4):
`serving_default` takes `image`, encoded bytes string [batch] (PNG, JPEG,
GIF or BMP, any size), decodes and fits them in the graph
(`data.images`: the training pipeline's own functions) and returns
`translation` and `score`, as a text model's does.
"""

import tensorflow as tf

from keras_seq2seq.data.images import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, images_from_bytes
from keras_seq2seq.export.reader import SEARCH_OPTIONS, Reader
from keras_seq2seq.export.run_folder import register_exportable

IMAGE = tf.TensorSpec([None], tf.string, name="image")


def _blank_png():
    return tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()


@register_exportable
class ImageReader(Reader):
    """Encoded images in, their text out (see `Reader` for the arguments;
    `model` is an `ImageToText`).

    Requests are checked before anything large is allocated: an image over
    `data.images.MAX_IMAGE_BYTES` bytes, or whose PNG/JPEG header claims a
    side over `MAX_IMAGE_SIDE` pixels, or bytes that are no image, fail the
    request with an InvalidArgument error that says which.

    Example:

    >>> reader = ImageReader(model, tokenizer, max_target_length=12)
    >>> reader.serving_default(tf.constant([open("4071.png", "rb").read()]))["translation"]
    """

    input_name = "image"

    def __init__(self, model, tokenizer, max_target_length, beam_size=5, alpha=0.0,
                 check_items=(), matmul_dtype=None, jit_compile=False, parallel_searches=1,
                 name=None):
        super().__init__(model, tokenizer, max_target_length, beam_size, alpha, check_items,
                         matmul_dtype, jit_compile, parallel_searches, name=name)
        self.height, self.width = model.image_height, model.image_width
        self.read_pixels = tf.function(self._read_pixels, autograph=False, input_signature=[
            tf.TensorSpec([None, self.height, self.width, 1], tf.float32, name="pixels")])

    @property
    def settings(self):
        return dict(self.reader_settings(), image_height=self.height, image_width=self.width,
                    max_image_bytes=MAX_IMAGE_BYTES, max_image_side=MAX_IMAGE_SIDE)

    def model_inputs(self, image):
        """Encoded images string [B] -> float32 pixels [B, height, width, 1]."""
        return images_from_bytes(image, self.height, self.width)

    def warmup_inputs(self):
        """One blank image: every image is fitted to one size, one program."""
        return [{"image": [_blank_png()]}]

    # -- the signatures (bodies in `Reader`) ----------------------------------

    def _read_pixels(self, pixels):
        """`pixels` float32 [B, height, width, 1] in [0, 1], light ink on dark
        -> `translation` [B], `score` [B]: for clients that decode images
        themselves (the TFLite model's input)."""
        return self.read_inputs(pixels)

    @tf.function(autograph=False, input_signature=[IMAGE])
    def serving_default(self, image):
        """`image` [B] -> `translation` string [B], `score` float32 [B] (best beam)."""
        return self._serving_default(image)

    @tf.function(autograph=False, input_signature=[IMAGE])
    def beam_search(self, image):
        """`image` [B] -> `translations` string [B, K], `scores` float32 [B, K]."""
        return self._beam_search(image)

    @tf.function(autograph=False, input_signature=[IMAGE])
    def greedy(self, image):
        """`image` [B] -> `translation` string [B]."""
        return self._greedy(image)

    @tf.function(autograph=False, input_signature=[IMAGE] + SEARCH_OPTIONS)
    def beam_search_options(self, image, beam_size, alpha, max_length):
        """`beam_search` with the search settings chosen per request.

        `beam_size` is clipped to [1, the export's beam size] and
        `max_length` to [1, max_target_length]; outputs have `beam_size`
        columns.
        """
        return self._beam_search_options(image, beam_size, alpha, max_length)

    @tf.function(autograph=False, input_signature=[IMAGE])
    def alignments(self, image):
        """`serving_default` plus where the model looked.

        Returns `translation` [B], `score` [B], `attention` float32
        [B, T, rows, cols] (row t: the attention over the feature map while
        writing token t; cell (r, c) covers pixels about
        [r * height / rows, (r + 1) * height / rows) x the same for columns
        of the fitted image), `target_pieces` [B, T] (end included, ""
        for padding), and `pixels` float32 [B, height, width, 1]: the
        fitted image the model read, to draw the attention on.
        """
        return self._alignments(image)

    def alignment_outputs(self, pixels, attention, outputs):
        shape = tf.shape(attention)
        attention = tf.reshape(attention, [shape[0], shape[1], self.model.feature_rows,
                                           self.model.feature_cols])
        return dict(outputs, attention=attention, pixels=pixels)

    def signatures(self):
        return {
            "serving_default": self.serving_default,
            "beam_search": self.beam_search,
            "greedy": self.greedy,
            "read_pixels": self.read_pixels,
            "beam_search_options": self.beam_search_options,
            "alignments": self.alignments,
        }

    # -- what export_saved_model and convert_to_tflite ask of an exportable --

    def check_inputs(self):
        """The run's sample images, plus a blank one."""
        return {"image": self.check_items + [_blank_png()]}

    def tflite_decode(self):
        """Fitted pixels in (a client decodes its image as
        `data.images.fit_image` does), ids out."""
        return self._tflite_search, [tf.TensorSpec([1, self.height, self.width, 1], tf.float32,
                                                   name="pixels")]
