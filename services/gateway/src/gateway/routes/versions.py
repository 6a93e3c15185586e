"""Versions: the registered ones, and the moves of the champion alias (promotion on evidence, rollback)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from gateway.checks import check_list
from gateway.deps import ANY_KEY, VERSIONS, AdmittedRoute, CheckStoreDep, GatewayDep
from gateway.routes.responses import AUTHENTICATED, MODEL_SERVICE, problems
from gateway.shadow import parse_since
from onepipe.platform.versions.types import CheckList, PromotionRequest, ShadowSummary, VersionList

router = APIRouter(prefix="/v1/versions", tags=["versions"], route_class=AdmittedRoute)


@router.get("", response_model=VersionList, responses=problems(*AUTHENTICATED, *MODEL_SERVICE))
async def versions(who: ANY_KEY, gateway: GatewayDep) -> dict[str, Any]:
    """The registered versions, newest first: aliases (champion, challenger, previous), held-out scores,
    when each was trained, which are loaded; and the evidence of the last promotion."""
    return await gateway.versions()


@router.get("/checks", responses=problems(*AUTHENTICATED, *MODEL_SERVICE))
async def checks(who: ANY_KEY, gateway: GatewayDep, store: CheckStoreDep) -> CheckList:
    """The latest scheduled check of champion and challenger against the edge-case library (cases passed
    and failed on each, must-pass ones failing, what changed since the check before) and the 10 before
    it in brief; `latest` is null before the first check."""
    name = await gateway.pipeline_name() or (await gateway.pipeline()).name
    return await run_in_threadpool(check_list, store, name)


@router.get(
    "/shadow", response_model=ShadowSummary, responses=problems(*AUTHENTICATED, 403, 422, *MODEL_SERVICE)
)
async def shadow(
    who: VERSIONS,
    gateway: GatewayDep,
    since: Annotated[
        str | None,
        Query(
            description="An RFC 3339 time with its offset (2026-12-06T21:00:00Z); default: the pair's "
            "first record.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
) -> ShadowSummary:
    """What shadowing live traffic to the challenger found (`versions` scope: it shows callers' inputs):
    requests shadowed, failed and skipped, agreement per output field, the changed answers with their
    inputs (newest first), each version's latency; for the current champion and challenger."""
    return await gateway.shadow_summary(parse_since(since))


@router.post("/promote", responses=problems(*AUTHENTICATED, 403, 409, 422, *MODEL_SERVICE))
async def promote(body: PromotionRequest, who: VERSIONS, gateway: GatewayDep) -> dict[str, Any]:
    """Replay the edge cases and score the held-out rows on champion and challenger, then make the
    challenger champion (`versions` scope). Refused with 409 (the evidence in `evidence`) when a
    must-pass case breaks, unless `force` with a `reason` (recorded with the key's name). Body:
    it may take minutes."""
    return await gateway.change_versions("promote", body.model_dump(exclude_none=True), who)


@router.post(
    "/rollback", response_model=VersionList, responses=problems(*AUTHENTICATED, 403, 409, *MODEL_SERVICE)
)
async def rollback(who: VERSIONS, gateway: GatewayDep) -> dict[str, Any]:
    """Make the previous champion the champion again (`versions` scope); every model service process
    serves it within seconds, without a restart."""
    return await gateway.change_versions("rollback", {}, who)
