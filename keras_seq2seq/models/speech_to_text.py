"""`SpeechToText`: Listen, Attend and Spell (Chan et al. 2016), small."""

import keras
from keras import ops

from keras_seq2seq.layers import LogMelSpectrogram, PyramidalEncoder, SpecAugment
from keras_seq2seq.models.encoder_attention_decoder import EncoderAttentionDecoder


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class SpeechToText(EncoderAttentionDecoder):
    """Writes what a recording says: log-mel features (in the model, so the
    export and TFLite take samples), a `PyramidalEncoder`, and an attention
    decoder; location-sensitive attention (Chorowski et al. 2015) by default,
    the mechanism made for speech.

    Inputs are a dict: `waveform` float32 [batch, samples] in [-1, 1],
    zero-padded, and `lengths` int32 [batch], each one's real samples.
    Trained with `compile` + `fit`: `call({"waveform", "lengths",
    "decoder_input_ids"})` returns logits [B, T, vocabulary_size].

    Args:
        vocabulary_size: size of the output vocabulary (the tokenizer's).
        sample_rate, frame_length, frame_step, mel_bins: the front-end's
            (see `LogMelSpectrogram`).
        reductions: the encoder's time reductions, one per layer (see
            `PyramidalEncoder`).
        spec_augment: mask random frequency and time bands of the features
            in training (`SpecAugment`, its default sizes).
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
                 mel_bins=40, reductions=(2, 2, 2), spec_augment=False,
                 attention="location_sensitive", **kwargs):
        super().__init__(vocabulary_size, attention=attention, **kwargs)
        self.spec_augment = bool(spec_augment)
        self.augment = SpecAugment(name="spec_augment") if self.spec_augment else None
        self.frontend = LogMelSpectrogram(sample_rate, frame_length, frame_step,
                                          mel_bins=mel_bins, name="frontend")
        self.encoder = PyramidalEncoder(self.units, reductions=reductions,
                                        cell_type=self.cell_type, dropout=self.dropout,
                                        name="encoder")

    @property
    def sample_rate(self):
        return self.frontend.sample_rate

    def build_encoder(self):
        self.encoder.build((None, None, self.frontend.mel_bins))

    def encoder_outputs(self, inputs, training=False):
        """`{"waveform", "lengths"}` -> memory [batch, positions, units], states."""
        features, mask = self.frontend(inputs["waveform"], inputs["lengths"])
        if self.augment is not None:
            features = self.augment(features, training=training)
        memory, states, _ = self.encoder(features, mask=mask, training=training)
        return memory, states

    def source_inputs(self, inputs):
        return {"waveform": inputs["waveform"], "lengths": inputs["lengths"]}

    def source_mask(self, inputs):
        """True [batch, positions] on memory positions that hold speech."""
        lengths = self.encoder.reduced_lengths(self.frontend.frames(inputs["lengths"]))
        return ops.arange(ops.max(lengths, initial=0))[None, :] < lengths[:, None]

    def get_config(self):
        config = super().get_config()
        frontend = self.frontend.get_config()
        config.update(**{key: frontend[key] for key in ("sample_rate", "frame_length",
                                                        "frame_step", "mel_bins")},
                      reductions=self.encoder.reductions, spec_augment=self.spec_augment)
        return config
