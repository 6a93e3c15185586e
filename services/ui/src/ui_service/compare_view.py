"""What two runs of one input did differently: their answers, their steps, their flags (no Streamlit here).

Read through the outputs' description (their roles, `Outputs`), never from the example's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from onepipe import PipelineInfo
from onepipe.platform.jobs.variants import flag_set_names
from onepipe.platform.schema.outputs import Outputs
from ui_service import wording
from ui_service.views import is_number, output_titles


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
    outputs = Outputs.from_schema(schema)
    titles = output_titles(outputs)
    changed = changed_fields(first, second)
    parts = []
    label = outputs.label
    if label:
        a, b = wording.value(first.get(label)), wording.value(second.get(label))
        parts.append(f"verdict unchanged ({a})" if a == b else f"verdict changed: {a} → {b}")
    confidence = outputs.confidence
    if confidence and is_number(first.get(confidence)) and is_number(second.get(confidence)):
        difference = wording.signed(float(second[confidence]) - float(first[confidence]))
        title = titles[confidence].lower()
        unchanged = f"{title} unchanged ({wording.number(float(second[confidence]))})"
        parts.append(unchanged if difference == "0" else f"{title} {difference}")
    review = outputs.review
    if review:
        a_review, b_review = bool(first.get(review)), bool(second.get(review))
        if a_review == b_review:
            parts.append("review still needed" if b_review else "no review needed")
        else:
            parts.append("now needs review" if b_review else "no longer needs review")
    headline = {label, confidence, review, outputs.reasons}
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
    outputs = Outputs.from_schema(schema)
    titles = output_titles(outputs)
    metrics = []
    label = outputs.label
    if label:
        a, b = wording.value(first.get(label)), wording.value(second.get(label))
        metrics.append(MetricView(titles[label], b, None if a == b else f"was {a}", "off", f"A: {a}; B: {b}"))
    confidence = outputs.confidence
    if confidence and is_number(second.get(confidence)):
        b_value = float(second[confidence])
        a_value = float(first[confidence]) if is_number(first.get(confidence)) else None
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
    review = outputs.review
    if review:
        a_review, b_review = bool(first.get(review)), bool(second.get(review))
        delta = None if a_review == b_review else ("now needed" if b_review else "no longer needed")
        metrics.append(
            MetricView(titles[review], wording.value(b_review), delta, "inverse" if b_review else "normal")
        )
    return metrics


def difference_rows(
    first: Mapping[str, Any],
    second: Mapping[str, Any],
    schema: Mapping[str, Any],
    names: tuple[str, str] = ("A", "B"),
) -> list[dict[str, str]]:
    """The output fields that differ, as table rows: the field, A's value, B's value (in words), the two
    columns named `names` (what differs between the flag sets)."""
    titles = output_titles(Outputs.from_schema(schema))
    first_name, second_name = names if names[0] != names[1] else ("A", "B")
    rows = []
    for name in changed_fields(first, second):
        a_text, b_text = pair_text(first.get(name), second.get(name))
        rows.append(
            {"Field": titles.get(name, wording.readable(name)), first_name: a_text, second_name: b_text}
        )
    return rows


def side_names(first: Mapping[str, Any], second: Mapping[str, Any], info: PipelineInfo) -> tuple[str, str]:
    """Flag sets A and B named by what differs between them ("A: tfidf", "B: minilm"); "A", "B" when alike."""
    named = flag_set_names(first, second, info)
    return (f"A: {named[0]}", f"B: {named[1]}") if named[0] else ("A", "B")


def pair_text(before: Any, after: Any) -> tuple[str, str]:
    """A value before and after a change, in words; two numbers with the digits that tell them apart."""
    numbers = isinstance(before, int | float) and isinstance(after, int | float)
    if numbers and not isinstance(before, bool) and not isinstance(after, bool):
        return wording.distinct(float(before), float(after))
    return wording.shorten(wording.value(before), 200), wording.shorten(wording.value(after), 200)


def _drift_text(value: float | None) -> str:
    return "" if value is None else wording.number(value)


def job_field_rows(found: Mapping[str, Any], titles: Mapping[str, str]) -> list[dict[str, Any]]:
    """A comparison of two jobs (the gateway's JobComparison) field by field: what the field is to the
    comparison, the rows it changed on (a number: past its tolerance), how far numbers moved, and what
    each category became."""
    rows = []
    for change in found["fields"]:
        number = change["compared_as"] == "number"
        tolerance = change.get("tolerance")
        rows.append(
            {
                "Field": titles.get(change["field"], change["field"]),
                "Compared as": change["compared_as"],
                "Rows changed": change["changed"],
                "Median |B - A|": _drift_text(change.get("median_difference")),
                "Largest |B - A|": _drift_text(change.get("largest_difference")),
                "Tolerance": ("5% of the larger value" if tolerance is None else wording.number(tolerance))
                if number
                else "",
                "What became what": ", ".join(
                    f"{t['before']} → {t['after']}: {t['rows']}"
                    for t in change["transitions"]
                    if t["before"] != t["after"]
                ),
            }
        )
    return rows


def job_changed_rows(found: Mapping[str, Any], titles: Mapping[str, str]) -> list[dict[str, Any]]:
    """The changed rows of a comparison of two jobs, a line per changed field, its columns named after the
    jobs as the comparison names them (what differs between them)."""
    first, second = found["a"]["name"], found["b"]["name"]
    if first == second:  # two columns of one name would be one
        first, second = f"A: {first}", f"B: {second}"
    return [
        {"Row": row["row"], "Field": titles.get(change["field"], change["field"])}
        | dict(zip((first, second), pair_text(change["before"], change["after"]), strict=True))
        for row in found["changed_rows"]
        for change in row["changes"]
    ]
