"""The machine reports: CSV, JSONL and Parquet written side by side, a batch of rows at a time.

Nested output fields (lists and objects) are JSON text in the CSV and the JSONL. The Parquet
report types them from the output JSON Schema so they read back as the values the pipeline
gave: a list is an Arrow list, an object with fixed `properties` a struct, a free-form object
whose values share one type (`additionalProperties: {schema}`) a map<string, type>. A field
Arrow cannot hold faithfully (values of several shapes, an untyped list or object, a tuple, a
recursive model) stays JSON text there too: the whole field, never a part of it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from onepipe.platform.jobs.types import input_key
from onepipe.platform.jsonlines import LINE_BREAKS as LINE_BREAKS  # where it lived before the shared library
from onepipe.platform.jsonlines import json_line
from onepipe.platform.schema.outputs import JSON, Outputs, alternative_kind
from onepipe.platform.schema.schemas import schema_alternatives
from onepipe.platform.schema.values import json_text

BATCH_ROWS: Final = 1000
ARROW_TYPES: Final[Mapping[str, pa.DataType]] = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    JSON: pa.string(),
}
NESTING: Final = 16  # lists and objects nested deeper than this stay JSON text


def _alternative_type(
    schema: Mapping[str, Any], root: Mapping[str, Any], path: tuple[int, ...]
) -> pa.DataType | None:
    kind = alternative_kind(schema)
    if kind != JSON:
        return ARROW_TYPES[kind]
    if id(schema) in path or len(path) >= NESTING:
        return None  # a model that holds itself: no Arrow type is deep enough
    path = (*path, id(schema))
    declared = schema.get("type")
    if declared == "array" and isinstance(schema.get("items"), Mapping) and "prefixItems" not in schema:
        items = nested_arrow_type(schema["items"], root, path)
        return None if items is None else pa.list_(items)
    if declared != "object" or "patternProperties" in schema:
        return None
    properties, extra = schema.get("properties"), schema.get("additionalProperties")
    if isinstance(properties, Mapping) and properties and extra in (None, False):
        # JSON Schema allows keys beyond the properties unless told otherwise, but pydantic drops them
        # (and says additionalProperties: true when it keeps them), so a struct loses nothing
        fields = [(str(name), nested_arrow_type(prop, root, path)) for name, prop in properties.items()]
        if any(not name or item is None for name, item in fields):
            return None
        return pa.struct([pa.field(name, item) for name, item in fields])
    if not properties and isinstance(extra, Mapping) and extra:
        values = nested_arrow_type(extra, root, path)
        return None if values is None else pa.map_(pa.string(), values)
    return None


def nested_arrow_type(
    schema: Mapping[str, Any], root: Mapping[str, Any], path: tuple[int, ...] = ()
) -> pa.DataType | None:
    """The Arrow type that holds every value of this schema as it is, or None when none does.

    Through `$ref`s, `anyOf` / `oneOf` and type lists; null is every Arrow type's missing value, so
    an optional is its other alternative. Integers and numbers together are float64. `path`: the
    lists and objects being typed around this one (their schemas' ids), to stop at a recursive model.
    """
    found = {_alternative_type(option, root, path) for option in schema_alternatives(schema, root)}
    if found == {pa.int64(), pa.float64()}:
        return pa.float64()
    return found.pop() if len(found) == 1 else None


def arrow_schema(
    outputs: Outputs, input_columns: list[str], comparing: bool, scores: list[pa.Field] | None = None
) -> pa.Schema:
    """The Parquet schema of the flat records: inputs as text, outputs typed by their kind (nested ones
    from their schema, else as JSON text), then the truth and scores of the scored fields."""
    columns = outputs.columns()
    types = {
        name: (
            nested_arrow_type(described.schema, outputs.schema) or pa.string()
            if described.kind == JSON
            else ARROW_TYPES[described.kind]
        )
        for name, described in outputs.fields.items()
    }
    fields = [pa.field("row", pa.int64(), nullable=False)]
    fields += [pa.field(input_key(column), pa.string()) for column in input_columns]
    prefixes = ("output", "compare") if comparing else ("output",)
    fields += [pa.field(f"{p}.{name}", types[name]) for p in prefixes for name, _ in columns]
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
    return json_line(record)


def _as_text(value: Any) -> str | None:
    """An input value as Parquet stores it: strings as they are, anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json_text(value)


# -- writing ---------------------------------------------------------------------------


class MachineWriters:
    """CSV, JSONL and Parquet written side by side, a batch of rows at a time.

    Records come with nested output values as they are (`nested_keys`): JSON text for the CSV and
    the JSONL, and for the Parquet columns typed as text; as they are for the typed ones.
    """

    def __init__(
        self,
        handles: Mapping[str, IO[bytes]],
        schema: pa.Schema,
        input_keys: set[str],
        nested_keys: list[str] | None = None,
    ) -> None:
        self.handles = handles
        self.names: list[str] = schema.names
        self.schema = schema
        self.input_keys = input_keys
        self.nested_keys = nested_keys or []
        self.typed_keys = {key for key in self.nested_keys if schema.field(key).type != pa.string()}
        self.parquet = pq.ParquetWriter(handles["parquet"], schema)
        self.batch: list[dict[str, Any]] = []
        header = io.StringIO()
        csv.writer(header).writerow([_csv_cell(name) for name in self.names])  # a column named "=..." too
        handles["csv"].write(header.getvalue().encode())

    def add(self, record: dict[str, Any]) -> None:
        self.batch.append(record)
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def _as_json(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with its nested values as JSON text (encoded once, for CSV, JSONL and Parquet)."""
        texts = {key: json_text(record[key]) for key in self.nested_keys if record[key] is not None}
        return record | texts if texts else record

    def flush(self) -> None:
        if not self.batch:
            return
        texts = [self._as_json(record) for record in self.batch]
        text = io.StringIO()
        # RFC 4180 line ends: a cell holding \r or \n is then quoted, so it cannot split a record
        writer = csv.writer(text)
        for record in texts:
            writer.writerow([_csv_cell(record[name]) for name in self.names])
        self.handles["csv"].write(text.getvalue().encode())
        lines = "".join(_jsonl_line(record) for record in texts)
        self.handles["jsonl"].write(lines.encode())
        data = {
            name: [r[name] for r in self.batch]
            if name in self.typed_keys
            else [_as_text(r[name]) if name in self.input_keys else r[name] for r in texts]
            for name in self.names
        }
        self.parquet.write_table(pa.Table.from_pydict(data, schema=self.schema))
        self.batch = []

    def close(self) -> None:
        self.flush()
        self.parquet.close()
