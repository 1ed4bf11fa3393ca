"""Layers: encoders, attention mechanisms, decoders."""

from keras_seq2seq.layers.attention import (
    ATTENTION_MECHANISMS,
    AttentionMechanism,
    BahdanauAttention,
    CoverageAttention,
    LocationSensitiveAttention,
    LuongAttention,
    get_attention,
)
from keras_seq2seq.layers.audio_frontend import LogMelSpectrogram, SpecAugment
from keras_seq2seq.layers.convolutional_subsampling import ConvolutionalSubsampling
from keras_seq2seq.layers.decoder import AttentionDecoder
from keras_seq2seq.layers.encoder import RNNEncoder
from keras_seq2seq.layers.image_encoder import ConvolutionalEncoder
from keras_seq2seq.layers.pyramidal_encoder import PyramidalEncoder

__all__ = [
    "ATTENTION_MECHANISMS",
    "AttentionDecoder",
    "AttentionMechanism",
    "BahdanauAttention",
    "ConvolutionalEncoder",
    "ConvolutionalSubsampling",
    "CoverageAttention",
    "LocationSensitiveAttention",
    "LogMelSpectrogram",
    "LuongAttention",
    "PyramidalEncoder",
    "SpecAugment",
    "RNNEncoder",
    "get_attention",
]
