"""Shadow traffic to the challenger as people read it (no Streamlit here).

Plain functions over the gateway's GET /v1/versions/shadow (`ShadowSummary`), also held in a
promotion's evidence as `evidence.shadow`: requests shadowed, failed (and why) and skipped, agreement
per output field, the changed answers with their inputs, each version's latency. Field names and
titles come from the output and input schemas, never from the example's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.versions.types import CHALLENGER, CHAMPION, FieldAgreement, ShadowSummary, VersionInfo
from ui_service import wording
from ui_service.versions_view import Count, moment
from ui_service.views import output_titles

DOCS: Final = "docs/versions.md#shadow-traffic"
SINCE_SET: Final = "Since the challenger was set"
WINDOWS: Final[dict[str, timedelta | None]] = {
    SINCE_SET: None,  # the gateway's default: the pair's first record
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(hours=24),
}
SCOPE_TEXT: Final = (
    "Shadow traffic shows other callers' inputs, so it needs the `versions` scope: give the UI's key "
    "(`UI_API_KEY`) the `jobs`, `feedback` and `versions` scopes in `GATEWAY_API_KEYS`."
)
VALUE_LIMIT: Final = 120  # a changed field's value in the table (a list of records can be long)
INPUT_LIMIT: Final = 160  # an input's value in the table: up to 50 rows must stay readable as a list


def since(window: str, now: datetime) -> datetime | None:
    """The start of a chosen window; None for "since the challenger was set" (the gateway's default)."""
    span = WINDOWS.get(window)
    return None if span is None else now - span


def off_text(challenger_set: bool, since_at: datetime | None = None) -> str:
    """Why nothing shows, and how to turn shadowing on."""
    turn_on = (
        "set the gateway's `GATEWAY_SHADOW_RATE` above 0 (the share of champion predicts sent again to "
        f"the challenger after the caller is answered; 1 sends every one; `{DOCS}`)"
    )
    if not challenger_set:
        return (
            "No challenger is set, so no traffic is shadowed: register one with "
            f"`just train --alias challenger [--flag name=value]` and {turn_on}."
        )
    window = f" since {moment(since_at)}" if since_at is not None else ""
    return f"No request has been shadowed to the challenger{window}. Shadowing is off unless you {turn_on}."


def version_names(versions: Sequence[VersionInfo]) -> dict[str, str]:
    """Each version hash as people name it: "v2 (4f1c0a9e2b7d)"."""
    return {v.version: f"v{v.number} ({v.version})" if v.number is not None else v.version for v in versions}


def _name(version: str | None, names: Mapping[str, str]) -> str:
    return names.get(version or "", version or "unknown")


def headline(summary: ShadowSummary, names: Mapping[str, str]) -> str:
    """The window and what it holds, in one sentence."""
    window = f"from {moment(summary.since)} to {moment(summary.until)}" if summary.until else "so far"
    changed = (
        f"{summary.rows_changed:,} of them answered differently" if summary.rows_changed else "none changed"
    )
    lead = (
        f"{wording.plural(summary.requests, 'request')} of the champion {_name(summary.champion, names)} "
        f"shadowed to the challenger {_name(summary.challenger, names)} {window}: "
        f"{wording.plural(summary.rows, 'input')} compared"
    )
    # the gateway's sentence leads with the decisions, then how far the numbers moved
    return f"{lead}. {summary.headline}" if summary.headline else f"{lead}, {changed}."


def counts(summary: ShadowSummary) -> list[Count]:
    """Requests shadowed, inputs compared and changed, failed and skipped."""
    return [
        Count("Shadowed", f"{summary.requests:,}", "Champion predicts sent again to the challenger."),
        Count("Inputs compared", f"{summary.rows:,}", "Inputs both versions answered."),
        Count(
            "Decisions changed",
            f"{summary.decisions_changed:,}",
            "Inputs where a category, a yes/no field or the label, review or known field changed.",
        ),
        Count(
            "Changed",
            f"{summary.rows_changed:,}",
            "Inputs where any output field changed (a number only past its tolerance).",
        ),
        Count("Failed", f"{summary.failed:,}", "Shadow calls the challenger did not answer."),
        Count(
            "Skipped", f"{summary.skipped:,}", "Sampled requests not sent: too many shadow calls in flight."
        ),
    ]


def failures_text(summary: ShadowSummary) -> str:
    """Why shadow calls failed and how often ("timeout (504): 2; unavailable (503): 1"), or ""."""
    if not summary.failed:
        return ""
    reasons = "; ".join(
        f"{why}: {count:,}" for why, count in sorted(summary.errors.items(), key=lambda e: -e[1])
    )
    calls = wording.plural(summary.failed, "shadow call")
    return f"{calls} failed, the caller's answer untouched" + (f" ({reasons})." if reasons else ".")


@dataclass(frozen=True)
class AgreementRow:
    """One output field: how often both versions gave the same value."""

    field: str
    agreeing: int
    compared: int
    share: float | None
    moved: str = ""  # a number: how far it moved, against its tolerance

    @property
    def text(self) -> str:
        """ "85% (17 of 20)", or "nothing compared"."""
        if self.share is None:
            return "nothing compared"
        return f"{wording.percent(self.share)} ({self.agreeing:,} of {self.compared:,})"


def agreement_rows(summary: ShadowSummary, output_schema: Mapping[str, Any]) -> list[AgreementRow]:
    """Each output field titled as the schema names it, in the answer's order (the label first)."""
    titles = output_titles(Outputs.from_schema(output_schema))
    return [
        AgreementRow(
            titles.get(a.field) or wording.readable(a.field), a.agreeing, a.compared, a.share, moved_text(a)
        )
        for a in summary.agreement
    ]


def moved_text(agreement: FieldAgreement) -> str:
    """How far a number moved: "median 0.03, largest 0.12 (tolerance 0.05)"; "" for other fields."""
    if agreement.compared_as != "number" or agreement.largest_difference is None:
        return ""
    median = wording.number(agreement.median_difference or 0.0)
    tolerance = (
        "5% of the larger value" if agreement.tolerance is None else wording.number(agreement.tolerance)
    )
    return f"median {median}, largest {wording.number(agreement.largest_difference)} (tolerance {tolerance})"


def agreement_table(rows: Sequence[AgreementRow]) -> list[dict[str, str]]:
    """The agreement as table rows: field, agreeing of compared (a number: within its tolerance), how far
    a number moved."""
    return [{"Field": row.field, "Agreement": row.text, "Moved by": row.moved} for row in rows]


def agreement_shares(rows: Sequence[AgreementRow]) -> dict[str, float]:
    """The fields with something compared, and their share of agreeing rows (for the chart)."""
    return {row.field: row.share for row in rows if row.share is not None}


def agreement_line(summary: ShadowSummary, output_schema: Mapping[str, Any]) -> str:
    """The agreement in one line: "Label 85% (17 of 20); Confidence 0% (0 of 20)"."""
    return "; ".join(f"{row.field} {row.text}" for row in agreement_rows(summary, output_schema))


@dataclass(frozen=True)
class ChangedRow:
    """One changed answer: when, the input, the fields that differ and both versions' values of them."""

    when: str
    input: str
    flags: str
    differs: str
    champion: str
    challenger: str


def changed_rows(
    summary: ShadowSummary, output_schema: Mapping[str, Any], input_schema: Mapping[str, Any]
) -> list[ChangedRow]:
    """The changed answers, newest first, each side's differing fields in words."""
    titles = output_titles(Outputs.from_schema(output_schema))
    inputs = wording.field_titles(input_schema)

    def title(name: str) -> str:
        return titles.get(name) or wording.readable(name)

    def shown(value: Any, limit: int) -> str:
        return wording.shorten(wording.value(value), limit)

    def values(output: Mapping[str, Any], fields: Sequence[str]) -> str:
        return "; ".join(f"{title(name)}: {shown(output.get(name), VALUE_LIMIT)}" for name in fields)

    return [
        ChangedRow(
            when=moment(answer.at),
            input="; ".join(
                f"{inputs.get(name) or wording.readable(name)}: {shown(value, INPUT_LIMIT)}"
                for name, value in answer.input.items()
            ),
            flags="; ".join(f"{wording.readable(k)}: {wording.value(v)}" for k, v in answer.flags.items()),
            differs=", ".join(title(name) for name in answer.fields),
            champion=values(answer.champion, answer.fields),
            challenger=values(answer.challenger, answer.fields),
        )
        for answer in summary.changed
    ]


def changed_caption(summary: ShadowSummary) -> str:
    """How many changed answers are listed, of how many."""
    if not summary.rows_changed:
        return "Both versions gave the same answer to every input compared."
    shown = len(summary.changed)
    if shown >= summary.rows_changed:
        return f"The {wording.plural(summary.rows_changed, 'changed answer')}, newest first."
    return (
        f"The newest {shown:,} of {summary.rows_changed:,} changed answers (the gateway lists "
        f"{summary.listed:,} at most)."
    )


def kept_text(summary: ShadowSummary) -> str:
    """What the record keeps, as a sentence; "" when the gateway did not say."""
    return f"The record keeps {summary.kept.rstrip('.')}." if summary.kept else ""


def latency_rows(summary: ShadowSummary, names: Mapping[str, str]) -> list[dict[str, str]]:
    """Each version's calls and p50/p95 pipeline time per request, as the model service timed them."""
    versions = {CHAMPION: summary.champion, CHALLENGER: summary.challenger}
    rows = []
    for alias in (CHAMPION, CHALLENGER):
        found = summary.latency.get(alias)
        if found is None:
            continue
        rows.append(
            {
                "Version": f"{alias.capitalize()} {_name(versions[alias], names)}",
                "Calls": f"{found.calls:,}",
                "p50": wording.milliseconds(found.p50_ms) if found.p50_ms is not None else "-",
                "p95": wording.milliseconds(found.p95_ms) if found.p95_ms is not None else "-",
            }
        )
    return rows
