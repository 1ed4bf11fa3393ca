"""Exports: SavedModels for TF Serving, and TFLite."""

from keras_seq2seq.export.pointer_solver import PointerSolver
from keras_seq2seq.export.saved_model import (
    export_saved_model,
    load_run,
    next_version_dir,
    verify_export,
)
from keras_seq2seq.export.tflite import convert_to_tflite
from keras_seq2seq.export.translator import Translator

__all__ = [
    "PointerSolver",
    "Translator",
    "convert_to_tflite",
    "export_saved_model",
    "load_run",
    "next_version_dir",
    "verify_export",
]
