"""Comparing two finished jobs: gateway.compare on a real JobStore; the route, its page, the CLI, the UI."""

from __future__ import annotations

import html
import os
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gateway.compare import (
    LISTED_ROWS,
    DifferentFilesError,
    NotFinishedError,
    compare_jobs,
    render_html,
)
from onepipe import PipelineInfo
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import JobMeta, JobSpec, RowResult
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess
from review_triage.data import load_snippets
from tests.stacks import KEYS, PROBLEM, Stack, as_key, csv_bytes, stack

# an output schema of every kind: a labelled enum, a confidence, a boolean, a number, a list
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["good", "bad", "unsure"], "type": "string", "x-role": "label"},
        "certainty": {"type": "number", "minimum": 0, "maximum": 1, "x-role": "confidence"},
        "flagged": {"type": "boolean"},
        "stars": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
INFO = PipelineInfo(
    name="test", version="v1", steps=[], input_schema={}, output_schema=SCHEMA, flags_schema={}, examples={}
)


def _output(
    verdict: str, certainty: float = 0.9, stars: float = 3.0, tags: list[str] | None = None
) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "certainty": certainty,
        "flagged": certainty < 0.5,
        "stars": stars,
        "tags": tags or [],
    }


def _job(
    store: JobStore,
    job_id: str,
    results: list[RowResult],
    chunk: int,
    flags: dict[str, Any] | None = None,
    truth: dict[str, str] | None = None,
    state: str = "succeeded",
) -> JobMeta:
    """A job as the worker leaves it: its metadata, and its results in chunks of `chunk` rows."""
    for number, start in enumerate(range(0, len(results), chunk)):
        store.write_chunk(job_id, number, results[start : start + chunk])
    meta = JobMeta.model_validate(
        {
            "id": job_id,
            "spec": JobSpec(
                file_name="reviews.csv", file_format="csv", mapping={}, flags=flags or {}, truth=truth or {}
            ),
            "owner": "k",
            "owner_name": "reviewer",
            "state": state,
            "rows_total": len(results),
            "rows_done": len(results),
            "pipeline": "test",
            "pipeline_version": "v1",
        }
    )
    store.save(meta)
    return meta


def _rows(
    outputs: Sequence[dict[str, Any] | None], inputs: list[dict[str, Any]] | None = None
) -> list[RowResult]:
    inputs = inputs or [{"text": f"review {n}"} for n in range(1, len(outputs) + 1)]
    return [
        RowResult(row=n, input=cells, output=output, error=None if output else "the pipeline refused it")
        for n, (cells, output) in enumerate(zip(inputs, outputs, strict=True), start=1)
    ]


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(str(tmp_path / "storage"))


def test_identical_jobs_change_nothing(store: JobStore) -> None:
    outputs: list[dict[str, Any] | None] = [
        _output("good"),
        _output("bad", 0.4),
        _output("unsure", tags=["x"]),
    ]
    first = _job(store, "a", _rows(outputs), chunk=2)
    second = _job(store, "b", _rows(outputs), chunk=3)
    found = compare_jobs(store, first, second, INFO)
    assert (found.rows, found.compared, found.rows_changed, found.failed_in_one) == (3, 3, 0, 0)
    assert [f.field for f in found.fields] == ["verdict", "certainty", "flagged", "stars", "tags"]
    assert all(f.changed == 0 for f in found.fields) and found.changed_rows == [] and found.scores == []
    categorical = {f.field: f for f in found.fields if f.categorical}
    assert set(categorical) == {"verdict", "flagged"}  # the label, and the boolean; not numbers or lists
    assert all(t.before == t.after for f in categorical.values() for t in f.transitions)
    assert {(t.before, t.rows) for t in categorical["verdict"].transitions} == {
        ("good", 1),
        ("bad", 1),
        ("unsure", 1),
    }
    assert (
        found.headline
        == "No decision changed on the 3 rows compared; certainty did not move; stars did not move."
    )
    assert (found.a.name, found.b.name) == ("job A", "job B")  # nothing differs but the jobs
    assert "No row's output changed." in render_html(found)


def test_a_changed_label_is_counted_in_the_transitions_and_every_field_is_compared(store: JobStore) -> None:
    before = [_output("good"), _output("good"), _output("bad"), _output("good"), _output("bad", tags=["a"])]
    after = [_output("good"), _output("bad"), _output("bad"), _output("bad"), _output("bad", tags=["b"])]
    after[0] = {**after[0], "stars": 4.0}  # a number only
    first = _job(store, "a", _rows(list(before)), chunk=2, flags={"model": "old"})
    second = _job(store, "b", _rows(list(after)), chunk=4, flags={"model": "new"})
    found = compare_jobs(store, first, second, INFO)
    assert (found.a.flags, found.b.flags) == ({"model": "old"}, {"model": "new"})
    assert (found.a.name, found.b.name) == ("model=old", "model=new")  # named by what differs
    assert found.rows_changed == 4  # rows 1 (stars), 2 and 4 (verdict), 5 (tags); row 3 is the same
    assert found.decisions_changed == 2  # rows 2 and 4: the verdict
    kinds = {f.field: f.compared_as for f in found.fields}
    assert kinds == {
        "verdict": "decision",
        "certainty": "number",
        "flagged": "decision",
        "stars": "number",
        "tags": "other",
    }
    changed = {f.field: f.changed for f in found.fields}
    assert changed == {"verdict": 2, "certainty": 0, "flagged": 0, "stars": 1, "tags": 1}
    verdict = next(f for f in found.fields if f.field == "verdict")
    assert [(t.before, t.after, t.rows) for t in verdict.transitions] == [
        ("bad", "bad", 2),
        ("good", "bad", 2),
        ("good", "good", 1),
    ]
    assert [(r.row, [(c.field, c.before, c.after) for c in r.changes]) for r in found.changed_rows] == [
        (1, [("stars", 3.0, 4.0)]),
        (2, [("verdict", "good", "bad")]),
        (4, [("verdict", "good", "bad")]),
        (5, [("tags", ["a"], ["b"])]),
    ]
    assert found.changed_rows[0].input == {"text": "review 1"}


def test_numbers_drift_apart_from_decisions_and_change_only_past_their_tolerance(store: JobStore) -> None:
    """The finding: every confidence moved a little, no label changed, and the comparison said every row
    changed. Certainty is bounded 0-1 (tolerance 0.05 of that range); stars declares its own tolerance."""
    schema = {
        **SCHEMA,
        "properties": {**SCHEMA["properties"], "stars": {"type": "number", "x-tolerance": 0.5}},
    }
    info = INFO.model_copy(update={"output_schema": schema})
    certainty_a = [0.90, 0.80, 0.70, 0.60, 0.95, 0.85, 0.75, 0.65, 0.55, 0.99]
    moves = [0.01, -0.02, 0.03, 0.04, -0.01, 0.02, 0.12, -0.06, 0.0, -0.03]  # two past 0.05
    stars_a = [3.0] * 10
    stars_b = [3.0, 3.4, 3.0, 3.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]  # row 5 past 0.5, row 2 within it
    verdicts_b = ["good"] * 9 + ["bad"]  # one decision: row 10
    before = [_output("good", c, s) for c, s in zip(certainty_a, stars_a, strict=True)]
    after = [
        {**_output(v, round(c + m, 6), s), "flagged": c < 0.5}  # the flag follows A's certainty: unchanged
        for v, c, m, s in zip(verdicts_b, certainty_a, moves, stars_b, strict=True)
    ]
    first = _job(store, "a", _rows(list(before)), chunk=4)
    second = _job(store, "b", _rows(list(after)), chunk=4)
    found = compare_jobs(store, first, second, info)
    by_field = {f.field: f for f in found.fields}
    assert found.decisions_changed == 1 and by_field["verdict"].changed == 1
    assert by_field["certainty"].changed == 2  # rows 7 (0.12) and 8 (0.06)
    assert by_field["stars"].changed == 1  # row 5 (1.0); row 2 (0.4) is within 0.5
    assert found.rows_changed == 4  # rows 5, 7, 8, 10
    assert [r.row for r in found.changed_rows] == [5, 7, 8, 10]
    differences = sorted(abs(m) for m in moves)
    certainty = by_field["certainty"]
    assert certainty.tolerance == pytest.approx(0.05)
    assert certainty.median_difference == pytest.approx((differences[4] + differences[5]) / 2)
    assert certainty.p95_difference == pytest.approx(
        differences[8] + 0.55 * (differences[9] - differences[8])
    )
    assert certainty.largest_difference == pytest.approx(0.12)
    assert by_field["stars"].tolerance == 0.5 and by_field["verdict"].tolerance is None
    assert found.headline == (
        "Verdict changed on 1 of 10 rows; certainty moved by median 0.025, 95th percentile 0.093, "
        "largest 0.12 (2 rows past its tolerance of 0.05); stars moved by median 0, 95th percentile 0.73, "
        "largest 1 (1 row past its tolerance of 0.5)."
    )
    page = render_html(found)
    assert "Verdict changed on 1 of 10 rows; certainty moved by median 0.025" in page
    assert "<td>certainty</td><td>number</td><td>2 (20.0%)</td><td>0.025</td>" in page


def test_jobs_on_different_files_are_refused_naming_the_row(store: JobStore) -> None:
    outputs: list[dict[str, Any] | None] = [_output("good")] * 5
    inputs = [{"text": f"review {n}", "id": n} for n in range(1, 6)]
    other = [dict(cells) for cells in inputs]
    other[3]["text"] = "another review"
    first = _job(store, "a", _rows(outputs, inputs), chunk=2)
    second = _job(store, "b", _rows(outputs, other), chunk=2)
    with pytest.raises(DifferentFilesError) as refused:
        compare_jobs(store, first, second, INFO)
    assert refused.value.row == 4
    assert str(refused.value) == "the jobs did not run on the same file: row 4 differs (column 'text')"

    shorter = _job(store, "c", _rows(outputs[:3], inputs[:3]), chunk=2)
    with pytest.raises(DifferentFilesError) as refused:
        compare_jobs(store, first, shorter, INFO)
    assert refused.value.row == 4 and "job A has 5 rows, job B 3" in str(refused.value)


def test_a_job_that_has_not_succeeded_is_refused(store: JobStore) -> None:
    outputs: list[dict[str, Any] | None] = [_output("good")]
    first = _job(store, "a", _rows(outputs), chunk=1)
    running = _job(store, "b", _rows(outputs), chunk=1, state="running")
    with pytest.raises(NotFinishedError, match=r"job B \(b\) is running; only jobs that succeeded"):
        compare_jobs(store, first, running, INFO)


def test_scores_against_the_truth_match_a_count_by_hand(store: JobStore) -> None:
    truth = ["good", " good ", "bad", "", "unsure", "bad", "good", "bad"]
    stars = ["3", "4", "x", "2", "5", "1", "3", "2"]
    verdicts_a = ["good", "bad", "bad", "good", "good", "bad", None, "good"]
    verdicts_b = ["good", "good", "good", "bad", "unsure", "bad", "good", "bad"]
    stars_a = [3.0, 5.0, 1.0, 2.0, 4.0, 1.0, 3.0, 3.5]
    stars_b = [3.5, 4.0, 1.0, 2.0, 5.0, 3.0, 3.0, 2.0]
    inputs = [
        {"text": f"review {n}", "truth": t, "rating": s}
        for n, (t, s) in enumerate(zip(truth, stars, strict=True))
    ]
    outputs_a = [None if v is None else _output(v, stars=s) for v, s in zip(verdicts_a, stars_a, strict=True)]
    outputs_b = [_output(v, stars=s) for v, s in zip(verdicts_b, stars_b, strict=True)]
    mapping = {"verdict": "truth", "stars": "rating"}
    first = _job(store, "a", _rows(outputs_a, inputs), chunk=3, truth=mapping)
    second = _job(store, "b", _rows(list(outputs_b), inputs), chunk=5)  # A's truth mapping is enough
    found = compare_jobs(store, first, second, INFO)

    # by hand: rows with a truth value and an output in both jobs (row 7 failed in A, row 4 has no truth)
    scored = [i for i in range(8) if truth[i].strip() and verdicts_a[i] is not None]
    right_a = [i for i in scored if verdicts_a[i] == truth[i].strip()]
    right_b = [i for i in scored if verdicts_b[i] == truth[i].strip()]
    verdict = next(s for s in found.scores if s.field == "verdict")
    assert (verdict.kind, verdict.measure, verdict.column) == ("categorical", "accuracy", "truth")
    assert verdict.scored == len(scored) == 6 and verdict.blank == 1
    assert verdict.a == pytest.approx(len(right_a) / 6) and verdict.b == pytest.approx(len(right_b) / 6)
    assert verdict.difference == pytest.approx((len(right_b) - len(right_a)) / 6)
    assert verdict.fixed_rows == [i + 1 for i in scored if i in right_b and i not in right_a] == [2, 5, 8]
    assert verdict.broken_rows == [i + 1 for i in scored if i in right_a and i not in right_b] == [3]
    assert (verdict.fixed, verdict.broken) == (3, 1)

    numbers = [i for i in range(8) if stars[i] != "x" and verdicts_a[i] is not None]
    stars_score = next(s for s in found.scores if s.field == "stars")
    assert (stars_score.kind, stars_score.measure, stars_score.scored) == ("numeric", "mae", len(numbers))
    assert stars_score.a == pytest.approx(
        sum(abs(stars_a[i] - float(stars[i])) for i in numbers) / len(numbers)
    )
    assert stars_score.b == pytest.approx(
        sum(abs(stars_b[i] - float(stars[i])) for i in numbers) / len(numbers)
    )
    closer = [i + 1 for i in numbers if abs(stars_b[i] - float(stars[i])) < abs(stars_a[i] - float(stars[i]))]
    farther = [
        i + 1 for i in numbers if abs(stars_b[i] - float(stars[i])) > abs(stars_a[i] - float(stars[i]))
    ]
    assert (stars_score.fixed_rows, stars_score.broken_rows) == (closer, farther)

    assert found.failed_in_one == 1 and [(f.row, f.failed_in) for f in found.failed_rows] == [(7, "a")]
    assert found.a.rows_failed == 1 and found.b.rows_failed == 0
    page = render_html(found)
    assert f"{verdict.a:.3f}" in page and f"{verdict.b:.3f}" in page and f"{verdict.difference:+.3f}" in page


def test_lists_are_capped_and_the_page_escapes_every_value(store: JobStore) -> None:
    count = LISTED_ROWS + 50
    inputs = [{"text": f"<script>alert({n})</script>"} for n in range(count)]
    first = _job(store, "a", _rows([_output("good")] * count, inputs), chunk=100, flags={"x": "<b>"})
    second = _job(store, "b", _rows([_output("bad", tags=["<i>"])] * count, inputs), chunk=64)
    found = compare_jobs(store, first, second, INFO)
    assert found.rows_changed == count and len(found.changed_rows) == LISTED_ROWS
    page = render_html(found)
    assert "<script>" not in page and "<i>" not in page and "&lt;script&gt;alert(0)&lt;/script&gt;" in page
    assert html.escape('x="<b>"') in page
    assert f"The first {LISTED_ROWS} of {count}." in page


# -- end to end: a real gateway and worker, two flag sets on one labelled file ------------------------


@pytest.fixture(scope="module")
def compare_stack(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack(example_service.url, tmp_path_factory.mktemp("compare"), redis=redis_server.url(9)) as started:
        yield started


@pytest.fixture(scope="module")
def two_jobs(compare_stack: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same labelled file under the TF-IDF and the MiniLM classifiers, both finished."""
    labelled = [s for s in load_snippets() if s.text.strip()][7::211][:60]
    content = csv_bytes([{"text": s.text, "label": s.label} for s in labelled])
    jobs = []
    for flags in ({"classifier": "tfidf"}, {"classifier": "minilm"}):
        answer = compare_stack.submit("labelled.csv", content, flags=flags, truth={"label": "label"})
        assert answer.status_code == 202, answer.text
        jobs.append(answer.json()["id"])
    first, second = (compare_stack.wait(job_id) for job_id in jobs)
    assert first["state"] == second["state"] == "succeeded", (first, second)
    return first, second


def _results(compare_stack: Stack, job_id: str) -> list[RowResult]:
    return list(JobStore(str(compare_stack.storage)).iter_results(job_id))


def test_the_route_compares_two_flag_sets_as_counted_by_hand(
    compare_stack: Stack, two_jobs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    first, second = two_jobs
    answer = httpx.get(f"{first['url']}/compare/{second['id']}", headers=as_key("reviewer"), timeout=60)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    a_rows, b_rows = _results(compare_stack, first["id"]), _results(compare_stack, second["id"])
    assert len(a_rows) == len(b_rows) == found["rows"] == found["compared"] == 60
    assert found["a"]["flags"] == {"classifier": "tfidf"} and found["b"]["flags"] == {"classifier": "minilm"}
    assert found["a"]["pipeline_version"] == first["pipeline_version"]
    outputs = [(a.output or {}, b.output or {}) for a, b in zip(a_rows, b_rows, strict=True)]
    # named by what differs: one flag, whose values pick the steps' variants of those names
    assert (found["a"]["name"], found["b"]["name"]) == ("tfidf", "minilm")
    # by hand: the example declares a tolerance of 0.05 on its three confidences; every other field
    # changes with its value, and the label, kind, sentiment, review mark and duplicate are decisions
    numbers = {"confidence", "kind_confidence", "sentiment_confidence"}
    decisions = {"label", "kind", "sentiment", "needs_review", "duplicate_of"}

    def changed(name: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
        if name in numbers and a.get(name) is not None and b.get(name) is not None:
            return bool(abs(b[name] - a[name]) > 0.05)
        return bool(a.get(name) != b.get(name))

    by_field = {f["field"]: f for f in found["fields"]}
    assert set(by_field) >= set(outputs[0][0])  # every output field
    for name, change in by_field.items():
        assert change["changed"] == sum(changed(name, a, b) for a, b in outputs), name
        assert change["compared_as"] == (
            "number" if name in numbers else "decision" if name in decisions else "other"
        )
    rows_changed = [n for n, (a, b) in enumerate(outputs, start=1) if any(changed(k, a, b) for k in by_field)]
    assert found["rows_changed"] == len(rows_changed) > 0
    assert [r["row"] for r in found["changed_rows"]] == rows_changed
    assert found["decisions_changed"] == sum(any(a[k] != b[k] for k in decisions) for a, b in outputs)
    # the confidences moved on every row, most of them within the tolerance: drift, not a decision
    moves = sorted(abs(b["confidence"] - a["confidence"]) for a, b in outputs)
    assert sum(move > 0 for move in moves) > found["rows_changed"] - found["decisions_changed"]
    confidence = by_field["confidence"]
    assert confidence["median_difference"] == pytest.approx((moves[29] + moves[30]) / 2)
    assert confidence["largest_difference"] == pytest.approx(moves[-1]) and confidence["tolerance"] == 0.05
    labels = sum(a["label"] != b["label"] for a, b in outputs)
    lead = f"Label changed on {labels} of 60 rows" if labels else "Label the same on all 60"
    assert found["headline"].startswith(lead), found["headline"]
    assert "; confidence moved by median " in found["headline"]
    transitions = Counter((a["label"], b["label"]) for a, b in outputs)
    assert {(t["before"], t["after"]): t["rows"] for t in by_field["label"]["transitions"]} == transitions

    truth = [r.input["label"] for r in a_rows]
    right_a = [a["label"] == t for (a, _), t in zip(outputs, truth, strict=True)]
    right_b = [b["label"] == t for (_, b), t in zip(outputs, truth, strict=True)]
    score = next(s for s in found["scores"] if s["field"] == "label")
    assert score["scored"] == 60 and score["measure"] == "accuracy"
    assert score["a"] == pytest.approx(sum(right_a) / 60) and score["b"] == pytest.approx(sum(right_b) / 60)
    assert score["fixed_rows"] == [
        n for n, (a, b) in enumerate(zip(right_a, right_b, strict=True), 1) if b and not a
    ]
    assert score["broken_rows"] == [
        n for n, (a, b) in enumerate(zip(right_a, right_b, strict=True), 1) if a and not b
    ]

    page = httpx.get(f"{first['url']}/compare/{second['id']}.html", headers=as_key("reviewer"), timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (
        page.headers["content-disposition"] == f'inline; filename="compare-{first["id"]}-{second["id"]}.html"'
    )
    text = page.text
    assert first["id"] in text and second["id"] in text and "classifier=&quot;minilm&quot;" in text
    assert (
        f"{score['a']:.3f}" in text and f"{score['b']:.3f}" in text and "label: tfidf \u2192 minilm" in text
    )
    assert f"<p class='headline'>{html.escape(found['headline'])}</p>" in text


def test_the_route_refuses_what_it_cannot_compare(
    compare_stack: Stack, two_jobs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    first, second = two_jobs
    url = f"{first['url']}/compare"
    unknown = httpx.get(f"{url}/20990101000000000000-nothere", headers=as_key("reviewer"))
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    # another key's jobs are invisible; admin sees every job
    assert httpx.get(f"{url}/{second['id']}", headers=as_key("other")).status_code == 404
    assert httpx.get(f"{url}/{second['id']}", headers=as_key("admin"), timeout=60).status_code == 200
    assert httpx.get(f"{url}/{second['id']}", headers=as_key("app")).status_code == 403

    store = JobStore(str(compare_stack.storage))
    cancelled = store.load(second["id"])
    assert cancelled is not None
    # a finished job that did not succeed (a running one would be taken up by the workers' sweep)
    cancelled.id, cancelled.state = "29990101000000000000-cace11ed", "cancelled"
    store.save(cancelled)
    busy = httpx.get(f"{url}/{cancelled.id}", headers=as_key("reviewer"), timeout=60)
    assert busy.status_code == 409 and busy.headers["content-type"] == PROBLEM
    assert (
        busy.json()["detail"]
        == f"job B ({cancelled.id}) is cancelled; only jobs that succeeded can be compared"
    )

    rows = [{"text": "A fine film.", "label": "fresh"}, {"text": "A dull one.", "label": "rotten"}]
    other_file = compare_stack.wait(compare_stack.submit("other.csv", csv_bytes(rows)).json()["id"])
    refused = httpx.get(f"{url}/{other_file['id']}", headers=as_key("reviewer"), timeout=60)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["errors"] == [{"loc": "row 3", "message": "is in job A only (not the same file)"}]
    assert "job A has 60 rows, job B 2" in problem["detail"]
    page = httpx.get(f"{url}/{other_file['id']}.html", headers=as_key("reviewer"), timeout=60)
    assert page.status_code == 422 and page.headers["content-type"] == PROBLEM


def test_the_cli_prints_the_summary_and_saves_the_page(
    compare_stack: Stack, two_jobs: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    first, second = two_jobs
    found = httpx.get(f"{first['url']}/compare/{second['id']}", headers=as_key("reviewer"), timeout=60).json()
    target = tmp_path / "out" / "compare.html"
    done = subprocess.run(
        [
            "uv",
            "run",
            "--frozen",
            "--no-sync",
            "gateway",
            "compare",
            first["id"],
            second["id"],
            "--html",
            str(target),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "GATEWAY_URL": compare_stack.gateway.url,
            "ONEPIPE_API_KEY": KEYS["reviewer"],
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    score = next(s for s in found["scores"] if s["field"] == "label")
    share = f"{found['rows_changed'] / found['compared']:.1%}"
    assert (
        f"60 rows, 60 with an output in both jobs: {found['decisions_changed']} changed a decision, "
        f"{found['rows_changed']} ({share}) changed in any field" in " ".join(done.stdout.split())
    )
    assert found["headline"][:60] in done.stdout and "minilm" in done.stdout
    assert f"{score['a']:.3f}" in done.stdout and f"{score['difference']:+.3f}" in done.stdout
    assert '{"classifier": "minilm"}' in done.stdout and f"saved {target}" in done.stdout
    page = httpx.get(f"{first['url']}/compare/{second['id']}.html", headers=as_key("reviewer"), timeout=60)
    assert target.read_text() == page.text

    wrong = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "gateway", "compare", first["id"], "nothere"],
        cwd=ROOT,
        env={
            **os.environ,
            "GATEWAY_URL": compare_stack.gateway.url,
            "ONEPIPE_API_KEY": KEYS["reviewer"],
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 1 and "Traceback" not in wrong.stdout + wrong.stderr
    assert "refused the request (404): there is no job 'nothere' for this key" in wrong.stdout


def test_the_ui_compares_two_jobs_of_the_list(
    compare_stack: Stack, two_jobs: tuple[dict[str, Any], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_jobs
    monkeypatch.setenv("MODEL_URL", compare_stack.model_url)
    monkeypatch.setenv("GATEWAY_URL", compare_stack.gateway.url)
    monkeypatch.setenv("UI_API_KEY", KEYS["reviewer"])
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(
        str(ROOT / "services" / "ui" / "src" / "ui_service" / "app.py"), default_timeout=120
    )
    at.run()
    at.sidebar.radio(key="page").set_value("Batch jobs").run()
    at.selectbox(key="jobs.compare.a").set_value(first["id"]).run()
    at.selectbox(key="jobs.compare.b").set_value(second["id"]).run()
    at.button(key="jobs.compare.run").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    found = httpx.get(f"{first['url']}/compare/{second['id']}", headers=as_key("reviewer"), timeout=60).json()
    score = next(s for s in found["scores"] if s["field"] == "label")
    metrics = {m.label: (m.value, m.delta) for m in at.metric}
    assert metrics["Decisions changed"][0] == str(found["decisions_changed"])
    assert metrics["Rows changed (any field)"][0] == str(found["rows_changed"])
    assert metrics["label: accuracy under minilm"] == (f"{score['b']:.3f}", f"{score['difference']:+.3f}")
    assert any(found["headline"][:40] in m.value for m in at.markdown)
    changed = at.dataframe[-1].value
    assert len(changed) == sum(len(r["changes"]) for r in found["changed_rows"])
    assert list(changed.columns) == ["Row", "Field", "tfidf", "minilm"]  # the jobs named by what differs
    assert [getattr(b, "label", "") for b in at.get("download_button")] == ["Download the comparison (.html)"]

    # the same job twice is refused on the page, in one sentence
    at.selectbox(key="jobs.compare.b").set_value(first["id"]).run()
    at.button(key="jobs.compare.run").click().run()
    assert [e.value for e in at.error] == ["Pick two different jobs."]
