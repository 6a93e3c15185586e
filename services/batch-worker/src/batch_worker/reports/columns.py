"""The output fields as report columns, and a row's result as one flat record.

Nothing here names a pipeline's fields: the columns and their kinds come from the description
of the outputs (onepipe.platform.schema.outputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from onepipe.platform.jobs.types import RowResult, input_key
from onepipe.platform.schema.outputs import JSON, Outputs
from onepipe.platform.schema.values import json_text

TRUNCATE_AT: Final = 200

# -- the output schema -----------------------------------------------------------------


def output_columns(output_schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The output fields in schema order, each with its kind: string, number, integer, boolean or json."""
    return Outputs.from_schema(output_schema).columns()


# -- flat records ----------------------------------------------------------------------


def _output_values(
    output: Mapping[str, Any] | None, columns: list[tuple[str, str]], prefix: str, nested_as_json: bool
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind in columns:
        value = None if output is None else output.get(name)
        as_text = nested_as_json and kind == JSON and value is not None
        values[f"{prefix}.{name}"] = json_text(value) if as_text else value
    return values


def nested_keys(columns: list[tuple[str, str]], comparing: bool) -> list[str]:
    """The record keys of the output fields that are neither text, numbers nor booleans (kind json)."""
    prefixes = ("output", "compare") if comparing else ("output",)
    return [f"{prefix}.{name}" for prefix in prefixes for name, kind in columns if kind == JSON]


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


def truncate(text: str, limit: int = TRUNCATE_AT) -> str:
    """The text cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
