"""Reading reviewers' files (CSV, JSONL, Parquet) as a stream of rows, and mapping columns to inputs.

Needs the `storage` extra (pyarrow). Row numbers count data rows from 1: the CSV
header and a JSONL file's blank lines are not rows of their own.

Text files are UTF-8 (a byte order mark is dropped). A CSV file whose first 64 KiB,
or a JSON lines file whose first object, is not UTF-8, and a file that is compressed,
an archive or UTF-16, are refused with a message saying so; a later row that is not
UTF-8, not valid CSV or JSON, or has too many or too few values is a row with an
error, and the rows after it are read on.

The parts: `common` (the error, a row, the text checks), `csv_file`, `jsonl_file` and
`parquet_file` (a reader per format), `json_values` (strict JSON), `mapping` (columns against
the pipeline's schemas). Import from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from onepipe.platform.jobs.datasets.common import DatasetError, Row, text_of
from onepipe.platform.jobs.datasets.csv_file import csv_header, csv_rows
from onepipe.platform.jobs.datasets.json_values import MAX_JSON_DEPTH, RepeatedKeyError, parse_json, too_deep
from onepipe.platform.jobs.datasets.jsonl_file import jsonl_header, jsonl_rows
from onepipe.platform.jobs.datasets.mapping import resolve_mapping, to_input, truth_problems
from onepipe.platform.jobs.datasets.parquet_file import check_parquet_types, parquet_header, parquet_rows
from onepipe.platform.jobs.types import FileFormat

__all__ = [
    "MAX_JSON_DEPTH",
    "DatasetError",
    "RepeatedKeyError",
    "Row",
    "check_parquet_types",
    "count_rows",
    "detect_format",
    "has_rows",
    "iter_rows",
    "parse_json",
    "read_header",
    "resolve_mapping",
    "to_input",
    "too_deep",
    "truth_problems",
]


def detect_format(file_name: str) -> FileFormat:
    """The format a file name's extension names."""
    lowered = file_name.lower()
    for suffix, found in (
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".parquet", "parquet"),
    ):
        if lowered.endswith(suffix):
            return found  # type: ignore[return-value]
    raise DatasetError(f"cannot tell the format of {file_name!r}: name it .csv, .jsonl or .parquet")


def read_header(file_format: FileFormat, handle: IO[bytes]) -> list[str]:
    """The file's column names, or a DatasetError saying why the file is unreadable."""
    if file_format == "csv":
        return csv_header(text_of(handle))
    if file_format == "jsonl":
        return jsonl_header(text_of(handle))
    return parquet_header(handle)


def iter_rows(file_format: FileFormat, handle: IO[bytes]) -> Iterator[Row]:
    """Every data row, streamed: memory stays flat whatever the file's size."""
    if file_format == "csv":
        yield from csv_rows(text_of(handle))
    elif file_format == "jsonl":
        yield from jsonl_rows(text_of(handle))
    else:
        yield from parquet_rows(handle)


def has_rows(file_format: FileFormat, handle: IO[bytes]) -> bool:
    """Whether the file has at least one data row (reads no further than the first)."""
    if file_format == "parquet":
        return count_rows(file_format, handle) > 0
    return next(iter_rows(file_format, handle), None) is not None


def count_rows(file_format: FileFormat, handle: IO[bytes]) -> int:
    """How many data rows the file has (Parquet: from its footer, without reading the data)."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(handle).metadata.num_rows)
    return sum(1 for _ in iter_rows(file_format, handle))
