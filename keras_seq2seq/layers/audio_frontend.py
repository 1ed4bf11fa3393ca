"""The audio front-end: waveforms -> normalized log-mel features, in the graph."""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveforms -> per-utterance normalized log-mel (or PCEN) features and their mask.

    Frames of `frame_length` samples every `frame_step` (the last frames
    padded with zeros, as `tf.signal.frame(pad_end=True)`), a periodic Hann
    window, the power spectrum of an `fft_length`-point DFT, `mel_bins`
    triangular mel filters (`tf.signal.linear_to_mel_weight_matrix`), the
    log, then each utterance's features standardized per mel bin over its
    own frames (so gain and channel matter less).

    `compression="pcen"` replaces the log by per-channel energy
    normalization (PCEN, Wang et al. 2017, with librosa's `pcen` defaults):
    each mel bin's magnitude is divided by its own smoothed past (an
    exponential moving average with a `pcen_time_constant` of 0.4 s), then
    root-compressed. A gain that changes within a recording (digits spoken
    by different voices, at different levels) and steady background noise
    are divided out locally, where the per-utterance standardization
    removes only one level for the whole recording. The moving average is a
    causal convolution over the last frames (those of weight over 1e-4), so it
    stays a builtin TFLite op.

    `noise_subtraction` a > 0 takes steady background noise out of the mel
    power before the compression (spectral subtraction, Berouti et al.
    1979): each mel bin's noise power is estimated as the lowest average
    over `noise_window` consecutive frames of the recording (minimum
    statistics, Martin 2001, without tracking: one level a recording),
    and the power (PCEN's magnitude) becomes
    `max(power - a * noise, 0.05 * noise)`. Frames that hold only the
    noise then read as one flat floor instead of its random texture, at
    whatever level the noise is, which a quiet voice under loud noise
    needs: the per-utterance standardization alone rescales that texture
    as if it were speech.

    The power spectrum is `tf.signal.rfft` of the windowed frames, as
    `tf.signal.stft` computes it (tested against it); TFLite converts it to
    its builtin `RFFT2D`, so the front-end converts with the model.

    Args:
        sample_rate: samples per second of the input.
        frame_length, frame_step: in samples (default 25 ms every 10 ms at 8 kHz).
        fft_length: DFT size (>= frame_length).
        mel_bins: number of mel filters (the feature size).
        lower_hz, upper_hz: the filters' range (default: 20 Hz to Nyquist).
        compression: `"log"` (log-mel) or `"pcen"` (see above).
        pcen_time_constant: PCEN's smoothing time constant, in seconds.
        noise_subtraction: the over-subtraction factor of the noise's
            estimate (see above); 0: none.
        noise_window: frames averaged by the noise estimate.

    Call arguments:
        waveform: float [batch, samples], zero-padded.
        lengths: int [batch], each waveform's real samples (default: all).

    Returns:
        `(features, mask)`: float32 [batch, frames, mel_bins] (0 on padded
        frames) and bool [batch, frames]. An utterance of n samples has
        `max(1, ceil(n / frame_step))` frames; the outputs have as many
        frames as the waveform's whole width (`samples`) has.

    Example:

    >>> frontend = LogMelSpectrogram()
    >>> features, mask = frontend(tf.random.normal([2, 8000]), tf.constant([8000, 4000]))
    >>> features.shape, mask.numpy().sum(axis=1)
    (TensorShape([2, 100, 40]), array([100, 50]))
    """

    def __init__(self, sample_rate=8000, frame_length=200, frame_step=80, fft_length=256,
                 mel_bins=40, lower_hz=20.0, upper_hz=None, compression="log",
                 pcen_time_constant=0.4, noise_subtraction=0.0, noise_window=5, **kwargs):
        super().__init__(**kwargs)
        if compression not in ("log", "pcen"):
            raise ValueError(f"compression must be 'log' or 'pcen', got {compression!r}")
        if noise_subtraction < 0:
            raise ValueError(f"noise_subtraction must be 0 (none) or more, "
                             f"got {noise_subtraction}")
        if int(noise_window) < 1:
            raise ValueError(f"noise_window must be at least 1 frame, got {noise_window}")
        if fft_length < frame_length:
            raise ValueError(f"fft_length ({fft_length}) must be at least frame_length "
                             f"({frame_length})")
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length)
        self.mel_bins = int(mel_bins)
        self.lower_hz = float(lower_hz)
        self.upper_hz = float(upper_hz or sample_rate / 2)
        self.compression = compression
        self.pcen_time_constant = float(pcen_time_constant)
        self.noise_subtraction = float(noise_subtraction)
        self.noise_window = int(noise_window)
        bins = self.fft_length // 2 + 1
        self._window = np.asarray(tf.signal.hann_window(self.frame_length, periodic=True))
        self._mel = np.asarray(tf.signal.linear_to_mel_weight_matrix(
            self.mel_bins, bins, self.sample_rate, self.lower_hz, self.upper_hz))

    def frames(self, lengths):
        """int32 [batch]: frames of waveforms of `lengths` samples."""
        lengths = tf.cast(lengths, tf.int32)
        return tf.maximum((lengths + self.frame_step - 1) // self.frame_step, 1)

    def call(self, waveform, lengths=None):
        waveform = tf.cast(waveform, tf.float32)
        samples = tf.shape(waveform)[1]
        if lengths is None:
            lengths = tf.fill(tf.shape(waveform)[:1], samples)
        # Whatever a batch holds past a recording's end reads as silence.
        waveform *= tf.cast(tf.sequence_mask(lengths, samples), tf.float32)
        # At least one frame, even for an empty recording.
        waveform = tf.pad(waveform, [[0, 0], [0, tf.maximum(self.frame_length - samples, 0)]])
        # The frames of the whole waveform, even past the longest recording's
        # end (masked): a shape that follows the input's alone, as XLA
        # compiles it.
        framed = tf.signal.frame(waveform, self.frame_length, self.frame_step, pad_end=True)
        framed = framed[:, : self.frames(samples)]
        frames = self.frames(lengths)
        mask = tf.sequence_mask(frames, tf.shape(framed)[1])
        spectrum = tf.signal.rfft(framed * self._window, [self.fft_length])
        power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
        # PCEN reads mel magnitudes, the log mel power; noise subtraction
        # works on either.
        mel = (tf.sqrt(power) if self.compression == "pcen" else power) @ self._mel
        if self.noise_subtraction:
            mel = self._subtract_noise(mel, frames)
        if self.compression == "pcen":
            features = self._pcen(mel)
        else:
            features = tf.math.log(mel + 1e-6)
        weights = tf.cast(mask, tf.float32)[:, :, None]
        counted = tf.reduce_sum(weights, axis=1, keepdims=True)
        mean = tf.reduce_sum(features * weights, axis=1, keepdims=True) / counted
        variance = tf.reduce_sum(tf.square(features - mean) * weights, axis=1,
                                 keepdims=True) / counted
        features = (features - mean) * tf.math.rsqrt(variance + 1e-5) * weights
        return features, mask

    def noise_power(self, mel_power, frames):
        """float32 [batch, 1, bins]: each recording's noise power (or
        magnitude, whichever `mel_power` holds) a mel bin, the lowest mean
        of `noise_window` consecutive frames among its `frames` real ones.
        A recording shorter than the window reads its first window, padding
        included (less is subtracted)."""
        width = self.noise_window
        # Zero frames up to one window, so that every batch has one.
        mel_power = tf.pad(mel_power, [[0, 0], [0, tf.maximum(width - tf.shape(mel_power)[1], 0)],
                                       [0, 0]])
        starts = tf.shape(mel_power)[1] - width + 1
        # A sum of shifted slices, not a cumulative sum's differences, which
        # lose a quiet noise's power to float32 rounding after loud frames.
        means = tf.add_n([mel_power[:, k:k + starts] for k in range(width)]) / width
        ends = tf.range(starts)[None, :] + width
        inside = ends <= tf.maximum(frames, width)[:, None]
        return tf.reduce_min(tf.where(inside[:, :, None], means, tf.float32.max), axis=1,
                             keepdims=True)

    def _subtract_noise(self, mel_power, frames):
        noise = self.noise_power(mel_power, frames)
        return tf.maximum(mel_power - self.noise_subtraction * noise, 0.05 * noise)

    def _pcen(self, magnitude):
        """PCEN of mel magnitudes [batch, frames, bins], as `librosa.pcen`
        computes it (gain 0.98, bias 2, power 0.5, eps 1e-6) of the
        magnitudes of 16-bit samples, the smoother starting at the first
        frame's level."""
        # librosa's smoothing coefficient for a time constant in frames.
        t = self.pcen_time_constant * self.sample_rate / self.frame_step
        s = float((np.sqrt(1 + 4 * t ** 2) - 1) / (2 * t ** 2))
        taps = int(np.ceil(np.log(1e-4) / np.log(1 - s)))
        energy = magnitude * 2.0 ** 15
        # smooth[t] = sum_k s (1 - s)^k energy[t - k] + (1 - s)^(t + 1) energy[0]:
        # the recursion smooth[t] = (1 - s) smooth[t - 1] + s energy[t] from
        # smooth[-1] = energy[0], its terms past `taps` frames dropped. The
        # kernel is reversed: a convolution correlates.
        kernel = (s * (1 - s) ** np.arange(taps)[::-1]).astype("float32")
        kernel = np.tile(kernel[:, None, None, None], [1, 1, self.mel_bins, 1])
        # expand_dims, not [:, :, None]: TFLite has no strided slice that adds an axis.
        padded = tf.expand_dims(tf.pad(energy, [[0, 0], [taps - 1, 0], [0, 0]]), 2)
        smooth = tf.squeeze(tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID"), 2)
        steps = tf.cast(tf.range(tf.shape(energy)[1]) + 1, tf.float32)
        smooth += tf.pow(1 - s, steps)[None, :, None] * energy[:, :1, :]
        return tf.sqrt(energy / tf.pow(1e-6 + smooth, 0.98) + 2.0) - 2.0 ** 0.5

    def get_config(self):
        config = super().get_config()
        config.update(sample_rate=self.sample_rate, frame_length=self.frame_length,
                      frame_step=self.frame_step, fft_length=self.fft_length,
                      mel_bins=self.mel_bins, lower_hz=self.lower_hz, upper_hz=self.upper_hz,
                      compression=self.compression,
                      pcen_time_constant=self.pcen_time_constant,
                      noise_subtraction=self.noise_subtraction, noise_window=self.noise_window)
        return config


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class SpecAugment(keras.layers.Layer):
    """Masks random bands of features in training (Park et al. 2019, without
    time warping): `frequency_masks` bands of up to `frequency_width` mel
    bins and `time_masks` bands of up to `time_width` frames per utterance
    are set to 0 (the features' mean, after per-utterance normalization).
    Outside training it returns its input.

    Args:
        frequency_masks, frequency_width: frequency bands per utterance and
            their largest width, in bins.
        time_masks, time_width: time bands per utterance and their largest
            width, in frames.
        seed: seed of the masks' random generator.

    Call arguments:
        features: float [batch, frames, bins].
        training: whether to mask.
    """

    def __init__(self, frequency_masks=2, frequency_width=8, time_masks=2, time_width=20,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.frequency_masks = int(frequency_masks)
        self.frequency_width = int(frequency_width)
        self.time_masks = int(time_masks)
        self.time_width = int(time_width)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _bands(self, batch, size, count, width):
        """bool [batch, size]: True inside any of `count` random bands."""
        size_f = tf.cast(size, tf.float32)
        widths = keras.random.uniform((batch, count), 0, width + 1, seed=self.seed_generator)
        widths = tf.minimum(tf.floor(widths), size_f)
        starts = tf.floor(keras.random.uniform((batch, count), seed=self.seed_generator)
                          * (size_f - widths + 1))
        positions = tf.range(size_f)[None, None, :]
        inside = (positions >= starts[:, :, None]) & (positions < (starts + widths)[:, :, None])
        return tf.reduce_any(inside, axis=1)

    def call(self, features, training=False):
        if not training:
            return features
        shape = tf.shape(features)
        masked = (self._bands(shape[0], shape[2], self.frequency_masks,
                              self.frequency_width)[:, None, :]
                  | self._bands(shape[0], shape[1], self.time_masks,
                                self.time_width)[:, :, None])
        return tf.where(masked, tf.zeros_like(features), features)

    def get_config(self):
        config = super().get_config()
        config.update(frequency_masks=self.frequency_masks, frequency_width=self.frequency_width,
                      time_masks=self.time_masks, time_width=self.time_width, seed=self.seed)
        return config
