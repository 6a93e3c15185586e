"""The model service's routes: health, the pipeline's description, predict; each translates to ModelService.

Added to the app itself (`add_routes`), not through an included router: on the hot path, /v1/predict,
a router of its own would cost one more route match per request. The service is read from the app's
state through the request, which costs nothing more (a dependency would).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from model_service.promotion import Promotion
from model_service.service import ModelService
from onepipe import PipelineInfo
from onepipe.platform.cases import CaseLibrary
from onepipe.platform.http.apidocs import problems
from onepipe.platform.http.envelopes import VERSION_HEADER, PredictRequest, PredictResponse, is_background
from onepipe.platform.http.server import metrics_response, predict_response
from onepipe.platform.versions.types import CHALLENGER, PromotionOrder, VersionList

# who asked for a promotion, as the gateway names the caller's key (recorded when it is forced)
CALLER_HEADER = "X-Caller"

VERSIONED = {
    "headers": {VERSION_HEADER: {"description": "The pipeline's version.", "schema": {"type": "string"}}}
}
LOADING: dict[int | str, dict[str, Any]] = {200: VERSIONED, **problems(503)}  # 503 until loaded


def service_of(app: FastAPI) -> ModelService:
    """The app's ModelService (set by create_app)."""
    found: ModelService = app.state.service
    return found


async def healthz() -> dict[str, str]:
    """Alive."""
    return {"status": "alive"}


async def readyz(request: Request, response: Response) -> dict[str, Any]:
    """Ready: the champion is loaded (and the challenger, when one is set); says if the registry is down."""
    service = service_of(request.app)
    loaded = service.ready()
    response.headers[VERSION_HEADER] = loaded.version
    assert service.lineup is not None
    challenger = service.lineup.aliases.get(CHALLENGER)
    registry = service.registry_state()
    return {
        "status": "ready",
        "pipeline": loaded.name,
        "version": loaded.version,
        **({"challenger": challenger} if challenger else {}),
        # none (one artifacts folder), ok, or down with why: a registry down leaves the service serving
        "registry": "none"
        if registry.kind == "none"
        else registry.status + (f": {registry.error}" if registry.error else ""),
    }


async def versions(request: Request) -> VersionList:
    """Every registered version, newest first: aliases, metrics, when trained, which are loaded."""
    return await service_of(request.app).versions()


async def promote(body: PromotionOrder, request: Request) -> Promotion:
    """The evidence on champion and challenger; refused (409, with it), or the challenger made champion."""
    return await service_of(request.app).promote(body, request.headers.get(CALLER_HEADER))


async def rollback(request: Request) -> VersionList:
    """The previous champion serves again; the rolled-back version becomes the challenger."""
    return await service_of(request.app).rollback()


async def case_library(request: Request) -> CaseLibrary:
    """The edge-case library a promotion replays (MODEL_CASES_DIR): what the scheduled checks replay."""
    return await service_of(request.app).case_library()


async def pipeline(request: Request, response: Response) -> PipelineInfo:
    """The pipeline: steps, schemas of its input, output and flags, and named examples."""
    info = service_of(request.app).describe()
    response.headers[VERSION_HEADER] = info.version
    return info


async def predict(body: PredictRequest, request: Request) -> Response:
    """Run a batch of inputs; with debug on, also a trace of every step per input."""
    background = is_background(request.headers.get("priority"))
    result, pipeline_ms = await service_of(request.app).predict(body, background)
    return predict_response(result, pipeline_ms)


def add_routes(app: FastAPI) -> None:
    """The routes, in the order they are matched and documented."""
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"], responses=LOADING)
    app.add_api_route("/v1/pipeline", pipeline, methods=["GET"], responses=LOADING)
    app.add_api_route(
        "/v1/predict",
        predict,
        methods=["POST"],
        responses={**LOADING, **problems(413, 415, 422)},
        response_model=PredictResponse,
        response_model_exclude_none=True,
    )
    app.add_api_route("/v1/versions", versions, methods=["GET"], responses=LOADING)
    app.add_api_route(
        "/v1/versions/promote", promote, methods=["POST"], responses={**LOADING, **problems(409, 422)}
    )
    app.add_api_route(
        "/v1/versions/rollback", rollback, methods=["POST"], responses={**LOADING, **problems(409)}
    )
    app.add_api_route("/v1/cases/library", case_library, methods=["GET"], responses=problems(500))
    app.add_api_route("/metrics", metrics_response, include_in_schema=False)
