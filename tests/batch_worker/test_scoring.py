"""Scores against a truth column: the figures equal scikit-learn's, and the reports carry them."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
)

from batch_worker.reports import write_reports
from batch_worker.reports.scoring import CategoricalScore, NumericScore, Scoring
from onepipe import PipelineInfo
from onepipe.platform.jobs.datasets import truth_problems
from onepipe.platform.jobs.types import JobMeta, JobSpec, RowResult
from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.schema.values import truth_category
from review_triage.pipeline import Triage
from tests.rich_pipeline import Routing
from tests.tiny_pipeline import Summary

TRIAGE = Triage.model_json_schema()
LABELS = ["fresh", "rotten", "plot"]
VARIANTS = {"flags": "output", "compare flags": "compare_output"}


def _labelled_rows(n: int, seed: int) -> list[RowResult]:
    """Random truths and predictions (some blank truths, a class only ever predicted, one only true)."""
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        truth = rng.choice([*LABELS, "plot", "fresh", "unseen-truth", ""])
        first = {"label": rng.choice([*LABELS, "fresh"]), "confidence": rng.random()}
        second = {"label": rng.choice(LABELS), "confidence": rng.random()}
        rows.append(
            RowResult(row=i, input={"text": f"t{i}", "cat": truth}, output=first, compare_output=second)
        )
    return rows


def _pairs(rows: list[RowResult], attribute: str) -> tuple[list[str], list[str]]:
    scored = [r for r in rows if r.input["cat"]]
    return [r.input["cat"] for r in scored], [getattr(r, attribute)["label"] for r in scored]


def _report(folder: Path, rows: list[RowResult], compare_flags: dict[str, Any] | None) -> str:
    """The four reports of a job over `rows` scoring `label` against the column `cat`; the HTML's text."""
    info = PipelineInfo(
        name="review-triage",
        version="0123456789ab",
        steps=[],
        input_schema={},
        output_schema=TRIAGE,
        flags_schema={},
        examples={},
    )
    meta = JobMeta(
        id="job-1",
        spec=JobSpec(
            file_name="labelled.csv",
            file_format="csv",
            mapping={},
            compare_flags=compare_flags,
            truth={"label": "cat"},
        ),
        owner="key-1",
        owner_name="reviewer",
    )
    write_reports(lambda: iter(rows), meta, info, ["text", "cat"], lambda name: (folder / name).open("wb"))
    return (folder / "report.html").read_text()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_categorical_scores_equal_scikit_learns(seed: int) -> None:
    rows = _labelled_rows(400, seed)
    scoring = Scoring({"label": "cat"}, Outputs.from_schema(TRIAGE), VARIANTS, "confidence")
    for row in rows:
        scoring.add(row)
    scores = scoring.fields["label"]
    assert scores.blank == sum(1 for r in rows if not r.input["cat"])
    for variant, attribute in VARIANTS.items():
        truth, predicted = _pairs(rows, attribute)
        score = scores.variants[variant]
        assert isinstance(score, CategoricalScore)
        assert score.scored == len(truth)
        assert score.accuracy == pytest.approx(accuracy_score(truth, predicted))
        labels = sorted(set(truth) | set(predicted))
        assert score.labels() == labels
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, predicted, labels=labels, zero_division=0
        )
        classes = score.classes()
        assert [c.precision for c in classes] == pytest.approx(list(precision))
        assert [c.recall for c in classes] == pytest.approx(list(recall))
        assert [c.f1 for c in classes] == pytest.approx(list(f1))
        assert [c.support for c in classes] == list(support)
        for average in ("macro", "weighted"):
            expected = precision_recall_fscore_support(
                truth, predicted, labels=labels, average=average, zero_division=0
            )
            assert score.averages()[average] == pytest.approx(expected[:3])
        matrix = confusion_matrix(truth, predicted, labels=labels)
        assert [[score.confusion[(t, p)] for p in labels] for t in labels] == matrix.tolist()


def test_the_most_confident_wrong_rows_come_highest_first() -> None:
    rows = _labelled_rows(300, 5)
    scoring = Scoring(
        {"label": "cat"}, Outputs.from_schema(TRIAGE), VARIANTS, "confidence", lambda r: [r.input["text"]]
    )
    for row in rows:
        scoring.add(row)
    listed = scoring.most_confident_wrong("label", "flags")
    wrong = [r for r in rows if r.input["cat"] and r.input["cat"] != (r.output or {})["label"]]
    expected = sorted(wrong, key=lambda r: (r.output or {})["confidence"], reverse=True)[:20]
    assert [entry["row"] for entry in listed] == [r.row for r in expected]
    assert listed[0]["inputs"] == [expected[0].input["text"]]
    assert all(entry["truth"] != entry["predicted"] for entry in listed)


def test_numeric_scores_equal_scikit_learns_and_unreadable_truths_are_counted() -> None:
    schema = Summary.model_json_schema()
    rng = random.Random(7)
    rows, truths, predictions = [], [], []
    for i in range(1, 201):
        value = rng.uniform(-50, 50)
        cell: Any = f" {value + rng.gauss(0, 3):.4f} " if i % 3 else value + 1  # text and numbers
        if i % 17 == 0:
            cell = "n/a"
        elif i % 19 == 0:
            cell = ""
        else:
            truths.append(float(cell))
            predictions.append(value)
        rows.append(RowResult(row=i, input={"reading": cell}, output={"value": value, "unit": "kg"}))
    scoring = Scoring({"value": "reading"}, Outputs.from_schema(schema), {"flags": "output"})
    records = [scoring.add(row) for row in rows]
    score = scoring.fields["value"].variants["flags"]
    assert isinstance(score, NumericScore) and score.scored == len(truths)
    assert score.mae == pytest.approx(mean_absolute_error(truths, predictions))
    assert score.rmse == pytest.approx(math.sqrt(mean_squared_error(truths, predictions)))
    assert scoring.fields["value"].unreadable == sum(1 for i in range(1, 201) if i % 17 == 0)
    assert scoring.fields["value"].blank == sum(1 for i in range(1, 201) if i % 19 == 0 and i % 17)
    assert records[16] == {"truth.value": None, "abs_error.value": None}  # row 17: "n/a"
    assert records[0]["abs_error.value"] == pytest.approx(abs(truths[0] - predictions[0]))


def test_boolean_truths_read_yes_no_words_and_text_is_trimmed() -> None:
    assert [truth_category(v, boolean=True) for v in ["Yes", " TRUE ", "0", "f", True, "maybe"]] == [
        "true",
        "true",
        "false",
        "false",
        "true",
        "maybe",
    ]
    assert truth_category("  plot ", boolean=False) == "plot"
    assert truth_category("   ", boolean=False) is None and truth_category(None, boolean=False) is None


def test_truth_mappings_name_what_is_wrong() -> None:
    schema = Routing.model_json_schema()
    header = ["subject", "team_truth", "urgency_truth"]
    assert truth_problems(schema, header, {"team": "team_truth", "urgency": "urgency_truth"}, "csv") == []
    problems = dict(
        truth_problems(
            schema, header, {"colour": "team_truth", "matches": "team_truth", "team": "nowhere"}, "csv"
        )
    )
    assert problems["colour"].startswith("not an output field; output fields: ")
    assert problems["matches"] == "a list or object output field cannot be scored against a column"
    assert problems["team"].startswith("the file has no column 'nowhere'")
    # a JSON lines file's later objects may hold keys the first one leaves out
    assert truth_problems(schema, header, {"team": "nowhere"}, "jsonl") == []


def test_reports_carry_the_truth_the_scores_and_a_correct_column(tmp_path: Path) -> None:
    rows = _labelled_rows(120, 11)
    html = _report(tmp_path, rows, {"classifier": "minilm"})
    lines = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert list(lines[0])[-4:] == ["truth.label", "correct.label", "compare_correct.label", "error"]
    for line, row in zip(lines, rows, strict=True):
        truth = row.input["cat"] or None
        assert line["truth.label"] == truth
        expected = None if truth is None else truth == (row.output or {})["label"]
        assert line["correct.label"] == expected
    table = pq.read_table(tmp_path / "report.parquet")
    assert str(table.schema.field("correct.label").type) == "bool"
    assert table.column("compare_correct.label").to_pylist() == [
        line["compare_correct.label"] for line in lines
    ]

    truth, predicted = _pairs(rows, "output")
    assert "Scores against the truth" in html and "label against the column cat" in html
    assert f"<b>{accuracy_score(truth, predicted):.3f}</b>" in html
    compare_truth, compare_predicted = _pairs(rows, "compare_output")
    assert f"<b>{accuracy_score(compare_truth, compare_predicted):.3f}</b>" in html
    blank = sum(1 for r in rows if not r.input["cat"])
    assert f"{blank} rows had no truth value; they are not scored." in html
    assert "the most confident wrong rows" in html
    assert "95% bootstrap interval" in html and "right under classifier=minilm only" in html
    # the scores table names each variant by what differs between the flag sets
    assert "<tr><td>default flags</td>" in html and "<tr><td>classifier=minilm</td>" in html
    assert "Expected calibration error (ECE)" in html and html.count("<svg") >= 2


def test_the_difference_in_accuracy_has_a_bootstrap_interval_and_the_split_rows() -> None:
    rows = _labelled_rows(600, 13)
    scoring = Scoring(
        {"label": "cat"}, Outputs.from_schema(TRIAGE), VARIANTS, "confidence", lambda r: [r.input["text"]]
    )
    for row in rows:
        scoring.add(row)
    scored = [r for r in rows if r.input["cat"]]
    first = np.array([r.input["cat"] == (r.output or {})["label"] for r in scored], dtype=float)
    second = np.array([r.input["cat"] == (r.compare_output or {})["label"] for r in scored], dtype=float)
    found = scoring.fields["label"].difference()
    assert found is not None
    difference, low, high = found
    assert difference == pytest.approx(second.mean() - first.mean())
    # the bootstrap interval of a mean difference is close to the normal one at this size
    spread = 1.96 * (second - first).std() / math.sqrt(len(scored))
    assert low == pytest.approx(difference - spread, abs=0.01)
    assert high == pytest.approx(difference + spread, abs=0.01)
    splits = scoring.fields["label"].splits
    only_first = [r.row for r, a, b in zip(scored, first, second, strict=True) if a and not b]
    only_second = [r.row for r, a, b in zip(scored, first, second, strict=True) if b and not a]
    assert [entry["row"] for entry in splits["flags"]] == only_first[:20]
    assert [entry["row"] for entry in splits["compare flags"]] == only_second[:20]
    assert scoring.fields["label"].paired[(True, False)] == len(only_first)


def test_calibration_bins_and_its_expected_error_equal_a_direct_computation() -> None:
    rows = _labelled_rows(500, 17)
    scoring = Scoring(
        {"label": "cat"}, Outputs.from_schema(TRIAGE), VARIANTS, "confidence", label_field="label"
    )
    for row in rows:
        scoring.add(row)
    for variant, attribute in VARIANTS.items():
        scored = [r for r in rows if r.input["cat"]]
        confidence = np.array([getattr(r, attribute)["confidence"] for r in scored])
        right = np.array([r.input["cat"] == getattr(r, attribute)["label"] for r in scored], dtype=float)
        index = np.minimum((confidence * 10).astype(int), 9)
        expected = sum(
            (index == b).sum() / len(scored) * abs(right[index == b].mean() - confidence[index == b].mean())
            for b in range(10)
            if (index == b).any()
        )
        calibration = scoring.fields["label"].calibration[variant]
        assert calibration.expected_calibration_error == pytest.approx(expected)
        assert [n for n, _, _ in calibration.bins()] == [
            int((index == b).sum()) for b in range(10) if (index == b).any()
        ]


def test_a_0_to_100_confidence_is_calibrated_as_its_share_of_the_range() -> None:
    schema = Routing.model_json_schema()  # urgency 0-100 is no confidence; its confidence is 0-1
    schema["properties"]["confidence"] = {"type": "number", "minimum": 0, "maximum": 100}
    scoring = Scoring(
        {"team": "t"}, Outputs.from_schema(schema), {"flags": "output"}, "confidence", label_field="team"
    )
    for i, (confidence, right) in enumerate([(95.0, True), (91.0, False), (15.0, False), (5.0, False)]):
        truth = "billing"
        scoring.add(
            RowResult(
                row=i + 1,
                input={"t": truth},
                output={"team": truth if right else "other", "confidence": confidence},
            )
        )
    calibration = scoring.fields["team"].calibration["flags"]
    expected = [(1, 0.05, 0.0), (1, 0.15, 0.0), (2, 0.93, 0.5)]
    assert [(n, round(c, 6), a) for n, c, a in calibration.bins()] == expected
    assert calibration.expected_calibration_error == pytest.approx(0.25 * 0.05 + 0.25 * 0.15 + 0.5 * 0.43)


def test_known_and_unseen_inputs_are_scored_apart_and_a_mostly_known_file_is_flagged(tmp_path: Path) -> None:
    rows = _labelled_rows(200, 19)
    for row in rows:
        known = row.row % 10 < 7  # 70% of the file repeats known snippets
        for output in (row.output, row.compare_output):
            assert output is not None
            output["duplicate_of"] = {"id": row.row, "label": "fresh"} if known else None
    html = _report(tmp_path, rows, None)
    assert "70.0% of this file's rows are inputs the pipeline already knows" in html
    known_truth, known_predicted = _pairs([r for r in rows if r.row % 10 < 7], "output")
    unseen_truth, unseen_predicted = _pairs([r for r in rows if r.row % 10 >= 7], "output")
    known_accuracy = accuracy_score(known_truth, known_predicted)
    unseen_accuracy = accuracy_score(unseen_truth, unseen_predicted)
    assert (
        f'<td class="num">{len(known_truth)}</td>\n<td class="num">{known_accuracy:.3f}</td>'
        f'<td class="num">{len(unseen_truth)}</td>\n<td class="num"><b>{unseen_accuracy:.3f}</b></td>'
    ) in html
