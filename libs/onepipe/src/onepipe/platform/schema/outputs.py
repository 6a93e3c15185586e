"""One typed description of a pipeline's outputs, read once from its output JSON Schema.

The faces that summarise outputs (reports, job comparison, scoring) read a field's kind,
role, categories and bounds here instead of walking the JSON Schema themselves; the rule
that caps a field's categories (pool the rest as OTHER) lives here too, and so does the rule
that says when a field changed between two answers (`OutputField.changed`): a decision
(categories, booleans, the `label`, `review` and `known` roles) on any change of value, a
number only past its tolerance (`x-tolerance`, else TOLERANCE_SHARE of its schema range, else
TOLERANCE_SHARE of the larger of the two values), anything else on any change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

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

# a number changed when it moved by more than this share of its schema range (or, unbounded, of the
# larger of its two values) unless the schema declares its own `x-tolerance`
TOLERANCE_SHARE: Final = 0.05
TOLERANCE_KEY: Final = "x-tolerance"
DECISION_ROLES: Final = (ROLE_LABEL, ROLE_REVIEW, ROLE_KNOWN)  # changed on any change of value
# what a field is to a comparison: a decision, a number that drifts, or anything else (lists, text)
ComparedAs = Literal["decision", "number", "other"]
DECISION: Final = "decision"
NUMBER: Final = "number"
OTHER_KIND: Final = "other"

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
    # how far a number may move before a comparison counts it changed: declared (`x-tolerance`), else
    # TOLERANCE_SHARE of its bounds' range; None: unbounded, TOLERANCE_SHARE of the larger value
    tolerance: float | None = None

    @property
    def numeric(self) -> bool:
        """Whether its values are numbers (integers or not)."""
        return self.kind in ("number", "integer")

    @property
    def compared_as(self) -> ComparedAs:
        """DECISION (categories, booleans, the label, review and known roles), NUMBER, or OTHER_KIND."""
        if self.categories is not None or self.boolean or self.role in DECISION_ROLES:
            return DECISION
        return NUMBER if self.numeric else OTHER_KIND

    def changed(self, before: Any, after: Any) -> bool:
        """Whether the field changed between two answers: a number past its tolerance, else any change."""
        if self.compared_as != NUMBER:
            return bool(before != after)
        low, high = as_number(before), as_number(after)
        if low is None or high is None:
            return bool(before != after)
        limit = self.tolerance if self.tolerance is not None else TOLERANCE_SHARE * max(abs(low), abs(high))
        return abs(high - low) > limit

    def tolerance_text(self) -> str:
        """The tolerance in words: "0.05", or "5% of the larger value" for an unbounded number."""
        if self.tolerance is not None:
            return f"{self.tolerance:g}"
        return f"{TOLERANCE_SHARE:.0%} of the larger value"


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


def differing_fields(
    fields: list[str], first: Mapping[str, Any], second: Mapping[str, Any], outputs: Outputs
) -> list[str]:
    """The fields that changed between two outputs of one input (a missing field is None).

    The one rule of every comparison of two answers (the job comparison, a job's two variants, the
    shadow record), `OutputField.changed`: a decision changes with its value, a number only past its
    tolerance. A field the schema does not name but either output holds is appended to `fields` as it
    is first seen, and changes with its value.
    """
    for name in [*first, *second]:
        if name not in fields:
            fields.append(name)
    changed = []
    for name in fields:
        described = outputs.fields.get(name)
        before, after = first.get(name), second.get(name)
        if described.changed(before, after) if described is not None else before != after:
            changed.append(name)
    return changed


def declared_tolerance(name: str, schema: Mapping[str, Any], root: Mapping[str, Any]) -> float | None:
    """A field's `x-tolerance` (on the field, or the schema it names); ValueError unless a number >= 0."""
    for candidate in (schema, resolve(schema, root)):
        if TOLERANCE_KEY in candidate:
            value = candidate[TOLERANCE_KEY]
            number = None if isinstance(value, bool) else as_number(value)
            if number is None or number < 0:
                raise ValueError(
                    f"output field {name}: {TOLERANCE_KEY} must be a number of 0 or more, not {value!r}"
                )
            return number
    return None


def field_tolerance(
    name: str,
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    kind: str,
    bounds: tuple[float | None, float | None],
) -> float | None:
    """How far a number may move unchanged: its `x-tolerance`, else TOLERANCE_SHARE of its bounds' range,
    else 0 for an integer (a count or a rank that moves by one has changed); None for other numbers
    without both bounds (then TOLERANCE_SHARE of the larger value, row by row)."""
    declared = declared_tolerance(name, schema, root)
    if declared is not None:
        return declared
    low, high = bounds
    if low is not None and high is not None and high > low:
        return TOLERANCE_SHARE * (high - low)
    return 0.0 if kind == "integer" else None


def _describe(name: str, schema: Mapping[str, Any], root: Mapping[str, Any], role: str | None) -> OutputField:
    bounds, kind = schema_bounds(schema, root), field_kind(schema, root)
    return OutputField(
        name=name,
        schema=schema,
        kind=kind,
        shape=field_shape(schema, root),
        role=role,
        categories=schema_categories(schema, root),
        scored=scored_kind(schema, root),
        boolean=is_boolean(schema, root),
        bounds=bounds,
        description=field_description(schema, root),
        record=record_schema(schema, root),
        tolerance=field_tolerance(name, schema, root, kind, bounds),
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
