"""Exports: SavedModels for TF Serving, and TFLite, of any `Exportable`."""

from keras_seq2seq.export.exportable import Exportable
from keras_seq2seq.export.image_reader import ImageReader
from keras_seq2seq.export.pointer_solver import PointerSolver
from keras_seq2seq.export.run_folder import RunFolder, load_run
from keras_seq2seq.export.speech_reader import SpeechReader
from keras_seq2seq.export.saved_model import (
    export_saved_model,
    next_version_dir,
    verify_export,
)
from keras_seq2seq.export.tflite import convert_to_tflite
from keras_seq2seq.export.translator import Translator

__all__ = [
    "Exportable",
    "ImageReader",
    "PointerSolver",
    "RunFolder",
    "SpeechReader",
    "Translator",
    "convert_to_tflite",
    "export_saved_model",
    "load_run",
    "next_version_dir",
    "verify_export",
]
