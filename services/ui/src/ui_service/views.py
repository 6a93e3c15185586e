"""How to show what the pipeline returned, and what two runs did differently (no Streamlit here)."""

from __future__ import annotations

from typing import Any, Literal

Display = Literal["bars", "table", "record", "text"]


def display_of(value: Any) -> Display:
    """The form that fits a value: numbers by name as bars, records as a table, a record, or text."""
    if isinstance(value, dict):
        if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
            return "bars"
        return "record"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "table"
    return "text"


def scores_in(value: Any) -> dict[str, float] | None:
    """Numbers by name inside a record (e.g. class scores), to draw as bars."""
    if isinstance(value, dict):
        for inner in value.values():
            if display_of(inner) == "bars":
                return {str(k): float(v) for k, v in inner.items()}
    return None


def step_times(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step that ran with its time, for a bar chart."""
    return [
        {"step": step["name"], "ms": step["time_ms"]} for step in trace["steps"] if step["status"] == "ran"
    ]


def changed_fields(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """The output fields whose values differ between two outputs."""
    return [key for key in dict.fromkeys([*first, *second]) if first.get(key) != second.get(key)]


def step_differences(first: dict[str, Any], second: dict[str, Any]) -> dict[str, bool]:
    """For each step, whether the two traces differ in status, variant or output."""
    other = {step["name"]: step for step in second["steps"]}
    differences = {}
    for step in first["steps"]:
        twin = other.get(step["name"], {})
        differences[step["name"]] = any(step.get(k) != twin.get(k) for k in ("status", "variant", "output"))
    return differences


def problem_text(service: str, error: Exception) -> str:
    """What to tell a person when a service call fails: which service, what happened, what to do."""
    from onepipe.client import (
        ServiceFailedError,
        ServiceRejectedError,
        ServiceTimeoutError,
        ServiceUnavailableError,
    )

    if isinstance(error, ServiceRejectedError):
        errors = error.problem.get("errors") or []
        details = "; ".join(f"{e.get('loc')}: {e.get('message')}" for e in errors) or error.problem.get(
            "detail", ""
        )
        return f"The {service} refused the request: {details}"
    if isinstance(error, ServiceTimeoutError):
        return f"The {service} is too slow to answer right now. Try again in a moment, or with fewer inputs."
    if isinstance(error, ServiceUnavailableError):
        return (
            f"The {service} is unavailable (down or still starting). Start the stack with `just up` "
            "(or `docker compose up`), wait until it is ready, then try again."
        )
    if isinstance(error, ServiceFailedError):
        return f"The {service} failed on this request; its log has the details."
    return f"Unexpected problem talking to the {service}: {error}"


def case_rows(cases: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Reported cases as table rows: when, who, the input, what is expected, the note."""

    def text(value: Any) -> str:
        return ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)

    return [
        {
            "reported": str(case["added_at"])[:16].replace("T", " "),
            "from": f"{case['source']} ({case.get('reported_by') or '?'})",
            "input": text(case["input"]),
            "expected": text(case["expected"]),
            "flags": text(case["flags"]) or "defaults",
            "note": case["note"],
            "case": case["id"],
        }
        for case in cases
    ]
