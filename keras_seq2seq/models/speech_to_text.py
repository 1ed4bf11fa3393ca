"""`SpeechToText`: Listen, Attend and Spell (Chan et al. 2016), small."""

import keras
from keras import ops
import tensorflow as tf

from keras_seq2seq.layers import (
    ConvolutionalSubsampling,
    LogMelSpectrogram,
    PyramidalEncoder,
    SpecAugment,
)
from keras_seq2seq.models.encoder_attention_decoder import EncoderAttentionDecoder
from keras_seq2seq.text import PAD_ID


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class SpeechToText(EncoderAttentionDecoder):
    """Writes what a recording says: log-mel features (in the model, so the
    export and TFLite take samples), optionally a `ConvolutionalSubsampling`,
    a `PyramidalEncoder`, and an attention decoder; location-sensitive
    attention (Chorowski et al. 2015) by default, the mechanism made for
    speech.

    Inputs are a dict: `waveform` float32 [batch, samples] in [-1, 1],
    zero-padded, and `lengths` int32 [batch], each one's real samples.
    Trained with `compile` + `fit`: `call({"waveform", "lengths",
    "decoder_input_ids"})` returns logits [B, T, vocabulary_size].

    Args:
        vocabulary_size: size of the output vocabulary (the tokenizer's).
        sample_rate, frame_length, frame_step, mel_bins, compression,
            noise_subtraction: the front-end's (see `LogMelSpectrogram`):
            `compression="pcen"` reads per-channel energy normalized
            features instead of log-mel; `noise_subtraction` > 0 takes the
            recording's steady noise out of the mel power first.
        convolutions: the channels of each strided convolution before the
            recurrent layers (see `ConvolutionalSubsampling`); each halves
            time and frequency. Empty: none, the pyramid reads the features.
        reductions: the encoder's time reductions, one per layer (see
            `PyramidalEncoder`), after the convolutions'.
        spec_augment: mask random frequency and time bands of the features
            in training (`SpecAugment`, its default sizes).
        ctc_weight: weight of a CTC loss on the encoder, added to the
            training loss (joint CTC-attention training, Kim et al. 2017):
            a softmax over the vocabulary at every memory position, with
            PAD as CTC's blank, must spell the target in order, which
            pushes the memory towards monotonic, token-aligned features.
            0: none. Training only: decoding, scoring and exports read the
            attention decoder alone, and the validation loss leaves it out
            (so it stays comparable with and without).
        attention: default `"location_sensitive"`.
        **kwargs: the decoder's (see `EncoderAttentionDecoder`).

    Example:

    >>> model = SpeechToText(vocabulary_size=20, units=32, reductions=(2, 2))
    >>> model.build()
    >>> logits = model({"waveform": keras.random.normal((2, 8000)),
    ...                 "lengths": ops.array([8000, 5000]),
    ...                 "decoder_input_ids": ops.ones((2, 5), "int32")})
    """

    def __init__(self, vocabulary_size, sample_rate=8000, frame_length=200, frame_step=80,
                 mel_bins=40, compression="log", noise_subtraction=0.0, convolutions=(),
                 reductions=(2, 2, 2), spec_augment=False, ctc_weight=0.0,
                 attention="location_sensitive", **kwargs):
        super().__init__(vocabulary_size, attention=attention, **kwargs)
        if ctc_weight < 0:
            raise ValueError(f"ctc_weight must be 0 (none) or more, got {ctc_weight}")
        self.spec_augment = bool(spec_augment)
        self.ctc_weight = float(ctc_weight)
        self.ctc_projection = (keras.layers.Dense(vocabulary_size, name="ctc_projection")
                               if self.ctc_weight else None)
        self.augment = SpecAugment(name="spec_augment") if self.spec_augment else None
        self.frontend = LogMelSpectrogram(sample_rate, frame_length, frame_step,
                                          mel_bins=mel_bins, compression=compression,
                                          noise_subtraction=noise_subtraction,
                                          name="frontend")
        self.subsampling = (ConvolutionalSubsampling(convolutions, name="subsampling")
                            if convolutions else None)
        self.encoder = PyramidalEncoder(self.units, reductions=reductions,
                                        cell_type=self.cell_type, dropout=self.dropout,
                                        name="encoder")

    @property
    def sample_rate(self):
        return self.frontend.sample_rate

    def build_encoder(self):
        features = self.frontend.mel_bins
        if self.subsampling is not None:
            self.subsampling.build((None, None, features))
            features = self.subsampling.output_features(features)
        self.encoder.build((None, None, features))
        if self.ctc_projection is not None:
            self.ctc_projection.build((None, None, self.units))

    def encoder_outputs(self, inputs, training=False, fused_lstm=False):
        """`{"waveform", "lengths"}` -> memory [batch, positions, units], states."""
        features, mask = self.frontend(inputs["waveform"], inputs["lengths"])
        if self.augment is not None:
            features = self.augment(features, training=training)
        if self.subsampling is not None:
            features, mask = self.subsampling(features, mask=mask)
        memory, states, _ = self.encoder(features, mask=mask, training=training,
                                         fused_lstm=fused_lstm)
        return memory, states

    def source_inputs(self, inputs):
        return {"waveform": inputs["waveform"], "lengths": inputs["lengths"]}

    def source_mask(self, inputs):
        """True [batch, positions] on memory positions that hold speech (the
        memory has the positions of the waveform's whole width)."""
        positions = self._memory_lengths(ops.shape(inputs["waveform"])[1])
        return ops.arange(positions)[None, :] < self._memory_lengths(inputs["lengths"])[:, None]

    def _memory_lengths(self, samples):
        """Memory positions of recordings of `samples` samples."""
        lengths = self.frontend.frames(samples)
        if self.subsampling is not None:
            lengths = self.subsampling.reduced_lengths(lengths)
        return self.encoder.reduced_lengths(lengths)

    def add_encoder_losses(self, inputs, memory, decoder_input_ids):
        """The CTC loss (`ctc_weight`), per target token, averaged over the batch."""
        if not self.ctc_weight:
            return
        labels = decoder_input_ids[:, 1:]  # the target, without BOS
        label_lengths = ops.sum(ops.cast(ops.not_equal(labels, PAD_ID), "int32"), axis=1)
        losses = ctc_loss_per_token(ops.cast(self.ctc_projection(memory), "float32"),
                                    self._memory_lengths(inputs["lengths"]), labels, label_lengths)
        self.add_loss(self.ctc_weight * ops.mean(losses))

    def get_config(self):
        config = super().get_config()
        frontend = self.frontend.get_config()
        convolutions = self.subsampling.filters if self.subsampling is not None else []
        config.update(**{key: frontend[key] for key in ("sample_rate", "frame_length",
                                                        "frame_step", "mel_bins",
                                                        "compression",
                                                        "noise_subtraction")},
                      convolutions=convolutions, reductions=self.encoder.reductions,
                      spec_augment=self.spec_augment, ctc_weight=self.ctc_weight)
        return config


def ctc_loss_per_token(logits, logit_lengths, labels, label_lengths):
    """CTC's negative log-likelihood of each row's labels, divided by their
    number, with PAD as the blank.

    Args:
        logits: float32 [batch, positions, vocabulary].
        logit_lengths: int [batch], the real positions of each row.
        labels: int [batch, length], PAD after each row's `label_lengths`.
        label_lengths: int [batch].

    Returns:
        float32 [batch]. A row with no labels, or too few positions to spell
        them (one a label, and a blank between repeated labels), counts 0:
        its likelihood is 0, and its infinite loss would poison the gradient.
    """
    logit_lengths = ops.cast(logit_lengths, "int32")
    label_lengths = ops.cast(label_lengths, "int32")
    repeats = ops.sum(ops.cast(ops.logical_and(ops.equal(labels[:, 1:], labels[:, :-1]),
                                               ops.not_equal(labels[:, 1:], PAD_ID)),
                               "int32"), axis=1)
    spellable = ops.logical_and(label_lengths > 0, label_lengths + repeats <= logit_lengths)
    # An empty label sequence is always spellable: the rows left out get one.
    losses = tf.nn.ctc_loss(labels, logits, ops.where(spellable, label_lengths, 0),
                            logit_lengths, logits_time_major=False, blank_index=PAD_ID)
    per_token = losses / ops.cast(ops.maximum(label_lengths, 1), "float32")
    return ops.where(spellable, per_token, ops.zeros_like(per_token))
