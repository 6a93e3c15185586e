"""Errors of the pipeline contract, each saying what is wrong and where."""

from __future__ import annotations

from pydantic import BaseModel


class Problem(BaseModel):
    """One thing wrong with a request: where (a dotted path) and what."""

    loc: str
    message: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


class PipelineInputError(ValueError):
    """The inputs or flags given to the pipeline are invalid."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ArtifactsError(RuntimeError):
    """The pipeline's artifacts are missing, stale or damaged; the message says what to run."""


class PipelineDefinitionError(TypeError):
    """The pipeline itself is wired wrongly (a bug in the pipeline module, not in a request)."""
