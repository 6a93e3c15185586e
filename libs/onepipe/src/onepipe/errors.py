"""Errors of the pipeline contract, each saying what is wrong and where."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """One thing wrong with a request: where (a dotted path) and what."""

    loc: str
    message: str
    input: int | None = Field(
        None,
        description="For a problem with one of the `inputs`: its index in the request (0 for the first).",
    )
    field: str | None = Field(
        None,
        description="For a problem with one of the `inputs`: the path inside it; absent for the whole input.",
    )

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


def dotted(path: Sequence[str | int]) -> str:
    """A path of keys and indexes as people read it: ("inputs", 3, "text") -> "inputs[3].text"."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def problem_at(path: Sequence[str | int], message: str) -> Problem:
    """The problem at a path; under `inputs`, the input's index and the path inside it kept as data."""
    if len(path) >= 2 and path[0] == "inputs" and isinstance(path[1], int):
        return Problem(loc=dotted(path), message=message, input=path[1], field=dotted(path[2:]) or None)
    return Problem(loc=dotted(path), message=message)


class PipelineInputError(ValueError):
    """The inputs or flags given to the pipeline are invalid."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ArtifactsError(RuntimeError):
    """The pipeline's artifacts are missing, stale or damaged; the message says what to run."""


class PipelineDefinitionError(TypeError):
    """The pipeline itself is wired wrongly (a bug in the pipeline module, not in a request)."""
