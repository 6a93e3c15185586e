"""A promotion's evidence in the terminal (rich): the versions, the cases, the held-out scores, a verdict."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from onepipe.platform.versions.evidence import ACCURACY, CaseVerdict, Evidence, HeldOutScore, VersionRef
from onepipe.platform.versions.types import ShadowSummary

NOTE_CHARS = 60


def evidence_table(evidence: Evidence) -> Group:
    """Everything a promotion gathered, in the order a person decides by."""
    return Group(
        Text(
            f"{evidence.pipeline}: {_named(evidence.champion)} -> {_named(evidence.challenger)}", style="bold"
        ),
        counts_table(evidence),
        *([changed_table(evidence.broken, "Broken")] if evidence.broken else []),
        *([changed_table(evidence.fixed, "Fixed")] if evidence.fixed else []),
        held_out_table(evidence.held_out, evidence.held_out_note),
        *([shadow_table(evidence.shadow)] if evidence.shadow else []),
        verdict_panel(evidence),
    )


def counts_table(evidence: Evidence) -> Table:
    """The cases by what promoting would do to them."""
    counts = evidence.cases
    table = Table(title=f"Edge cases ({counts.total})")
    for column in ("fixed", "broken", "must-pass broken", "still wrong", "still right"):
        table.add_column(column, justify="right")
    table.add_row(
        f"[green]{counts.fixed}[/green]",
        f"[yellow]{counts.broken}[/yellow]" if counts.broken else "0",
        f"[red]{counts.must_pass_broken}[/red]" if counts.must_pass_broken else "0",
        str(counts.still_wrong),
        str(counts.still_right),
    )
    return table


def changed_table(verdicts: Sequence[CaseVerdict], title: str) -> Table:
    """The cases one version gets right and the other wrong, with both answers."""
    table = Table(title=title)
    for column in ("case", "note", "expected", "champion", "challenger"):
        table.add_column(column, overflow="fold")
    for verdict in verdicts:
        case = f"[red]{verdict.id} (must pass)[/red]" if verdict.must_pass else verdict.id
        note = verdict.note if len(verdict.note) <= NOTE_CHARS else verdict.note[: NOTE_CHARS - 3] + "..."
        table.add_row(
            case,
            escape(note),
            escape(_fields(verdict.expected)),
            escape(verdict.champion_error or _fields(verdict.champion)),
            escape(verdict.challenger_error or _fields(verdict.challenger)),
        )
    return table


def held_out_table(scores: Sequence[HeldOutScore], note: str) -> Table:
    """Each scored field on the held-out rows: both scores and the difference's 95% interval."""
    table = Table(title="Held-out rows", caption=escape(note))
    for column in ("field", "metric", "champion", "challenger", "difference (95% interval)", "rows"):
        table.add_column(column, justify="left" if column in ("field", "metric") else "right")
    for score in scores:
        better = score.low > 0 if score.metric == ACCURACY else score.high < 0
        worse = score.high < 0 if score.metric == ACCURACY else score.low > 0
        style = "green" if better else "red" if worse else "default"  # the interval leaves out no change
        table.add_row(
            score.field,
            score.metric,
            f"{score.champion:.4f}",
            f"{score.challenger:.4f}",
            f"[{style}]{score.difference:+.4f} ({score.low:+.4f} to {score.high:+.4f})[/{style}]",
            f"{score.rows:,}",
        )
    return table


def shadow_table(shadow: ShadowSummary) -> Table:
    """Live traffic shadowed to the challenger: how often each output field agreed, and each latency."""
    since = f"{shadow.since:%Y-%m-%d %H:%M} UTC" if shadow.since else "its start"
    latency = ", ".join(
        f"{name} p50 {seen.p50_ms:.1f} ms, p95 {seen.p95_ms:.1f} ms"
        for name, seen in shadow.latency.items()
        if seen.p50_ms is not None and seen.p95_ms is not None
    )
    caption = (
        f"{shadow.requests:,} requests shadowed since {since}: {shadow.rows:,} rows compared, "
        f"{shadow.rows_changed:,} changed; {shadow.failed:,} failed, {shadow.skipped:,} skipped. {latency}"
    )
    table = Table(title="Shadow traffic", caption=escape(caption))
    for column in ("field", "agreeing", "compared", "share"):
        table.add_column(column, justify="left" if column == "field" else "right")
    for field in shadow.agreement:
        share = f"{field.share:.4f}" if field.share is not None else "-"
        table.add_row(field.field, f"{field.agreeing:,}", f"{field.compared:,}", share)
    return table


def verdict_panel(evidence: Evidence) -> Panel:
    """May promote or refused, and whether and why the verdict was forced."""
    lines: list[RenderableType] = []
    if evidence.refusal:
        lines.append(Text(evidence.refusal, style="red"))
    if evidence.forced:
        by = f" by {evidence.forced_by}" if evidence.forced_by else ""
        lines.append(Text(f"Forced{by}: {evidence.reason}", style="yellow"))
    verdict = (
        "refused"
        if not evidence.may_promote
        else "may promote (forced)"
        if evidence.forced
        else "may promote"
    )
    return Panel(Group(*lines) if lines else Text("No must-pass case breaks."), title=verdict)


def _named(ref: VersionRef) -> str:
    number = f" v{ref.number}" if ref.number is not None else ""
    return f"{ref.label}{number} ({ref.version})"


def _fields(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items())
