"""Exports: SavedModels for TF Serving."""

from keras_seq2seq.export.saved_model import export_saved_model, next_version_dir
from keras_seq2seq.export.translator import Translator

__all__ = ["Translator", "export_saved_model", "next_version_dir"]
