"""The report's list of the rows most in need of review, and its filter by reason."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from batch_worker.reports.columns import truncate
from batch_worker.reports.html.formatting import count, decimal, percent
from batch_worker.reports.statistics import Summary

LISTED_REASONS: Final = 20
REASON_OPTIONS: Final = 20  # tick boxes in the review list's filter; its text box finds the rest
OPTION_CHARS: Final = 120


def _review_order(summary: Summary) -> str:
    """How the review list is ranked, in the page's words; the order Summary keeps its rows in."""
    order = [f"flagged ({summary.review_field}) before the rest"] if summary.review_field else []
    if summary.reasons_field:
        order.append(f"by the number of reasons ({summary.reasons_field}), most first")
    if summary.confidence_field:
        order.append(f"by {summary.confidence_field}, lowest first")
    return "; then ".join(order) + "; ties in row order"


def review_section(summary: Summary) -> dict[str, Any] | None:
    """The review list: flagged and least confident rows, their reasons and the filter's options."""
    if summary.review_field is None and summary.confidence_field is None and summary.reasons_field is None:
        return None
    entries = summary.review_rows()
    # one tick box per reason in the list (the commonest over the job first, then as listed), a few
    # lines of script hide the rows without a ticked one
    listed: Counter[str] = Counter(reason for entry in entries for reason in dict.fromkeys(entry["reasons"]))
    reasons = sorted(listed, key=lambda reason: -summary.reasons[reason])  # stable: ties as listed
    index = {reason: i for i, reason in enumerate(reasons[:REASON_OPTIONS])}
    rows = [
        {
            **entry,
            "certainty": decimal(entry["certainty"]),
            "options": " ".join(str(index[r]) for r in dict.fromkeys(entry["reasons"]) if r in index),
        }
        for entry in entries
    ]
    return {
        "field": summary.review_field,
        "verdict_field": summary.label_field,
        "certainty_field": summary.confidence_field,
        "flagged": count(summary.flagged),
        "flagged_share": percent(summary.flagged, summary.rows - summary.failed),
        "rows": rows,
        "shown": len(rows),
        "order": _review_order(summary),
        "reasons_field": summary.reasons_field,
        "reasons": [
            {"reason": reason, "rows": count(n)} for reason, n in summary.reasons.most_common(LISTED_REASONS)
        ],
        "options": [
            {"index": i, "reason": truncate(reason, OPTION_CHARS), "rows": count(listed[reason])}
            for reason, i in index.items()
        ],
        "options_total": len(reasons),
        "options_more": len(reasons) > len(index),
    }
