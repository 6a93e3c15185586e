"""The Versions page's shadow traffic in words: plain functions over ShadowSummary values made by the
gateway's own summary of real shadow records (onepipe.platform.versions.shadow.summarize)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from onepipe.platform.versions.shadow import ShadowRecord, input_hash, summarize
from onepipe.platform.versions.types import ShadowSummary, VersionInfo
from review_triage.pipeline import pipeline as example
from ui_service import charts, shadow_view

DESCRIBED = example.describe("")
OUTPUTS = DESCRIBED.output_schema
INPUTS = DESCRIBED.input_schema
AT = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)
V1, V2 = "aaa111", "bbb222"
NAMES = {V1: "v1 (aaa111)", V2: "v2 (bbb222)"}


def _output(label: str, confidence: float) -> dict[str, Any]:
    return {"label": label, "confidence": confidence}


def _record(
    minutes: int, texts: list[str], champion: list[Any], challenger: list[Any] | None, **more: Any
) -> ShadowRecord:
    inputs = [{"text": text} for text in texts]
    return ShadowRecord(
        at=AT + timedelta(minutes=minutes),
        champion=V1,
        challenger=V2,
        inputs=inputs,
        input_hashes=[input_hash(item) for item in inputs],
        champion_outputs=champion,
        challenger_outputs=challenger,
        champion_ms=10.0 + minutes,
        challenger_ms=None if challenger is None else 20.0 + minutes,
        **more,
    )


def _summary(**changes: Any) -> ShadowSummary:
    records = [
        _record(0, ["A fine film."], [_output("fresh", 0.9)], [_output("fresh", 0.9)]),
        _record(
            1,
            ["Dull.", "A heist in Rome."],
            [_output("rotten", 0.8), _output("plot", 0.7)],
            [_output("fresh", 0.6), _output("plot", 0.7)],
            flags={"neighbours": 1},
        ),
        _record(2, ["Too long."], [_output("rotten", 0.5)], None, error="timeout (504)", skipped_before=3),
    ]
    return summarize(records, OUTPUTS, champion=V1, challenger=V2, kept="the newest 10 records", **changes)


def test_the_headline_counts_and_failures_read_as_sentences() -> None:
    summary = _summary()
    assert shadow_view.headline(summary, NAMES) == (
        "3 requests of the champion v1 (aaa111) shadowed to the challenger v2 (bbb222) from "
        "2026-12-06 19:00 UTC to 2026-12-06 19:02 UTC: 3 inputs compared. Label changed on 1 of 3 rows; "
        "confidence moved by median 0, 95th percentile 0.18, largest 0.2 (1 row past its tolerance of 0.05)."
    )
    assert [(c.label, c.value) for c in shadow_view.counts(summary)] == [
        ("Shadowed", "3"),
        ("Inputs compared", "3"),
        ("Decisions changed", "1"),
        ("Changed", "1"),
        ("Failed", "1"),
        ("Skipped", "3"),
    ]
    assert shadow_view.failures_text(summary) == (
        "1 shadow call failed, the caller's answer untouched (timeout (504): 1)."
    )
    assert shadow_view.failures_text(_summary(since=AT + timedelta(minutes=10))) == ""


def test_agreement_is_per_output_field_titled_by_the_schema_the_label_first() -> None:
    rows = shadow_view.agreement_rows(_summary(), OUTPUTS)
    assert rows[0].field == "Label" and (rows[0].agreeing, rows[0].compared) == (2, 3)
    assert rows[0].text == "67% (2 of 3)"
    table = shadow_view.agreement_table(rows)
    assert table[0] == {"Field": "Label", "Agreement": "67% (2 of 3)", "Moved by": ""}
    assert table[1] == {
        "Field": "Confidence",
        "Agreement": "67% (2 of 3)",
        "Moved by": "median 0, largest 0.2 (tolerance 0.05)",
    }
    shares = shadow_view.agreement_shares(rows)
    assert list(shares)[:2] == ["Label", "Confidence"] and shares["Confidence"] == 2 / 3
    assert shadow_view.agreement_line(_summary(), OUTPUTS).startswith("Label 67% (2 of 3); Confidence 67%")
    chart = charts.agreement(shares)
    assert chart["data"]["values"][0] == {"field": "Label", "share": 2 / 3, "text": "67%"}


def test_changed_answers_show_the_input_flags_and_both_versions_values_of_what_differs() -> None:
    summary = _summary()
    (row,) = shadow_view.changed_rows(summary, OUTPUTS, INPUTS)
    assert row == shadow_view.ChangedRow(
        when="2026-12-06 19:01 UTC",
        input="Text: Dull.",
        flags="Neighbours: 1",
        differs="Label, Confidence",
        champion="Label: rotten; Confidence: 0.8",
        challenger="Label: fresh; Confidence: 0.6",
    )
    assert shadow_view.changed_caption(summary) == "The 1 changed answer, newest first."
    assert shadow_view.kept_text(summary) == "The record keeps the newest 10 records."
    long = _summary().model_copy(
        update={"changed": [summary.changed[0].model_copy(update={"input": {"text": "word " * 100}})]}
    )
    assert (
        len(shadow_view.changed_rows(long, OUTPUTS, INPUTS)[0].input)
        <= len("Text: ") + shadow_view.INPUT_LIMIT + 1
    )
    assert shadow_view.changed_caption(_summary(listed=0)) == (
        "The newest 0 of 1 changed answers (the gateway lists 0 at most)."
    )


def test_latency_is_each_versions_p50_and_p95() -> None:
    assert shadow_view.latency_rows(_summary(), NAMES) == [
        {"Version": "Champion v1 (aaa111)", "Calls": "3", "p50": "11 ms", "p95": "12 ms"},
        {"Version": "Challenger v2 (bbb222)", "Calls": "2", "p50": "20 ms", "p95": "21 ms"},
    ]


def test_the_window_and_what_to_do_when_nothing_is_shadowed() -> None:
    now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    assert shadow_view.since(shadow_view.SINCE_SET, now) is None
    assert shadow_view.since("Last hour", now) == now - timedelta(hours=1)
    assert shadow_view.since("Last 24 hours", now) == now - timedelta(days=1)
    none_set = shadow_view.off_text(challenger_set=False)
    assert none_set.startswith("No challenger is set") and "`GATEWAY_SHADOW_RATE` above 0" in none_set
    quiet = shadow_view.off_text(challenger_set=True, since_at=now)
    assert quiet.startswith("No request has been shadowed to the challenger since 2026-12-06 20:00 UTC.")
    assert "`GATEWAY_SHADOW_RATE`" in quiet
    assert "`versions` scope" in shadow_view.SCOPE_TEXT
    version = VersionInfo(number=2, version=V2, aliases=["challenger"], metrics={}, code="c", loaded=True)
    assert shadow_view.version_names([version]) == {V2: "v2 (bbb222)"}


def test_confidences_that_drift_within_their_tolerance_change_no_answer() -> None:
    """The finding: every confidence moved a little, no label changed, and every row counted as changed."""
    records = [
        _record(0, ["A fine film."], [_output("fresh", 0.9)], [_output("fresh", 0.93)]),
        _record(
            1,
            ["Dull.", "A heist."],
            [_output("rotten", 0.8), _output("plot", 0.7)],
            [
                _output("rotten", 0.79),
                _output("plot", 0.64),  # past the example's declared tolerance of 0.05
            ],
        ),
    ]
    summary = summarize(records, OUTPUTS, champion=V1, challenger=V2)
    assert (summary.rows, summary.decisions_changed, summary.rows_changed) == (3, 0, 1)
    assert summary.headline == (
        "No decision changed on the 3 rows compared; confidence moved by median 0.03, 95th percentile 0.057, "
        "largest 0.06 (1 row past its tolerance of 0.05)."
    )
    confidence = next(a for a in summary.agreement if a.field == "confidence")
    assert (confidence.compared_as, confidence.agreeing, confidence.tolerance) == ("number", 2, 0.05)
    assert confidence.largest_difference is not None and round(confidence.largest_difference, 6) == 0.06
    assert [answer.fields for answer in summary.changed] == [["confidence"]]
    label = next(a for a in summary.agreement if a.field == "label")
    assert (label.compared_as, label.agreeing, label.largest_difference) == ("decision", 3, None)
