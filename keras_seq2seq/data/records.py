"""Record files (TSV columns, CSV columns, JSONL fields, conversations) ->
parallel line files.

The training pipeline streams pairs of line files (`data.pipeline`); a recipe
may instead name one file with two fields per record, or a file of
conversations (`format: turns`, one conversation a line, turns separated by
`separator`, as DailyDialog's `__eou__`), of which each turn after the first
is a target and up to `context_turns` turns before it, one a line, its
source. `write_parallel_files` streams such a file once and writes the pairs
as two plain files, checking every record on the way: a missing column or
field, a malformed row, or undecodable bytes raise `DataError` naming the
file and the row.

A field's own line breaks (a CSV cell may hold several lines, a dialogue
one turn a line) are written as `text.LINE_BREAK` (⏎), since one record is
one line of each output file; the tokenizers read "\n" in an export's input
as the same token.
"""

import csv
import io
import json
import os

from keras_seq2seq.data.atomic import atomic_path
from keras_seq2seq.data.text_files import DataError, open_binary
from keras_seq2seq.text.line_breaks import mark_line_breaks

FORMATS = ("tsv", "csv", "jsonl")
DIALOGUE_FORMAT = "turns"


def _text_lines(path):
    """The file's lines as str (newline kept), decoding errors naming the line."""
    with open_binary(path) as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}, line {number}: not valid UTF-8 ({e.reason} at "
                                f"byte {e.start})") from None


def iter_records(path, format, source, target, skipped=None):
    """Yields `(row number, source text, target text)` of a record file.

    Args:
        path: the file (`.gz` is gunzipped).
        format: `"tsv"`, `"csv"` or `"jsonl"`.
        source, target: the fields: column numbers (0-based) or header names
            for TSV and CSV (a name makes the first row the header), keys for
            JSONL.
        skipped: None to raise `DataError` at the first bad record (a row
            without the columns, a line that is no JSON object or lacks a
            field); or a list that each skipped record's error message is
            appended to. A file the CSV reader cannot follow (a quote never
            closed) and a missing header column always raise.
    """
    if format not in FORMATS:
        raise DataError(f"{path}: unknown record format {format!r} (one of {', '.join(FORMATS)})")
    records = (_jsonl_records(path, source, target) if format == "jsonl" else
               _delimited_records(path, "\t" if format == "tsv" else ",", source, target))
    for record in records:
        if isinstance(record, DataError):
            if skipped is None:
                raise record
            skipped.append(str(record))
        else:
            yield record


# The readers yield a bad record's DataError in its place, for iter_records
# to raise or count.

def _jsonl_records(path, source, target):
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            yield DataError(f"{path}, line {number}: not a JSON object ({e})")
            continue
        if not isinstance(record, dict):
            yield DataError(f"{path}, line {number}: not a JSON object")
            continue
        missing = [key for key in (source, target) if str(key) not in record]
        if missing:
            yield DataError(f"{path}, line {number}: no field {missing[0]!r} "
                            f"(fields: {', '.join(map(str, record))})")
            continue
        yield number, str(record[str(source)]), str(record[str(target)])


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
                yield DataError(f"{path}, row {row_number} (ending on line {reader.line_num}): "
                                f"{len(row)} column(s), but the recipe reads column "
                                f"{max(columns)} (0-based)")
                continue
            yield row_number, row[columns[0]], row[columns[1]]
    except csv.Error as e:
        raise DataError(f"{path}, row {row_number + 1} (from line {reader.line_num}): "
                        f"malformed ({e})") from None


def iter_dialogue_pairs(path, separator="__eou__", context_turns=3):
    """Yields `(line number, context, response)` of a file of conversations,
    one a line, turns separated by `separator`: every turn after the first
    is a response, the up to `context_turns` turns before it its context,
    one turn a line. Blank turns are dropped."""
    if context_turns < 1:
        raise DataError(f"{path}: context_turns must be at least 1, got {context_turns}")
    for number, line in _text_lines(path):
        turns = [t.strip() for t in line.split(separator)]
        turns = [t for t in turns if t]
        for i in range(1, len(turns)):
            yield number, "\n".join(turns[max(0, i - context_turns): i]), turns[i]


def split_records(spec, skipped=None):
    """The `(row, source, target)` records of a recipe's file split: `spec`
    is `{file, format, source, target}`, or `{file, format: turns,
    separator, context_turns}`. `skipped`: as in `iter_records`."""
    if spec["format"] == DIALOGUE_FORMAT:
        return iter_dialogue_pairs(spec["file"], spec["separator"], spec["context_turns"])
    return iter_records(spec["file"], spec["format"], spec["source"], spec["target"], skipped)


def write_parallel_files(spec, folder, stem, skipped=None):
    """Writes the records of a file split (`split_records(spec)`) as
    `folder/stem.source` and `folder/stem.target`, one record a line;
    returns the two paths.

    The files are written under temporary names and renamed when complete,
    so an interrupted run never leaves half a file behind; existing ones
    (a resumed run) are kept.
    """
    paths = tuple(os.path.join(folder, f"{stem}.{side}") for side in ("source", "target"))
    if all(os.path.exists(p) for p in paths):
        return paths
    os.makedirs(folder, exist_ok=True)
    count = 0
    with atomic_path(paths[0]) as source_part, atomic_path(paths[1]) as target_part:
        with io.open(source_part, "w", encoding="utf-8") as src, \
                io.open(target_part, "w", encoding="utf-8") as tgt:
            for _, source_text, target_text in split_records(spec, skipped):
                src.write(mark_line_breaks(source_text.strip()) + "\n")
                tgt.write(mark_line_breaks(target_text.strip()) + "\n")
                count += 1
        if count == 0:
            raise DataError(f"{spec['file']}: no records")
    return paths
