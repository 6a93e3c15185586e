"""The Versions page: the registry, every registered version, champion against challenger, and the
evidence the last promotion was made on. It shows; `just promote` and `just rollback` move the champion."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from onepipe import PipelineInfo
from onepipe.platform.http.client import ServiceError
from onepipe.platform.versions.evidence import Evidence
from onepipe.platform.versions.types import (
    CHALLENGER,
    CHAMPION,
    CheckList,
    ShadowSummary,
    VersionInfo,
    VersionList,
)
from ui_service import charts, checks_view, shadow_view, versions_view, widgets
from ui_service.peers import Peers, attempt
from ui_service.render import escape, prose

PURPOSE = (
    "The registered versions of the pipeline, which is champion (what callers get) and which is "
    "challenger, and the evidence the last promotion was made on. This page only shows them: "
    "`just promote` makes the challenger champion (after replaying the edge cases and scoring the "
    "held-out rows on both; refused when a must-pass case breaks, unless forced with a reason) and "
    "`just rollback` brings back the previous champion."
)
MOODS = {"ok": (st.success, ":material/database:"), "down": (st.warning, ":material/cloud_off:")}
VERDICTS = {
    "promoted": (st.success, ":material/verified:"),
    "forced": (st.warning, ":material/warning:"),
    "refused": (st.error, ":material/block:"),
}


def show(info: PipelineInfo, peers: Peers) -> None:
    """The registry, the versions, champion and challenger side by side, the last promotion's evidence."""
    widgets.intro("Versions", info, PURPOSE)
    found = attempt("gateway", lambda: peers.gateway().versions())
    if found is None:
        return
    listing = VersionList.model_validate(found)
    message = versions_view.registry_message(listing.registry)
    if message.mood == "none":
        st.info(prose(message.text), icon=":material/info:")
    else:
        say, icon = MOODS[message.mood]
        say(prose(message.text), icon=icon)
    if listing.versions:
        st.subheader("Registered versions")
        st.table(_version_table(versions_view.version_rows(listing.versions, info.flags_schema)))
        every = versions_view.every_metric(listing.versions)
        if every:
            st.caption(
                "The metrics are each version's held-out scores from its training (its model card), "
                "accuracies first, as `just versions` lists them."
            )
            with st.expander(f"Every metric ({len(every)})"):
                st.table([{escape(k): escape(v) for k, v in row.items()} for row in every])
    scheduled_checks(peers, info)
    if listing.registry.kind == "none":
        return
    st.subheader("Champion and challenger")
    side_by_side(listing.versions, info)
    shadow_traffic(peers, listing.versions, info)
    st.subheader("The last promotion")
    if listing.last_promotion is None:
        st.caption(prose(versions_view.no_promotion_text(listing.registry)))
        return
    evidence = versions_view.read_evidence(listing.last_promotion)
    if isinstance(evidence, str):
        st.warning(escape(evidence), icon=":material/warning:")
        return
    last_promotion(evidence, listing.versions, info)


def shadow_traffic(peers: Peers, versions: Sequence[VersionInfo], info: PipelineInfo) -> None:
    """Live traffic shadowed to the challenger since a chosen time: counts, agreement, changed answers,
    latency; or one sentence on how to turn it on, or on the scope the UI's key lacks."""
    st.subheader("Shadow traffic")
    if versions_view.by_alias(versions, CHALLENGER) is None:
        st.caption(prose(shadow_view.off_text(challenger_set=False)))
        return
    window = st.radio("Since", list(shadow_view.WINDOWS), horizontal=True, key="versions.shadow_since")
    since_at = shadow_view.since(window, datetime.now(UTC))
    found = attempt("gateway", lambda: _shadow(peers, since_at))
    if found is None:
        return
    if isinstance(found, str):
        st.caption(prose(found))
        return
    summary = ShadowSummary.model_validate(found)
    if summary.challenger is None or not summary.requests:
        st.caption(prose(shadow_view.off_text(summary.challenger is not None, since_at)))
        return
    names = shadow_view.version_names(versions)
    st.markdown(escape(shadow_view.headline(summary, names)))
    counts = shadow_view.counts(summary)
    for column, count in zip(st.columns(len(counts)), counts, strict=True):
        column.metric(count.label, count.value, help=count.help, border=True)
    failures = shadow_view.failures_text(summary)
    if failures:
        st.warning(escape(failures), icon=":material/warning:")
    shadow_agreement(summary, info)
    st.markdown("**Changed answers**")
    st.caption(escape(shadow_view.changed_caption(summary)))
    rows = shadow_view.changed_rows(summary, info.output_schema, info.input_schema)
    if rows:
        st.table(
            [
                {
                    "When": escape(row.when),
                    "Input": escape(row.input),
                    "Flags": escape(row.flags or "-"),
                    "Differs in": escape(row.differs),
                    "Champion": escape(row.champion),
                    "Challenger": escape(row.challenger),
                }
                for row in rows
            ]
        )
    st.markdown("**Pipeline time per request** (each version's own, as the model service timed it)")
    st.table([{k: escape(v) for k, v in row.items()} for row in shadow_view.latency_rows(summary, names)])
    if summary.kept:
        st.caption(escape(shadow_view.kept_text(summary)))


def _shadow(peers: Peers, since_at: datetime | None) -> dict[str, Any] | str:
    """The gateway's shadow summary; a key without the `versions` scope is a sentence, not an error."""
    try:
        return peers.gateway().shadow(since_at)
    except ServiceError as error:
        if error.status == 403:
            return shadow_view.SCOPE_TEXT
        raise


def shadow_agreement(summary: ShadowSummary, info: PipelineInfo) -> None:
    """Agreement per output field: a table, and the shares drawn."""
    rows = shadow_view.agreement_rows(summary, info.output_schema)
    st.markdown("**Agreement per output field**")
    left, right = st.columns(2)
    left.table([{k: escape(v) for k, v in row.items()} for row in shadow_view.agreement_table(rows)])
    shares = shadow_view.agreement_shares(rows)
    if shares:
        right.vega_lite_chart(charts.agreement(shares), width="stretch")


def scheduled_checks(peers: Peers, info: PipelineInfo) -> None:
    """The latest scheduled check: each version's count, a red line per must-pass case a version fails."""
    st.subheader("Scheduled checks")
    found = attempt("gateway", lambda: peers.gateway().checks())
    if found is None:
        return
    view = checks_view.check_view(CheckList.model_validate(found), info.output_schema)
    if view.mood == "none":
        st.caption(prose(view.headline))
        return
    say = st.warning if view.mood == "failed" else st.markdown
    say(escape(view.headline))
    if view.versions:
        st.markdown("\n".join(f"- {escape(line)}" for line in view.versions))
    for line in view.red:
        st.error(escape(line), icon=":material/error:")
    if view.changes:
        st.caption(escape(view.changes))


def _badges(aliases: Sequence[str]) -> str:
    return " ".join(f":{versions_view.alias_colour(a)}-badge[{escape(a)}]" for a in aliases)


def _version_table(rows: Sequence[versions_view.VersionRow]) -> list[dict[str, str]]:
    return [
        {
            "Version": f"**{escape(row.name)}**",
            "Hash": f"`{row.version}`",
            "Aliases": _badges(row.aliases) or "-",
            "Flag defaults": escape(row.flag_defaults),
            **{escape(title): escape(value) for title, value in row.metrics.items()},
            "Trained": escape(row.trained),
            "Loaded": row.loaded,
        }
        for row in rows
    ]


def side_by_side(versions: Sequence[VersionInfo], info: PipelineInfo) -> None:
    """Champion and challenger in two cards, then what sets the challenger apart."""
    champion = versions_view.by_alias(versions, CHAMPION)
    challenger = versions_view.by_alias(versions, CHALLENGER)
    for column, alias, version in zip(
        st.columns(2), (CHAMPION, CHALLENGER), (champion, challenger), strict=True
    ):
        with column.container(border=True):
            if version is None:
                st.markdown(_badges([alias]))
                st.caption(prose(versions_view.missing_text(alias)))
            else:
                version_card(version, alias, info)
    if champion is None or challenger is None:
        return
    found = versions_view.differences(champion, challenger, info.flags_schema)
    if found:
        st.markdown("**What differs**: " + escape("; ".join(found)) + ".")
    else:
        st.markdown("**What differs**: nothing in their flag defaults, code or headline metrics.")


def version_card(version: VersionInfo, alias: str, info: PipelineInfo) -> None:
    """One version: alias and name, hash, when trained, whether loaded, flag defaults, headline metrics."""
    st.markdown(f"{_badges([alias])} **{escape(versions_view.version_name(version.number))}**")
    loaded = "loaded" if version.loaded else "not loaded"
    st.caption(f"`{version.version}` · trained {escape(versions_view.moment(version.created_at))} · {loaded}")
    defaults = versions_view.flag_defaults_text(version.flag_defaults, info.flags_schema)
    st.markdown(f"Flag defaults: {escape(defaults)}")
    lines = versions_view.metric_lines(version)
    if lines:
        st.markdown("\n".join(f"- {escape(title)}: **{escape(value)}**" for title, value in lines))


def last_promotion(evidence: Evidence, versions: Sequence[VersionInfo], info: PipelineInfo) -> None:
    """The verdict in words, the case counts, the cases it broke and fixed, the held-out scores."""
    verdict = versions_view.promotion_verdict(evidence)
    say, icon = VERDICTS[verdict.kind]
    say(escape(verdict.text), icon=icon)
    champion, challenger = versions_view.named(evidence.champion), versions_view.named(evidence.challenger)
    st.caption(
        f"Evidence gathered {escape(verdict.when)}: champion {escape(champion)} "
        f"against challenger {escape(challenger)}."
    )
    later = versions_view.since_then(evidence, versions)
    if later:
        st.info(prose(later), icon=":material/undo:")
    counts = versions_view.case_counts(evidence)
    st.markdown(f"**Edge cases**: {evidence.cases.total} replayed on both versions")
    for column, count in zip(st.columns(len(counts)), counts, strict=True):
        column.metric(count.label, count.value, help=count.help, border=True)
    headers = (f"Champion {champion}", f"Challenger {challenger}")
    if evidence.broken:
        st.markdown("**Broken**: right on the champion, wrong on the challenger (must-pass first)")
        st.table(_case_table(versions_view.case_rows(evidence.broken, info.output_schema), headers))
    if evidence.fixed:
        st.markdown("**Fixed**: wrong on the champion, right on the challenger")
        st.table(_case_table(versions_view.case_rows(evidence.fixed, info.output_schema), headers))
    held_out(evidence, info)
    if evidence.shadow is not None:
        st.markdown("**Shadow traffic** (live requests sent to both versions before the promotion)")
        names = {ref.version: versions_view.named(ref) for ref in (evidence.champion, evidence.challenger)}
        st.caption(escape(shadow_view.headline(evidence.shadow, names)))
        shadow_agreement(evidence.shadow, info)


def _case_table(rows: Sequence[versions_view.CaseRow], headers: tuple[str, str]) -> list[dict[str, str]]:
    return [
        {
            "Case": escape(row.case) + (" :red-badge[must pass]" if row.must_pass else ""),
            "Note": escape(row.note),
            "Expected": escape(row.expected),
            escape(headers[0]): escape(row.champion),
            escape(headers[1]): escape(row.challenger),
        }
        for row in rows
    ]


def held_out(evidence: Evidence, info: PipelineInfo) -> None:
    """Each scored field: both scores, the difference with its 95% interval in words and drawn."""
    st.markdown("**Held-out rows**")
    rows = versions_view.held_out_rows(evidence.held_out, info.output_schema)
    if rows:
        st.table(
            [
                {
                    "Field": escape(row.field),
                    "Metric": escape(row.metric),
                    "Champion": escape(row.champion),
                    "Challenger": escape(row.challenger),
                    "Difference (95% interval)": escape(row.difference),
                    "Reads": escape(row.reads),
                    "Rows": escape(row.rows),
                }
                for row in rows
            ]
        )
        for unit, points in versions_view.interval_points(rows).items():
            st.vega_lite_chart(charts.intervals(points, unit), width="stretch")
    st.caption(escape(evidence.held_out_note))
