"""Form fields from the pipeline's JSON Schemas: each field's widget and limits, and reading values back.

Plain functions, no Streamlit: a new input field or flag appears in the UI with no UI change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from onepipe.platform.schema.schemas import resolve
from ui_service import wording

WidgetKind = Literal["text", "long_text", "choice", "checkbox", "integer", "number", "list", "json"]
ItemKind = Literal["text", "integer", "number"]
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
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    min_length: int | None = None  # characters of a text
    max_length: int | None = None
    min_items: int | None = None  # items of a list
    max_items: int | None = None
    item_kind: ItemKind | None = None  # what a list field holds
    item_max_length: int | None = None

    @property
    def limits(self) -> str | None:
        """The field's limits in words, shown before anything is sent: "up to 5,000 characters", "0 to 20"."""
        if self.kind in ("text", "long_text"):
            return _length_words(self.min_length, self.max_length, "character")
        if self.kind in ("integer", "number"):
            return _range_words(self)
        if self.kind == "list":
            items = _length_words(self.min_items, self.max_items, "item")
            each = _length_words(None, self.item_max_length, "character")
            parts = [part for part in (items, each and f"each {each}") if part]
            return ", ".join(parts) or None
        return None

    @property
    def title(self) -> str:
        """The label with its limits, as the widget shows it."""
        return self.label + (f" :gray[({self.limits})]" if self.limits else "")


def _length_words(low: int | None, high: int | None, noun: str) -> str | None:
    if high is not None and low is not None and low > 1:
        return f"{low:,} to {wording.plural(high, noun)}"
    if high is not None:
        return f"up to {wording.plural(high, noun)}"
    if low is not None and low > 1:
        return f"at least {wording.plural(low, noun)}"
    return None


def _range_words(spec: FieldSpec) -> str | None:
    low = None if spec.minimum is None else wording.number(spec.minimum)
    high = None if spec.maximum is None else wording.number(spec.maximum)
    if low is not None and high is not None:
        if not spec.exclusive_minimum and not spec.exclusive_maximum:
            return f"{low} to {high}"
        lower = f"above {low}" if spec.exclusive_minimum else f"from {low}"
        return f"{lower}, {'below' if spec.exclusive_maximum else 'up to'} {high}"
    if low is not None:
        return f"above {low}" if spec.exclusive_minimum else f"{low} or more"
    if high is not None:
        return f"below {high}" if spec.exclusive_maximum else f"{high} or less"
    return None


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow $refs, and see an Optional (anyOf with null) as its one non-null shape.

    The field's own keys (title, description, default) win over the ones it refers to.
    """
    own = {k: v for k, v in schema.items() if k not in ("$ref", "allOf", "anyOf")}
    shape = dict(resolve(schema, root))
    options = [s for s in shape.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        shape = {**{k: v for k, v in shape.items() if k != "anyOf"}, **_resolve(options[0], root)}
    return {**shape, **own}


def _item_kind(prop: Mapping[str, Any], root: Mapping[str, Any]) -> ItemKind | None:
    """What a list of scalars holds (text, integers, numbers); None for lists of anything else."""
    if prop.get("type") != "array" or not isinstance(prop.get("items"), Mapping):
        return None
    items = _resolve(prop["items"], root)
    if "enum" in items:
        return None
    kinds: dict[str, ItemKind] = {"string": "text", "integer": "integer", "number": "number"}
    return kinds.get(items.get("type", ""))


def fields(schema: Mapping[str, Any]) -> list[FieldSpec]:
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
        item_kind = _item_kind(prop, schema)
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
        elif item_kind is not None:
            kind = "list"
        else:
            kind = "json"
        items = _resolve(prop["items"], schema) if kind == "list" else {}
        specs.append(
            FieldSpec(
                name=name,
                kind=kind,
                label=wording.field_title(name, raw),
                help=prop.get("description"),
                default=prop.get("default"),
                required=name in required,
                options=tuple(prop.get("enum", ())),
                minimum=prop.get("minimum", prop.get("exclusiveMinimum")),
                maximum=prop.get("maximum", prop.get("exclusiveMaximum")),
                nullable=nullable,
                exclusive_minimum="minimum" not in prop and "exclusiveMinimum" in prop,
                exclusive_maximum="maximum" not in prop and "exclusiveMaximum" in prop,
                min_length=prop.get("minLength"),
                max_length=prop.get("maxLength"),
                min_items=prop.get("minItems"),
                max_items=prop.get("maxItems"),
                item_kind=item_kind,
                item_max_length=items.get("maxLength"),
            )
        )
    return specs


def _list_text(values: list[Any]) -> str:
    """A list of scalars as the text a person types: "1, 2, 4"; JSON when an item holds a comma."""
    if any(isinstance(v, str) and ("," in v or v != v.strip()) for v in values):
        return json.dumps(values, ensure_ascii=False)
    return ", ".join(wording.number(v) if isinstance(v, float) else str(v) for v in values)


def initial(spec: FieldSpec, example: Mapping[str, Any] | None = None) -> Any:
    """The value a widget starts with: the example's, else the default, else an empty one."""
    value = (example or {}).get(spec.name, spec.default)
    if spec.kind == "json":
        return "" if value is None else json.dumps(value)
    if spec.kind == "list":
        return _list_text(value) if isinstance(value, list) else ""
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


def _parse_list(spec: FieldSpec, text: str) -> tuple[list[Any] | None, str | None]:
    """A list typed as "a, b, c" (or as a JSON list), its items of the field's kind; or a problem."""
    text = text.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            return None, f"{spec.label}: not a valid list ({error.msg})"
        if not isinstance(parsed, list):
            return None, f"{spec.label}: not a list"
        parts: list[Any] = parsed
    else:
        parts = [part.strip() for part in text.split(",")] if text else []
        parts = [part for part in parts if part]
    if spec.item_kind == "text":
        return [str(part) for part in parts], None
    numbers: list[Any] = []
    for part in parts:
        try:
            number = float(part)
        except (TypeError, ValueError):
            return None, f"{spec.label}: {part!r} is not a number"
        if spec.item_kind == "integer":
            if number != int(number):
                return None, f"{spec.label}: {part!r} is not a whole number"
            numbers.append(int(number))
        else:
            numbers.append(number)
    return numbers, None


def collect(specs: list[FieldSpec], widget_values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The object to send, and the problems found before sending (lists or JSON that do not parse)."""
    values: dict[str, Any] = {}
    problems = []
    for spec in specs:
        value = widget_values.get(spec.name)
        if spec.kind == "list":
            parsed, problem = _parse_list(spec, str(value or ""))
            if problem:
                problems.append(problem)
                continue
            if not parsed and not spec.required:
                continue  # left empty: the field's default applies
            value = parsed
        elif spec.kind == "json":
            if value is None or not str(value).strip():
                if spec.required:
                    problems.append(f"{spec.label}: a value is required (JSON)")
                continue
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                problems.append(f"{spec.label}: not valid JSON ({error.msg})")
                continue
        elif (
            spec.kind in ("text", "long_text") and (spec.min_length or 0) > 0 and not str(value or "").strip()
        ):
            problems.append(f"{spec.label}: type a value first (or click an example)")
            continue
        if value is None and not spec.nullable:
            continue  # an unset widget of a field that cannot be None: the field's default applies
        values[spec.name] = value
    return values, problems


def changed_only(specs: list[FieldSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a person changed from their field's default: the rest left out, so that whoever answers
    applies its own default (a registered version's flag defaults, not the ones the form showed)."""
    defaults = {spec.name: spec.default for spec in specs}
    return {name: value for name, value in values.items() if name not in defaults or value != defaults[name]}


def example_preview(example: Mapping[str, Any], specs: list[FieldSpec], limit: int = 110) -> str:
    """A named example in one short line: its values in field order, text first."""
    ordered = sorted(specs, key=lambda spec: spec.kind not in ("long_text", "text"))
    parts = [
        wording.value(example[spec.name]) for spec in ordered if not wording.is_empty(example.get(spec.name))
    ]
    return wording.shorten(" · ".join(parts), limit)
