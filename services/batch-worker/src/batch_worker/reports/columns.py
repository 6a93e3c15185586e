"""The output schema as report columns, and a row's result as one flat record.

Nothing here names a pipeline's fields: the columns and their kinds come from the output
JSON Schema (through `$ref`s, `anyOf` / `oneOf`, enums and consts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from onepipe.jobs import RowResult, input_key
from onepipe.schemas import resolve

SCALAR_KINDS: Final = ("string", "number", "integer", "boolean")
TRUNCATE_AT: Final = 200
NONE: Final = "(none)"
# -- the output schema -----------------------------------------------------------------


def schema_alternatives(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The non-null shapes a value of this schema can take."""
    schema = resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return [option for member in schema[key] for option in schema_alternatives(member, root)]
    kind = schema.get("type")
    if isinstance(kind, list):
        return [{**schema, "type": item} for item in kind if item != "null"]
    if kind == "null" or ("const" in schema and schema["const"] is None):
        return []
    if isinstance(schema.get("enum"), list):
        values = [v for v in schema["enum"] if v is not None]
        return [{**schema, "enum": values}] if values else []
    return [schema]


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "json"


def alternative_kind(schema: Mapping[str, Any]) -> str:
    """string, number, integer or boolean for one scalar alternative (see schema_alternatives), else json."""
    kind = schema.get("type")
    if kind in SCALAR_KINDS:
        return str(kind)
    if kind is None:  # an untyped enum or const: its values say what it is
        values = schema.get("enum", [schema["const"]] if "const" in schema else [])
        kinds = {_value_kind(v) for v in values}
        if len(kinds) == 1:
            return kinds.pop()
    return "json"


def _field_kind(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    kinds = {alternative_kind(option) for option in schema_alternatives(schema, root)}
    if kinds == {"integer", "number"}:
        return "number"
    if len(kinds) == 1 and "json" not in kinds:
        return kinds.pop()
    return "json"


def schema_categories(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[Any] | None:
    """The values a categorical field can take (enums and booleans), else None."""
    alternatives = schema_alternatives(schema, root)
    if not alternatives:
        return None
    values: list[Any] = []
    for alt_schema in alternatives:
        if alt_schema.get("type") == "boolean" and "enum" not in alt_schema:
            values.extend([True, False])
        elif isinstance(alt_schema.get("enum"), list):
            values.extend(alt_schema["enum"])
        elif "const" in alt_schema:
            values.append(alt_schema["const"])
        else:
            return None
    return list(dict.fromkeys(show(v) for v in values))


def output_columns(output_schema: dict[str, Any]) -> list[tuple[str, str]]:
    """The output fields in schema order, each with its kind: string, number, integer, boolean or json."""
    properties = output_schema.get("properties", {})
    return [(name, _field_kind(prop, output_schema)) for name, prop in properties.items()]


# -- flat records ----------------------------------------------------------------------


def json_text(value: Any) -> str:
    """A value as JSON text (non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _output_values(
    output: Mapping[str, Any] | None, columns: list[tuple[str, str]], prefix: str, nested_as_json: bool
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind in columns:
        value = None if output is None else output.get(name)
        as_text = nested_as_json and kind == "json" and value is not None
        values[f"{prefix}.{name}"] = json_text(value) if as_text else value
    return values


def nested_keys(columns: list[tuple[str, str]], comparing: bool) -> list[str]:
    """The record keys of the output fields that are neither text, numbers nor booleans (kind json)."""
    prefixes = ("output", "compare") if comparing else ("output",)
    return [f"{prefix}.{name}" for prefix in prefixes for name, kind in columns if kind == "json"]


def flatten(
    result: RowResult,
    columns: list[tuple[str, str]],
    input_columns: list[str],
    comparing: bool,
    scores: Mapping[str, Any] | None = None,
    nested_as_json: bool = True,
) -> dict[str, Any]:
    """One flat record: row, input columns, `output.<field>`, `compare.<field>` (when comparing), the
    truth and scores of scored fields, error.

    Nested output values (lists, objects, mixed) become JSON text, unless `nested_as_json` is false:
    then they stay as they are, for a writer that stores them typed (Parquet) and encodes them
    itself for the text formats.
    """
    record: dict[str, Any] = {"row": result.row}
    for column in input_columns:
        value = result.input.get(column)
        scalar = value is None or isinstance(value, str | int | float | bool)
        record[input_key(column)] = value if scalar else json_text(value)
    record.update(_output_values(result.output, columns, "output", nested_as_json))
    if comparing:
        record.update(_output_values(result.compare_output, columns, "compare", nested_as_json))
    record.update(scores or {})
    record["error"] = result.error
    return record


# -- values as the report shows them ------------------------------------------------------


def show(value: Any) -> str:
    """A value as the report shows it in a table cell or a chart's category."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json_text(value)


def truncate(text: str, limit: int = TRUNCATE_AT) -> str:
    """The text cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
