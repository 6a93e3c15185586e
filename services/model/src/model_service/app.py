"""The model service's HTTP API: thin routes over ModelService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response

from model_service.service import ModelService
from model_service.settings import Settings
from onepipe import PipelineInfo
from onepipe.envelopes import VERSION_HEADER, PredictRequest, PredictResponse, ProblemDetail
from onepipe.loading import import_pipeline
from onepipe.logs import configure_logging
from onepipe.server import install_common, metrics_response, predict_response

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemDetail, "content": {"application/problem+json": {}}} for code in (413, 422, 503)
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The model service for the configured pipeline; it loads the pipeline in the background."""
    settings = settings or Settings()
    service = ModelService(import_pipeline(settings.pipeline), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("model", settings.log_level)
        service.check()  # missing or stale artifacts stop the start
        loading = asyncio.create_task(service.load())
        yield
        loading.cancel()
        await service.close()

    app = FastAPI(
        title=f"Model service: {service.definition.name}",
        description="Internal API over the pipeline. The only process that loads models.",
        lifespan=lifespan,
    )
    app.state.service = service
    install_common(app, settings.max_body_bytes)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "alive"}

    @app.get("/readyz", responses=PROBLEMS)
    async def readyz(response: Response) -> dict[str, str]:
        """Ready: the pipeline's artifacts are loaded."""
        loaded = service.ready()
        response.headers[VERSION_HEADER] = loaded.version
        return {"status": "ready", "pipeline": loaded.name, "version": loaded.version}

    @app.get("/v1/pipeline", responses=PROBLEMS)
    async def pipeline(response: Response) -> PipelineInfo:
        """The pipeline: steps, schemas of its input, output and flags, and named examples."""
        info = service.describe()
        response.headers[VERSION_HEADER] = info.version
        return info

    @app.post("/v1/predict", responses=PROBLEMS, response_model=PredictResponse)
    async def predict(request: PredictRequest) -> Response:
        """Run a batch of inputs; with debug on, also a trace of every step per input."""
        result = await service.predict(request)
        return predict_response(result)

    app.add_api_route("/metrics", metrics_response, include_in_schema=False)

    return app
