"""What every HTTP service here shares: problem+json errors, request ids, body limits, metrics, JSON logs.

Needs the `server` extra (fastapi, prometheus-client, python-json-logger).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onepipe.errors import PipelineInputError, Problem, problem_at
from onepipe.platform.http.envelopes import (
    REQUEST_ID_HEADER,
    SERVER_TIMING_HEADER,
    VERSION_HEADER,
    PredictResponse,
    ProblemDetail,
    server_timing,
)
from onepipe.platform.http.prefork import (
    GRACEFUL_SHUTDOWN_SECONDS,
    MULTIPROCESS_DIR,
    run_forked,
    share_metrics,
)
from onepipe.platform.logs import request_id_var

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("onepipe.http")

REQUESTS = Counter("http_requests_total", "HTTP requests by route and status", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class ProblemError(Exception):
    """Raise in a route to answer with an RFC 9457 problem."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[Problem] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # RFC 9457 extension members, e.g. the evidence of a refusal


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[Problem] | None = None,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An application/problem+json response (`extra`: extension members beside the standard ones)."""
    body = ProblemDetail(
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=list(errors) if errors else None,
    )
    return JSONResponse(
        {**dict(extra or {}), **body.model_dump(exclude_none=True)},
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


def validation_problems(errors: Any) -> list[Problem]:
    """FastAPI's validation errors as problems, with `body.` dropped from the path."""
    problems = []
    for item in errors:
        loc = list(item.get("loc", ()))
        if loc and loc[0] == "body":
            loc = loc[1:]
        problems.append(problem_at(loc or ["body"], str(item.get("msg", "invalid"))))
    return problems


def install_problem_handlers(app: FastAPI) -> None:
    """Every error a caller can meet becomes problem+json; no traceback ever leaves the service."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            error.status,
            error.title,
            error.detail,
            errors=error.errors,
            headers=error.headers,
            instance=request.url.path,
            extra=error.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = validation_problems(error.errors())
        return problem_response(
            422,
            "Invalid request",
            "; ".join(str(p) for p in problems),
            errors=problems,
            instance=request.url.path,
        )

    @app.exception_handler(PipelineInputError)
    async def _pipeline_input(request: Request, error: PipelineInputError) -> JSONResponse:
        return problem_response(
            422, "Invalid input", str(error), errors=error.problems, instance=request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # FastAPI's answer to a body it cannot parse (not UTF-8, broken multipart): like malformed
            # JSON, an invalid request naming the body
            problem = Problem(loc="body", message=str(error.detail))
            return problem_response(
                422, "Invalid request", str(problem), errors=[problem], instance=request.url.path
            )
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Starlette names the methods of the first route matching the path; the path may have more
            headers["Allow"] = allowed_methods(request)
        title = (
            "Request body too large" if isinstance(error, BodyTooLargeError) else _title(error.status_code)
        )
        return problem_response(
            error.status_code,
            title,
            str(error.detail),
            headers=headers,
            instance=request.url.path,
        )


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers at the request's path, for `Allow`."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):  # those of included routers too
        if route.matches(request.scope)[0] != Match.NONE:
            methods.update(route.methods or ())
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return ", ".join(sorted(methods, key=lambda m: order.index(m) if m in order else len(order)))


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


NOSNIFF = (b"x-content-type-options", b"nosniff")


class RequestContextMiddleware:
    """Keeps the caller's X-Request-ID (or makes one), returns it, logs and counts each request."""

    def __init__(self, app: ASGIApp, skip_log_paths: tuple[str, ...] = ("/healthz", "/metrics")) -> None:
        self.app = app
        self.skip_log_paths = skip_log_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get(REQUEST_ID_HEADER.lower()) or uuid.uuid4().hex
        token = request_id_var.set(request_id[:128])
        status = 500
        started_response = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message.setdefault("headers", [])
                message["headers"].append(
                    (REQUEST_ID_HEADER.encode(), request_id_var.get().encode("latin-1"))
                )
                # every answer is the type it says: a browser never guesses a report or a JSON
                # body that holds markup into a page
                message["headers"].append(NOSNIFF)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # the one place an unexpected error is caught: logged whole, answered without a traceback
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started_response:
                response = problem_response(
                    500,
                    "Internal error",
                    "the service failed on this request; its log has the details under request id "
                    + request_id_var.get(),
                    instance=scope["path"],
                )
                await response(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(seconds)
            if scope["path"] not in self.skip_log_paths:
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )
            request_id_var.reset(token)


class BodyTooLargeError(StarletteHTTPException):
    """The request body passed its limit (raised while the route reads it, answered as 413)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(413, f"the request body is at least {size} bytes; the limit is {limit} bytes")


class BodyLimitMiddleware:
    """Refuses a request body over its limit with 413, counting as it streams (nothing is buffered).

    `path_limits` gives other limits to paths starting with a prefix (e.g. uploads).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    def limit_for(self, path: str) -> int:
        """The body limit of a path."""
        return next((v for k, v in self.path_limits.items() if path.startswith(k)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem_response(
                413,
                "Request body too large",
                f"the request body is {int(declared)} bytes; the limit is {limit} bytes",
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        size = 0

        async def counting() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLargeError(size, limit)
            return message

        await self.app(scope, counting, send)


def metrics_response() -> Response:
    """The service's Prometheus metrics: the process's own, or every worker's summed (see `serve`)."""
    if MULTIPROCESS_DIR not in os.environ:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


START_FAILURE_FILE = "ONEPIPE_START_FAILURE_FILE"
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that cannot start: its parent stops them all


def serve(
    factory: str, host: str, port: int, workers: int, preload: Callable[[], str | None] | None = None
) -> str | None:
    """Serve the app that `factory` (module:function) makes under uvicorn, in `workers` processes.

    Each worker is a process of its own (its own GIL, event loop and copy of the app),
    sharing the port. Their metrics go to files in one folder, which `/metrics` sums
    (prometheus-client's multiprocess mode), so any worker answers for all of them.
    With `preload`, this process runs it (imports, returning why it refuses to start, if it
    does) and forks the workers after it (`prefork.run_forked`); its caller must have called
    `prefork.share_metrics` before importing prometheus-client. Without, uvicorn spawns fresh
    processes. Returns why a worker refused to start (`refuse_start`), if one did. On SIGTERM the
    requests under way get GRACEFUL_SHUTDOWN_SECONDS to finish, then are cancelled: a
    request stuck on a peer never holds the process past compose's grace period (10 s).
    """
    import uvicorn

    failure: Path | None = None
    if workers > 1:
        if preload is None:
            share_metrics()
        elif values.ValueClass is values.MutexValue:
            raise RuntimeError(f"{MULTIPROCESS_DIR} must be set before prometheus_client is imported")
        failure = Path(tempfile.mkdtemp(prefix="onepipe-start-")) / "failure"
        os.environ[START_FAILURE_FILE] = str(failure)
    if failure is not None and preload is not None:
        if refused := preload():
            return refused
        status = run_forked(factory, host, port, workers)
        if status and not failure.exists():  # e.g. the port is taken: gunicorn logged why
            return f"the server stopped with status {status}; its log above says why"
    else:
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    return failure.read_text() if failure is not None and failure.exists() else None


def started_by_serve_in_workers() -> bool:
    """Whether this process is one of several workers of `serve`, whose parent checked nothing."""
    return START_FAILURE_FILE in os.environ


def refuse_start(message: str) -> NoReturn:
    """Stop this worker before it serves: `serve` returns `message`, and uvicorn stops every worker."""
    Path(os.environ[START_FAILURE_FILE]).write_text(message)
    sys.exit(STARTUP_FAILURE)


def predict_response(result: PredictResponse, pipeline_ms: float | None = None) -> Response:
    """A predict answer with its version header, serialised once by pydantic.

    FastAPI would validate and walk the outputs again; this is every service's hot path. With
    `pipeline_ms`, a Server-Timing header says the pipeline's time for these inputs.
    """
    headers = {VERSION_HEADER: result.version}
    if pipeline_ms is not None:
        headers[SERVER_TIMING_HEADER] = server_timing(pipeline_ms)
    return Response(result.model_dump_json(exclude_none=True), media_type="application/json", headers=headers)


def install_common(app: FastAPI, max_body_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
    """Problem handlers, body limit and request context, in the order that makes each see the next."""
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, path_limits=path_limits)
    app.add_middleware(RequestContextMiddleware)
