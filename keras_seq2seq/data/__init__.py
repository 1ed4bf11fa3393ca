"""Data: parallel text pipelines and generated tasks."""

from keras_seq2seq.data.dates import generate_date_pairs, write_dates_dataset
from keras_seq2seq.data.pipeline import parallel_text_dataset
from keras_seq2seq.data.text_files import (
    DataError,
    check_parallel_files,
    iter_lines,
    text_line_dataset,
)

__all__ = [
    "DataError",
    "check_parallel_files",
    "generate_date_pairs",
    "iter_lines",
    "parallel_text_dataset",
    "text_line_dataset",
    "write_dates_dataset",
]
