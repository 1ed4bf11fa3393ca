"""`PointerSolver`: a pointer network as a `tf.Module`, points in, positions out.

Its `tf.function`s are the SavedModel's signatures (design.md 2.4):
`serving_default` takes `points` float32 [batch, n, dims] and returns
`indices` int32 [batch, n] (0-based input positions, -1 after the output
ends) and `scores` float32 [batch]. The search is the text models' own,
`keras_seq2seq.decoding.generate`.
"""

import tensorflow as tf

from keras_seq2seq.decoding import generate
from keras_seq2seq.export.exportable import Exportable
from keras_seq2seq.export.run_folder import register_exportable


@register_exportable
class PointerSolver(Exportable):
    """Beam search over a `PointerNetwork`'s choices, for export.

    Args:
        model: a trained `PointerNetwork`.
        points: the number of points the model was trained on (reported in
            the settings; any n up to `max_points` is accepted).
        max_points: the largest n a request may have; the output buffer's
            size. Larger requests fail with an InvalidArgument error.
        beam_size: beam width of `serving_default` and `beam_search`.

    Example:

    >>> solver = PointerSolver(model, points=10, beam_size=5)
    >>> solver.serving_default(tf.random.uniform([3, 10, 2]))["indices"]
    """

    def __init__(self, model, points, max_points=50, beam_size=5, name=None):
        super().__init__(model, name=name)
        self.points = int(points)
        self.max_points = max(int(max_points), self.points)
        self.beam_size = int(beam_size)
        self.dims = int(model.point_dims)
        spec = tf.TensorSpec([None, None, self.dims], tf.float32, name="points")
        self.serving_default = tf.function(self._serving_default, autograph=False, input_signature=[spec])
        self.beam_search = tf.function(self._beam_search, autograph=False, input_signature=[spec])
        self.greedy = tf.function(self._greedy, autograph=False, input_signature=[spec])

    @property
    def settings(self):
        return {
            "model": self.model.__class__.__name__,
            "model_config": self.model.get_config(),
            "points": self.points,
            "max_points": self.max_points,
            "beam_size": self.beam_size,
        }

    def search(self, points, beam_size=None):
        """`(indices [B, K, n], scores [B, K])` for points [B, n, dims]."""
        n = tf.shape(points)[1]
        check = tf.debugging.assert_less_equal(
            n, self.max_points,
            message=f"this export takes at most {self.max_points} points per instance")
        with tf.control_dependencies([check]):
            points = tf.identity(points)
        indices, scores = generate(self.model, points, max_length=self.max_points + 1,
                                   beam_size=beam_size or self.beam_size)
        # The buffer holds n positions and the end; the end reads -1.
        return indices[:, :, :n], scores

    def _serving_default(self, points):
        """`points` [B, n, dims] -> `indices` int32 [B, n], `scores` float32 [B] (best beam)."""
        indices, scores = self.search(points)
        return {"indices": indices[:, 0], "scores": scores[:, 0]}

    def _beam_search(self, points):
        """`points` [B, n, dims] -> `indices` int32 [B, K, n], `scores` float32 [B, K]."""
        indices, scores = self.search(points)
        return {"indices": indices, "scores": scores}

    def _greedy(self, points):
        """`points` [B, n, dims] -> `indices` int32 [B, n], `scores` float32 [B]."""
        indices, scores = self.search(points, beam_size=1)
        return {"indices": indices[:, 0], "scores": scores[:, 0]}

    def signatures(self):
        return {
            "serving_default": self.serving_default,
            "beam_search": self.beam_search,
            "greedy": self.greedy,
        }

    def run_settings(self):
        return {k: getattr(self, k) for k in ("points", "max_points", "beam_size")}

    def check_inputs(self, count=8, seed=0):
        """Random instances of the trained size, for `verify_export`."""
        rng = tf.random.Generator.from_seed(seed)
        return {"points": rng.uniform([count, self.points, self.dims]).numpy()}

    def tflite_decode(self):
        """The batch-1 search that TFLite converts, and its input signature."""

        def decode(points):
            indices, scores = self.search(points)
            return {"indices": indices, "scores": scores}

        return decode, [tf.TensorSpec([1, None, self.dims], tf.float32, name="points")]
