"""What to show of what the pipeline returned, and what two runs did differently (no Streamlit here).

Everything is read from the output schema and its `x-role` marks (onepipe.schemas.output_roles)
and from the values themselves, never from the example's field names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from onepipe.schemas import (
    ROLE_CONFIDENCE,
    ROLE_KNOWN,
    ROLE_LABEL,
    ROLE_REASONS,
    ROLE_REVIEW,
    output_roles,
    resolve,
)
from ui_service import wording

Display = Literal["none", "scalar", "long_text", "bars", "terms", "table", "array", "record", "list"]
TIMES = " \u00d7 "  # a shape's sizes: 1 x 7, with the multiplication sign
_CUT_TEXT = re.compile(r"^(?P<start>.*)… \((?P<length>\d+) chars\)$", re.DOTALL)
_CUT_LIST = re.compile(r"^… (?P<more>\d+) more$")
LONG_TEXT = 120  # characters from which a text is a paragraph, not a value in a line
TERM_CHARS = 40  # the longest text shown as a chip
_ARRAY = re.compile(r"^array\(shape=\((?P<shape>[^)]*)\), dtype=(?P<dtype>\w+), head=\[(?P<head>.*)\]\)$")
_SPARSE = re.compile(
    r"^sparse (?P<kind>\w+) \(shape=\((?P<shape>[^)]*)\), dtype=(?P<dtype>\w+), nnz=(?P<nnz>\d+), head="
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def display_of(value: Any) -> Display:
    """The form that fits a value.

    none: empty; scalar: one short value; long_text: a paragraph; bars: numbers by name;
    terms: a list of short values (chips); table: a list of records; array: an array's preview;
    record: named values of other kinds; list: anything else in a list.
    """
    if wording.is_empty(value):
        return "none"
    if isinstance(value, str):
        if array_summary(value) is not None:
            return "array"
        return "long_text" if len(value) > LONG_TEXT else "scalar"
    if isinstance(value, bool) or _is_number(value):
        return "scalar"
    if isinstance(value, dict):
        return "bars" if all(_is_number(v) for v in value.values()) else "record"
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            return "table"
        if all(
            isinstance(v, bool) or _is_number(v) or (isinstance(v, str) and len(v) <= TERM_CHARS)
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


def array_summary(text: str) -> str | None:
    """An array's or sparse matrix's preview (onepipe.preview) in a few words; None for other text."""
    found = _ARRAY.match(text)
    if found:
        dims = [int(n) for n in found["shape"].replace(" ", "").split(",") if n]
        size = math.prod(dims) if dims else 1
        head = [part.strip() for part in found["head"].split(",") if part.strip()]
        first = ", ".join(_maybe_number(part) for part in head[:3])
        shape = TIMES.join(str(n) for n in dims)
        return (
            f"{wording.plural(size, 'value')} ({found['dtype']}"
            + (f", shape {shape}" if len(dims) > 1 else "")
            + ")"
            + (f", starting {first} …" if first else "")
        )
    found = _SPARSE.match(text)
    if found:
        sizes = [n.strip() for n in found["shape"].split(",") if n.strip()]
        return (
            f"sparse matrix {TIMES.join(sizes)} ({found['kind']}, {found['dtype']}) "
            f"with {wording.plural(int(found['nnz']), 'value')} set"
        )
    return None


def _maybe_number(text: str) -> str:
    try:
        return wording.number(float(text))
    except ValueError:
        return text


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


# -- the schema's shapes -------------------------------------------------------------------------


def property_schema(schema: Mapping[str, Any], name: str) -> dict[str, Any]:
    """An object schema's property, its $ref followed and an Optional seen as its non-null shape."""
    raw = schema.get("properties", {}).get(name, {})
    shape = dict(resolve(raw, schema))
    options = [resolve(s, schema) for s in shape.get("anyOf", []) if resolve(s, schema).get("type") != "null"]
    if len(options) == 1:
        shape = {**{k: v for k, v in shape.items() if k != "anyOf"}, **options[0]}
    return {**shape, **{k: v for k, v in raw.items() if k not in ("$ref", "anyOf", "allOf")}}


def item_titles(schema: Mapping[str, Any], name: str) -> dict[str, str]:
    """Titles of the fields of a property's records (a record, or a list of them), from the schema."""
    prop = property_schema(schema, name)
    target: Mapping[str, Any] = prop
    if prop.get("type") == "array" and isinstance(prop.get("items"), Mapping):
        target = resolve(prop["items"], schema)
    if "properties" not in target:
        return {}
    return wording.field_titles(target)


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
    roles = output_roles(schema)
    if not roles:
        return None
    titles = wording.field_titles(schema)
    label = roles.get(ROLE_LABEL)
    confidence = roles.get(ROLE_CONFIDENCE)
    review = roles.get(ROLE_REVIEW)
    known = roles.get(ROLE_KNOWN)
    reasons_field = roles.get(ROLE_REASONS)
    value = output.get(confidence) if confidence else None
    number = float(value) if value is not None and _is_number(value) else None
    reasons = output.get(reasons_field) if reasons_field else None
    known_value = output.get(known) if known else None
    return Verdict(
        label=label,
        label_title=titles.get(label or "", ""),
        label_text=wording.value(output.get(label)) if label else "",
        label_help=property_schema(schema, label).get("description") if label else None,
        confidence=confidence,
        confidence_title=titles.get(confidence or "", ""),
        confidence_value=number,
        confidence_share=_share(number, property_schema(schema, confidence) if confidence else {}),
        confidence_help=property_schema(schema, confidence).get("description") if confidence else None,
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


def _share(value: float | None, prop: Mapping[str, Any]) -> float | None:
    if value is None:
        return None
    low, high = prop.get("minimum", 0.0), prop.get("maximum", 1.0)
    if not (_is_number(low) and _is_number(high)) or high <= low or not low <= value <= high:
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
    roles = output_roles(schema)
    chosen = output.get(roles[ROLE_LABEL]) if ROLE_LABEL in roles else None
    titles = wording.field_titles(schema)
    found = [
        ScoreSet(
            title=titles.get(name, wording.readable(name)),
            scores={str(k): float(v) for k, v in value.items()},
            chosen=str(chosen) if chosen is not None and str(chosen) in value else None,
            source=name,
            from_output=True,
            about=property_schema(schema, name).get("description"),
        )
        for name, value in output.items()
        if name not in roles.values() and display_of(value) == "bars"
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
    titles = wording.field_titles(schema)
    order = [*titles, *(name for name in output if name not in titles)]
    return [
        FieldView(
            name=name,
            title=titles.get(name) or wording.readable(name),
            help=property_schema(schema, name).get("description"),
            value=output.get(name),
            display=display_of(output.get(name)),
            columns=item_titles(schema, name),
        )
        for name in order
        if name in output and name not in (skip or [])
    ]


# -- steps -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    """One step of a trace as its card shows it."""

    number: int
    name: str
    title: str
    variant: str | None
    ran: bool
    time_ms: float
    doc: str
    status_text: str  # how long it took, or why it did not run, in words
    output: Any
    debug: dict[str, Any]
    output_is_answer: bool  # its output is the pipeline's output: shown once, as the answer


def _flag_words(flags_schema: Mapping[str, Any], condition: Mapping[str, Any]) -> str:
    titles = wording.field_titles(flags_schema)
    parts = []
    for flag, wanted in condition.items():
        title = titles.get(flag, wording.readable(flag))
        if isinstance(wanted, bool):
            parts.append(f"{title} is {'on' if wanted else 'off'}")
        else:
            parts.append(f"{title} is {wording.value(wanted)}")
    return " and ".join(parts)


def step_views(
    trace: Mapping[str, Any],
    steps_info: Sequence[Mapping[str, Any]] | None = None,
    flags_schema: Mapping[str, Any] | None = None,
    output: Mapping[str, Any] | None = None,
) -> list[StepView]:
    """Every step in order, with what it did (or why it did not run) in words."""
    infos = {info["name"]: info for info in steps_info or []}
    views = []
    for number, step in enumerate(trace["steps"], start=1):
        ran = step["status"] == "ran"
        if ran:
            status = wording.milliseconds(step.get("time_ms", 0.0))
        elif step["status"] == "off":
            conditions = [c for c in infos.get(step["name"], {}).get("variants", {}).values() if c]
            when = " or ".join(_flag_words(flags_schema or {}, c) for c in conditions)
            status = "switched off by a flag" + (f": it runs only when {when}" if when else "")
        else:
            status = "not needed with these flags: no step that ran uses it"
        views.append(
            StepView(
                number=number,
                name=step["name"],
                title=wording.readable(step["name"]),
                variant=step.get("variant"),
                ran=ran,
                time_ms=step.get("time_ms", 0.0),
                doc=step.get("doc", ""),
                status_text=status,
                output=step.get("output"),
                debug=dict(step.get("debug") or {}),
                output_is_answer=ran and output is not None and same(step.get("output"), output),
            )
        )
    return views


def same(shown: Any, value: Any) -> bool:
    """Whether a step's output (a preview: floats rounded, long texts and lists cut) is this value."""
    if isinstance(shown, float) or isinstance(value, float):
        close = _is_number(shown) and _is_number(value)
        return close and math.isclose(shown, value, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(shown, str) and isinstance(value, str) and shown != value:
        cut = _CUT_TEXT.match(shown)  # onepipe.preview: "<start>… (<length> chars)"
        return cut is not None and len(value) == int(cut["length"]) and value.startswith(cut["start"])
    if isinstance(shown, dict) and isinstance(value, Mapping):
        return shown.keys() == value.keys() and all(same(shown[k], value[k]) for k in shown)
    if isinstance(shown, list) and isinstance(value, list | tuple):
        more = _CUT_LIST.match(shown[-1]) if shown and isinstance(shown[-1], str) else None
        if more:  # "… <n> more": the first items, then how many were left out
            kept = shown[:-1]
            return len(kept) + int(more["more"]) == len(value) and same(kept, list(value[: len(kept)]))
        return len(shown) == len(value) and all(same(a, b) for a, b in zip(shown, value, strict=True))
    return bool(shown == value)


def step_times(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each step that ran with its time, for a bar chart."""
    return [
        {"step": step["name"], "ms": step["time_ms"]} for step in trace["steps"] if step["status"] == "ran"
    ]


def waterfall_rows(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The steps that ran as a waterfall: each starts where the one before it ended (they run in turn)."""
    rows, start = [], 0.0
    for number, step in enumerate(trace["steps"], start=1):
        if step["status"] != "ran":
            continue
        ms = float(step.get("time_ms", 0.0))
        variant = f" ({step['variant']})" if step.get("variant") else ""
        rows.append(
            {
                "step": f"{number}. {wording.readable(step['name'])}{variant}",
                "start": round(start, 4),
                "end": round(start + ms, 4),
                "ms": ms,
                "time": wording.milliseconds(ms),
            }
        )
        start += ms
    return rows


# -- two runs compared -----------------------------------------------------------------------------


def changed_fields(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """The output fields whose values differ between two outputs."""
    return [key for key in dict.fromkeys([*first, *second]) if first.get(key) != second.get(key)]


def step_differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, bool]:
    """For each step, whether the two traces differ in status, variant or output."""
    other = {step["name"]: step for step in second["steps"]}
    differences = {}
    for step in first["steps"]:
        twin = other.get(step["name"], {})
        differences[step["name"]] = any(step.get(k) != twin.get(k) for k in ("status", "variant", "output"))
    return differences


@dataclass(frozen=True)
class MetricView:
    """An st.metric: a figure of run B with its change from run A."""

    label: str
    value: str
    delta: str | None = None
    delta_color: Literal["normal", "inverse", "off"] = "normal"
    help: str | None = None


def compare_summary(first: Mapping[str, Any], second: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """Two answers in one line, e.g. "Verdict unchanged (fresh), confidence +0.14, no review needed."."""
    roles = output_roles(schema)
    titles = wording.field_titles(schema)
    changed = changed_fields(first, second)
    parts = []
    label = roles.get(ROLE_LABEL)
    if label:
        a, b = wording.value(first.get(label)), wording.value(second.get(label))
        parts.append(f"verdict unchanged ({a})" if a == b else f"verdict changed: {a} → {b}")
    confidence = roles.get(ROLE_CONFIDENCE)
    if confidence and _is_number(first.get(confidence)) and _is_number(second.get(confidence)):
        difference = wording.signed(float(second[confidence]) - float(first[confidence]))
        title = titles[confidence].lower()
        unchanged = f"{title} unchanged ({wording.number(float(second[confidence]))})"
        parts.append(unchanged if difference == "0" else f"{title} {difference}")
    review = roles.get(ROLE_REVIEW)
    if review:
        a_review, b_review = bool(first.get(review)), bool(second.get(review))
        if a_review == b_review:
            parts.append("review still needed" if b_review else "no review needed")
        else:
            parts.append("now needs review" if b_review else "no longer needs review")
    headline = {label, confidence, review, roles.get(ROLE_REASONS)}
    others = [name for name in changed if name not in headline]
    if others:
        names = ", ".join(titles.get(name, wording.readable(name)) for name in others)
        verb = "differs" if len(others) == 1 else "differ"
        parts.append(f"{wording.plural(len(others), 'other field')} {verb} ({names})")
    if not changed:
        parts = ["the two answers are identical" + (f": {', '.join(parts)}" if parts else "")]
    text = ", ".join(parts)
    return text[:1].upper() + text[1:] + "."


def flag_differences(first: Mapping[str, Any], second: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """What flag set B changes from A, in words: "Classifier minilm (A: tfidf)"; "" when they are the same."""
    titles = wording.field_titles(schema)
    return "; ".join(
        f"{titles.get(name, wording.readable(name))} {wording.value(second.get(name))} "
        f"(A: {wording.value(first.get(name))})"
        for name in changed_fields(first, second)
    )


def compare_metrics(
    first: Mapping[str, Any], second: Mapping[str, Any], schema: Mapping[str, Any]
) -> list[MetricView]:
    """B's headline figures with their change from A: the verdict, the confidence, the review mark."""
    roles = output_roles(schema)
    titles = wording.field_titles(schema)
    metrics = []
    label = roles.get(ROLE_LABEL)
    if label:
        a, b = wording.value(first.get(label)), wording.value(second.get(label))
        metrics.append(MetricView(titles[label], b, None if a == b else f"was {a}", "off", f"A: {a}; B: {b}"))
    confidence = roles.get(ROLE_CONFIDENCE)
    if confidence and _is_number(second.get(confidence)):
        b_value = float(second[confidence])
        a_value = float(first[confidence]) if _is_number(first.get(confidence)) else None
        delta = None if a_value is None else wording.signed(b_value - a_value)
        a_text, b_text = wording.distinct(b_value if a_value is None else a_value, b_value)
        metrics.append(
            MetricView(
                titles[confidence],
                b_text,
                None if delta == "0" else delta,
                help=f"A: {a_text if a_value is not None else wording.NONE}; B: {b_text}",
            )
        )
    review = roles.get(ROLE_REVIEW)
    if review:
        a_review, b_review = bool(first.get(review)), bool(second.get(review))
        delta = None if a_review == b_review else ("now needed" if b_review else "no longer needed")
        metrics.append(
            MetricView(titles[review], wording.value(b_review), delta, "inverse" if b_review else "normal")
        )
    return metrics


def difference_rows(
    first: Mapping[str, Any], second: Mapping[str, Any], schema: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The output fields that differ, as table rows: the field, A's value, B's value (in words)."""
    titles = wording.field_titles(schema)
    rows = []
    for name in changed_fields(first, second):
        a_text, b_text = pair_text(first.get(name), second.get(name))
        rows.append({"Field": titles.get(name, wording.readable(name)), "A": a_text, "B": b_text})
    return rows


def pair_text(before: Any, after: Any) -> tuple[str, str]:
    """A value before and after a change, in words; two numbers with the digits that tell them apart."""
    numbers = isinstance(before, int | float) and isinstance(after, int | float)
    if numbers and not isinstance(before, bool) and not isinstance(after, bool):
        return wording.distinct(float(before), float(after))
    return wording.shorten(wording.value(before), 200), wording.shorten(wording.value(after), 200)


# -- peers and cases ---------------------------------------------------------------------------------

# what to do when a peer is down, by its name
_START = "Start it with `just up` (or `docker compose up`), wait until it is ready, then try again."
_REMEDY = {"model service": _START, "gateway": _START}


def problem_text(service: str, error: Exception) -> str:
    """What to tell a person when a service call fails: which service, what happened, what to do."""
    from onepipe.client import (
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
    out_titles = wording.field_titles(output_schema or {})
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
