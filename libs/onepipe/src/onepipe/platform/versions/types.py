"""What the services say about versions: each registered version, its aliases, the registry's state."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from onepipe.contract import PipelineInfo

CHAMPION = "champion"  # what callers get
CHALLENGER = "challenger"  # the candidate, loaded beside the champion
PREVIOUS = "previous"  # the champion before the last promotion: what `just rollback` brings back
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)


def served_version(base: str, flag_defaults: Mapping[str, Any]) -> str:
    """The hash a version answers with: the code and artifacts' own, changed by any flag defaults it sets."""
    if not flag_defaults:
        return base
    text = f"{base}:{json.dumps(dict(flag_defaults), sort_keys=True)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def served_description(info: PipelineInfo, flag_defaults: Mapping[str, Any]) -> PipelineInfo:
    """A version's description as callers see it: each flag's default is the version's own where it sets one
    (what a request that leaves the flag out gets)."""
    if not flag_defaults:
        return info
    schema = copy.deepcopy(info.flags_schema)
    properties = schema.get("properties", {})
    for name, value in flag_defaults.items():
        if name in properties:
            properties[name]["default"] = value
    return info.model_copy(update={"flags_schema": schema})


def headline_metrics(metrics: Mapping[str, float], limit: int = 4) -> list[str]:
    """The names of the few metrics worth a column: accuracies first, then the others, in name order."""
    return sorted(metrics, key=lambda name: (not name.endswith("accuracy"), name))[:limit]


class CaseCounts(BaseModel):
    """The cases by what promoting would do to them."""

    total: int
    fixed: int = Field(description="Wrong on the champion, right on the challenger.")
    broken: int = Field(description="Right on the champion, wrong on the challenger.")
    must_pass_broken: int = Field(description="Broken cases marked must-pass: any refuses the promotion.")
    still_wrong: int
    still_right: int


class PromotionRequest(BaseModel):
    """What a promotion asks: whether to override a refusal, and why."""

    force: bool = Field(False, description="Promote even when a must-pass case breaks (needs a reason).")
    reason: str | None = Field(
        None, max_length=500, description="Why it is forced; recorded with the evidence."
    )
    held_out_rows: int | None = Field(
        None, ge=10, description="Score a random sample of this many held-out rows; unset: all of them."
    )


class VersionInfo(BaseModel):
    """One registered version of a pipeline."""

    number: int | None = Field(
        description="The registry's version number (v3); none for an unregistered folder."
    )
    version: str = Field(description="The version hash every response and report carries.")
    aliases: list[str] = Field(default_factory=list, description="champion, challenger, previous.")
    flag_defaults: dict[str, Any] = Field(
        default_factory=dict, description="Flag defaults this version sets over the pipeline code's own."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Held-out metrics from training.")
    created_at: datetime | None = Field(None, description="When it was trained and registered.")
    code: str = Field("", description="Fingerprint of the pipeline code that trained it.")
    run_id: str | None = Field(None, description="The MLflow run that trained it.")
    loaded: bool = Field(False, description="Whether the model service holds it loaded now.")

    @property
    def label(self) -> str:
        """How people name it: its first alias, else vN, else its hash."""
        if self.aliases:
            return self.aliases[0]
        return f"v{self.number}" if self.number is not None else self.version


class RegistryState(BaseModel):
    """Where versions come from, and whether the model service can reach it."""

    kind: Literal["mlflow", "none"] = Field(description="mlflow: a registry; none: one artifacts folder.")
    location: str = Field(description="The registry's address without credentials, or the artifacts folder.")
    status: Literal["ok", "down"] = "ok"
    error: str | None = Field(
        None, description="Why the registry did not answer (the service keeps serving)."
    )


class VersionList(BaseModel):
    """Every registered version of the served pipeline, newest first, with the registry's state."""

    pipeline: str
    registry: RegistryState
    versions: list[VersionInfo]
    last_promotion: dict[str, Any] | None = Field(
        None,
        description="The evidence of the last promotion (onepipe.platform.versions.evidence.Evidence).",
    )


# -- checks on a schedule (onepipe.platform.versions.checks) ---------------------------------------

COULD_NOT_RUN = "The check could not run: "  # how the reason of a failed check starts


class CheckedVersion(BaseModel):
    """One version's result in a check: how many cases it answers as expected, and which it does not."""

    label: str = Field(description="The alias it held when checked: champion or challenger.")
    version: str = Field(description="The version's hash.")
    number: int | None = Field(None, description="The registry's version number; null when not registered.")
    passed: int = Field(description="Cases answered as expected.")
    failed: int = Field(description="Cases answered otherwise, or not answered.")
    failing: list[str] = Field(default_factory=list, description="The ids of the failed cases.")
    must_pass_failing: list[str] = Field(
        default_factory=list, description="The failed cases marked must-pass: each one an alert."
    )


class CheckedCase(BaseModel):
    """A case that some version fails, with each version's answer for its expected fields."""

    id: str
    note: str
    must_pass: bool
    expected: dict[str, Any]
    answers: dict[str, dict[str, Any]] = Field(description="Version label -> its answer's expected fields.")
    errors: dict[str, str] = Field(
        default_factory=dict, description="Version label -> why it gave no answer."
    )
    failing_on: list[str] = Field(description="The labels of the versions that fail it.")


class CaseChange(BaseModel):
    """A case whose result on a version changed since the last check."""

    id: str
    version: str = Field(description="The label of the version it changed on: champion or challenger.")
    must_pass: bool
    note: str


class CheckSummary(BaseModel):
    """One check of the live versions against the edge-case library, in brief."""

    id: str = Field(description="The check's id; ids sort by when the checks ran.")
    pipeline: str
    started_at: datetime
    seconds: float = Field(description="How long the check took.")
    ok: bool = Field(description="The check ran; false: `error` says why it could not.")
    error: str | None = Field(None, description="Why the check could not run, in one sentence.")
    cases: int = Field(0, description="Cases in the library.")
    versions: list[CheckedVersion] = Field(default_factory=list, description="Champion first.")
    changes: str = Field("", description="What changed since the last check that ran, in one sentence.")


class CheckRun(CheckSummary):
    """One check in full: the summary, the cases that fail, what changed, the promotion's counts."""

    outcomes: CaseCounts | None = Field(
        None, description="The cases as a promotion would count them now; null without a challenger."
    )
    must_pass_broken: list[str] = Field(
        default_factory=list,
        description="Must-pass cases the challenger breaks (right on the champion): a promotion is refused.",
    )
    failing: list[CheckedCase] = Field(default_factory=list, description="The cases some version fails.")
    newly_failing: list[CaseChange] = Field(default_factory=list)
    newly_passing: list[CaseChange] = Field(default_factory=list)
    compared_with: str | None = Field(None, description="The id of the check these changes are against.")


class CheckList(BaseModel):
    """The latest check of the served pipeline, and the ones before it in brief, newest first."""

    pipeline: str
    latest: CheckRun | None = Field(None, description="The latest check; null before the first one.")
    history: list[CheckSummary] = Field(
        default_factory=list, description="The checks before it, newest first."
    )


# -- the shadow record (onepipe.platform.versions.shadow) ----------------------------------------------


class FieldAgreement(BaseModel):
    """One output field over the shadowed rows both versions answered: how often they agree."""

    field: str
    agreeing: int = Field(
        description="Rows where the field did not change: the same value (a number: within its tolerance)."
    )
    compared: int = Field(description="Rows both versions answered.")
    share: float | None = Field(description="agreeing / compared; null when nothing was compared.")
    compared_as: Literal["decision", "number", "other"] = Field(
        "other",
        description="decision: categories, booleans and the label, review and known roles (changed on any "
        "change of value); number: changed only past its tolerance; other: changed on any change.",
    )
    tolerance: float | None = Field(
        None, description="Numbers: how far a value may move unchanged; null: 5% of the larger of the two."
    )
    median_difference: float | None = Field(None, description="Numbers: the median |challenger - champion|.")
    p95_difference: float | None = Field(None, description="Numbers: the 95th percentile of the difference.")
    largest_difference: float | None = Field(None, description="Numbers: the largest difference.")


class ChangedAnswer(BaseModel):
    """One shadowed input the versions answer differently: the input, both outputs, the fields that differ."""

    at: datetime = Field(description="When the caller was answered.")
    input_hash: str = Field(description="sha256 of the input as canonical JSON (sorted keys, no spaces).")
    input: dict[str, Any]
    flags: dict[str, Any] = Field(description="The flags the caller sent (both versions got them).")
    champion: dict[str, Any] = Field(description="The champion's output: what the caller got.")
    challenger: dict[str, Any] = Field(description="The challenger's output.")
    fields: list[str] = Field(description="The output fields whose values differ.")


class Latency(BaseModel):
    """One version's pipeline time for the shadowed requests, in milliseconds, as the model service
    timed it (its Server-Timing: the request's share of the run it was in, a background run's pauses
    left out), so both versions are timed alike, however the shadow calls were gathered."""

    calls: int
    p50_ms: float | None
    p95_ms: float | None


class ShadowSummary(BaseModel):
    """What shadowing live traffic to the challenger found, since a given time, for one pair of versions."""

    champion: str | None = Field(description="The champion's version hash (what callers got).")
    challenger: str | None = Field(description="The challenger's version hash; null when none is set.")
    since: datetime | None = Field(
        description="The start of the window: the time asked for, else the pair's first record."
    )
    until: datetime | None = Field(description="The newest record counted.")
    requests: int = Field(description="Predict requests shadowed (answered by the challenger or not).")
    rows: int = Field(description="Inputs both versions answered, compared field by field.")
    failed: int = Field(description="Shadow calls the challenger did not answer (refused, timed out, 5xx).")
    skipped: int = Field(description="Sampled requests not shadowed: too many shadow calls in flight.")
    errors: dict[str, int] = Field(
        default_factory=dict, description="Why shadow calls failed, and how often."
    )
    agreement: list[FieldAgreement] = Field(description="Each output field, the label first.")
    headline: str = Field(
        "", description="What changed in one sentence: the decisions first, then the drift."
    )
    decisions_changed: int = Field(0, description="Rows where any decision changed.")
    rows_changed: int = Field(
        description="Rows where any output field changed (a number: past its tolerance)."
    )
    changed: list[ChangedAnswer] = Field(description="The changed rows, newest first, up to `listed`.")
    listed: int = Field(description="How many changed rows the answer holds at most.")
    latency: dict[str, Latency] = Field(description="`champion` and `challenger`: each version's latency.")
    kept: str = Field(description="What the record keeps (its bound), in one sentence.")


class PromotionOrder(PromotionRequest):
    """A promotion as the gateway asks the model service for it: the public request and the shadow record."""

    shadow: ShadowSummary | None = Field(
        None, description="The shadow record's summary for this champion and challenger, read by the gateway."
    )
