"""The model service's app, assembled: the pipeline's service in the app's state, its routes, the docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from model_service.openapi import app_document
from model_service.routes import add_routes, service_of
from model_service.service import ModelService
from model_service.settings import Settings
from onepipe import ArtifactsError, PipelineDefinitionError
from onepipe.platform.http.apidocs import install_docs
from onepipe.platform.http.json_bodies import JsonBodyRoute
from onepipe.platform.http.server import install_common, refuse_start, started_by_serve_in_workers
from onepipe.platform.loading import import_pipeline
from onepipe.platform.logs import configure_logging
from onepipe.platform.versions.registry import import_client


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Artifacts checked, then the pipeline loaded; the service closed at the end."""
    service = service_of(app)
    configure_logging("model", service.settings.log_level)
    service.check()  # missing or stale artifacts stop the start
    # one process loads in the background (/healthz alive, /readyz 503 meanwhile); processes
    # sharing a port each take connections only once loaded, so none answers 503 "loading"
    # while another is ready
    loading = asyncio.create_task(service.load())
    if service.settings.workers > 1:
        await loading
    yield
    loading.cancel()
    await service.close()


def preload(settings: Settings) -> str | None:
    """What the parent of several workers imports once for all of them, or why it cannot start.

    Modules only (the pipeline and its libraries, MLflow's client): no model, ONNX Runtime session,
    thread pool or registry connection may cross the fork (docs/performance.md, finding 9), so each
    worker still checks and loads its own, and polls the registry on its own.
    """
    configure_logging("model", settings.log_level)  # gunicorn's lines, as JSON like the workers'
    try:
        pipeline = import_pipeline(settings.pipeline)
        if settings.registry == "none":  # the folder alone: checked before the port is bound
            pipeline.check_artifacts(settings.artifacts_for(pipeline.name))
    except (ArtifactsError, PipelineDefinitionError) as error:
        return str(error)
    if settings.registry != "none":
        import_client(settings.registry)
    return None


def build_service(settings: Settings) -> ModelService:
    """The service for the configured pipeline; a worker of `model-service serve` stops on a bad one."""
    try:
        service = ModelService(import_pipeline(settings.pipeline), settings)
        if started_by_serve_in_workers():
            service.check()  # the parent left it to each worker (model-service serve)
    except (ArtifactsError, PipelineDefinitionError) as error:
        if started_by_serve_in_workers():
            refuse_start(str(error))
        raise
    return service


def create_app(settings: Settings | None = None) -> FastAPI:
    """The model service for the configured pipeline; it loads the pipeline in the background."""
    settings = settings or Settings()
    service = build_service(settings)
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
    add_routes(app)
    app.openapi = partial(app_document, app, service.definition, settings.max_inputs)  # type: ignore[method-assign]
    install_docs(app, app.openapi_url or "/openapi.json")  # Swagger UI, served from the installed package
    return app
