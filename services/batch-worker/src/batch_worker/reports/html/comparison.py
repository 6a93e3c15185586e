"""The report's comparison of the two flag sets: field by field, what became what, the changed rows."""

from __future__ import annotations

from typing import Any, Final

from batch_worker.reports.html.formatting import count, decimal, percent
from batch_worker.reports.statistics import Summary
from onepipe.platform.schema.outputs import DECISION

MATRIX_VALUES: Final = 12  # a categorical field with more values seen gets a list of changes, not a matrix
LISTED_CHANGES: Final = 20


def _change_table(summary: Summary, name: str) -> dict[str, Any]:
    """What a categorical field's values became: a matrix for few values, else the commonest changes."""
    pairs = summary.changes[name].pairs
    seen = {a for a, _ in pairs} | {b for _, b in pairs}
    values = [value for value in summary.categoricals[name].order() if value in seen]
    values += sorted(seen - set(values))
    if len(values) <= MATRIX_VALUES:
        lines = [
            {
                "value": a,
                "cells": [{"rows": count(pairs[(a, b)]), "same": a == b} for b in values],
                "total": count(sum(pairs[(a, b)] for b in values)),
            }
            for a in values
        ]
        return {"field": name, "matrix": {"columns": values, "rows": lines}}
    changes = sorted(((n, a, b) for (a, b), n in pairs.items() if a != b), key=lambda x: (-x[0], x[1], x[2]))
    return {
        "field": name,
        "matrix": None,
        "changes": [
            {"before": a, "after": b, "rows": count(n), "share": percent(n, summary.compared)}
            for n, a, b in changes[:LISTED_CHANGES]
        ],
        "shown": min(len(changes), LISTED_CHANGES),
        "kinds": count(len(changes)),
        "more": len(changes) > LISTED_CHANGES,
    }


def _field_rows(summary: Summary) -> list[dict[str, Any]]:
    """Each field: rows changed (numbers past their tolerance), agreement, and for numbers the drift."""
    tally, fields = summary.tally, []
    for name, _ in summary.columns:
        changed = tally.changed[name]
        drift = tally.drift.get(name)
        moved = drift is not None and drift.count > 0
        fields.append(
            {
                "name": name,
                "kind": summary.kinds[name],
                "decision": tally.compared_as(name) == DECISION,
                "changed": count(changed),
                "agreement": percent(summary.compared - changed, summary.compared),
                "median": decimal(drift.median) if drift is not None and moved else "",
                "p95": decimal(drift.p95) if drift is not None and moved else "",
                "largest": decimal(drift.largest) if drift is not None and moved else "",
                "tolerance": tally.tolerance_text(name) if drift is not None else "",
            }
        )
    return fields


def comparison_section(summary: Summary) -> dict[str, Any] | None:
    """The two variants compared: the headline, each field's changes, what became what, the changed rows."""
    if not summary.comparing:
        return None
    tally = summary.tally
    # a table of what became what for the verdict, and for every other categorical field that changed
    tables = [
        _change_table(summary, name)
        for name in summary.categoricals
        if summary.changes[name].pairs and (name == summary.label_field or tally.changed[name])
    ]
    changed = [
        {
            **item,
            "certainty": decimal(item["certainty"]),
            "compare_certainty": decimal(item["compare_certainty"]),
        }
        for item in summary.changed
    ]
    return {
        "headline": tally.headline(),
        "decisions_changed": count(tally.decisions_changed),
        "decisions_share": percent(tally.decisions_changed, summary.compared),
        "has_decisions": bool(tally.decisions()),
        "fields": _field_rows(summary),
        "tables": tables,
        "verdict_field": summary.label_field,
        "certainty_field": summary.confidence_field,
        "rate": percent(summary.agreed, summary.compared),
        "agreed": count(summary.agreed),
        "compared": count(summary.compared),
        "one_failed": count(summary.compare_failed) if summary.compare_failed else None,
        "changed": changed,
        "changed_total": count(summary.rows_changed),
        "changed_share": percent(summary.rows_changed, summary.compared),
        "shown": len(changed),
        "more": summary.rows_changed > len(changed),
    }
