"""The machine reports: CSV, JSONL and Parquet written side by side, a batch of rows at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from batch_worker.reports.columns import input_key
from onepipe.values import json_text

BATCH_ROWS: Final = 1000
# Characters str.splitlines() (and some editors) take for line ends: escaped in the JSONL,
# so a record is always one line, however its reader splits lines.
LINE_BREAKS: Final = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
ARROW_TYPES: Final[Mapping[str, pa.DataType]] = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "json": pa.string(),
}


def arrow_schema(
    columns: list[tuple[str, str]],
    input_columns: list[str],
    comparing: bool,
    scores: list[pa.Field] | None = None,
) -> pa.Schema:
    """The Parquet schema of the flat records: inputs as text, outputs typed by their kind, then the
    truth and scores of the scored fields."""
    fields = [pa.field("row", pa.int64(), nullable=False)]
    fields += [pa.field(input_key(column), pa.string()) for column in input_columns]
    prefixes = ("output", "compare") if comparing else ("output",)
    fields += [pa.field(f"{p}.{name}", ARROW_TYPES[kind]) for p in prefixes for name, kind in columns]
    fields += scores or []
    fields.append(pa.field("error", pa.string()))
    return pa.schema(fields)


# A cell starting with one of these runs as a formula when the CSV is opened in a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # shown as text (OWASP's advice); JSONL and Parquet keep the original
    return value


def _jsonl_line(record: Mapping[str, Any]) -> str:
    """One JSON object on one line: non-ASCII kept, but every character a reader may split on escaped."""
    return json.dumps(record, ensure_ascii=False).translate(LINE_BREAKS) + "\n"


def _as_text(value: Any) -> str | None:
    """An input value as Parquet stores it: strings as they are, anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json_text(value)


# -- writing ---------------------------------------------------------------------------


class MachineWriters:
    """CSV, JSONL and Parquet written side by side, a batch of rows at a time."""

    def __init__(self, handles: Mapping[str, IO[bytes]], schema: pa.Schema, input_keys: set[str]) -> None:
        self.handles = handles
        self.names: list[str] = schema.names
        self.schema = schema
        self.input_keys = input_keys
        self.parquet = pq.ParquetWriter(handles["parquet"], schema)
        self.batch: list[dict[str, Any]] = []
        header = io.StringIO()
        csv.writer(header).writerow(self.names)
        handles["csv"].write(header.getvalue().encode())

    def add(self, record: dict[str, Any]) -> None:
        self.batch.append(record)
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        text = io.StringIO()
        # RFC 4180 line ends: a cell holding \r or \n is then quoted, so it cannot split a record
        writer = csv.writer(text)
        for record in self.batch:
            writer.writerow([_csv_cell(record[name]) for name in self.names])
        self.handles["csv"].write(text.getvalue().encode())
        lines = "".join(_jsonl_line(record) for record in self.batch)
        self.handles["jsonl"].write(lines.encode())
        data = {
            name: [_as_text(r[name]) if name in self.input_keys else r[name] for r in self.batch]
            for name in self.names
        }
        self.parquet.write_table(pa.Table.from_pydict(data, schema=self.schema))
        self.batch = []

    def close(self) -> None:
        self.flush()
        self.parquet.close()
