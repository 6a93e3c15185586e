"""CSV files: the header, then the rows, each with the problem that kept it from being read."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from onepipe.platform.jobs.datasets.common import (
    SAMPLE_CHARS,
    UNDECODABLE,
    DatasetError,
    Row,
    byte_name,
    column_names,
    not_text,
    not_utf8,
)

MAX_HEADER_CHARS = 1024 * 1024  # the longest CSV header line


def csv_header(text: io.TextIOWrapper) -> list[str]:
    """The CSV header's column names, or a DatasetError saying why the file is not CSV text."""
    sample = text.read(SAMPLE_CHARS)
    if len(sample) == SAMPLE_CHARS and not any(end in sample for end in "\r\n"):
        sample += text.readline(MAX_HEADER_CHARS - len(sample))  # a wide header: read it to its end
        if len(sample) >= MAX_HEADER_CHARS and not sample.endswith(("\r", "\n")):
            raise DatasetError(f"the CSV header is longer than the limit of {MAX_HEADER_CHARS} characters")
    not_text(sample)
    if not sample.strip():
        raise DatasetError("the file is empty")
    not_utf8(sample)
    if "\x00" in sample:
        raise DatasetError("the file is not CSV text (it contains NUL bytes)")
    try:
        header = next(csv.reader(io.StringIO(sample, newline=""), strict=True))
    except csv.Error as error:
        raise DatasetError(f"the file is not valid CSV: {error}") from None
    return column_names([name.strip() for name in header], "CSV header")


def csv_rows(text: io.TextIOWrapper) -> Iterator[Row]:
    """Every data row after the header; a blank line is no row."""
    # strict: a quote that is never closed is an error, not the rest of the file read as one value
    reader = csv.reader(text, strict=True)
    header = [name.strip() for name in next(reader, [])]
    number = 0
    while True:
        first_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            number += 1
            yield Row(number, None, _csv_problem(error, first_line, reader.line_num))
            continue
        if not cells:
            continue  # a blank line
        number += 1
        yield _csv_row(number, header, cells)


def _csv_problem(error: csv.Error, first_line: int, last_line: int) -> str:
    message = str(error)
    if message == "unexpected end of data":
        return (
            f"not valid CSV: the quoted value opened on line {first_line} is never closed, "
            f"so lines {first_line} to {last_line} (the end of the file) were read as this one row"
        )
    if message.startswith("field larger than field limit"):
        limit = csv.field_size_limit()
        return f"not valid CSV (line {last_line}): a value is longer than the limit of {limit} characters"
    return f"not valid CSV (line {last_line}): {message}"


def _csv_row(number: int, header: list[str], cells: list[str]) -> Row:
    problems = []
    for column, cell in zip(header, cells, strict=False):
        found = UNDECODABLE.search(cell)
        if found is not None:
            problems.append(
                f"the row is not UTF-8 text (the byte {byte_name(found.group())} in column {column}); "
                "save the file as UTF-8"
            )
            break
    if problems:  # the cells as text, the undecodable bytes replaced, so the report can show them
        cells = [cell.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for cell in cells]
    values: dict[str, Any] = dict(zip(header, cells, strict=False))
    if len(cells) > len(header):
        problems.append(f"the row has {len(cells)} values but the header has {len(header)} columns")
    elif len(cells) < len(header):
        missing = header[len(cells) :]
        values.update(dict.fromkeys(missing))
        problems.append(
            f"the row has {len(cells)} value(s) but the header has {len(header)} columns "
            f"(no value for {', '.join(missing)})"
        )
    return Row(number, values, "; ".join(problems) or None)
