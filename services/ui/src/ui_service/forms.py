"""Form fields from the pipeline's JSON Schemas: what widget each field gets, and reading values back.

Plain functions, no Streamlit: a new input field or flag appears in the UI with no UI change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from onepipe.schemas import resolve

WidgetKind = Literal["text", "long_text", "choice", "checkbox", "integer", "number", "json"]
LONG_TEXT_CHARS = 200
NOT_SET = "(not set)"  # how an unset optional choice is shown


@dataclass(frozen=True)
class FieldSpec:
    """One form field: its name, widget, default, help, and limits."""

    name: str
    kind: WidgetKind
    label: str
    help: str | None
    default: Any
    required: bool
    options: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False  # None is a value of its own: the widget can be left unset


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow $refs, and see an Optional (anyOf with null) as its one non-null shape.

    The field's own keys (title, description, default) win over the ones it refers to.
    """
    own = {k: v for k, v in schema.items() if k not in ("$ref", "allOf", "anyOf")}
    shape = dict(resolve(schema, root))
    options = [s for s in shape.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        shape = {**{k: v for k, v in shape.items() if k != "anyOf"}, **_resolve(options[0], root)}
    return {**shape, **own}


def fields(schema: dict[str, Any]) -> list[FieldSpec]:
    """The form fields of an object schema, in schema order."""
    required = set(schema.get("required", []))
    specs = []
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(raw, schema)
        shape = resolve(raw, schema)
        nullable = shape.get("type") == "null" or any(
            resolve(option, schema).get("type") == "null" for option in shape.get("anyOf", [])
        )
        kind: WidgetKind
        kind_of = prop.get("type")
        if "enum" in prop:
            kind = "choice"
        elif kind_of == "boolean":
            kind = "checkbox"
        elif kind_of == "integer":
            kind = "integer"
        elif kind_of == "number":
            kind = "number"
        elif kind_of == "string":
            kind = "long_text" if prop.get("maxLength", LONG_TEXT_CHARS + 1) > LONG_TEXT_CHARS else "text"
        else:
            kind = "json"
        minimum = prop.get("minimum", prop.get("exclusiveMinimum"))
        maximum = prop.get("maximum", prop.get("exclusiveMaximum"))
        specs.append(
            FieldSpec(
                name=name,
                kind=kind,
                label=prop.get("title", name),
                help=prop.get("description"),
                default=prop.get("default"),
                required=name in required,
                options=tuple(prop.get("enum", ())),
                minimum=minimum,
                maximum=maximum,
                nullable=nullable,
            )
        )
    return specs


def initial(spec: FieldSpec, example: dict[str, Any] | None = None) -> Any:
    """The value a widget starts with: the example's, else the default, else an empty one."""
    value = (example or {}).get(spec.name, spec.default)
    if spec.kind == "json":
        return "" if value is None else json.dumps(value)
    if value is None:
        if spec.nullable and spec.kind in ("choice", "integer", "number"):
            return None  # shown unset: an empty number, the choice "(not set)"
        return {
            "checkbox": False,
            "integer": 0,
            "number": 0.0,
            "choice": spec.options[0] if spec.options else None,
        }.get(spec.kind, "")
    return value


def collect(specs: list[FieldSpec], widget_values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The object to send, and the problems found before sending (JSON fields that do not parse)."""
    values: dict[str, Any] = {}
    problems = []
    for spec in specs:
        value = widget_values.get(spec.name)
        if spec.kind == "json":
            if value is None or not str(value).strip():
                if spec.required:
                    problems.append(f"{spec.name}: a value is required (JSON)")
                continue
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                problems.append(f"{spec.name}: not valid JSON ({error.msg})")
                continue
        if value is None and not spec.nullable:
            continue  # an unset widget of a field that cannot be None: the field's default applies
        values[spec.name] = value
    return values, problems
