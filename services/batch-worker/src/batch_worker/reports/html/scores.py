"""Scores against the truth: per field and flag set, with calibration and the paired difference."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from batch_worker.reports.charts import reliability
from batch_worker.reports.html.formatting import MISSING, count, decimal
from batch_worker.reports.scoring import (
    CALIBRATION_BINS,
    CategoricalScore,
    FieldScores,
    NumericScore,
    Scoring,
)
from onepipe.platform.schema.values import CATEGORICAL


def _subset_lines(scores: FieldScores) -> list[dict[str, Any]]:
    """Known and unseen inputs scored apart, per flag set: accuracy, or MAE for numbers."""
    lines = []
    for variant, subsets in scores.subsets.items():
        line: dict[str, Any] = {"variant": variant}
        for name, score in subsets.items():
            line[f"{name}_rows"] = count(score.scored)
            line[name] = decimal(score.accuracy if isinstance(score, CategoricalScore) else score.mae)
        lines.append(line)
    return lines


def _scored_note(blank: int, unreadable: int) -> str:
    notes = [f"{count(blank)} rows had no truth value"] if blank else []
    if unreadable:
        notes.append(f"{count(unreadable)} held a truth that is not a number")
    if not notes:
        return "Every row with an output is scored."
    return "; ".join(notes) + ("; they are" if blank + unreadable > 1 else "; it is") + " not scored."


def _categorical_scores(name: str, score: CategoricalScore, scoring: Scoring, variant: str) -> dict[str, Any]:
    labels = score.labels()
    averages = score.averages()
    support = sum(c.support for c in score.classes())
    return {
        "name": variant,
        "scored": count(score.scored),
        "correct": count(score.correct),
        "accuracy": decimal(score.accuracy),
        "macro_f1": decimal(averages["macro"][2]) if "macro" in averages else MISSING,
        "weighted_f1": decimal(averages["weighted"][2]) if "weighted" in averages else MISSING,
        "classes": [
            {
                "label": c.label,
                "precision": decimal(c.precision),
                "recall": decimal(c.recall),
                "f1": decimal(c.f1),
                "support": count(c.support),
            }
            for c in score.classes()
        ],
        "averages": [
            {
                "name": kind,
                "precision": decimal(p),
                "recall": decimal(r),
                "f1": decimal(f),
                "support": count(support),
            }
            for kind, (p, r, f) in averages.items()
        ],
        "labels": labels,
        "confusion": [
            {
                "truth": truth,
                "cells": [{"rows": count(score.confusion[(truth, p)]), "same": truth == p} for p in labels],
                "total": count(sum(score.confusion[(truth, p)] for p in labels)),
            }
            for truth in labels
        ],
        "confident_wrong": [
            {**row, "confidence": decimal(row["confidence"])}
            for row in scoring.most_confident_wrong(name, variant)
        ],
    }


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + decimal(value)


def _paired(scores: FieldScores) -> dict[str, Any] | None:
    """Both variants (flag sets or versions) on the rows scored under both: the difference in accuracy,
    who gets which rows right."""
    found = scores.difference()
    if found is None:
        return None
    difference, low, high = found
    first, second = scores.variants  # the flag sets, or the versions, in the job's order
    splits = []
    for winner, rows in scores.splits.items():
        right = (winner == first, winner != first)
        splits.append(
            {
                "winner": winner,
                "rows": [{**row, "flags": row[first], "compare": row[second]} for row in rows],
                "shown": len(rows),
                "more": scores.paired[right] > len(rows),
            }
        )
    return {
        "rows": count(sum(scores.paired.values())),
        "difference": _signed(difference),
        "low": _signed(low),
        "high": _signed(high),
        "flags_only": count(scores.paired[(True, False)]),
        "compare_only": count(scores.paired[(False, True)]),
        "splits": sorted(splits, key=lambda split: split["winner"] != first),
    }


def _calibration(scores: FieldScores) -> dict[str, Any] | None:
    """The reliability chart and the expected calibration error per flag set, when rows were binned."""
    binned = {variant: c.bins() for variant, c in scores.calibration.items() if c.bins()}
    if not binned:
        return None
    return {
        "svg": Markup(reliability(binned, f"{scores.name}: calibration")),
        "bins": CALIBRATION_BINS,
        "errors": [
            {"variant": variant, "value": decimal(scores.calibration[variant].expected_calibration_error)}
            for variant in binned
        ],
    }


def scores_section(scoring: Scoring) -> list[dict[str, Any]]:
    """Each scored field: per flag set, accuracy and per-class scores with the confusion, or MAE and RMSE."""
    found = []
    for name, scores in scoring.fields.items():
        variants = []
        for variant, score in scores.variants.items():
            if isinstance(score, CategoricalScore):
                variants.append(_categorical_scores(name, score, scoring, variant))
            elif isinstance(score, NumericScore):
                variants.append(
                    {
                        "name": variant,
                        "scored": count(score.scored),
                        "mae": decimal(score.mae),
                        "rmse": decimal(score.rmse),
                    }
                )
        found.append(
            {
                "calibration": _calibration(scores),
                "subsets": _subset_lines(scores),
                "measure": "accuracy" if scores.kind == CATEGORICAL else "MAE",
                "paired": _paired(scores),
                "field": name,
                "column": scores.column,
                "categorical": scores.kind == CATEGORICAL,
                "scored_note": _scored_note(scores.blank, scores.unreadable),
                "variants": variants,
            }
        )
    return found
