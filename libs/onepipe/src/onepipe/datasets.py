"""Reading reviewers' files (CSV, JSONL, Parquet) as a stream of rows, and mapping columns to inputs.

Needs the `storage` extra (pyarrow). Row numbers count data rows from 1: the CSV
header and a JSONL file's lines are not rows of their own.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from onepipe.jobs import FileFormat

EXTRA_VALUES = "__extra_values__"
PARQUET_BATCH_ROWS = 1000


class DatasetError(ValueError):
    """The file cannot be read as the format it claims; the message says why, for people."""


@dataclass(frozen=True)
class Row:
    """One data row: its number, its columns (or None), and why it could not be read (or None)."""

    number: int
    values: dict[str, Any] | None
    error: str | None = None


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


def _text(handle: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(handle, encoding="utf-8-sig", newline="", errors="strict")


def _decode_error(error: UnicodeDecodeError) -> DatasetError:
    return DatasetError(
        f"the file is not UTF-8 text (byte 0x{error.object[error.start]:02x} at position {error.start}); "
        "save it as UTF-8"
    )


def read_header(file_format: FileFormat, handle: IO[bytes]) -> list[str]:
    """The file's column names, or a DatasetError saying why the file is unreadable."""
    try:
        if file_format == "csv":
            return _csv_header(_text(handle))
        if file_format == "jsonl":
            return _jsonl_header(_text(handle))
        return _parquet_header(handle)
    except UnicodeDecodeError as error:
        raise _decode_error(error) from None


def _csv_header(text: io.TextIOWrapper) -> list[str]:
    sample = text.read(64 * 1024)
    if not sample.strip():
        raise DatasetError("the file is empty")
    if "\x00" in sample:
        raise DatasetError("the file is not CSV text (it contains NUL bytes)")
    try:
        header = next(csv.reader(io.StringIO(sample)))
    except csv.Error as error:
        raise DatasetError(f"the file is not valid CSV: {error}") from None
    names = [name.strip() for name in header]
    if any(not name for name in names):
        raise DatasetError("the CSV header has an empty column name; every column needs a name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DatasetError(f"the CSV header repeats the column(s) {', '.join(duplicates)}")
    return names


def _jsonl_header(text: io.TextIOWrapper) -> list[str]:
    for line in text:
        if not line.strip():
            continue
        try:
            first = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(
                f"the file is not JSON lines: line 1 is not valid JSON ({error.msg})"
            ) from None
        if not isinstance(first, dict):
            raise DatasetError("the file is not JSON lines of objects: line 1 is not a JSON object")
        return list(first)
    raise DatasetError("the file is empty")


def _parquet_header(handle: IO[bytes]) -> list[str]:
    import pyarrow.parquet as pq

    try:
        names = list(pq.ParquetFile(handle).schema_arrow.names)
    except Exception as error:
        raise DatasetError(f"the file is not a valid Parquet file ({error})") from None
    if not names:
        raise DatasetError("the Parquet file has no columns")
    return names


def iter_rows(file_format: FileFormat, handle: IO[bytes]) -> Iterator[Row]:
    """Every data row, streamed: memory stays flat whatever the file's size."""
    if file_format == "csv":
        yield from _csv_rows(_text(handle))
    elif file_format == "jsonl":
        yield from _jsonl_rows(_text(handle))
    else:
        yield from _parquet_rows(handle)


def _csv_rows(text: io.TextIOWrapper) -> Iterator[Row]:
    reader = csv.DictReader(text, restkey=EXTRA_VALUES)
    if reader.fieldnames is not None:
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
    number = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as error:
            yield Row(number + 1, None, str(_decode_error(error)))
            return
        except csv.Error as error:
            number += 1
            yield Row(number, None, f"not valid CSV: {error}")
            continue
        number += 1
        extra = record.pop(EXTRA_VALUES, None)
        if extra:
            yield Row(number, record, f"the row has {len(extra)} more value(s) than the header has columns")
        elif any(value is None for value in record.values()):
            missing = [k for k, v in record.items() if v is None]
            yield Row(number, record, f"the row has no value for column(s) {', '.join(missing)}")
        else:
            yield Row(number, record)


def _jsonl_rows(text: io.TextIOWrapper) -> Iterator[Row]:
    number = 0
    for line in text:
        if not line.strip():
            continue
        number += 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield Row(number, None, f"not valid JSON: {error.msg}")
            continue
        if isinstance(value, dict):
            yield Row(number, value)
        else:
            yield Row(number, None, f"not a JSON object but {type(value).__name__}")


def _parquet_rows(handle: IO[bytes]) -> Iterator[Row]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(handle).iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for record in batch.to_pylist():
            number += 1
            yield Row(number, record)


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


def resolve_mapping(
    input_schema: Mapping[str, Any], header: list[str], mapping: Mapping[str, str]
) -> dict[str, str]:
    """Input field -> column for every field the file can fill; a DatasetError names what is missing.

    A field maps to the column of the same name unless `mapping` says otherwise.
    """
    fields = dict(input_schema.get("properties", {}))
    unknown = [field for field in mapping if field not in fields]
    if unknown:
        raise DatasetError(
            f"the mapping names unknown input field(s) {', '.join(unknown)}; "
            f"input fields: {', '.join(fields)}"
        )
    resolved: dict[str, str] = {}
    missing = []
    for field in fields:
        column = mapping.get(field, field)
        if column in header:
            resolved[field] = column
        elif field in input_schema.get("required", []):
            missing.append(f"{field} (column {column!r})" if column != field else field)
    if missing:
        raise DatasetError(
            f"the file has no column for the required input field(s) {', '.join(missing)}; "
            f"its columns: {', '.join(header)}"
        )
    return resolved


def to_input(
    values: Mapping[str, Any], mapping: Mapping[str, str], input_schema: Mapping[str, Any]
) -> dict[str, Any]:
    """A row as the pipeline's input: mapped columns, and JSON text parsed for non-text fields (CSV cells)."""
    fields = input_schema.get("properties", {})
    built = {}
    for field, column in mapping.items():
        if column not in values:
            continue  # the pipeline's validation says the field is required
        value = values[column]
        if isinstance(value, str) and fields.get(field, {}).get("type") not in (None, "string"):
            # when it is not JSON, the pipeline's validation names the field and the problem
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        built[field] = value
    return built
