"""A replay of the edge-case library: each case's answer through every face, kept runs and what changed since.

Tables for the terminal (rich); scripts/cases.py prints them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from onepipe.platform.cases import Case, wrong_fields
from scripts.case_faces import FACES, Face


@dataclass
class CaseRun:
    """One case through every face."""

    case: Case
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # face -> outputs
    versions: dict[str, str] = field(default_factory=dict)  # face -> pipeline version

    @property
    def output(self) -> dict[str, Any]:
        """The in-process output: the reference every face must equal."""
        return self.answers[FACES[0]]

    @property
    def disagreeing(self) -> list[str]:
        """The faces whose outputs or version differ from the in-process ones."""
        return [
            face
            for face in self.answers
            if self.answers[face] != self.output or self.versions[face] != self.versions[FACES[0]]
        ]

    @property
    def wrong(self) -> list[str]:
        """The expected fields the pipeline gets wrong."""
        return wrong_fields(self.case, self.output)


def replay(cases: Sequence[Case], faces: Mapping[str, Face]) -> list[CaseRun]:
    """Every case through every face, one call per face and flag set."""
    runs = {case.id: CaseRun(case) for case in cases}
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(json.dumps(case.flags, sort_keys=True), []).append(case)
    for group in groups.values():
        inputs, flags = [c.input for c in group], group[0].flags
        for face, run in faces.items():
            outputs, version = run(inputs, flags)
            for case, output in zip(group, outputs, strict=True):
                runs[case.id].answers[face] = output
                runs[case.id].versions[face] = version
    return [runs[case.id] for case in cases]


def as_text(value: Any) -> str:
    """A value as the tables write it: text as it is, anything else as JSON."""
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def results_table(runs: Sequence[CaseRun]) -> Table:
    """Per case: what a person expects, what the pipeline answers, whether the faces agree."""
    table = Table(title="Cases", show_lines=False)
    for column in ("case", "note", "expected", "answer", "faces", "result"):
        table.add_column(column, overflow="fold")
    for run in runs:
        expected = ", ".join(f"{k}={as_text(v)}" for k, v in run.case.expected.items())
        answer = ", ".join(f"{k}={as_text(run.output.get(k))}" for k in run.case.expected)
        faces = (
            f"[green]all {len(run.answers)} agree[/green]"
            if not run.disagreeing
            else "[red]differ: " + ", ".join(run.disagreeing) + "[/red]"
        )
        if not run.wrong:
            result = "[green]right[/green]"
        elif run.case.must_pass:
            result = "[red]WRONG (must pass)[/red]"
        else:
            result = "[yellow]wrong[/yellow]"
        note = run.case.note if len(run.case.note) <= 60 else run.case.note[:57] + "..."
        table.add_row(run.case.id, escape(note), escape(expected), escape(answer), faces, result)
    return table


def saved_run(runs: Sequence[CaseRun], pipeline: str) -> dict[str, Any]:
    """A replay as kept by --save: each case's output and whether it was right."""
    return {
        "pipeline": pipeline,
        "version": runs[0].versions[FACES[0]] if runs else "",
        "at": datetime.now(UTC).isoformat(),
        "cases": {
            run.case.id: {
                "expected": run.case.expected,
                "note": run.case.note,
                "output": run.output,
                "right": not run.wrong,
            }
            for run in runs
        },
    }


@dataclass
class Change:
    """What happened to one case between a kept run and this one."""

    case_id: str
    what: str  # fixed, broken, changed, new, removed
    fields: dict[str, tuple[Any, Any]]  # output field -> (before, now)
    note: str


def changes_since(before: Mapping[str, Any], runs: Sequence[CaseRun]) -> list[Change]:
    """The cases whose outputs changed since `before` (a --save file), fixed and broken first."""
    kept: Mapping[str, Any] = before["cases"]
    found = []
    for run in runs:
        old = kept.get(run.case.id)
        if old is None:
            found.append(Change(run.case.id, "new", {}, run.case.note))
            continue
        fields = {
            name: (old["output"].get(name), value)
            for name, value in run.output.items()
            if old["output"].get(name) != value
        }
        right = not run.wrong
        what = (
            "fixed"
            if right and not old["right"]
            else "broken"
            if old["right"] and not right
            else "changed"
            if fields
            else ""
        )
        if what:
            found.append(Change(run.case.id, what, fields, run.case.note))
    current = {run.case.id for run in runs}
    found += [Change(i, "removed", {}, str(c.get("note", ""))) for i, c in kept.items() if i not in current]
    order = {"broken": 0, "fixed": 1, "changed": 2, "new": 3, "removed": 4}
    return sorted(found, key=lambda change: order[change.what])


def changes_table(changes: Sequence[Change], before: Mapping[str, Any], version: str) -> Table:
    """What changed since a kept run, case by case."""
    table = Table(title=f"Since the run of {before['at'][:19]} (version {before['version']} -> {version})")
    for column in ("case", "change", "outputs that changed", "note"):
        table.add_column(column, overflow="fold")
    colours = {"broken": "red", "fixed": "green"}
    for change in changes:
        fields = "; ".join(f"{k}: {as_text(a)} -> {as_text(b)}" for k, (a, b) in change.fields.items())
        what = change.what
        if what in colours:
            what = f"[{colours[what]}]{what}[/{colours[what]}]"
        table.add_row(change.case_id, what, escape(fields), escape(change.note[:60]))
    return table
