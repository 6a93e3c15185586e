"""Edge cases through the gateway: reports checked, answered and kept for `just cases pull`; the library
replayed on the champion.

A report belongs to the key that sent it (kept under the key's stable id): a key lists its own
reports; every key's takes the `cases:admin` scope (or `admin`). Each key may have at most
GATEWAY_MAX_PENDING_CASES reports waiting. The library (the repo's file, which the model service holds)
is shown to the same keys with each case's answer from the current champion, judged by the promotion's
rules (onepipe.platform.versions.library).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Caller
from gateway.jobs import check_flags
from gateway.service import Gateway, PublicPredictRequest
from onepipe import PipelineInfo, Problem
from onepipe.platform.cases import (
    NOTE_MAX_CHARS,
    Case,
    CaseSource,
    expected_problems,
    input_problems,
    without_defaults,
    wrong_fields,
)
from onepipe.platform.http.client import ServiceError, ServiceUnavailableError
from onepipe.platform.http.envelopes import PredictResponse
from onepipe.platform.http.server import ProblemError
from onepipe.platform.jobs.storage import CaseStore
from onepipe.platform.logs import request_id_var
from onepipe.platform.versions.evidence import Candidate
from onepipe.platform.versions.library import LibraryReplay, replay_library
from onepipe.platform.versions.types import CHAMPION

TITLE = "Invalid case"
EVERY_KEY = "cases:admin"  # the scope that sees every key's reports (admin has it too)


class CaseReport(BaseModel):
    """What surprised you: an input, the flags it ran with, and the answer it should have had."""

    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(description="The input, as for POST /v1/predict.")
    flags: dict[str, Any] = Field(
        default_factory=dict, description="The flags it ran with (unset: defaults)."
    )
    expected: dict[str, Any] = Field(
        min_length=1, description="Output field -> the right answer, for any fields you can judge."
    )
    note: str = Field("", max_length=NOTE_MAX_CHARS, description="What is wrong, in your words.")
    source: CaseSource = Field("app", description="Who found it: ui, app (team), reviewer or engineer.")


class ReportedCase(BaseModel):
    """A case as kept: the report, with what the pipeline answered when it came in."""

    key: str = Field(description="Where it is kept until `just cases pull` merges it into the library.")
    id: str = Field(description="The case's id: a hash of its input and flags.")
    input: dict[str, Any]
    flags: dict[str, Any]
    expected: dict[str, Any]
    note: str
    source: CaseSource
    reported_by: str | None = Field(description="The name of the key that reported it.")
    added_at: datetime
    answer: dict[str, Any] | None = Field(
        None, description="What the pipeline answered when the case came in (POST only)."
    )
    version: str | None = Field(None, description="The pipeline version that answered (POST only).")
    wrong: list[str] | None = Field(
        None, description="The expected fields that answer gets wrong (POST only): empty when it agrees."
    )


class CasePage(BaseModel):
    """The reported cases not yet pulled into the library, newest first: the caller's own, or every
    key's for a key with the `cases:admin` scope."""

    cases: list[ReportedCase]
    total: int
    offset: int
    limit: int


def _shown(key: str, case: Case) -> ReportedCase:
    return ReportedCase(key=key, **case.model_dump(exclude={"must_pass"}))


def as_case_problem(error: ProblemError) -> ProblemError:
    """The model service's refusal of `inputs[0]` as a refusal of the case's `input`.

    Each problem with an input says which input and which field in it as data (`Problem.input`,
    `Problem.field`): its place is rebuilt from those, and the detail from the problems.
    """
    errors = [_as_case_error(problem) for problem in error.errors or []]
    about_input = any(problem.input is not None for problem in error.errors or [])
    detail = "; ".join(str(problem) for problem in errors) if about_input else error.detail
    return ProblemError(
        error.status, TITLE if error.status == 422 else error.title, detail, errors, error.headers
    )


def _as_case_error(problem: Problem) -> Problem:
    """One problem of the request's only input, placed under the case's `input`."""
    if problem.input is None:
        return Problem(loc=problem.loc, message=problem.message)
    inside = problem.field or ""
    loc = "input" + ("." if inside and not inside.startswith("[") else "") + inside
    return Problem(loc=loc, message=problem.message)


def check_report(body: CaseReport, info: PipelineInfo) -> None:
    """A 422 naming every field of the report the pipeline's schemas refuse (input, expected, flags)."""
    problems = input_problems(body.input, info.input_schema) + expected_problems(
        body.expected, info.output_schema
    )
    if problems:
        raise ProblemError(422, TITLE, "; ".join(str(p) for p in problems), errors=problems)
    check_flags("flags", body.flags, info.flags_schema, title=TITLE)


def check_room(store: CaseStore, info: PipelineInfo, caller: Caller, limit: int) -> None:
    """A 429 problem when the caller's key already has `limit` reports waiting (its folder counted)."""
    waiting = store.count(info.name, caller.key_id)
    if waiting >= limit:
        raise ProblemError(
            429,
            "Too many reported cases",
            f"the key '{caller.name}' has {waiting} reported cases waiting, the limit of "
            f"{limit} per key (GATEWAY_MAX_PENDING_CASES): `just cases pull` merges them into the "
            "edge-case library and clears them",
        )


async def report(
    gateway: Gateway, store: CaseStore, info: PipelineInfo, caller: Caller, body: CaseReport, limit: int
) -> ReportedCase:
    """Check a case (its fields against the pipeline's schemas, its input by running it) and keep it
    as the caller's, unless the caller has `limit` reports waiting already."""
    check_report(body, info)
    await asyncio.to_thread(check_room, store, info, caller, limit)  # object storage: off the event loop
    try:
        raw = await gateway.predict(PublicPredictRequest(inputs=body.input, flags=body.flags), caller)
    except ProblemError as error:
        raise as_case_problem(error) from None
    answered = PredictResponse.model_validate_json(raw.body)
    case = Case(
        input=body.input,
        flags=without_defaults(body.flags, info.flags_schema),
        expected=body.expected,
        note=body.note,
        source=body.source,
        reported_by=caller.name,
    )
    key = await asyncio.to_thread(store.add, info.name, case, caller.key_id)
    output = answered.outputs[0]
    return _shown(key, case).model_copy(
        update={"answer": output, "version": answered.version, "wrong": wrong_fields(case, output)}
    )


def page(store: CaseStore, info: PipelineInfo, caller: Caller, offset: int, limit: int) -> CasePage:
    """One page of the reported cases, newest first: the caller's own, or every key's (`cases:admin`)."""
    owner = None if caller.can(EVERY_KEY) else caller.key_id
    found = list(reversed(store.stored(info.name, owner)))
    return CasePage(
        cases=[_shown(stored.key, stored.case) for stored in found[offset : offset + limit]],
        total=len(found),
        offset=offset,
        limit=limit,
    )


async def library(gateway: Gateway) -> LibraryReplay:
    """The model service's case library, every case answered by the champion (one predict per flag set).

    The first answer names the champion's hash, and every later call asks for that hash, so that a
    promotion during the replay cannot answer half the cases with another version. A model service that
    stops answering midway is the caller's 503 (504 on a timeout), not a library of unanswered cases.
    """
    info = await gateway.pipeline()  # the champion's version, should the library be empty
    try:
        held = await gateway.client.case_library()
    except ServiceError as error:
        raise gateway.problem(error) from None
    loop, request_id = asyncio.get_running_loop(), request_id_var.get()
    pinned: list[str] = []
    outages: list[ServiceUnavailableError] = []

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[dict[str, Any]]:
        if outages:  # one outage is enough: asking each case again would only wait for it again
            raise outages[0]
        version = pinned[0] if pinned else None
        call = gateway.client.predict(inputs, flags, request_id=request_id, version=version)
        try:  # the replay runs in a thread; the client belongs to the event loop
            answer = asyncio.run_coroutine_threadsafe(call, loop).result()
        except ServiceUnavailableError as error:
            outages.append(error)
            raise
        pinned[:] = pinned or [answer.version]
        return answer.outputs

    candidate = Candidate(CHAMPION, held.pipeline, info.version, None, run)
    replay = await asyncio.to_thread(replay_library, candidate, held.cases)
    if outages:
        raise gateway.problem(outages[0])
    return replay.model_copy(update={"version": pinned[0]}) if pinned else replay


def library_schema(
    components: dict[str, Any], refs: Mapping[str, dict[str, Any]], expected: Mapping[str, Any]
) -> None:
    """The library's cases typed by the pipeline's schemas in the OpenAPI document (`refs`: the input,
    output and flags schemas' references; `expected`: a report's expected answer, as typed)."""
    case = components["LibraryCase"]["properties"]
    for name, ref in (("input", refs["input"]), ("flags", refs["flags"])):
        case[name] = {"allOf": [ref], "description": case[name].get("description", "")}
    case["expected"] = {**expected, "description": case["expected"].get("description", "")}
    case["answer"] = {
        "anyOf": [refs["output"], {"type": "null"}],
        "description": case["answer"].get("description", ""),
    }
