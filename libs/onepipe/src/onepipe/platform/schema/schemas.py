"""Reading the pipeline's JSON Schemas, for the faces that build from them (reports, UI).

No pydantic models here: the faces get the schemas as JSON from /v1/pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from onepipe.platform.schema.values import CATEGORICAL, NUMERIC, json_type, show

# The output roles a pipeline marks with json_schema_extra={"x-role": ...}
ROLE_LABEL: Final = "label"
ROLE_CONFIDENCE: Final = "confidence"
ROLE_REVIEW: Final = "review"
ROLES: Final = (ROLE_LABEL, ROLE_CONFIDENCE, ROLE_REVIEW)  # the headline roles, shown first
ROLE_REASONS: Final = "reasons"  # why a row needs review: text or a list of texts
ROLE_KNOWN: Final = "known"  # set (not null, false or empty) when the input is one the pipeline knows


def resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local `$ref`s (and pydantic's one-item `allOf` wrappers) to the schema they name."""
    for _ in range(32):  # a cycle of refs must not hang the caller
        if "$ref" in schema and isinstance(schema["$ref"], str) and schema["$ref"].startswith("#/"):
            target: Any = root
            for part in schema["$ref"][2:].split("/"):
                key = part.replace("~1", "/").replace("~0", "~")
                target = target.get(key, {}) if isinstance(target, Mapping) else {}
            schema = target if isinstance(target, Mapping) else {}
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            break
    return schema


def output_roles(output_schema: Mapping[str, Any]) -> dict[str, str]:
    """Role -> field name, from the output fields' `x-role` marks (the first field wins a role)."""
    found: dict[str, str] = {}
    for name, prop in output_schema.get("properties", {}).items():
        role = prop.get("x-role") if isinstance(prop, Mapping) else None
        if isinstance(role, str):
            found.setdefault(role, name)
    return found


def json_types(schema: Mapping[str, Any], root: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema allows, through `$ref`s, `anyOf` / `oneOf` / `allOf`, `enum` and `const`.

    An empty set: the schema does not say (any value).
    """
    schema = resolve(schema, root)
    found: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(t for t in declared if isinstance(t, str))
    for key in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(key) or []:
            if isinstance(alternative, Mapping):
                found |= json_types(alternative, root)
    values = list(schema.get("enum") or []) + ([schema["const"]] if "const" in schema else [])
    if not declared:
        found.update(json_type(value) for value in values)
    return found


SCALAR_TYPES: Final = frozenset({"string", "boolean", "integer", "number"})


def scorable(schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """Whether an output field's values can be scored against a truth column: scalars, not lists."""
    types = json_types(schema, root) - {"null"}
    return bool(types) and types <= SCALAR_TYPES


def scorable_fields(output_schema: Mapping[str, Any]) -> list[str]:
    """The output fields that can be scored against a truth column, in schema order."""
    properties = output_schema.get("properties", {})
    return [name for name, prop in properties.items() if scorable(prop, output_schema)]


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


def schema_categories(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[str] | None:
    """The values a categorical field can take (enums and booleans) as `show` writes them, else None."""
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


def scored_kind(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str | None:
    """categorical, numeric, or None when a field's values cannot be scored (lists, objects, mixed)."""
    if not scorable(schema, root):
        return None
    if (
        json_types(schema, root) - {"null"} <= {"integer", "number"}
        and schema_categories(schema, root) is None
    ):
        return NUMERIC
    return CATEGORICAL


def is_boolean(schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """Whether a field's values are booleans (its truth cells may say yes or no)."""
    return json_types(schema, root) - {"null"} == {"boolean"}
