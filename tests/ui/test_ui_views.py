"""The UI's display logic without Streamlit: words, forms, views, charts and jobs, from three pipelines."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from onepipe.platform.http.client import ServiceRejectedError, ServiceUnavailableError
from onepipe.preview import KIND, preview
from onepipe_harness.processes import ROOT
from review_triage.pipeline import pipeline as example
from tests import rich_pipeline, tiny_pipeline
from ui_service import charts, compare_view, forms, jobs_view, trace_view, views, wording

EXAMPLE = example.describe("v").model_dump(mode="json")
RICH = rich_pipeline.pipeline.describe("v").model_dump(mode="json")
TINY = tiny_pipeline.pipeline.describe("v").model_dump(mode="json")


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.976606, "0.98"),
        (0.014248, "0.014"),
        (7.549117, "7.55"),
        (3.0, "3"),
        (1234.56, "1,235"),
        (0.5, "0.5"),
        (-0.2, "-0.2"),
        (0.0, "0"),
        (2049, "2049"),
        (1.234e-05, "1.2e-05"),
        (float("nan"), "not a number"),
        (0.99962, "0.9996"),
        (2.0004, "2.0004"),
    ],
)
def test_numbers_are_rounded_for_people(number: float, text: str) -> None:
    assert wording.number(number) == text


def test_values_read_in_plain_words() -> None:
    empty: list[Any] = [None, "", [], {}, True, False]
    assert [wording.value(v) for v in empty] == ["none"] * 4 + ["yes", "no"]
    assert wording.value([0.25, "a"]) == "0.25, a"
    assert wording.value({"kind_confidence": 0.9}) == "Kind confidence: 0.9"
    assert wording.signed(0.14) == "+0.14" and wording.signed(-0.02) == "-0.02" and wording.signed(0.0) == "0"
    assert wording.percent(0.9766) == "98%" and wording.percent(0.0142) == "1.4%"
    assert wording.percent(0.99962) == "99.96%" and wording.percent(0.0004) == "0.04%"
    assert wording.distinct(0.9766, 0.9781) == ("0.977", "0.978") and wording.distinct(0.5, 0.5) == (
        "0.5",
        "0.5",
    )
    assert wording.milliseconds(0.0153) == "0.015 ms" and wording.milliseconds(44.2) == "44 ms"
    assert wording.seconds(185) == "3 min 5 s" and wording.seconds(40) == "40 s"


def test_field_names_read_as_words_from_the_schema() -> None:
    assert wording.readable("kind_confidence") == "Kind confidence"
    assert wording.readable("topTerms") == "Top terms" and wording.readable("URL_path") == "URL path"
    # pydantic's own title reads as the name made readable; a title its author wrote is kept
    assert wording.field_title("needs_review", {"title": "Needs Review"}) == "Needs review"
    assert wording.field_title("x", {"title": "Distance to the city"}) == "Distance to the city"
    titles = wording.field_titles(EXAMPLE["output_schema"])
    assert titles["duplicate_of"] == "Duplicate of" and titles["review_reasons"] == "Review reasons"


def test_forms_show_each_fields_limits_before_anything_is_sent() -> None:
    limits = {spec.name: spec.limits for spec in forms.fields(EXAMPLE["flags_schema"])}
    assert limits == {
        "classifier": None,
        "retriever": None,
        "check_duplicates": None,
        "neighbours": "0 to 20",
        "review_below": "0.5 to 1",
    }
    (text,) = forms.fields(EXAMPLE["input_schema"])
    assert text.kind == "long_text" and text.limits == "up to 5,000 characters"
    assert text.title == "Text :gray[(up to 5,000 characters)]"
    rich = {spec.name: spec for spec in forms.fields(RICH["input_schema"])}
    assert rich["customer_days"].limits == "0 to 36500" and rich["customer_days"].nullable
    assert rich["tags"].kind == "list" and rich["tags"].limits == "up to 5 items, each up to 30 characters"
    tiny = {spec.name: spec for spec in forms.fields(TINY["flags_schema"] | {})}
    assert tiny["scale"].limits == "above 0, up to 100"


def test_list_fields_are_typed_as_comma_separated_values() -> None:
    specs = forms.fields(TINY["input_schema"])
    values = forms.initial(specs[0], TINY["examples"]["three readings"])
    assert values == "1, 2, 4"
    assert forms.collect(specs, {"values": values, "unit": "kg"}) == (
        {"values": [1.0, 2.0, 4.0], "unit": "kg"},
        [],
    )
    assert forms.collect(specs, {"values": "[1.5, 2]", "unit": "kg"})[0]["values"] == [1.5, 2]
    _, problems = forms.collect(specs, {"values": "1, two", "unit": "kg"})
    assert problems == ["Values: 'two' is not a number"]
    rich = forms.fields(RICH["input_schema"])
    sent, problems = forms.collect(rich, {"subject": "Hi", "tags": '["a, b", "c"]', "priority": None})
    assert sent["tags"] == ["a, b", "c"] and sent["priority"] is None and not problems
    assert "tags" not in forms.collect(rich, {"subject": "Hi", "tags": ""})[0]  # left empty: its default


def test_an_empty_required_text_is_caught_before_sending() -> None:
    specs = forms.fields(EXAMPLE["input_schema"])
    assert forms.collect(specs, {"text": "  "}) == ({}, ["Text: type a value first (or click an example)"])


def test_an_example_card_previews_its_values() -> None:
    specs = forms.fields(RICH["input_schema"])
    preview = forms.example_preview(RICH["examples"]["an outage"], specs)
    assert preview.startswith("Login is down · Every login attempt gives an error. · phone")


def _example_output(**changes: Any) -> dict[str, Any]:
    output = {
        "label": "rotten",
        "confidence": 0.62,
        "kind": "review",
        "kind_confidence": 0.97,
        "sentiment": "rotten",
        "sentiment_confidence": 0.62,
        "needs_review": True,
        "review_reasons": ["confidence 0.62 is below 0.70"],
        "duplicate_of": None,
        "similar": [{"id": 1, "label": "rotten", "movie": "m", "text": "t", "score": 2.5}],
    }
    return output | changes


def test_the_verdict_comes_from_the_roles_not_from_field_names() -> None:
    verdict = views.verdict(_example_output(), EXAMPLE["output_schema"])
    assert verdict is not None
    assert (verdict.label_title, verdict.label_text) == ("Label", "rotten")
    assert verdict.confidence_share == pytest.approx(0.62) and verdict.needs_review is True
    assert verdict.reasons == ["confidence 0.62 is below 0.70"] and verdict.known_value is None
    assert verdict.fields == ["label", "confidence", "needs_review", "review_reasons", "duplicate_of"]
    rich = views.verdict({"team": "billing", "confidence": 1.0, "needs_review": False}, RICH["output_schema"])
    assert rich is not None and rich.label_title == "Team" and rich.needs_review is False
    assert views.verdict({"value": 1.0}, TINY["output_schema"]) is None  # no roles: no headline


def test_class_scores_come_from_the_output_else_from_each_steps_decision() -> None:
    output = {"team": "billing", "confidence": 1.0, "scores": {"billing": 5.0, "other": 0.0}}
    (found,) = views.score_sets(output, RICH["output_schema"])
    assert (found.title, found.chosen, found.from_output, found.shares) == ("Scores", "billing", True, False)
    trace = {
        "steps": [
            {
                "name": "kind",
                "status": "ran",
                "variant": "tfidf",
                "doc": "Model 1.",
                "output": {"label": "review", "confidence": 0.9, "scores": {"plot": 0.1, "review": 0.9}},
            },
            {"name": "off", "status": "off", "output": None},
        ]
    }
    (decision,) = views.score_sets(_example_output(), EXAMPLE["output_schema"], trace)
    assert (decision.title, decision.chosen, decision.from_output, decision.shares) == (
        "Kind (tfidf)",
        "review",
        False,
        True,
    )
    # a step's decision does not hide the output field of the same name from the details
    shown = [f.name for f in views.field_views(_example_output(), EXAMPLE["output_schema"], skip=["label"])]
    assert "kind" in shown and "label" not in shown


def test_each_value_gets_the_display_that_fits() -> None:
    assert views.display_of(None) == views.display_of([]) == "none"
    assert views.display_of({"a": 0.5, "b": -1}) == "bars"
    assert views.display_of(["tedious", "mess"]) == "terms"
    assert views.display_of([{"id": 1}]) == "table"
    assert views.display_of("x" * 200) == "long_text"
    assert views.display_of({"bloom": "absent", "confirmed": False}) == "record"
    sparse = {
        KIND: "sparse",
        "format": "csr",
        "shape": [1, 7],
        "dtype": "float64",
        "nnz": 3,
        "head": [[0, 0, 2.0]],
    }
    assert views.display_of(sparse) == "array"
    assert trace_view.array_summary(sparse) == "sparse matrix 1 \u00d7 7 (csr, float64) with 3 values set"
    dense = {KIND: "array", "shape": [384], "dtype": "float32", "head": [0.0123, -0.05, 0.1, 0.2, 0.3]}
    assert views.display_of(dense) == "array"
    assert trace_view.array_summary(dense) == "384 values (float32), starting 0.012, -0.05, 0.1 …"
    grid = {KIND: "array", "shape": [2, 3], "dtype": "int64", "head": [1, 2, 3]}
    assert trace_view.array_summary(grid) == "6 values (int64, shape 2 \u00d7 3), starting 1, 2, 3 …"
    assert trace_view.array_summary("array(shape=(3,), dtype=int64, head=[1])") is None  # text is text
    assert views.display_of("array(shape=(3,), dtype=int64, head=[1])") == "scalar"
    assert views.facts({"bloom": "absent", "confirmed": False, "terms": ["a"]}) == [
        ("Bloom", "absent"),
        ("Confirmed", "no"),
    ]
    rows = views.table_rows([{"id": 1, "score": 7.549117}], {"id": "Id"})
    assert rows == [{"Id": "1", "Score": "7.55"}]


def test_steps_that_did_not_run_say_why_and_the_last_one_is_not_repeated() -> None:
    info = example.describe("v")
    output = _example_output()
    trace: dict[str, list[dict[str, Any]]] = {
        "steps": [
            {"name": "duplicate_of", "doc": "d", "status": "off", "output": None, "debug": {}},
            {"name": "embeddings", "doc": "e", "status": "not_needed", "output": None, "debug": {}},
            {"name": "triage", "doc": "t", "status": "ran", "time_ms": 0.03, "output": output, "debug": {}},
        ]
    }
    steps = [s.model_dump() for s in info.steps]
    off, idle, last = trace_view.step_views(trace, steps, EXAMPLE["flags_schema"], output)
    assert off.status_text == "switched off by a flag: it runs only when Check duplicates is on"
    assert idle.status_text == "not needed with these flags: no step that ran uses it"
    assert last.title == "Triage" and last.status_text == "0.03 ms" and last.output_is_answer
    # a trace's previews round floats to 6 places: still the same output
    assert trace_view.same({"c": 0.123457}, {"c": 0.1234567891})
    long = "x" * 400
    assert trace_view.same({"t": {KIND: "text", "head": long[:300], "length": 400}}, {"t": long})
    assert not trace_view.same({"t": {KIND: "text", "head": long[:300], "length": 401}}, {"t": long})
    assert trace_view.same({KIND: "list", "head": [1, 2], "length": 5}, [1, 2, 3, 4, 5])
    assert not trace_view.same([1, 2], [1, 2, 3])
    assert trace_view.same({KIND: "mapping", "head": {"a": 1}, "length": 2}, {"a": 1, "b": 2})
    assert not trace_view.same({KIND: "mapping", "head": {"a": 1}, "length": 2}, {"a": 2, "b": 2})
    assert not trace_view.same({KIND: "bytes", "length": 1, "head": "00"}, "00")
    rows = trace_view.waterfall_rows(
        {"steps": [trace["steps"][2], {**trace["steps"][2], "name": "b", "time_ms": 2}]}
    )
    assert [(r["step"], r["start"], r["end"]) for r in rows] == [("1. Triage", 0, 0.03), ("2. B", 0.03, 2.03)]


def test_what_a_preview_cut_reads_in_words_on_the_page() -> None:
    detail = preview({"terms": [f"t{i}" for i in range(25)], "text": "y" * 301, "raw": b"\x01" * 40, "n": 2})
    step = {
        "name": "s",
        "doc": "d",
        "status": "ran",
        "time_ms": 1.0,
        "output": preview("z" * 400),
        "debug": detail,
    }
    (card,) = trace_view.step_views({"steps": [step]})
    assert card.output == "z" * 300 + "… (400 chars)" and views.display_of(card.output) == "long_text"
    assert card.debug == {
        "terms": [f"t{i}" for i in range(20)] + ["… 5 more"],
        "text": "y" * 300 + "… (301 chars)",
        "raw": "40 bytes: " + " ".join(["01"] * 32) + " …",
        "n": 2,
    }
    assert views.display_of(card.debug["terms"]) == "terms"
    many = trace_view.shown(preview({str(i): i for i in range(22)}))
    assert list(many)[-1] == "…" and many["…"] == "2 more"
    unshown = {KIND: "unshown", "type": "Broken", "reason": "no preview (RuntimeError)"}
    assert trace_view.shown([unshown]) == ["<Broken: no preview (RuntimeError)>"]
    vector = {KIND: "array", "shape": [3], "dtype": "float32", "head": [1.0, 2.0, 3.0]}
    assert trace_view.shown({"v": vector}) == {"v": vector}  # summarised where it is drawn


def test_two_answers_compare_in_one_summary() -> None:
    schema = EXAMPLE["output_schema"]
    a = _example_output(confidence=0.62)
    b = _example_output(confidence=0.76, needs_review=False, review_reasons=[], kind_confidence=0.99)
    assert compare_view.compare_summary(a, b, schema) == (
        "Verdict unchanged (rotten), confidence +0.14, no longer needs review, "
        "1 other field differs (Kind confidence)."
    )
    assert compare_view.compare_summary(a, a, schema) == (
        "The two answers are identical: verdict unchanged (rotten), confidence unchanged (0.62), "
        "review still needed."
    )
    flipped = compare_view.compare_summary(a, _example_output(label="fresh"), schema)
    assert flipped.startswith("Verdict changed: rotten → fresh")
    metrics = {m.label: (m.value, m.delta) for m in compare_view.compare_metrics(a, b, schema)}
    assert metrics == {
        "Label": ("rotten", None),
        "Confidence": ("0.76", "+0.14"),
        "Needs review": ("no", "no longer needed"),
    }
    assert compare_view.difference_rows(a, b, schema)[0] == {"Field": "Confidence", "A": "0.62", "B": "0.76"}
    assert compare_view.pair_text(0.9766, 0.9781) == ("0.977", "0.978")  # not "0.98" twice
    assert compare_view.pair_text(None, ["a", "b"]) == ("none", "a, b")
    flags = compare_view.flag_differences(
        {"classifier": "tfidf"}, {"classifier": "minilm"}, EXAMPLE["flags_schema"]
    )
    assert flags == "Classifier minilm (A: tfidf)"


def test_a_peer_failure_is_one_sentence_naming_the_service_and_what_to_do() -> None:
    down = ServiceUnavailableError("gateway", "unavailable at http://x after 2 attempts", 503)
    assert views.problem_text("gateway", down).startswith(
        "The gateway is unavailable (down or still starting)."
    )
    busy = ServiceUnavailableError("gateway", "answered 503", 503, "the job queue is unavailable")
    assert views.problem_text("gateway", busy) == (
        "The gateway cannot take this now: the job queue is unavailable. Try again in a moment."
    )
    refused = ServiceRejectedError(
        "gateway", 409, {"detail": "job j1 has already succeeded; nothing to cancel"}
    )
    assert views.problem_text("gateway", refused) == (
        "The gateway refused the request: job j1 has already succeeded; nothing to cancel. "
        "Change what it names and try again."
    )
    assert "Traceback" not in views.problem_text("gateway", ValueError("boom"))


def test_charts_draw_scores_signs_and_a_waterfall() -> None:
    label = charts.score_bars({"plot": 0.02, "review": 0.98}, "review", True)
    assert [(v["class"], v["text"], v["chosen"]) for v in label["data"]["values"]] == [
        ("review", "98%", True),
        ("plot", "2%", False),
    ]
    signed = charts.signed_bars({"dull": -0.4, "sharp": 0.9, "film": 0.1})
    assert [(v["name"], v["sign"], v["text"]) for v in signed["data"]["values"]] == [
        ("sharp", "positive", "+0.9"),
        ("film", "positive", "+0.1"),
        ("dull", "negative", "-0.4"),
    ]
    assert signed["layer"][0]["encoding"]["color"]["scale"]["range"] == [charts.POSITIVE, charts.NEGATIVE]
    counts = charts.signed_bars({"refund": 2, "invoice": 1})
    assert [v["text"] for v in counts["data"]["values"]] == ["2", "1"]  # no sign where none is negative
    low, high = signed["encoding"]["x"]["scale"]["domain"]
    assert low < -0.4 and high > 0.9  # room beside the bars for their values
    rows = [{"step": "1. A", "start": 0, "end": 2, "ms": 2, "time": "2 ms"}]
    assert charts.waterfall(rows)["layer"][0]["encoding"]["x2"] == {"field": "end"}


NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _job(**changes: Any) -> dict[str, Any]:
    job = {
        "id": "j1",
        "file_name": "f.csv",
        "state": "running",
        "rows_total": 100,
        "rows_done": 40,
        "rows_failed": 2,
        "created_at": (NOW - timedelta(seconds=30)).isoformat(),
        "started_at": (NOW - timedelta(seconds=20)).isoformat().replace("+00:00", "Z"),
        "finished_at": None,
        "last_worked_at": (NOW - timedelta(seconds=1)).isoformat(),
        "flags": {"neighbours": 1},
        "pipeline_version": "v1",
    }
    return job | changes


def test_jobs_show_progress_speed_and_time_left() -> None:
    (row,) = jobs_view.job_rows([_job()], NOW)
    assert row == {
        "Job": "j1",
        "File": "f.csv",
        "State": "running",
        "Progress": 0.4,
        "Rows": "40 of 100",
        "Failed": 2,
        "Rows/s": "2.0",
        "Time": "about 30 s left",
        "Created": "2026-12-02 11:59",
    }
    assert (
        jobs_view.status_line(_job(), NOW)
        == "running: 40 of 100 rows, 2 rows failed, 2.0 rows/s, about 30 s left"
    )
    done = _job(state="succeeded", rows_done=100, finished_at=(NOW - timedelta(seconds=5)).isoformat())
    assert jobs_view.timing_text(done, NOW) == "took 15 s" and jobs_view.progress(done) == 1.0
    assert jobs_view.job_label(_job()) == "j1: f.csv, neighbours=1, version v1"
    cancelled = _job(state="cancelled", error="cancelled by reviewer")
    assert jobs_view.ending_text(cancelled) == (
        "Job j1 was cancelled by reviewer after 40 of 100 rows; resume it to go on from the rows done."
    )
    failed = _job(state="failed", error="the model service was down for 300 s.")
    assert jobs_view.ending_text(failed) == (
        "Job j1 failed after 40 of 100 rows: the model service was down for 300 s. "
        "Resume it to go on from the rows done."
    )


def test_jobs_offer_cancel_while_running_and_resume_once_stopped_or_stuck() -> None:
    assert jobs_view.actions(_job(), NOW) == ["cancel"]
    assert jobs_view.actions(_job(state="cancelled"), NOW) == ["resume"]
    assert jobs_view.actions(_job(state="failed"), NOW) == ["resume"]
    assert jobs_view.actions(_job(state="succeeded"), NOW) == []
    idle = (NOW - timedelta(seconds=jobs_view.STUCK_SECONDS + 5)).isoformat()
    assert jobs_view.actions(_job(last_worked_at=idle), NOW) == ["cancel", "resume"]


def test_only_columns_named_like_a_field_are_prefilled() -> None:
    assert jobs_view.matching_column("text", ["id", "text"]) == "text"
    assert jobs_view.matching_column("customer_days", ["Customer days", "x"]) == "Customer days"
    assert jobs_view.matching_column("text", ["review", "id"]) is None  # never a guess
    assert jobs_view.matching_column("a_b", ["a b", "A-B"]) is None  # two could match: none is picked


def test_reported_cases_read_with_field_titles() -> None:
    case = {
        "id": "case-1",
        "added_at": "2026-12-02T07:00:00Z",
        "source": "ui",
        "reported_by": "reviewer",
        "input": {"text": "Meh."},
        "flags": {"classifier": "minilm"},
        "expected": {"needs_review": True},
        "note": "lukewarm",
    }
    (row,) = views.case_rows(
        [case], EXAMPLE["input_schema"], EXAMPLE["output_schema"], EXAMPLE["flags_schema"]
    )
    assert row == {
        "Reported": "2026-12-02 07:00",
        "From": "ui (reviewer)",
        "Input": "Text: Meh.",
        "Right answer": "Needs review: yes",
        "Flags": "Classifier: minilm",
        "Note": "lukewarm",
        "Case": "case-1",
    }


def test_the_viewer_settings_sit_beside_the_script_every_launcher_runs() -> None:
    """Streamlit reads .streamlit/config.toml beside the script it runs, whatever the working directory:
    the Procfile (`just up`), compose and the image all run the same script, and the image copies its folder.
    """
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ": " in line
    )
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["ui"]["command"]
    scripts = {procfile["ui"].split("streamlit run ")[1].split()[0], compose[2]}
    (script,) = scripts
    config = tomllib.loads((ROOT / script).parent.joinpath(".streamlit", "config.toml").read_text())
    assert config["client"] == {"toolbarMode": "viewer", "showErrorDetails": "none"}
    assert (
        config["server"]["address"] == "127.0.0.1"
    )  # this machine only, unless STREAMLIT_SERVER_ADDRESS says
    copied = [
        line.split()[-1]
        for line in (ROOT / "docker" / "service.Dockerfile").read_text().splitlines()
        if line.startswith("COPY --from=")
    ]
    assert str(PurePosixPath("/app") / PurePosixPath(script).parent) in copied
    assert Path(ROOT / script).name == "app.py"
