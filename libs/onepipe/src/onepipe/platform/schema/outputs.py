"""One typed description of a pipeline's outputs, read once from its output JSON Schema.

The faces that summarise outputs (reports, job comparison, scoring) read a field's kind,
role, categories and bounds here instead of walking the JSON Schema themselves; the rule
that caps a field's categories (pool the rest as OTHER) lives here too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from onepipe.contract import PipelineInfo
from onepipe.platform.schema.schemas import (
    ROLE_CONFIDENCE,
    ROLE_KNOWN,
    ROLE_LABEL,
    ROLE_REASONS,
    ROLE_REVIEW,
    is_boolean,
    output_roles,
    resolve,
    schema_alternatives,
    schema_categories,
    scored_kind,
)
from onepipe.platform.schema.values import as_number, json_type

# a field's kind, as its report column holds it: a JSON scalar type, or JSON for anything else
SCALAR_KINDS: Final = ("string", "number", "integer", "boolean")
JSON: Final = "json"
# what the values of a JSON field are
LIST: Final = "list"
OBJECT: Final = "object"
VALUE: Final = "value"  # JSON of several shapes

MAX_CATEGORIES: Final = 50  # values of one field told apart; later ones are pooled as OTHER
OTHER: Final = "(other)"


def alternative_kind(schema: Mapping[str, Any]) -> str:
    """string, number, integer or boolean for one scalar alternative (see schema_alternatives), else json."""
    kind = schema.get("type")
    if kind in SCALAR_KINDS:
        return str(kind)
    if kind is None:  # an untyped enum or const: its values say what it is
        values = schema.get("enum", [schema["const"]] if "const" in schema else [])
        kinds = {json_type(value) for value in values}
        if len(kinds) == 1 and (only := kinds.pop()) in SCALAR_KINDS:
            return only
    return JSON


def field_kind(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """string, number, integer, boolean or json: what an output field's values are, as one column."""
    kinds = {alternative_kind(option) for option in schema_alternatives(schema, root)}
    if kinds == {"integer", "number"}:
        return "number"
    if len(kinds) == 1 and JSON not in kinds:
        return kinds.pop()
    return JSON


def field_shape(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """list, object or value: what a JSON field's schema says its values are."""
    kinds = {alternative.get("type") for alternative in schema_alternatives(schema, root)}
    if kinds == {"array"}:
        return LIST
    if kinds == {"object"}:
        return OBJECT
    return VALUE


def schema_bounds(schema: Mapping[str, Any], root: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """A numeric field's `minimum` / `maximum` (or exclusive ones), through `$ref`s and `anyOf`s."""
    low = high = None
    for alternative in [resolve(schema, root), *schema_alternatives(schema, root)]:
        for key in ("minimum", "exclusiveMinimum"):
            low = low if low is not None else as_number(alternative.get(key))
        for key in ("maximum", "exclusiveMaximum"):
            high = high if high is not None else as_number(alternative.get(key))
    return low, high


@dataclass(frozen=True)
class OutputField:
    """One output field: its kind, role, categories, bounds, and how it is scored against a truth."""

    name: str
    schema: Mapping[str, Any]  # the field's own schema, `$ref`s unresolved (see Outputs.schema)
    kind: str  # string, number, integer, boolean or json
    shape: str  # list, object or value (what a json field holds)
    role: str | None  # its `x-role`, when it is the first field to take that role
    categories: list[str] | None  # the values it can take (enums and booleans), as `show` writes them
    scored: str | None  # categorical or numeric against a truth column; None: not scorable
    boolean: bool  # its values are booleans (a truth cell may say yes or no)
    bounds: tuple[float | None, float | None]  # its `minimum` / `maximum`, when numeric
    description: str | None = None  # what it holds, as its schema (or the one its `$ref` names) says
    record: Mapping[str, Any] | None = None  # the object schema of its records (one, or a list's items)

    @property
    def numeric(self) -> bool:
        """Whether its values are numbers (integers or not)."""
        return self.kind in ("number", "integer")


@dataclass(frozen=True)
class Outputs:
    """Every output field in schema order, and which field takes each role."""

    schema: Mapping[str, Any]  # the whole output schema: the root its fields' `$ref`s point into
    fields: dict[str, OutputField]
    roles: dict[str, str] = field(default_factory=dict)  # role -> field name

    @classmethod
    def of(cls, info: PipelineInfo) -> Outputs:
        """The description of a pipeline's outputs."""
        return cls.from_schema(info.output_schema)

    @classmethod
    def from_schema(cls, output_schema: Mapping[str, Any]) -> Outputs:
        """The description read from an output JSON Schema (the `output_schema` of /v1/pipeline)."""
        roles = output_roles(output_schema)
        role_of = {name: role for role, name in roles.items()}  # a field has one `x-role` at most
        fields = {
            str(name): _describe(str(name), prop, output_schema, role_of.get(name))
            for name, prop in output_schema.get("properties", {}).items()
        }
        return cls(output_schema, fields, roles)

    @property
    def label(self) -> str | None:
        """The field holding the verdict (`x-role: label`)."""
        return self.roles.get(ROLE_LABEL)

    @property
    def confidence(self) -> str | None:
        """The field holding the verdict's confidence (`x-role: confidence`)."""
        return self.roles.get(ROLE_CONFIDENCE)

    @property
    def review(self) -> str | None:
        """The field saying a row needs review (`x-role: review`)."""
        return self.roles.get(ROLE_REVIEW)

    @property
    def reasons(self) -> str | None:
        """The field saying why a row needs review (`x-role: reasons`)."""
        return self.roles.get(ROLE_REASONS)

    @property
    def known(self) -> str | None:
        """The field set when the input is one the pipeline knows (`x-role: known`)."""
        return self.roles.get(ROLE_KNOWN)

    def scorable(self) -> list[str]:
        """The fields that can be scored against a truth column, in schema order."""
        return [name for name, described in self.fields.items() if described.scored]

    def columns(self) -> list[tuple[str, str]]:
        """The fields in schema order, each with its kind: string, number, integer, boolean or json."""
        return [(name, described.kind) for name, described in self.fields.items()]

    def compared(self) -> list[str]:
        """The fields two answers are compared on, in the order people read them: the label first."""
        label = self.label
        return list(dict.fromkeys([*([label] if label in self.fields else []), *self.fields]))


def differing_fields(fields: list[str], first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ between two outputs of one input (a missing field is None).

    The one rule of every comparison of two answers (the job comparison, the shadow record): a field
    agrees when both values are equal as JSON values. A field the schema does not name but either
    output holds is appended to `fields` as it is first seen, so it is compared from then on.
    """
    for name in [*first, *second]:
        if name not in fields:
            fields.append(name)
    return [name for name in fields if first.get(name) != second.get(name)]


def _describe(name: str, schema: Mapping[str, Any], root: Mapping[str, Any], role: str | None) -> OutputField:
    return OutputField(
        name=name,
        schema=schema,
        kind=field_kind(schema, root),
        shape=field_shape(schema, root),
        role=role,
        categories=schema_categories(schema, root),
        scored=scored_kind(schema, root),
        boolean=is_boolean(schema, root),
        bounds=schema_bounds(schema, root),
        description=field_description(schema, root),
        record=record_schema(schema, root),
    )


def field_description(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str | None:
    """A field's description: its own, else that of the schema it names, else of its one non-null shape."""
    alternatives = schema_alternatives(schema, root)
    candidates = (
        [schema, *alternatives[:1], resolve(schema, root)]
        if len(alternatives) == 1
        else [
            schema,
            resolve(schema, root),
        ]
    )
    for candidate in candidates:
        if isinstance(candidate.get("description"), str):
            return str(candidate["description"])
    return None


def record_schema(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object schema of a field's records: its own (one record) or its items' (a list of them)."""
    alternatives = schema_alternatives(schema, root)
    if len(alternatives) != 1:
        return None
    (shape,) = alternatives
    if shape.get("type") == "array" and isinstance(shape.get("items"), Mapping):
        shape = resolve(shape["items"], root)
    return shape if isinstance(shape.get("properties"), Mapping) else None


@dataclass
class CategoryCap:
    """The categories of one field told apart up to `cap`; values seen after that are pooled as OTHER.

    `listed` values (the categories a schema declares) are always told apart, without counting
    towards the cap. So a free-text field keeps bounded counts.
    """

    cap: int = MAX_CATEGORIES
    listed: Collection[str] = ()
    admitted: dict[str, None] = field(default_factory=dict)

    def key(self, text: str) -> str:
        """The category `text` is counted under: itself, or OTHER once the cap is reached."""
        if text in self.admitted or text in self.listed:
            return text
        if len(self.admitted) >= self.cap:
            return OTHER
        self.admitted[text] = None
        return text
