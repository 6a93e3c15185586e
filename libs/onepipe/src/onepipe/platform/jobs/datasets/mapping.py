"""A job's columns against the pipeline's schemas: which column fills each input field, which
output field each truth column scores, and a row's cells as the input's values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from onepipe.platform.jobs.datasets.common import DatasetError
from onepipe.platform.jobs.datasets.json_values import parse_json, too_deep, unpaired_surrogate
from onepipe.platform.jobs.types import FileFormat
from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.schema.schemas import json_types
from onepipe.platform.schema.values import json_type


def resolve_mapping(
    input_schema: Mapping[str, Any], header: list[str], mapping: Mapping[str, str], file_format: FileFormat
) -> dict[str, str]:
    """Input field -> column for every field the file can fill; a DatasetError names what is missing.

    A field maps to the column of the same name unless `mapping` says otherwise. CSV and
    Parquet columns are the header's; a JSON lines file has none, and any object may hold
    a key the first one left out (an optional field not set), so there every field maps
    to its column and `header` (the first object's keys) serves only to check the
    required ones.
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
    absent = []
    for field in fields:
        column = mapping.get(field, field)
        if column in header or file_format == "jsonl":
            resolved[field] = column
        if column in header:
            continue
        if field in input_schema.get("required", []):
            missing.append(f"{field} (column {column!r})" if column != field else field)
        elif field in mapping and file_format != "jsonl":
            absent.append(f"{field} -> {column!r}")
    where = "first JSON object's keys" if file_format == "jsonl" else "columns"
    if missing:
        raise DatasetError(
            f"the file has no column for the required input field(s) {', '.join(missing)}; "
            f"its {where}: {', '.join(header)}"
        )
    if absent:
        raise DatasetError(
            f"the mapping names column(s) the file does not have: {', '.join(absent)}; "
            f"its columns: {', '.join(header)}"
        )
    return resolved


def truth_problems(
    output_schema: Mapping[str, Any], header: list[str], truth: Mapping[str, str], file_format: FileFormat
) -> list[tuple[str, str]]:
    """What is wrong with a job's truth mapping (output field -> column), as (field, message) pairs.

    A field must be an output field whose values can be scored (numbers, text, booleans,
    enums; not lists or objects), and its column one of the file's (a JSON lines file's
    later objects may hold keys the first one leaves out, so there any column is taken).
    """
    fields = Outputs.from_schema(output_schema).fields
    problems = []
    for field, column in truth.items():
        if field not in fields:
            problems.append((field, f"not an output field; output fields: {', '.join(fields)}"))
        elif fields[field].scored is None:
            problems.append((field, "a list or object output field cannot be scored against a column"))
        elif not isinstance(column, str) or not column:
            problems.append((field, "maps to a column name (a non-empty string)"))
        elif column not in header and file_format != "jsonl":
            problems.append((field, f"the file has no column {column!r}; its columns: {', '.join(header)}"))
    return problems


def to_input(
    values: Mapping[str, Any], mapping: Mapping[str, str], input_schema: Mapping[str, Any]
) -> dict[str, Any]:
    """A row as the pipeline's input: mapped columns, with CSV cells read as their fields' types.

    A blank cell of a field the input does not require is left out, so the field takes its
    default (or None); a required field left blank goes to the pipeline, which refuses the row.
    """
    fields = input_schema.get("properties", {})
    required = set(input_schema.get("required", []))
    built = {}
    for field, column in mapping.items():
        if column not in values:
            continue  # the pipeline's validation says the field is required
        value = values[column]
        if isinstance(value, str):
            if not value.strip() and field not in required:
                continue
            value = _cell(value, json_types(fields.get(field, {}), input_schema))
        built[field] = value
    return built


def _cell(text: str, types: set[str]) -> Any:
    """A CSV cell as the JSON value its field takes: text stays text unless the field takes other types."""
    if not types or types <= {"string", "null"}:
        return text
    parsed = _json_cell(text)
    kind = json_type(parsed)
    if "string" in types and kind not in types and not (kind == "integer" and "number" in types):
        return text  # a field of text or numbers: a cell that is no number stays text
    return parsed


def _json_cell(text: str) -> Any:
    """A cell's JSON value; the text itself when it is not JSON the model service can be sent.

    The pipeline's validation then names the field and the problem.
    """
    try:
        parsed = parse_json(text)
    except (ValueError, RecursionError):
        return text
    if too_deep(parsed) or unpaired_surrogate(text, parsed) is not None:
        return text
    return parsed
