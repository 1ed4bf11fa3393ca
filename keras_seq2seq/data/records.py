"""Record files (TSV columns, CSV columns, JSONL fields) -> parallel line files.

The training pipeline streams pairs of line files (`data.pipeline`); a recipe
may instead name one file with two fields per record. `write_parallel_files`
streams such a file once and writes its two fields as a pair of plain files,
checking every record on the way: a missing column or field, a malformed
row, or undecodable bytes raise `DataError` naming the file and the row.

A field's own line breaks (a CSV cell may hold several lines) become spaces,
since one record is one line of each output file.
"""

import csv
import io
import json
import os

from keras_seq2seq.data.text_files import DataError, open_binary

FORMATS = ("tsv", "csv", "jsonl")


def _text_lines(path):
    """The file's lines as str (newline kept), decoding errors naming the line."""
    with open_binary(path) as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}, line {number}: not valid UTF-8 ({e.reason} at "
                                f"byte {e.start})") from None


def iter_records(path, format, source, target):
    """Yields `(row number, source text, target text)` of a record file.

    Args:
        path: the file (`.gz` is gunzipped).
        format: `"tsv"`, `"csv"` or `"jsonl"`.
        source, target: the fields: column numbers (0-based) or header names
            for TSV and CSV (a name makes the first row the header), keys for
            JSONL.
    """
    if format not in FORMATS:
        raise DataError(f"{path}: unknown record format {format!r} (one of {', '.join(FORMATS)})")
    if format == "jsonl":
        yield from _jsonl_records(path, source, target)
    else:
        yield from _delimited_records(path, "\t" if format == "tsv" else ",", source, target)


def _jsonl_records(path, source, target):
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise DataError(f"{path}, line {number}: not a JSON object ({e})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: not a JSON object")
        fields = []
        for key in (source, target):
            if str(key) not in record:
                raise DataError(f"{path}, line {number}: no field {key!r} "
                                f"(fields: {', '.join(map(str, record))})")
            fields.append(str(record[str(key)]))
        yield number, fields[0], fields[1]


def _delimited_records(path, delimiter, source, target):
    named = isinstance(source, str) or isinstance(target, str)
    lines = _text_lines(path)
    # csv needs the text with its newlines, to read quoted multi-line cells.
    reader = csv.reader((line for _, line in lines), delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
                        strict=True)
    columns = (source, target)
    row_number = 0
    try:
        if named:
            header = next(reader, None)
            row_number = 1
            if header is None:
                raise DataError(f"{path}: empty (no header row with {source!r}, {target!r})")
            missing = [c for c in columns if isinstance(c, str) and c not in header]
            if missing:
                raise DataError(f"{path}, row 1 (header): no column {missing[0]!r} "
                                f"(columns: {', '.join(header)})")
            columns = tuple(header.index(c) if isinstance(c, str) else c for c in columns)
        for row in reader:
            row_number += 1
            if not row:
                continue
            if max(columns) >= len(row):
                raise DataError(f"{path}, row {row_number}: {len(row)} column(s), but the "
                                f"recipe reads column {max(columns)} (0-based)")
            yield row_number, row[columns[0]], row[columns[1]]
    except csv.Error as e:
        raise DataError(f"{path}, row {row_number + 1}: malformed ({e})") from None


def write_parallel_files(path, format, source, target, folder, stem):
    """Writes a record file's two fields as `folder/stem.source` and
    `folder/stem.target`, one record a line; returns the two paths.

    The files are written under temporary names and renamed when complete,
    so an interrupted run never leaves half a file behind; existing ones
    (a resumed run) are kept.
    """
    paths = tuple(os.path.join(folder, f"{stem}.{side}") for side in ("source", "target"))
    if all(os.path.exists(p) for p in paths):
        return paths
    os.makedirs(folder, exist_ok=True)
    count = 0
    with io.open(paths[0] + ".part", "w", encoding="utf-8") as src, \
            io.open(paths[1] + ".part", "w", encoding="utf-8") as tgt:
        for _, source_text, target_text in iter_records(path, format, source, target):
            src.write(" ".join(source_text.split("\n")).replace("\r", " ") + "\n")
            tgt.write(" ".join(target_text.split("\n")).replace("\r", " ") + "\n")
            count += 1
    if count == 0:
        raise DataError(f"{path}: no records")
    for p in paths:
        os.replace(p + ".part", p)
    return paths
