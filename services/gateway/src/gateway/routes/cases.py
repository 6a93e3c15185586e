"""Edge cases: answers a key judges wrong, kept for the edge-case library; the library on the champion."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from gateway import cases
from gateway.cases import CasePage, CaseReport, ReportedCase
from gateway.deps import CASES, FEEDBACK, PAGE, AdmittedRoute, CaseStoreDep, GatewayDep, SettingsDep
from gateway.routes.responses import AUTHENTICATED, MODEL_SERVICE, problems
from onepipe.platform.versions.library import LibraryReplay

router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=AdmittedRoute)


@router.post(
    "",
    status_code=201,
    response_model=ReportedCase,
    response_model_exclude_none=True,
    responses=problems(*AUTHENTICATED, 403, 413, 415, 422, *MODEL_SERVICE),
)
async def report_case(
    body: CaseReport, who: FEEDBACK, gateway: GatewayDep, store: CaseStoreDep, settings: SettingsDep
) -> ReportedCase:
    """Report an answer you judge wrong (`feedback` scope): kept for the edge-case library, as your key's.

    Refused with 429 when the key has GATEWAY_MAX_PENDING_CASES reports waiting for `just cases pull`.
    """
    info = await gateway.pipeline()
    return await cases.report(gateway, store, info, who, body, settings.max_pending_cases)


@router.get("", responses=problems(*AUTHENTICATED, 403, 422, *MODEL_SERVICE))
async def list_cases(who: CASES, gateway: GatewayDep, store: CaseStoreDep, page: PAGE) -> CasePage:
    """The reported cases not yet merged into the library, newest first: those your key reported
    (`feedback` scope), or every key's (`cases:admin` scope)."""
    info = await gateway.pipeline()
    return await run_in_threadpool(cases.page, store, info, who, page.offset, page.limit)


@router.get("/library", responses=problems(*AUTHENTICATED, 403, *MODEL_SERVICE))
async def case_library(who: CASES, gateway: GatewayDep) -> LibraryReplay:
    """The edge-case library, each case answered by the current champion now: its input, flags, expected
    answer and note, whether it must pass, the champion's whole answer, right or wrong, and the counts
    (`feedback` or `cases:admin` scope, as for the reported cases). Each case is judged as a promotion
    judges it."""
    return await cases.library(gateway)
