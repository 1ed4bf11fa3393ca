"""Models, and a registry of them by name."""

from keras_seq2seq.models.pointer_generator import PointerGenerator
from keras_seq2seq.models.base import SequenceModel
from keras_seq2seq.models.ensemble import Ensemble
from keras_seq2seq.models.image_to_text import ImageToText
from keras_seq2seq.models.pointer_network import PointerNetwork
from keras_seq2seq.models.seq2seq import AttentionSeq2Seq, Seq2Seq
from keras_seq2seq.models.speech_to_text import SpeechToText

MODELS = {
    "seq2seq": Seq2Seq,
    "attention_seq2seq": AttentionSeq2Seq,
    "pointer_network": PointerNetwork,
    "pointer_generator": PointerGenerator,
    "image_to_text": ImageToText,
    "speech_to_text": SpeechToText,
}


def get_model_class(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


__all__ = ["AttentionSeq2Seq", "Ensemble", "ImageToText", "MODELS", "PointerGenerator", "PointerNetwork", "Seq2Seq",
           "SequenceModel", "SpeechToText", "get_model_class"]
