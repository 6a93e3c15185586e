"""The model service's HTTP API: thin routes over ModelService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi

from model_service.openapi import typed_document
from model_service.service import ModelService
from model_service.settings import Settings
from onepipe import ArtifactsError, PipelineDefinitionError, PipelineInfo
from onepipe.apidocs import install_docs, problems
from onepipe.envelopes import VERSION_HEADER, PredictRequest, PredictResponse
from onepipe.json_bodies import JsonBodyRoute
from onepipe.loading import import_pipeline
from onepipe.logs import configure_logging
from onepipe.server import (
    install_common,
    metrics_response,
    predict_response,
    refuse_start,
    started_by_serve_in_workers,
)

VERSIONED = {
    "headers": {VERSION_HEADER: {"description": "The pipeline's version.", "schema": {"type": "string"}}}
}
LOADING: dict[int | str, dict[str, Any]] = {200: VERSIONED, **problems(503)}  # 503 until loaded


def create_app(settings: Settings | None = None) -> FastAPI:
    """The model service for the configured pipeline; it loads the pipeline in the background."""
    settings = settings or Settings()
    try:
        service = ModelService(import_pipeline(settings.pipeline), settings)
        if started_by_serve_in_workers():
            service.check()  # the parent left it to each worker (model-service serve)
    except (ArtifactsError, PipelineDefinitionError) as error:
        if started_by_serve_in_workers():
            refuse_start(str(error))
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("model", settings.log_level)
        service.check()  # missing or stale artifacts stop the start
        # one process loads in the background (/healthz alive, /readyz 503 meanwhile); processes
        # sharing a port each take connections only once loaded, so none answers 503 "loading"
        # while another is ready
        loading = asyncio.create_task(service.load())
        if settings.workers > 1:
            await loading
        yield
        loading.cancel()
        await service.close()

    app = FastAPI(
        title=f"Model service: {service.definition.name}",
        description="Internal API over the pipeline. The only process that loads models.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    install_common(app, settings.max_body_bytes)
    app.router.route_class = JsonBodyRoute  # a JSON body that is not JSON: 415 or 422 naming it

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "alive"}

    @app.get("/readyz", responses=LOADING)
    async def readyz(response: Response) -> dict[str, str]:
        """Ready: the pipeline's artifacts are loaded."""
        loaded = service.ready()
        response.headers[VERSION_HEADER] = loaded.version
        return {"status": "ready", "pipeline": loaded.name, "version": loaded.version}

    @app.get("/v1/pipeline", responses=LOADING)
    async def pipeline(response: Response) -> PipelineInfo:
        """The pipeline: steps, schemas of its input, output and flags, and named examples."""
        info = service.describe()
        response.headers[VERSION_HEADER] = info.version
        return info

    @app.post(
        "/v1/predict",
        responses={**LOADING, **problems(413, 415, 422)},
        response_model=PredictResponse,
        response_model_exclude_none=True,
    )
    async def predict(request: PredictRequest) -> Response:
        """Run a batch of inputs; with debug on, also a trace of every step per input."""
        result = await service.predict(request)
        return predict_response(result)

    app.add_api_route("/metrics", metrics_response, include_in_schema=False)

    def openapi() -> dict[str, Any]:
        """FastAPI's document made exact and typed by the pipeline (built once)."""
        if app.openapi_schema is None:
            fastapi_document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            info = service.definition.describe("")
            app.openapi_schema = typed_document(fastapi_document, info, settings.max_inputs)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_docs(app, app.openapi_url or "/openapi.json")  # Swagger UI, served from the installed package

    return app
