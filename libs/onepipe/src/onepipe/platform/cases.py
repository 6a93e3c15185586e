"""The edge-case library: inputs for which a person says what the pipeline must answer.

One JSON Lines file per pipeline, kept in the repo (`cases/<pipeline>.jsonl`), one case
per line so a change to it reads as a diff. A case holds an input, the flags to run it
with, the expected values of any subset of the output fields, a note, where it came
from and when. Its id is a hash of its input and flags: the same question asked twice
is one case, and two different answers to it are a conflict for a person to settle.

Cases reported to running services are stored apart (onepipe.platform.jobs.storage.CaseStore) and
merged into the file by `just cases pull`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from onepipe.errors import Problem
from onepipe.platform.jsonlines import escape_line_breaks, split_lines

CaseSource = Literal["ui", "app", "reviewer", "engineer"]
SOURCES: tuple[str, ...] = ("ui", "app", "reviewer", "engineer")
NOTE_MAX_CHARS = 2000


class CasesFileError(ValueError):
    """The cases file cannot be read: says which line and why."""


class Case(BaseModel):
    """One case: an input, its flags, and the answer a person expects for some output fields."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field("", description="A hash of the input and flags (set when empty).")
    input: dict[str, Any] = Field(description="The input, as the pipeline's input schema says.")
    flags: dict[str, Any] = Field(default_factory=dict, description="Flags to run with; unset: defaults.")
    expected: dict[str, Any] = Field(
        min_length=1, description="Output field -> the value a person expects (any subset of the fields)."
    )
    note: str = Field("", max_length=NOTE_MAX_CHARS, description="Why the case matters.")
    source: CaseSource = Field(description="Where it came from: ui, app (team), reviewer or engineer.")
    added_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="When it was added.")
    must_pass: bool = Field(False, description="A wrong answer fails `just cases`, not only counts.")
    reported_by: str | None = Field(None, description="The API key's name, for cases sent to the gateway.")

    def model_post_init(self, context: Any) -> None:
        if not self.id:
            self.id = case_id(self.input, self.flags)


class CaseLibrary(BaseModel):
    """A pipeline's edge-case library, as the model service holds it (GET /v1/cases/library)."""

    pipeline: str
    cases: list[Case]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def case_id(inputs: Mapping[str, Any], flags: Mapping[str, Any]) -> str:
    """The id of the question a case asks: its input and flags, whatever the answer."""
    digest = hashlib.sha256(_canonical({"input": inputs, "flags": flags}).encode()).hexdigest()
    return f"case-{digest[:12]}"


def without_defaults(flags: Mapping[str, Any], flags_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The flags that differ from their defaults: a form sends them all, and the same question
    must get the same id whichever face asked it."""
    properties = flags_schema.get("properties", {})
    return {
        name: value
        for name, value in flags.items()
        if not ("default" in properties.get(name, {}) and matches(properties[name]["default"], value))
    }


def read_cases(path: Path) -> list[Case]:
    """The cases in a JSON Lines file (none when it does not exist); bad lines are named by number.

    Lines end at `\\n` only, as JSON Lines defines them: a text holding U+2028 or U+0085 (which
    `str.splitlines()` would split at) is one case, escaped or not.
    """
    if not path.exists():
        return []
    cases, problems = [], []
    for number, line in split_lines(path.read_text(encoding="utf-8")):
        try:
            cases.append(Case.model_validate_json(line))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the line"
            problems.append(f"line {number}: {where}: {first['msg']}")
    if problems:
        raise CasesFileError(f"{path}: " + "; ".join(problems))
    return cases


def case_line(case: Case) -> str:
    """A case as one JSON line, its fields in a fixed order, every line break in its text escaped."""
    return escape_line_breaks(case.model_dump_json(exclude_none=True)) + "\n"


def write_cases(path: Path, cases: Iterable[Case]) -> None:
    """Write the cases, one per line, replacing the file whole (a temporary file, flushed to disk,
    moved into place): a crash leaves the old library or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("".join(case_line(case) for case in cases))
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


@dataclass
class Merged:
    """The library after a merge, and what happened to each incoming case."""

    cases: list[Case]
    added: list[Case] = field(default_factory=list)
    duplicates: list[Case] = field(default_factory=list)
    conflicts: list[tuple[Case, Case]] = field(default_factory=list)  # (in the library, incoming)


def merge_cases(library: Sequence[Case], incoming: Iterable[Case]) -> Merged:
    """Add the incoming cases the library lacks; the same question with another answer is a conflict."""
    merged = Merged(list(library))
    known = {case.id: case for case in library}
    for case in incoming:
        held = known.get(case.id)
        if held is None:
            merged.cases.append(case)
            merged.added.append(case)
            known[case.id] = case
        elif _canonical(held.expected) == _canonical(case.expected):
            merged.duplicates.append(case)
        else:
            merged.conflicts.append((held, case))
    return merged


def expected_problems(expected: Mapping[str, Any], output_schema: Mapping[str, Any]) -> list[Problem]:
    """What is wrong with the expected values: unknown output fields, values of the wrong type.

    Checked against the output JSON schema only (no pipeline import): every face can check
    a case, the gateway included.
    """
    from jsonschema import Draft202012Validator  # the checks' extra: only the faces that take cases

    properties = output_schema.get("properties", {})
    problems = []
    if not expected:
        problems.append(Problem(loc="expected", message="name at least one output field and its value"))
    for name, value in expected.items():
        if name not in properties:
            known = ", ".join(properties)
            problems.append(Problem(loc=f"expected.{name}", message=f"not an output field; fields: {known}"))
            continue
        schema = {**properties[name], "$defs": output_schema.get("$defs", {})}
        for error in Draft202012Validator(schema).iter_errors(value):
            problems.append(Problem(loc=f"expected.{name}", message=error.message))
            break
    return problems


def input_problems(inputs: Mapping[str, Any], input_schema: Mapping[str, Any]) -> list[Problem]:
    """The input fields the pipeline does not have, each named (`input.<name>`) with the known ones.

    A case's id hashes its whole input: a field the pipeline ignores would make the same question
    another case, out of reach of conflict detection. Checked against the input JSON schema (as
    flags are against theirs); a schema whose `additionalProperties` is not false takes any field.
    """
    properties = input_schema.get("properties", {})
    if input_schema.get("additionalProperties", False) is not False:
        return []
    known = ", ".join(properties)
    return [
        Problem(loc=f"input.{name}", message=f"not an input field; fields: {known}")
        for name in inputs
        if name not in properties
    ]


def matches(expected: Any, got: Any) -> bool:
    """An output equals what a person expects (numbers to 1e-9, as JSON values otherwise)."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    return _canonical(expected) == _canonical(got)


def wrong_fields(case: Case, output: Mapping[str, Any]) -> list[str]:
    """The expected fields the output gets wrong."""
    return [name for name, value in case.expected.items() if not matches(value, output.get(name))]
