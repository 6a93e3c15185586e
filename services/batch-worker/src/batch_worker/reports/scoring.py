"""Scores against the truth: output fields a job mapped to truth columns, row by row in bounded memory.

A categorical field (enums, booleans, consts, strings) is scored by exact agreement:
accuracy, per class precision / recall / F1 with support, their macro and weighted
averages and the confusion matrix. A numeric field is scored by its error: MAE and RMSE.
Each flag set (or version, for a job comparing versions) is scored on its own. The
definitions are scikit-learn's (`classification_report` with `zero_division=0`,
`confusion_matrix`, `mean_absolute_error`, the root of `mean_squared_error`); the tests
compute both.

A row is scored for a field when its truth cell holds a value and the flag set gave an
output; a blank truth is not scored, a numeric truth that is not a number is counted
as unreadable.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa

from batch_worker.reports.statistics import is_known
from onepipe.platform.jobs.types import RowResult
from onepipe.platform.schema.outputs import OTHER, CategoryCap, Outputs
from onepipe.platform.schema.values import (
    CATEGORICAL,
    NUMERIC,
    abs_error,
    as_number,
    is_right,
    read_truth,
    show,
    truth_category,
)

BOOTSTRAP: Final = 2000  # resamples for the interval on a difference in accuracy
LISTED_SPLITS: Final = 20  # rows listed that one flag set gets right and the other wrong, each way
CALIBRATION_BINS: Final = 10
KNOWN: Final = "known"
UNSEEN: Final = "unseen"
SUBSETS: Final = (KNOWN, UNSEEN)
CONFIDENT_WRONG: Final = 20


@dataclass
class ClassScore:
    """One class of a categorical field: precision, recall, F1 and support (rows whose truth it is)."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@dataclass
class CategoricalScore:
    """A categorical field against its truth, under one flag set."""

    scored: int = 0
    correct: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (truth, predicted) -> rows
    # classes seen beyond the cap are pooled as OTHER in the confusion matrix
    classes_seen: CategoryCap = field(default_factory=CategoryCap)

    def add(self, truth: str, predicted: str) -> bool:
        right = is_right(truth, predicted)
        self.scored += 1
        self.correct += right
        self.confusion[(self.classes_seen.key(truth), self.classes_seen.key(predicted))] += 1
        return right

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    def labels(self) -> list[str]:
        """Every class seen as truth or prediction, sorted (as scikit-learn orders them), OTHER last."""
        seen = {value for pair in self.confusion for value in pair}
        return sorted(seen - {OTHER}) + ([OTHER] if OTHER in seen else [])

    def classes(self) -> list[ClassScore]:
        scores = []
        for label in self.labels():
            hits = self.confusion[(label, label)]
            predicted = sum(n for (_, p), n in self.confusion.items() if p == label)
            support = sum(n for (t, _), n in self.confusion.items() if t == label)
            precision = hits / predicted if predicted else 0.0
            recall = hits / support if support else 0.0
            scores.append(ClassScore(label, precision, recall, _f1(precision, recall), support))
        return scores

    def averages(self) -> dict[str, tuple[float, float, float]]:
        """macro and weighted (by support) precision, recall and F1 over the classes."""
        classes = self.classes()
        if not classes:
            return {}
        total = sum(c.support for c in classes)

        def mean(weights: list[float]) -> tuple[float, float, float]:
            whole = sum(weights)
            if whole == 0:
                return (0.0, 0.0, 0.0)
            return (
                sum(w * c.precision for w, c in zip(weights, classes, strict=True)) / whole,
                sum(w * c.recall for w, c in zip(weights, classes, strict=True)) / whole,
                sum(w * c.f1 for w, c in zip(weights, classes, strict=True)) / whole,
            )

        averages = {"macro": mean([1.0] * len(classes))}
        if total:
            averages["weighted"] = mean([float(c.support) for c in classes])
        return averages


@dataclass
class NumericScore:
    """A numeric field against its truth, under one flag set: absolute and squared errors."""

    scored: int = 0
    absolute: float = 0.0
    squared: float = 0.0

    def add(self, error: float) -> float:
        """Count one row's absolute error."""
        self.scored += 1
        self.absolute += error
        self.squared += error * error
        return error

    @property
    def mae(self) -> float | None:
        return self.absolute / self.scored if self.scored else None

    @property
    def rmse(self) -> float | None:
        return math.sqrt(self.squared / self.scored) if self.scored else None


@dataclass
class Calibration:
    """Confidence against being right, in equal bins over the confidence's range (its schema's, else 0-1)."""

    low: float
    high: float
    rows: list[int] = field(default_factory=lambda: [0] * CALIBRATION_BINS)
    confidence: list[float] = field(default_factory=lambda: [0.0] * CALIBRATION_BINS)
    right: list[int] = field(default_factory=lambda: [0] * CALIBRATION_BINS)

    def add(self, confidence: float, right: bool) -> None:
        # on a 0-1 scale, as a probability: a 0-100 score is read as its share of the range
        share = min(max((confidence - self.low) / (self.high - self.low), 0.0), 1.0)
        index = min(int(share * CALIBRATION_BINS), CALIBRATION_BINS - 1)
        self.rows[index] += 1
        self.confidence[index] += share
        self.right[index] += right

    def bins(self) -> list[tuple[int, float, float]]:
        """(rows, mean confidence, accuracy) of every bin holding rows, on a 0-1 scale."""
        return [
            (n, c / n, r / n) for n, c, r in zip(self.rows, self.confidence, self.right, strict=True) if n
        ]

    @property
    def expected_calibration_error(self) -> float | None:
        """The rows' share-weighted mean gap between confidence and accuracy over the bins (ECE)."""
        total = sum(self.rows)
        if not total:
            return None
        return sum(n / total * abs(accuracy - confidence) for n, confidence, accuracy in self.bins())


@dataclass
class FieldScores:
    """One scored output field: its truth column and its scores per flag set."""

    name: str
    column: str
    kind: str
    boolean: bool
    variants: dict[str, CategoricalScore | NumericScore]
    blank: int = 0  # rows without a truth value
    unreadable: int = 0  # numeric truths that are not numbers
    # the most confident wrong rows per flag set: (confidence, -row, entry), a min-heap
    confident_wrong: dict[str, list[tuple[float, int, dict[str, Any]]]] = field(default_factory=dict)
    # categorical, both flag sets scored: rows by (right under flags, right under compare flags)
    paired: Counter[tuple[bool, bool]] = field(default_factory=Counter)
    # rows right under one flag set only: the first LISTED_SPLITS of each, keyed by who got it right
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # the verdict's confidence against being right, per flag set (the label field with a confidence)
    calibration: dict[str, Calibration] = field(default_factory=dict)
    # with a `known` role: the scores of known and of unseen inputs apart, per flag set
    subsets: dict[str, dict[str, CategoricalScore | NumericScore]] = field(default_factory=dict)

    def difference(self) -> tuple[float, float, float] | None:
        """Accuracy under the compare flags minus under the flags, over rows scored under both, with a
        95% bootstrap interval (rows resampled with replacement, fixed seed)."""
        rows = sum(self.paired.values())
        if not rows:
            return None
        outcomes = [(True, True), (True, False), (False, True), (False, False)]
        counts = np.array([self.paired[o] for o in outcomes], dtype=float)
        # resampling rows is drawing the four outcomes' counts from a multinomial: exact, and cheap
        draws = np.random.default_rng(0).multinomial(rows, counts / rows, size=BOOTSTRAP)
        differences = (draws[:, 2] - draws[:, 1]) / rows
        low, high = np.percentile(differences, [2.5, 97.5])
        return (counts[2] - counts[1]) / rows, float(low), float(high)


class Scoring:
    """Every scored field's figures, fed one row at a time; the per-row values for the machine files."""

    def __init__(
        self,
        truth: Mapping[str, str],
        outputs: Outputs,
        variants: Mapping[str, str],
        confidence_field: str | None = None,
        inputs: Callable[[RowResult], list[str]] | None = None,
        label_field: str | None = None,
        known_field: str | None = None,
    ) -> None:
        """`truth`: output field -> column; `variants`: flag-set name -> RowResult attribute of its output."""
        self.variants = dict(variants)
        self.confidence_field = confidence_field
        self.known_field = known_field
        self.inputs = inputs
        self.fields: dict[str, FieldScores] = {}
        for name, column in truth.items():
            described = outputs.fields.get(name)
            kind = None if described is None else described.scored
            if described is None or kind is None:
                continue  # refused when the job was submitted; a pipeline changed since scores nothing
            self.fields[name] = FieldScores(
                name,
                column,
                kind,
                described.boolean,
                {
                    variant: CategoricalScore() if kind == CATEGORICAL else NumericScore()
                    for variant in self.variants
                },
            )
            if known_field is not None:
                self.fields[name].subsets = {
                    variant: {
                        subset: CategoricalScore() if kind == CATEGORICAL else NumericScore()
                        for subset in SUBSETS
                    }
                    for variant in self.variants
                }
            confidence = outputs.fields.get(confidence_field) if confidence_field else None
            if name == label_field and kind == CATEGORICAL and confidence is not None:
                low, high = confidence.bounds
                low, high = (0.0 if low is None else low), (1.0 if high is None else high)
                if high > low:
                    self.fields[name].calibration = {v: Calibration(low, high) for v in self.variants}

    def add(self, result: RowResult) -> dict[str, Any]:
        """Score one row; returns its truth values and, per flag set, whether it was right (or its error)."""
        values: dict[str, Any] = {}
        for name, scores in self.fields.items():
            cell = result.input.get(scores.column)
            truth = read_truth(cell, scores.kind, scores.boolean)
            if scores.kind == NUMERIC:
                scores.unreadable += truth is None and truth_category(cell, False) is not None
            scores.blank += truth_category(cell, False) is None
            values[f"truth.{name}"] = truth
            outcomes: dict[str, Any] = {}
            for variant, attribute in self.variants.items():
                key = _outcome_key(attribute, name, scores.kind)
                output = getattr(result, attribute)
                values[key] = None
                if truth is None or output is None:
                    continue
                score = scores.variants[variant]
                known = is_known(output.get(self.known_field)) if self.known_field else False
                subset = scores.subsets.get(variant, {}).get(KNOWN if known else UNSEEN)
                if isinstance(score, CategoricalScore) and isinstance(truth, str):
                    predicted = show(output.get(name))
                    right = score.add(truth, predicted)
                    values[key] = outcomes[variant] = right
                    if isinstance(subset, CategoricalScore):
                        subset.add(truth, predicted)
                    confidence = (
                        as_number(output.get(self.confidence_field)) if self.confidence_field else None
                    )
                    if confidence is not None and variant in scores.calibration:
                        scores.calibration[variant].add(confidence, right)
                    if confidence is not None and not right:
                        self._note_wrong(scores, variant, result, confidence, truth, predicted)
                elif isinstance(score, NumericScore) and isinstance(truth, float):
                    error = abs_error(truth, output.get(name))
                    if error is not None:
                        values[key] = score.add(error)
                        if isinstance(subset, NumericScore):
                            subset.add(error)
            if len(outcomes) == 2:
                self._pair(scores, result, truth, outcomes)
        return values

    def _pair(self, scores: FieldScores, result: RowResult, truth: Any, outcomes: dict[str, Any]) -> None:
        first, second = outcomes.values()
        scores.paired[(first, second)] += 1
        if first == second:
            return
        winner = next(variant for variant, right in outcomes.items() if right)
        listed = scores.splits.setdefault(winner, [])
        if len(listed) < LISTED_SPLITS:
            listed.append(
                {
                    "row": result.row,
                    "inputs": self.inputs(result) if self.inputs else [],
                    "truth": truth,
                    **{
                        variant: show((getattr(result, attribute) or {}).get(scores.name))
                        for variant, attribute in self.variants.items()
                    },
                }
            )

    def _note_wrong(
        self,
        scores: FieldScores,
        variant: str,
        result: RowResult,
        confidence: float,
        truth: str,
        predicted: str,
    ) -> None:
        heap = scores.confident_wrong.setdefault(variant, [])
        key = (confidence, -result.row)
        if len(heap) < CONFIDENT_WRONG or key > heap[0][:2]:
            entry = {
                "row": result.row,
                "inputs": self.inputs(result) if self.inputs else [],
                "truth": truth,
                "predicted": predicted,
                "confidence": confidence,
            }
            heapq.heappush(heap, (*key, entry))
            if len(heap) > CONFIDENT_WRONG:
                heapq.heappop(heap)

    def most_confident_wrong(self, name: str, variant: str) -> list[dict[str, Any]]:
        """The wrong rows with the highest confidence, highest first."""
        heap = self.fields[name].confident_wrong.get(variant, [])
        return [entry for *_, entry in sorted(heap, key=lambda item: (item[0], item[1]), reverse=True)]

    def arrow_fields(self) -> list[pa.Field]:
        """The machine files' columns this scoring adds, in order, typed for Parquet."""
        found = []
        for name, scores in self.fields.items():
            numeric = scores.kind == NUMERIC
            found.append(pa.field(f"truth.{name}", pa.float64() if numeric else pa.string()))
            found += [
                pa.field(_outcome_key(attribute, name, scores.kind), pa.float64() if numeric else pa.bool_())
                for attribute in self.variants.values()
            ]
        return found


def _outcome_key(attribute: str, name: str, kind: str) -> str:
    """`correct.<field>` (categorical) or `abs_error.<field>` (numeric); `compare_` before either for the
    compare output (the compare flags', or the compared version's)."""
    outcome = "correct" if kind == CATEGORICAL else "abs_error"
    return f"{outcome}.{name}" if attribute == "output" else f"compare_{outcome}.{name}"
