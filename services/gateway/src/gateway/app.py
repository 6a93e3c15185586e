"""The gateway's HTTP API: thin routes over Gateway, KeyRing and RateLimiter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Response, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.auth import Caller, KeyRing
from gateway.openapi import with_pipeline
from gateway.ratelimit import RateLimiter
from gateway.service import Gateway, PublicPredictRequest
from gateway.settings import Settings
from onepipe import PipelineInfo
from onepipe.envelopes import VERSION_HEADER, PredictResponse, ProblemDetail
from onepipe.server import configure_logging, install_common, metrics_response, predict_response

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="Your API key.")
BEARER = HTTPBearer(auto_error=False, description="Your API key as a bearer token.")


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ProblemDetail, "content": {"application/problem+json": {}}} for code in codes}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway; refuses unsafe key configuration (ConfigurationError) before it starts."""
    settings = settings or Settings()
    keys = KeyRing(settings.api_keys, settings.environment)
    limiter = RateLimiter(settings.redis_url, settings.rate_limit)
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("gateway", settings.log_level)
        yield
        await gateway.close()

    app = FastAPI(
        title="onepipe gateway",
        description="The public API of the pipeline. Every /v1 route needs an API key "
        "(X-API-Key header, or Authorization: Bearer). Errors are RFC 9457 problem+json.",
        version="1",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    install_common(app, settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", VERSION_HEADER, "Retry-After"],
        )

    async def caller(
        api_key: Annotated[str | None, Security(API_KEY_HEADER)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> Caller:
        found = keys.authenticate(api_key or (bearer.credentials if bearer else None))
        limiter.check(found)
        return found

    authenticated = Depends(caller)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "alive"}

    @app.get("/readyz", tags=["health"], responses=_problems(503, 504))
    async def readyz() -> dict[str, str]:
        """Ready: the model service is ready."""
        return await gateway.ready()

    @app.get("/v1/pipeline", tags=["pipeline"], responses=_problems(401, 429, 503))
    async def pipeline(response: Response, who: Caller = authenticated) -> PipelineInfo:
        """What the pipeline is and does: steps, flags with defaults and descriptions, schemas, examples."""
        info = await gateway.pipeline()
        response.headers[VERSION_HEADER] = info.version
        return info

    @app.post(
        "/v1/predict",
        tags=["pipeline"],
        response_model=PredictResponse,
        response_model_exclude_none=True,
        responses=_problems(401, 403, 413, 422, 429, 502, 503, 504),
    )
    async def predict(body: PublicPredictRequest, who: Caller = authenticated) -> Response:
        """Run the pipeline on one input or a list; traces need the `debug` scope."""
        result = await gateway.predict(body, who)
        return predict_response(result)

    app.add_api_route("/metrics", metrics_response, include_in_schema=False)

    base_document: dict[str, Any] = {}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        """The OpenAPI document, typed with the pipeline's schemas."""
        if not base_document:
            base_document.update(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
        document = with_pipeline(base_document, await gateway.pipeline_or_none(), settings.max_inputs)
        return JSONResponse(document)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI over /openapi.json."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title}: API docs")

    return app
