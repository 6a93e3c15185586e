"""A promotion's evidence: cases replayed on two versions, held-out scores and their interval, a verdict."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, Field
from rich.console import Console

from model_service.evidence_view import evidence_table
from onepipe import LoadedPipeline, Pipeline, PipelineDefinitionError
from onepipe.platform.cases import Case, read_cases, write_cases
from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.versions.evidence import (
    ACCURACY,
    MAE,
    Candidate,
    Evidence,
    candidate_of,
    forced,
    gather_evidence,
    held_out_of,
    paired_interval,
    sampled,
)
from review_triage.pipeline import pipeline as example
from tests.conftest import EXAMPLE_ARTIFACTS, example_labels

Loaded = LoadedPipeline[Any, Any, Any]
MINILM = {"classifier": "minilm"}
SCORED_ROWS = 120  # held-out rows the example's evidence scores here: MiniLM runs one text at a time


# -- the example's held-out hook ------------------------------------------------------------------


def test_the_example_declares_its_held_out_rows() -> None:
    rows = held_out_of(example)
    assert rows is not None
    facts = json.loads((EXAMPLE_ARTIFACTS / "metrics.json").read_text())
    stored = [json.loads(line) for line in (EXAMPLE_ARTIFACTS / "snippets.jsonl").read_text().splitlines()]
    unseen = [row for row in stored if not row["trained_on"]]
    assert len(unseen) == facts["held_out_rows"]
    # every row the classifiers never saw, but those with a blank text, which no input can be
    askable = [row for row in unseen if row["text"].strip()]
    assert 0 < len(unseen) - len(askable) < 10
    assert len(rows) == len(askable)
    assert [(i["text"], e) for i, e in rows] == [(r["text"], {"label": r["label"]}) for r in askable]
    categories = Outputs.of(example.describe("")).fields["label"].categories
    assert categories is not None and {e["label"] for _, e in rows} == set(categories)


class _In(BaseModel):
    x: int = Field(description="A number.")


def _out(inputs: list[_In]) -> list[_In]:
    """Out."""
    return inputs


def _define(held_out: Any) -> Pipeline[Any, Any, Any]:
    return Pipeline(
        name="h", input_model=_In, output_model=_In, flags_model=BaseModel, steps=[_out], examples={},
        held_out=held_out,
    )  # fmt: skip


def test_a_held_out_hook_must_be_callable_without_arguments() -> None:
    def needs_a_path(path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return []

    with pytest.raises(PipelineDefinitionError, match="held_out must be a function of no arguments"):
        _define(needs_a_path)
    with pytest.raises(PipelineDefinitionError, match="held_out"):
        _define([({"x": 1}, {"x": 1})])
    assert held_out_of(_define(lambda limit=2: [(_In(x=1), {"x": 1})])) == [({"x": 1}, {"x": 1})]
    assert held_out_of(_define(None)) is None


# -- the example: TF-IDF (the champion) against MiniLM (the challenger) ---------------------------


@pytest.fixture(scope="module")
def held_out_rows() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The first held-out rows of the example, as the hook gives them."""
    rows = held_out_of(example)
    assert rows is not None
    return rows[:SCORED_ROWS]


@pytest.fixture(scope="module")
def answers(example_pipeline: Loaded, held_out_rows: list[Any]) -> dict[str, list[str]]:
    """Each version's labels for the held-out rows, asked directly of the loaded pipeline."""
    texts = [i["text"] for i, _ in held_out_rows]
    return {
        "tfidf": example_labels(example_pipeline, texts, {}),
        "minilm": example_labels(example_pipeline, texts, MINILM),
    }


@pytest.fixture(scope="module")
def library(
    tmp_path_factory: pytest.TempPathFactory, held_out_rows: list[Any], answers: dict[str, list[str]]
) -> list[Case]:
    """Cases built from what the versions answer: one must-pass the challenger breaks, one it fixes, ..."""
    texts = [i["text"] for i, _ in held_out_rows]
    pairs = list(zip(texts, answers["tfidf"], answers["minilm"], strict=True))
    differ = [(t, a, b) for t, a, b in pairs if a != b]
    agree = [(t, a) for t, a, b in pairs if a == b]
    assert len(differ) >= 3 and len(agree) >= 3, "the two classifiers should disagree on a few rows"
    other = {"fresh": "rotten", "rotten": "plot", "plot": "fresh"}
    cases = [
        _case(differ[0][0], differ[0][1], "the champion's answer, must pass", must_pass=True),
        _case(differ[1][0], differ[1][1], "the champion's answer"),
        _case(differ[2][0], differ[2][2], "the challenger's answer"),
        _case(agree[0][0], agree[0][1], "both right", must_pass=True),
        _case(agree[1][0], other[agree[1][1]], "both wrong"),
        # the case's flag beats the challenger's default: both run TF-IDF and answer alike
        _case(differ[0][0], differ[0][1], "TF-IDF on both", flags={"classifier": "tfidf"}),
    ]
    path = tmp_path_factory.mktemp("cases") / "review-triage.jsonl"
    write_cases(path, cases)
    return read_cases(path)


def _case(
    text: str, label: str, note: str, must_pass: bool = False, flags: dict[str, Any] | None = None
) -> Case:
    return Case(
        input={"text": text}, flags=flags or {}, expected={"label": label}, note=note, source="engineer",
        must_pass=must_pass,
    )  # fmt: skip


@pytest.fixture(scope="module")
def evidence(example_pipeline: Loaded, library: list[Case], held_out_rows: list[Any]) -> Evidence:
    """The evidence for promoting MiniLM over TF-IDF, every held-out row of the slice scored."""
    champion = candidate_of("champion", example_pipeline, 1, {})
    challenger = candidate_of("challenger", example_pipeline, 2, MINILM, version="minilm000000")
    return gather_evidence(champion, challenger, library, held_out_rows, held_out_rows=None, seed=7)


def test_the_cases_are_counted_as_each_version_answers_them(
    example_pipeline: Loaded, library: list[Case], evidence: Evidence
) -> None:
    outcomes = {(True, True): "still right", (False, True): "fixed", (True, False): "broken"}
    expected: dict[str, str] = {}
    for case in library:
        text = case.input["text"]
        first = example_labels(example_pipeline, [text], case.flags)[0] == case.expected["label"]
        second = (
            example_labels(example_pipeline, [text], {**MINILM, **case.flags})[0] == case.expected["label"]
        )
        expected[case.id] = outcomes.get((first, second), "still wrong")
    counted = Counter(expected.values())
    assert evidence.cases.model_dump() == {
        "total": 6,
        "fixed": counted["fixed"],
        "broken": counted["broken"],
        "must_pass_broken": sum(expected[c.id] == "broken" and c.must_pass for c in library),
        "still_wrong": counted["still wrong"],
        "still_right": counted["still right"],
    }
    assert counted == {"broken": 2, "fixed": 1, "still right": 2, "still wrong": 1}
    assert [v.id for v in evidence.broken] == [library[0].id, library[1].id]  # must-pass first
    assert [v.id for v in evidence.fixed] == [library[2].id]
    broken = evidence.broken[0]
    assert broken.must_pass and broken.champion_right and not broken.challenger_right
    assert broken.expected == broken.champion == {"label": library[0].expected["label"]}
    assert broken.challenger != broken.champion and broken.outcome == "broken"
    assert (evidence.champion.version, evidence.challenger.version) == (
        example_pipeline.version,
        "minilm000000",
    )


def test_a_broken_must_pass_case_refuses_and_force_records_who_and_why(
    library: list[Case], evidence: Evidence
) -> None:
    assert not evidence.may_promote and not evidence.forced
    assert evidence.refusal == f"The challenger breaks 1 must-pass case: {library[0].id}."
    overridden = forced(evidence, "  MiniLM reads sarcasm better; case reviewed with the team  ", by="ana")
    assert overridden.may_promote and overridden.forced and overridden.forced_by == "ana"
    assert overridden.reason == "MiniLM reads sarcasm better; case reviewed with the team"
    assert overridden.refusal == evidence.refusal  # what was overridden stays on the record
    with pytest.raises(ValueError, match="needs a reason"):
        forced(evidence, " ")


def test_held_out_accuracy_and_its_paired_interval(
    held_out_rows: list[Any], answers: dict[str, list[str]], evidence: Evidence
) -> None:
    truth = [e["label"] for _, e in held_out_rows]
    first = np.array([a == t for a, t in zip(answers["tfidf"], truth, strict=True)], dtype=float)
    second = np.array([a == t for a, t in zip(answers["minilm"], truth, strict=True)], dtype=float)
    (score,) = evidence.held_out
    assert (score.field, score.metric, score.rows) == ("label", ACCURACY, SCORED_ROWS)
    assert score.champion == pytest.approx(first.mean()) and score.challenger == pytest.approx(second.mean())
    assert score.difference == pytest.approx(second.mean() - first.mean())
    assert score.low <= score.difference <= score.high and score.low < score.high
    assert (score.low, score.high) == paired_interval(first, second, seed=7)
    assert evidence.held_out_note == f"All {SCORED_ROWS} held-out rows, scored by both versions."


def test_the_evidence_prints_as_tables(library: list[Case], evidence: Evidence) -> None:
    console = Console(record=True, width=240)
    console.print(evidence_table(forced(evidence, "reviewed", by="ana")))
    text = console.export_text()
    assert f"{library[0].id} (must pass)" in text and "the challenger's answer" in text
    assert "The challenger breaks 1 must-pass case" in text and "Forced by ana: reviewed" in text
    assert "champion v1" in text and "challenger v2 (minilm000000)" in text and "may promote" in text


# -- the parts, on small fabricated versions ----------------------------------------------------


def test_the_interval_is_reproducible_and_contains_the_difference() -> None:
    rng = np.random.default_rng(1)
    first = (rng.random(400) < 0.7).astype(float)
    second = np.where(rng.random(400) < 0.1, 1.0 - first, first)
    observed = second.mean() - first.mean()
    low, high = paired_interval(first, second, seed=3)
    assert low <= observed <= high
    assert paired_interval(first, second, seed=3) == (low, high)
    assert paired_interval(first, second, seed=4) != (low, high)
    assert paired_interval(first, first, seed=3) == (0.0, 0.0)  # the same answers: nothing varies
    # pairing: the rows' shared difficulty cancels, so the interval is narrower than unpaired ones
    unpaired = [paired_interval(first, np.roll(second, 1), seed=3)]
    assert high - low < unpaired[0][1] - unpaired[0][0]


def test_a_sample_of_the_held_out_rows_is_said_so_and_reproducible() -> None:
    rows = [({"i": i}, {"y": i % 2}) for i in range(50)]
    picked = sampled(rows, 20, seed=5)
    assert len(picked) == 20 and picked == sampled(rows, 20, seed=5)
    assert [rows.index(r) for r in picked] == sorted(rows.index(r) for r in picked)
    assert sampled(rows, None, seed=5) == rows and sampled(rows, 80, seed=5) == rows
    same = _fabricated("champion", lambda item: item["i"] % 2)
    found = gather_evidence(
        same, _fabricated("challenger", lambda item: 0), [], rows, held_out_rows=20, seed=5
    )
    assert found.held_out_note.startswith("A random sample of 20 of the 50 held-out rows (seed 5)")
    assert found.held_out[0].rows == 20 and found.held_out[0].metric == MAE
    assert found.may_promote and found.refusal is None and found.cases.total == 0
    none = gather_evidence(same, same, [], None)
    assert (
        none.held_out == []
        and none.held_out_note == "The pipeline declares no held-out set: no scores to compare."
    )


def test_numbers_are_scored_by_mean_absolute_error(tiny: Loaded) -> None:
    readings: list[dict[str, Any]] = [
        {"values": [1.0, 2.0, 6.0], "unit": "kg"},
        {"values": [4.0], "unit": "m"},
        {"values": [3.0, 5.0], "unit": "s"},
    ]
    rows = [(r, {"value": sum(r["values"]) / len(r["values"]), "unit": r["unit"]}) for r in readings]
    summed = candidate_of("champion", tiny, None, {})
    averaged = candidate_of("challenger", tiny, None, {"method": "mean"})
    found = gather_evidence(summed, averaged, [], rows)
    value, unit = found.held_out
    # the trained offset 0.5 on both: the sum misses the mean by 6.5, 0.5 and 4.5, the mean by 0.5 each
    assert (value.field, value.metric, value.rows) == ("value", MAE, 3)
    assert value.champion == pytest.approx((6.5 + 0.5 + 4.5) / 3) and value.challenger == pytest.approx(0.5)
    assert value.low <= value.difference <= value.high
    assert (unit.metric, unit.champion, unit.challenger, unit.difference) == (ACCURACY, 1.0, 1.0, 0.0)


def _fabricated(label: str, answer: Any, fails: str | None = None) -> Candidate:
    calls: list[int] = []

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[dict[str, Any]]:
        calls.append(len(inputs))
        if fails is not None and any(item.get("text") == fails for item in inputs):
            raise ValueError(f"{label} refuses {fails!r}")
        return [{"y": answer(item), "label": answer(item)} for item in inputs]

    return Candidate(label, "fabricated", f"{label}-hash", None, run)


def test_a_case_a_version_refuses_is_wrong_on_it_and_the_others_still_answered() -> None:
    cases = [
        Case(input={"text": t}, expected={"label": "yes"}, source="engineer", must_pass=t == "bad")
        for t in ("a", "bad", "b")
    ]
    champion = _fabricated("champion", lambda item: "yes")
    challenger = _fabricated("challenger", lambda item: "yes", fails="bad")
    found = gather_evidence(champion, challenger, cases, None)
    assert found.cases.still_right == 2 and found.cases.must_pass_broken == 1
    (broken,) = found.broken
    assert broken.challenger == {} and broken.challenger_error == "ValueError: challenger refuses 'bad'"
    assert found.refusal == f"The challenger breaks 1 must-pass case: {cases[1].id}."
