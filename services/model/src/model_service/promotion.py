"""Promotion: the evidence on both versions, refused on a broken must-pass case, aliases moved, recorded.

The command line (`just promote`) loads the two versions itself; the model service's route runs them
through its own micro-batchers (live requests and the evidence share the pipeline thread, so a
promotion never starves callers). Both decide here, the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from onepipe import LoadedPipeline, Pipeline
from onepipe.platform.cases import Case, read_cases
from onepipe.platform.versions.evidence import Evidence, forced
from onepipe.platform.versions.registry import Registry
from onepipe.platform.versions.types import PromotionRequest, VersionInfo, served_version

PROMOTION = "promotion"  # the kind of run a promotion's evidence is recorded as


class Promotion(BaseModel):
    """A promotion done: the versions that moved and the evidence it was made on."""

    champion: int | None = Field(description="The version number now champion.")
    previous: int | None = Field(
        description="The version number it replaced (`just rollback` brings it back)."
    )
    evidence: Evidence


def library(cases_dir: Path, pipeline: str) -> list[Case]:
    """The pipeline's edge-case library; none when it has no file yet."""
    path = cases_dir / f"{pipeline}.jsonl"
    return read_cases(path) if path.is_file() else []


def overridden(evidence: Evidence, request: PromotionRequest, by: str | None) -> Evidence:
    """The evidence as the decision stands: refused stays refused unless forced with a reason."""
    if evidence.may_promote or not request.force:
        return evidence
    if not (request.reason or "").strip():
        raise ValueError("a forced promotion needs a reason (--reason TEXT), recorded with the evidence")
    return forced(evidence, request.reason or "", by)


def promote(registry: Registry, evidence: Evidence) -> Promotion:
    """Move the aliases (challenger -> champion -> previous) and record the evidence as an MLflow run."""
    old, new = registry.promote(evidence.pipeline)
    registry.record(evidence.pipeline, PROMOTION, evidence.model_dump(mode="json"))
    return Promotion(champion=new, previous=old, evidence=evidence)


def loaded_versions(
    definition: Pipeline[Any, Any, Any], registry: Registry, infos: Sequence[VersionInfo]
) -> list[LoadedPipeline[Any, Any, Any]]:
    """Each version fetched and loaded in this process; versions of the same artifacts share them."""
    by_base: dict[str, LoadedPipeline[Any, Any, Any]] = {}
    found = []
    for info in infos:
        folder = registry.fetch(definition, info)
        base = definition.version_of(folder)
        if base not in by_base:
            by_base[base] = definition.load(folder)
        version = served_version(base, info.flag_defaults)
        found.append(LoadedPipeline(definition, by_base[base].resources, version))
    return found
