"""`ImageReader`: an image model and its tokenizer as one `tf.Module`,
encoded images in, text out.

Its `tf.function`s are the SavedModel's signatures (design.md 2.4):
`serving_default` takes `image`, encoded bytes string [batch] (PNG, JPEG,
GIF or BMP, any size), decodes and fits them in the graph
(`data.images`: the training pipeline's own functions) and returns
`translation` and `score`, as a text model's does. The search is every
model's, `keras_seq2seq.decoding.generate`.
"""

import base64

import tensorflow as tf

from keras_seq2seq.data.images import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, images_from_bytes
from keras_seq2seq.decoding import generate
from keras_seq2seq.decoding import score as score_outputs
from keras_seq2seq.export.run_folder import register_exportable
from keras_seq2seq.export.text_output import TextOutput

IMAGE = tf.TensorSpec([None], tf.string, name="image")


@register_exportable
class ImageReader(TextOutput):
    """Encoded images in, their text out; decoding, fitting and search in the graph.

    Args:
        model: a trained `ImageToText`.
        tokenizer: the tokenizer of its outputs.
        max_target_length: size of the output buffer, in tokens (EOS included).
        beam_size: beam width of `serving_default` and `beam_search`, and the
            largest `beam_size` that `beam_search_options` accepts.
        alpha: GNMT length penalty of the fixed-width signatures.
        check_images: encoded images `check_inputs` gives `verify_export`
            (bytes; or base64 str, as `run_settings` keeps them in JSON).

    Requests are checked before anything large is allocated: an image over
    `data.images.MAX_IMAGE_BYTES` bytes, or whose PNG/JPEG header claims a
    side over `MAX_IMAGE_SIDE` pixels, or bytes that are no image, fail the
    request with an InvalidArgument error that says which.

    Example:

    >>> reader = ImageReader(model, tokenizer, max_target_length=12)
    >>> reader.serving_default(tf.constant([open("4071.png", "rb").read()]))["translation"]
    """

    def __init__(self, model, tokenizer, max_target_length, beam_size=5, alpha=0.0,
                 check_images=(), name=None):
        super().__init__(model, tokenizer, name=name)
        self.max_target_length = int(max_target_length)
        self.beam_size = int(beam_size)
        self.alpha = float(alpha)
        self.check_images = [base64.b64decode(image) if isinstance(image, str) else bytes(image)
                             for image in check_images][:8]
        self.height, self.width = model.image_height, model.image_width
        pixels = tf.TensorSpec([None, self.height, self.width, 1], tf.float32, name="pixels")
        self.read_pixels = tf.function(self._read_pixels, autograph=False,
                                       input_signature=[pixels])
        # One traced search, called by every signature (see `Translator`).
        self._traced_search = tf.function(self._search, autograph=False)

    @property
    def settings(self):
        return {
            "model": self.model.__class__.__name__,
            "model_config": self.model.get_config(),
            "tokenizer": self.tokenizer.__class__.__name__,
            "vocabulary_size": self.tokenizer.vocab_size,
            "image_height": self.height,
            "image_width": self.width,
            "max_image_bytes": MAX_IMAGE_BYTES,
            "max_image_side": MAX_IMAGE_SIDE,
            "max_target_length": self.max_target_length,
            "beam_size": self.beam_size,
            "alpha": self.alpha,
        }

    def run_settings(self):
        return {"max_target_length": self.max_target_length, "beam_size": self.beam_size,
                "alpha": self.alpha,
                "check_images": [base64.b64encode(image).decode("ascii")
                                 for image in self.check_images]}

    # -- pixels in, ids out: the core every signature shares ----------------

    def pixels(self, image):
        """Encoded images string [B] -> float32 [B, height, width, 1]."""
        return images_from_bytes(image, self.height, self.width)

    def search(self, pixels, beam_size=None, alpha=None, max_length=None, active_beams=None):
        """Beam search over pixels -> (ids [B, K, T], scores [B, K])."""
        width = beam_size or self.beam_size

        def no_images():
            return (tf.zeros([0, width, self.max_target_length], tf.int32),
                    tf.zeros([0, width], tf.float32))

        # TF's batch normalization fails on an empty batch ("Incompatible
        # shapes: [16] vs. [0,16,32,8]"); an empty request gets empty outputs.
        return tf.cond(tf.shape(pixels)[0] > 0,
                       lambda: self._traced_search(pixels, beam_size, alpha, max_length,
                                                   active_beams),
                       no_images)

    def _search(self, pixels, beam_size, alpha, max_length, active_beams):
        return generate(self.model, pixels, self.max_target_length,
                        beam_size=beam_size or self.beam_size,
                        alpha=self.alpha if alpha is None else alpha,
                        length_cap=max_length, active_beams=active_beams)

    def decode_text(self, ids):
        """[B, T] ids -> [B] strings."""
        return self.tokenizer.decode(ids)

    def decode_beams(self, ids):
        """[B, K, T] ids -> [B, K] strings."""
        shape = tf.shape(ids)
        return tf.reshape(self.decode_text(tf.reshape(ids, [-1, shape[2]])), shape[:2])

    # -- the signatures -----------------------------------------------------

    @tf.function(autograph=False, input_signature=[IMAGE])
    def serving_default(self, image):
        """`image` [B] -> `translation` string [B], `score` float32 [B] (best beam)."""
        return self._read_pixels(self.pixels(image))

    def _read_pixels(self, pixels):
        """`pixels` float32 [B, height, width, 1] in [0, 1], light ink on
        dark -> `translation` [B], `score` [B]: for clients that decode
        images themselves (the TFLite model's input)."""
        ids, scores = self.search(pixels)
        return {"translation": self.decode_text(ids[:, 0]), "score": scores[:, 0]}

    @tf.function(autograph=False, input_signature=[IMAGE])
    def beam_search(self, image):
        """`image` [B] -> `translations` string [B, K], `scores` float32 [B, K]."""
        ids, scores = self.search(self.pixels(image))
        return {"translations": self.decode_beams(ids), "scores": scores}

    @tf.function(autograph=False, input_signature=[IMAGE])
    def greedy(self, image):
        """`image` [B] -> `translation` string [B]."""
        ids, _ = self.search(self.pixels(image), beam_size=1, alpha=0.0)
        return {"translation": self.decode_text(ids[:, 0])}

    @tf.function(autograph=False, input_signature=[
        IMAGE,
        tf.TensorSpec([], tf.int32, name="beam_size"),
        tf.TensorSpec([], tf.float32, name="alpha"),
        tf.TensorSpec([], tf.int32, name="max_length"),
    ])
    def beam_search_options(self, image, beam_size, alpha, max_length):
        """`beam_search` with the search settings chosen per request.

        `beam_size` is clipped to [1, the export's beam size] and
        `max_length` to [1, max_target_length]; outputs have `beam_size`
        columns.
        """
        width = tf.clip_by_value(beam_size, 1, self.beam_size)
        ids, scores = self.search(self.pixels(image), alpha=alpha, max_length=max_length,
                                  active_beams=width)
        return {"translations": self.decode_beams(ids[:, :width]), "scores": scores[:, :width]}

    @tf.function(autograph=False, input_signature=[IMAGE])
    def alignments(self, image):
        """`serving_default` plus where the model looked.

        Returns `translation` [B], `score` [B], `attention` float32
        [B, T, rows, cols] (row t: the attention over the feature map while
        writing token t; cell (r, c) covers pixels about
        [r * height / rows, (r + 1) * height / rows) x the same for columns
        of the fitted image), and `target_pieces` [B, T] (end included, ""
        for padding), and `pixels` float32 [B, height, width, 1]: the
        fitted image the model read, to draw the attention on.
        """
        pixels = self.pixels(image)
        ids, scores = self.search(pixels)
        best = ids[:, 0]
        _, tokens, attention = score_outputs(self.model, pixels, best, attention=True)
        steps = tf.reduce_max(tokens)
        best = best[:, :steps]
        attention = tf.reshape(attention[:, :steps], [tf.shape(best)[0], steps,
                                                      self.model.feature_rows,
                                                      self.model.feature_cols])
        pieces, _ = self.tokenizer.pieces(best)
        return {"translation": self.decode_text(best), "score": scores[:, 0],
                "attention": attention, "target_pieces": pieces, "pixels": pixels}

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
        blank = tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()
        return {"image": self.check_images + [blank]}

    def tflite_decode(self):
        """The batch-1 search that TFLite converts: fitted pixels in (a client
        decodes its image as `data.images.fit_image` does), ids out."""

        def decode(pixels):
            # Inlined, not a call of the traced search: the converter freezes one graph.
            target_ids, scores = self._search(pixels, None, None, None, None)
            return {"scores": scores, "target_ids": target_ids}

        return decode, [tf.TensorSpec([1, self.height, self.width, 1], tf.float32,
                                      name="pixels")]
