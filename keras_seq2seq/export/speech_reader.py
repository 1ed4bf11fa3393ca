"""`SpeechReader`: a speech model and its tokenizer as one `tf.Module`,
WAV files in, text out.

Its `tf.function`s are the SavedModel's signatures (design.md 2.4):
`serving_default` takes `audio`, WAV file bytes string [batch] (16-bit PCM
at the model's sample rate; stereo is averaged to mono), decodes them in the
graph (`data.audio`: the training pipeline's own function) and returns
`translation` and `score`, as a text model's does; `read_waveform` takes
float32 samples instead.
"""

import numpy as np
import tensorflow as tf

from keras_seq2seq.data.audio import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    assert_within_duration_cap,
    encode_wav,
    waveforms_from_bytes,
)
from keras_seq2seq.export.reader import SEARCH_OPTIONS, Reader
from keras_seq2seq.export.run_folder import register_exportable

AUDIO = tf.TensorSpec([None], tf.string, name="audio")
# The lengths XLA compiles one-recording searches for (with `jit_compile`),
# in seconds: a recording is padded with silence to the first that holds it.
# Whole seconds up to the lengths most requests have, then fewer, longer
# buckets, so that a server compiles ten programs, not one a second.
XLA_BUCKET_SECONDS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 32)
assert XLA_BUCKET_SECONDS[-1] >= MAX_AUDIO_SECONDS


@register_exportable
class SpeechReader(Reader):
    """WAV files in, what they say out (see `Reader` for the arguments;
    `model` is a `SpeechToText`).

    Requests are checked before they are read: more than
    `data.audio.MAX_AUDIO_BYTES` bytes or `MAX_AUDIO_SECONDS` seconds, a
    sample rate other than the model's, or bytes that are no WAV file fail
    the request with an InvalidArgument error that says which. An empty
    recording or silence gets an answer (usually empty text).

    Example:

    >>> reader = SpeechReader(model, tokenizer, max_target_length=16)
    >>> reader.serving_default(tf.constant([open("407.wav", "rb").read()]))["translation"]
    """

    input_name = "audio"

    def __init__(self, model, tokenizer, max_target_length, beam_size=5, alpha=0.0,
                 check_items=(), matmul_dtype=None, jit_compile=False, parallel_searches=1,
                 name=None):
        super().__init__(model, tokenizer, max_target_length, beam_size, alpha, check_items,
                         matmul_dtype, jit_compile, parallel_searches, name=name)
        self.sample_rate = model.sample_rate
        self.read_waveform = tf.function(self._read_waveform, autograph=False, input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="waveform"),
            tf.TensorSpec([None], tf.int32, name="lengths")])

    @property
    def settings(self):
        return dict(self.reader_settings(), sample_rate=self.sample_rate,
                    max_audio_bytes=MAX_AUDIO_BYTES, max_audio_seconds=MAX_AUDIO_SECONDS)

    def model_inputs(self, audio):
        """WAV bytes string [B] -> `{"waveform", "lengths"}`."""
        waveform, lengths = waveforms_from_bytes(audio, self.sample_rate)
        return {"waveform": waveform, "lengths": lengths}

    def xla_bucketed(self, inputs, options):
        """The waveform padded with silence to the first of
        `XLA_BUCKET_SECONDS` that holds it (`lengths` unchanged: the model
        masks what lies past them). Requests are capped below the last."""
        samples = tf.shape(inputs["waveform"])[1]
        buckets = tf.constant(XLA_BUCKET_SECONDS, tf.int32) * self.sample_rate
        bucket = tf.gather(buckets, tf.minimum(
            tf.searchsorted(buckets, samples[None])[0], len(XLA_BUCKET_SECONDS) - 1))
        waveform = tf.pad(inputs["waveform"], [[0, 0], [0, tf.maximum(bucket - samples, 0)]])
        return {"waveform": waveform, "lengths": inputs["lengths"]}, options

    def warmup_inputs(self):
        """A recording of silence as long as each bucket (the last: as long
        as a request may be, `MAX_AUDIO_SECONDS`)."""
        return [{"audio": [encode_wav(np.zeros(min(seconds, MAX_AUDIO_SECONDS) * self.sample_rate),
                                      self.sample_rate)]}
                for seconds in XLA_BUCKET_SECONDS]

    # -- the signatures (bodies in `Reader`) ----------------------------------

    def _read_waveform(self, waveform, lengths):
        """`waveform` float32 [B, samples] in [-1, 1] at the model's sample
        rate, zero-padded, and `lengths` int32 [B] -> `translation` [B],
        `score` [B]: for clients that decode audio themselves. At most
        `MAX_AUDIO_SECONDS` of samples, as WAV requests."""
        samples = tf.shape(waveform)[1]
        with tf.control_dependencies([assert_within_duration_cap(samples, self.sample_rate)]):
            lengths = tf.clip_by_value(lengths, 0, samples)
        return self.read_inputs({"waveform": waveform, "lengths": lengths})

    @tf.function(autograph=False, input_signature=[AUDIO])
    def serving_default(self, audio):
        """`audio` [B] -> `translation` string [B], `score` float32 [B] (best beam)."""
        return self._serving_default(audio)

    @tf.function(autograph=False, input_signature=[AUDIO])
    def beam_search(self, audio):
        """`audio` [B] -> `translations` string [B, K], `scores` float32 [B, K]."""
        return self._beam_search(audio)

    @tf.function(autograph=False, input_signature=[AUDIO])
    def greedy(self, audio):
        """`audio` [B] -> `translation` string [B]."""
        return self._greedy(audio)

    @tf.function(autograph=False, input_signature=[AUDIO] + SEARCH_OPTIONS)
    def beam_search_options(self, audio, beam_size, alpha, max_length):
        """`beam_search` with the search settings chosen per request (see
        `ImageReader.beam_search_options`)."""
        return self._beam_search_options(audio, beam_size, alpha, max_length)

    @tf.function(autograph=False, input_signature=[AUDIO])
    def alignments(self, audio):
        """`serving_default` plus where the model listened.

        Returns `translation` [B], `score` [B], `attention` float32
        [B, T, positions] (position p stands for the frames
        [p * r, (p + 1) * r) of `features`, r the product of the model's
        `reductions` and of 2 per convolution), `target_pieces` [B, T], and
        `features` float32 [B, frames, mel_bins]: the normalized log-mel
        spectrogram it heard.
        """
        return self._alignments(audio)

    def alignment_outputs(self, inputs, attention, outputs):
        features, _ = self.model.frontend(inputs["waveform"], inputs["lengths"])
        return dict(outputs, attention=attention, features=features)

    def signatures(self):
        return {
            "serving_default": self.serving_default,
            "beam_search": self.beam_search,
            "greedy": self.greedy,
            "read_waveform": self.read_waveform,
            "beam_search_options": self.beam_search_options,
            "alignments": self.alignments,
        }

    # -- what export_saved_model and convert_to_tflite ask of an exportable --

    def check_inputs(self):
        """The run's sample recordings, plus a second of silence."""
        return {"audio": self.check_items + [encode_wav(np.zeros(self.sample_rate),
                                                        self.sample_rate)]}

    def tflite_decode(self):
        """Samples in (one recording, float32 [1, samples] in [-1, 1]), ids out."""

        def decode(waveform):
            return self._tflite_search({"waveform": waveform,
                                        "lengths": tf.shape(waveform)[1:2]})

        return decode, [tf.TensorSpec([1, None], tf.float32, name="waveform")]
