"""The gateway's app, assembled: its services in the app's state, middleware, the routers, the docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from gateway import routes
from gateway.checks import check_metrics
from gateway.deps import AdmittedRoute
from gateway.settings import Settings
from gateway.state import build_services, services_of
from onepipe.platform.http.apidocs import install_docs
from onepipe.platform.http.envelopes import VERSION_HEADER
from onepipe.platform.http.server import install_common, metrics_response
from onepipe.platform.logs import configure_logging


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Logging configured at start; at the end the rate counts settled, the queue's connections and the
    model client closed."""
    services = services_of(app)
    configure_logging("gateway", services.settings.log_level)
    yield
    await services.access.limiter.close()
    services.enqueue.close()
    await services.gateway.close()


async def metrics(request: Request) -> Response:
    """The gateway's Prometheus metrics, and the scheduled checks' gauges read from the storage."""
    services = services_of(request.app)
    own = metrics_response()
    name = await services.gateway.pipeline_name()
    checks = await run_in_threadpool(check_metrics, services.checks, name) if name else b""
    return Response(bytes(own.body) + checks, media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway; refuses unsafe key configuration (ConfigurationError) before it starts."""
    settings = settings or Settings()
    services = build_services(settings)
    app = FastAPI(
        title="onepipe gateway",
        description="The public API of the pipeline. Every /v1 route needs an API key "
        "(X-API-Key header, or Authorization: Bearer). Errors are RFC 9457 problem+json.",
        version="1",
        lifespan=lifespan,
        openapi_url=None,  # served by routes.openapi, typed with the pipeline's schemas
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    # the caller admitted before the body is read; then a JSON body that is not JSON: 415 or 422 naming it
    app.router.route_class = AdmittedRoute
    install_common(app, settings.max_body_bytes, path_limits={"/v1/jobs": settings.max_upload_bytes})
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"],
            expose_headers=["X-Request-ID", VERSION_HEADER, "Retry-After"],
        )
    for router in routes.ROUTERS:
        app.include_router(router)
    app.add_api_route("/metrics", metrics, include_in_schema=False)
    install_docs(app)  # Swagger UI over /openapi.json, served from the installed package (no CDN)
    return app
