"""Parallel text files: validation and streaming.

Files hold one sentence per line, UTF-8, plain or gzipped (`.gz`). They are
streamed, never read whole: validation reads line by line, and training reads
through `tf.data.TextLineDataset`.
"""

import gzip
import os

import tensorflow as tf


class DataError(ValueError):
    """A data file is missing, empty, undecodable or does not match its pair."""


def open_binary(path):
    """Opens a text file for reading bytes, gunzipping `.gz` files."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def iter_lines(path):
    """Yields the lines of a UTF-8 text file as `str`, without the newline."""
    with open_binary(path) as f:
        for number, raw in enumerate(f, start=1):
            yield _decode_line(path, number, raw)


def _decode_line(path, number, raw):
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}, line {number}: not valid UTF-8 ({e.reason} at byte {e.start})"
        ) from None
    except (OSError, EOFError) as e:  # pragma: no cover - corrupt gzip stream
        raise DataError(f"{path}, line {number}: unreadable ({e})") from None


def check_parallel_files(source_path, target_path):
    """Streams a pair of parallel files once and checks that they match.

    Raises:
        DataError: naming the file and the problem, if a file is missing or
            empty, a line is not valid UTF-8 (with its line number), a gzip
            stream is corrupt, or the two files have different line counts.

    Returns:
        The number of line pairs.
    """
    count = 0
    with open_binary(source_path) as src, open_binary(target_path) as tgt:
        while True:
            try:
                s, t = src.readline(), tgt.readline()
            except (OSError, EOFError) as e:
                raise DataError(
                    f"{source_path} / {target_path}: unreadable after line {count} ({e})"
                ) from None
            if not s and not t:
                break
            count += 1
            if not s or not t:
                shorter, longer = (
                    (source_path, target_path) if not s else (target_path, source_path)
                )
                if count == 1:
                    raise DataError(f"{shorter} is empty but {longer} is not")
                raise DataError(
                    f"{shorter} has {count - 1} lines but {longer} has more: "
                    "parallel files must have the same number of lines"
                )
            _decode_line(source_path, count, s)
            _decode_line(target_path, count, t)
    if count == 0:
        raise DataError(f"{source_path} and {target_path} are empty")
    return count


def text_line_dataset(path):
    """A `tf.data` stream of the lines of `path` (gzip if it ends in `.gz`)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    compression = "GZIP" if str(path).endswith(".gz") else None
    return tf.data.TextLineDataset(str(path), compression_type=compression)
