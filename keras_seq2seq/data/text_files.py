"""Parallel text files: validation and streaming.

Files hold one sentence per line, UTF-8, plain or gzipped (`.gz`). They are
streamed, never read whole: validation reads line by line, and training reads
through `tf.data.TextLineDataset`.
"""

import gzip
import os

import tensorflow as tf

from keras_seq2seq.errors import UserError


class DataError(UserError):
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


BAD_LINE_POLICIES = ("fail", "skip")


def check_parallel_files(source_path, target_path, on_bad_line="fail", max_line_chars=1000):
    """Streams a pair of parallel files once and checks them.

    A pair is bad when either side is blank, is not valid UTF-8, or has more
    than `max_line_chars` characters.

    Args:
        on_bad_line: `"fail"` raises `DataError` at the first bad pair, naming
            the file, the line number and the problem; `"skip"` counts bad
            pairs (the tf.data pipeline drops the same ones).
        max_line_chars: the longest acceptable line, in characters.

    Raises:
        DataError: if a file is missing or empty, a gzip stream is corrupt,
            the two files have different line counts, or (with "fail") a
            pair is bad.

    Returns:
        A dict: `pairs` (line pairs read), `blank`, `undecodable`, `overlong`
        (bad pairs by first reason found), `usable`.
    """
    if on_bad_line not in BAD_LINE_POLICIES:
        raise ValueError(f"on_bad_line must be one of {BAD_LINE_POLICIES}, got {on_bad_line!r}")
    report = {"pairs": 0, "blank": 0, "undecodable": 0, "overlong": 0}
    with open_binary(source_path) as src, open_binary(target_path) as tgt:
        while True:
            try:
                s, t = src.readline(), tgt.readline()
            except (OSError, EOFError) as e:
                raise DataError(
                    f"{source_path} / {target_path}: unreadable after line {report['pairs']} ({e})"
                ) from None
            if not s and not t:
                break
            report["pairs"] += 1
            count = report["pairs"]
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
            problem = _line_problem(source_path, count, s, max_line_chars) or _line_problem(
                target_path, count, t, max_line_chars
            )
            if problem:
                reason, message = problem
                if on_bad_line == "fail":
                    raise DataError(message + " (on_bad_line='skip' skips such pairs)")
                report[reason] += 1
    if report["pairs"] == 0:
        raise DataError(f"{source_path} and {target_path} are empty")
    report["usable"] = report["pairs"] - report["blank"] - report["undecodable"] - report["overlong"]
    if report["usable"] == 0:
        raise DataError(f"{source_path} / {target_path}: no usable line pairs")
    return report


def _line_problem(path, number, raw, max_line_chars):
    """`(reason, message)` for a bad line, or None."""
    try:
        line = _decode_line(path, number, raw)
    except DataError as e:
        return "undecodable", str(e)
    if not line.strip():
        return "blank", f"{path}, line {number}: blank line"
    if len(line) > max_line_chars:
        return "overlong", f"{path}, line {number}: {len(line)} characters, more than {max_line_chars}"
    return None


def text_line_dataset(path):
    """A `tf.data` stream of the lines of `path` (gzip if it ends in `.gz`)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    compression = "GZIP" if str(path).endswith(".gz") else None
    return tf.data.TextLineDataset(str(path), compression_type=compression)
