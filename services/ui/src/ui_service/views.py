"""What to show of what the pipeline returned, of a peer's failure, of a reported case (no Streamlit here).

A trace is read in trace_view.py, two runs compared in compare_view.py. Everything is read from
the outputs' description (onepipe.platform.schema.outputs.Outputs: each field's role, bounds,
description) and from the values themselves, never from the example's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from onepipe.platform.schema.outputs import Outputs
from onepipe.preview import kind_of
from ui_service import wording

Display = Literal["none", "scalar", "long_text", "bars", "terms", "table", "array", "record", "list"]
LONG_TEXT = 120  # characters from which a text is a paragraph, not a value in a line
TERM_CHARS = 40  # the longest text shown as a chip
SUMMARIES = ("array", "sparse")  # preview kinds shown as a summary in words (trace_view.array_summary)


def is_number(value: Any) -> bool:
    """Whether a JSON value is a number (a boolean is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def display_of(value: Any) -> Display:
    """The form that fits a value.

    none: empty; scalar: one short value; long_text: a paragraph; bars: numbers by name;
    terms: a list of short values (chips); table: a list of records; array: an array's or sparse
    matrix's preview; record: named values of other kinds; list: anything else in a list.
    """
    if wording.is_empty(value):
        return "none"
    if kind_of(value) in SUMMARIES:
        return "array"
    if isinstance(value, str):
        return "long_text" if len(value) > LONG_TEXT else "scalar"
    if isinstance(value, bool) or is_number(value):
        return "scalar"
    if isinstance(value, dict):
        return "bars" if all(is_number(v) for v in value.values()) else "record"
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            return "table"
        if all(
            isinstance(v, bool) or is_number(v) or (isinstance(v, str) and len(v) <= TERM_CHARS)
            for v in value
        ):
            return "terms"
        return "list"
    return "scalar"


def scores_in(value: Any) -> dict[str, float] | None:
    """Numbers by name inside a record (e.g. class scores), to draw as bars."""
    if isinstance(value, dict):
        for inner in value.values():
            if display_of(inner) == "bars":
                return {str(k): float(v) for k, v in inner.items()}
    return None


def shares(scores: Mapping[str, float]) -> bool:
    """Whether scores are shares of one whole (probabilities): each in [0, 1], summing to about 1."""
    values = list(scores.values())
    return bool(values) and all(0 <= v <= 1 for v in values) and abs(sum(values) - 1) < 0.02


def facts(record: Mapping[str, Any], titles: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The short values of a record as (title, words) pairs; the rest is shown in its own form."""
    titles = titles or {}
    return [
        (titles.get(key) or wording.readable(str(key)), wording.value(item))
        for key, item in record.items()
        if display_of(item) in ("none", "scalar")
    ]


# -- the outputs' shapes ------------------------------------------------------------------------


def output_titles(outputs: Outputs) -> dict[str, str]:
    """Every output field with its title, in schema order."""
    return {name: wording.field_title(name, described.schema) for name, described in outputs.fields.items()}


def item_titles(outputs: Outputs, name: str) -> dict[str, str]:
    """Titles of the fields of an output's records (a record, or a list of them), from the schema."""
    described = outputs.fields.get(name)
    record = described.record if described is not None else None
    return wording.field_titles(record) if record is not None else {}


def description(outputs: Outputs, name: str | None) -> str | None:
    """What an output field holds, as its schema says; None for a field the schema does not name."""
    described = outputs.fields.get(name) if name else None
    return described.description if described is not None else None


def table_rows(records: list[Any], titles: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """A list of records as table rows: columns titled in words, values in words."""
    titles = titles or {}
    return [
        {
            (titles.get(str(key)) or wording.readable(str(key))): wording.value(item)
            for key, item in record.items()
        }
        for record in records
        if isinstance(record, Mapping)
    ]


# -- the answer, read through its roles ------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The output's headline, from its `x-role` marks (any of them may be missing)."""

    label: str | None = None  # the label field's name
    label_title: str = ""
    label_text: str = ""
    label_help: str | None = None
    confidence: str | None = None
    confidence_title: str = ""
    confidence_value: float | None = None
    confidence_share: float | None = None  # where it sits on its scale, 0 to 1, to draw as a bar
    confidence_help: str | None = None
    review: str | None = None
    review_title: str = ""
    needs_review: bool | None = None
    reasons_field: str | None = None
    reasons: list[str] = field(default_factory=list)
    known: str | None = None
    known_title: str = ""
    known_value: Any = None  # set when the input is one the pipeline knows

    @property
    def fields(self) -> list[str]:
        """The output fields the headline shows."""
        names = (self.label, self.confidence, self.review, self.reasons_field, self.known)
        return [name for name in names if name]


def verdict(output: Mapping[str, Any], schema: Mapping[str, Any]) -> Verdict | None:
    """The output's headline: its verdict, confidence, review mark and reasons, whether it is known."""
    outputs = Outputs.from_schema(schema)
    if not outputs.roles:
        return None
    titles = output_titles(outputs)
    label, confidence, review = outputs.label, outputs.confidence, outputs.review
    known, reasons_field = outputs.known, outputs.reasons
    value = output.get(confidence) if confidence else None
    number = float(value) if value is not None and is_number(value) else None
    reasons = output.get(reasons_field) if reasons_field else None
    known_value = output.get(known) if known else None
    return Verdict(
        label=label,
        label_title=titles.get(label or "", ""),
        label_text=wording.value(output.get(label)) if label else "",
        label_help=description(outputs, label),
        confidence=confidence,
        confidence_title=titles.get(confidence or "", ""),
        confidence_value=number,
        confidence_share=_share(number, outputs.fields[confidence].bounds if confidence else (None, None)),
        confidence_help=description(outputs, confidence),
        review=review,
        review_title=titles.get(review or "", ""),
        needs_review=bool(output.get(review)) if review else None,
        reasons_field=reasons_field,
        reasons=[str(r) for r in reasons]
        if isinstance(reasons, list)
        else ([str(reasons)] if reasons else []),
        known=known,
        known_title=titles.get(known or "", ""),
        known_value=None if known_value is False or wording.is_empty(known_value) else known_value,
    )


def _share(value: float | None, bounds: tuple[float | None, float | None]) -> float | None:
    if value is None:
        return None
    low = 0.0 if bounds[0] is None else bounds[0]
    high = 1.0 if bounds[1] is None else bounds[1]
    if high <= low or not low <= value <= high:
        return None
    return float((value - low) / (high - low))


@dataclass(frozen=True)
class ScoreSet:
    """Scores by class, drawn like a classifier's label: a bar per class, the chosen one marked."""

    title: str
    scores: dict[str, float]
    chosen: str | None
    source: str  # the output field or the step they come from
    from_output: bool  # an output field (shown here, not again under the details) or a step's decision
    about: str | None = None  # what the scores are: the field's description or the step's doc

    @property
    def shares(self) -> bool:
        """Whether the scores are probabilities (drawn as percentages)."""
        return shares(self.scores)


def score_sets(
    output: Mapping[str, Any], schema: Mapping[str, Any], trace: Mapping[str, Any] | None = None
) -> list[ScoreSet]:
    """Every class's score: the output's fields of numbers by name, else each decision a step took.

    A step's decision is a record holding numbers by name, and the class it chose as one of its values.
    """
    outputs = Outputs.from_schema(schema)
    chosen = output.get(outputs.label) if outputs.label else None
    titles = output_titles(outputs)
    found = [
        ScoreSet(
            title=titles.get(name, wording.readable(name)),
            scores={str(k): float(v) for k, v in value.items()},
            chosen=str(chosen) if chosen is not None and str(chosen) in value else None,
            source=name,
            from_output=True,
            about=description(outputs, name),
        )
        for name, value in output.items()
        if name not in outputs.roles.values() and display_of(value) == "bars"
    ]
    if found or trace is None:
        return found
    for step in trace.get("steps", []):
        record = step.get("output")
        scores = scores_in(record) if step.get("status") == "ran" else None
        if not scores or not isinstance(record, dict):
            continue
        picked = next((str(v) for v in record.values() if isinstance(v, str) and v in scores), None)
        variant = f" ({step['variant']})" if step.get("variant") else ""
        title = wording.readable(step["name"]) + variant
        found.append(ScoreSet(title, scores, picked, step["name"], from_output=False, about=step.get("doc")))
    return found


@dataclass(frozen=True)
class FieldView:
    """One output field to show: its title, help, value, and the form that fits it."""

    name: str
    title: str
    help: str | None
    value: Any
    display: Display
    columns: dict[str, str] = field(default_factory=dict)  # titles of a record's or table's fields


def field_views(
    output: Mapping[str, Any], schema: Mapping[str, Any], skip: list[str] | None = None
) -> list[FieldView]:
    """The output's fields in schema order (those in `skip` left out), each with its title and display."""
    outputs = Outputs.from_schema(schema)
    titles = output_titles(outputs)
    order = [*titles, *(name for name in output if name not in titles)]
    return [
        FieldView(
            name=name,
            title=titles.get(name) or wording.readable(name),
            help=description(outputs, name),
            value=output.get(name),
            display=display_of(output.get(name)),
            columns=item_titles(outputs, name),
        )
        for name in order
        if name in output and name not in (skip or [])
    ]


# -- peers and cases ---------------------------------------------------------------------------------

# what to do when a peer is down, by its name
_START = "Start it with `just up` (or `docker compose up`), wait until it is ready, then try again."
_REMEDY = {"model service": _START, "gateway": _START}


def problem_text(service: str, error: Exception) -> str:
    """What to tell a person when a service call fails: which service, what happened, what to do."""
    from onepipe.platform.http.client import (
        ServiceFailedError,
        ServiceRejectedError,
        ServiceTimeoutError,
        ServiceUnavailableError,
    )

    remedy = _REMEDY.get(service, "Check that it runs, then try again.")
    if isinstance(error, ServiceRejectedError):
        errors = error.problem.get("errors") or []
        details = "; ".join(
            f"{e.get('loc')}: {e.get('message')}" if e.get("loc") else str(e.get("message")) for e in errors
        ) or str(error.problem.get("detail") or error.problem.get("title") or f"status {error.status}")
        return (
            f"The {service} refused the request: {details.rstrip('.')}. Change what it names and try again."
        )
    if isinstance(error, ServiceTimeoutError):
        return f"The {service} is too slow to answer right now. Try again in a moment, or with fewer inputs."
    if isinstance(error, ServiceUnavailableError):
        detail = getattr(error, "detail", None)
        if detail:  # it answered, but cannot serve: what it said is what to fix
            return f"The {service} cannot take this now: {str(detail).rstrip('.')}. Try again in a moment."
        return f"The {service} is unavailable (down or still starting). {remedy}"
    if isinstance(error, ServiceFailedError):
        return f"The {service} failed on this request. Try again; if it fails again, its log has the details."
    return (
        f"Unexpected problem talking to the {service} ({type(error).__name__}). "
        "Try again; the UI's log has the details."
    )


def case_rows(
    cases: list[dict[str, Any]],
    input_schema: Mapping[str, Any] | None = None,
    output_schema: Mapping[str, Any] | None = None,
    flags_schema: Mapping[str, Any] | None = None,
) -> list[dict[str, str]]:
    """Reported cases as table rows: when, who, the input, the right answer, the flags, the note."""
    in_titles = wording.field_titles(input_schema or {})
    out_titles = output_titles(Outputs.from_schema(output_schema or {}))
    flag_titles = wording.field_titles(flags_schema or {})

    def text(value: Any, titles: Mapping[str, str]) -> str:
        if isinstance(value, dict):
            return "; ".join(
                f"{titles.get(k) or wording.readable(str(k))}: {wording.value(v)}" for k, v in value.items()
            )
        return wording.value(value)

    return [
        {
            "Reported": str(case["added_at"])[:16].replace("T", " "),
            "From": f"{case['source']} ({case.get('reported_by') or '?'})",
            "Input": text(case["input"], in_titles),
            "Right answer": text(case["expected"], out_titles),
            "Flags": text(case["flags"], flag_titles) if case["flags"] else "defaults",
            "Note": case["note"],
            "Case": case["id"],
        }
        for case in cases
    ]
