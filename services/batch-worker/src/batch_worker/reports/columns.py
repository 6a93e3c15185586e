"""The output schema as report columns, and a row's result as one flat record.

Nothing here names a pipeline's fields: the columns and their kinds come from the output
JSON Schema (through `$ref`s, `anyOf` / `oneOf`, enums and consts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from onepipe.jobs import RowResult
from onepipe.schemas import schema_alternatives
from onepipe.values import json_text

SCALAR_KINDS: Final = ("string", "number", "integer", "boolean")
TRUNCATE_AT: Final = 200
# the report's own columns start with these; an input column that does too is renamed input.<name>
REPORT_PREFIXES: Final = (
    "output.",
    "compare.",
    "input.",
    "truth.",
    "correct.",
    "compare_correct.",
    "abs_error.",
    "compare_abs_error.",
)

# -- the output schema -----------------------------------------------------------------


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "json"


def _alternative_kind(schema: Mapping[str, Any]) -> str:
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
    kinds = {_alternative_kind(option) for option in schema_alternatives(schema, root)}
    if kinds == {"integer", "number"}:
        return "number"
    if len(kinds) == 1 and "json" not in kinds:
        return kinds.pop()
    return "json"


def output_columns(output_schema: dict[str, Any]) -> list[tuple[str, str]]:
    """The output fields in schema order, each with its kind: string, number, integer, boolean or json."""
    properties = output_schema.get("properties", {})
    return [(name, _field_kind(prop, output_schema)) for name, prop in properties.items()]


# -- flat records ----------------------------------------------------------------------


def input_key(column: str) -> str:
    """The record key of an input column; prefixed only when it would clash with the report's own."""
    if column in ("row", "error") or column.startswith(REPORT_PREFIXES):
        return f"input.{column}"
    return column


def _output_values(
    output: Mapping[str, Any] | None, columns: list[tuple[str, str]], prefix: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind in columns:
        value = None if output is None else output.get(name)
        values[f"{prefix}.{name}"] = json_text(value) if kind == "json" and value is not None else value
    return values


def flatten(
    result: RowResult,
    columns: list[tuple[str, str]],
    input_columns: list[str],
    comparing: bool,
    scores: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One flat record: row, input columns, `output.<field>`, `compare.<field>` (when comparing), the
    truth and scores of scored fields, error."""
    record: dict[str, Any] = {"row": result.row}
    for column in input_columns:
        value = result.input.get(column)
        scalar = value is None or isinstance(value, str | int | float | bool)
        record[input_key(column)] = value if scalar else json_text(value)
    record.update(_output_values(result.output, columns, "output"))
    if comparing:
        record.update(_output_values(result.compare_output, columns, "compare"))
    record.update(scores or {})
    record["error"] = result.error
    return record


# -- values as the report shows them ------------------------------------------------------


def truncate(text: str, limit: int = TRUNCATE_AT) -> str:
    """The text cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
