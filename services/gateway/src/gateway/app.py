"""The gateway's HTTP API: thin routes over Gateway, KeyRing and RateLimiter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from gateway import cases
from gateway.auth import Access, AdmittedRoute, Allowed, Caller, ConfigurationError, KeyRing
from gateway.cases import CasePage, CaseReport, ReportedCase
from gateway.compare import STYLE, JobComparison, render_html
from gateway.idempotency import IdempotencyHeader, IdempotencyStore, fingerprint, submit_once
from gateway.jobs import (
    NOT_FRAMED,
    REPORT_MEDIA_TYPES,
    JobPage,
    JobService,
    JobView,
    parse_json_field,
    report_headers,
    view,
)
from gateway.openapi import with_json_fields, with_pipeline
from gateway.queue import Enqueuer, producer
from gateway.ratelimit import RateLimiter
from gateway.service import Gateway, PublicPredictRequest
from gateway.settings import Settings
from onepipe import PipelineInfo
from onepipe.apidocs import exact, install_docs, problems
from onepipe.envelopes import VERSION_HEADER, PredictResponse
from onepipe.html_policy import CSP_HEADER, content_policy
from onepipe.jobs import REPORT_FORMATS, JobMeta, ReportFormat
from onepipe.logs import configure_logging
from onepipe.server import install_common, metrics_response
from onepipe.settings import uses_redis
from onepipe.storage import CaseStore, JobStore

# what each route asks of its caller: a valid key (401), under its rate limit (429), with the scope (403),
# all checked before the body is read
ANY_KEY = Annotated[Caller, Depends(Allowed(None))]
PREDICT = Annotated[Caller, Depends(Allowed("predict"))]
FEEDBACK = Annotated[Caller, Depends(Allowed("feedback"))]
CASES = Annotated[Caller, Depends(Allowed("feedback", "cases:admin"))]  # a key's own, or every key's
JOBS = Annotated[Caller, Depends(Allowed("jobs"))]

AUTHENTICATED = (401, 429)  # every route with a key: no key or a wrong one, over the rate limit
MODEL_SERVICE = (502, 503, 504)  # every route that asks the model service
VERSIONED = {
    "headers": {VERSION_HEADER: {"description": "The pipeline's version.", "schema": {"type": "string"}}}
}
REPORTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report, in the format the path names: "
        + ", ".join(f"{fmt} as {REPORT_MEDIA_TYPES[fmt].split(';')[0]}" for fmt in REPORT_FORMATS)
        + ".",
        "content": {
            media_type.split(";")[0]: {"schema": {"type": "string"}}
            if media_type.startswith("text/")
            else {"schema": {"type": "string", "contentMediaType": media_type}}
            for media_type in REPORT_MEDIA_TYPES.values()
        },
        "headers": {
            "Content-Disposition": {
                "description": "inline for html, attachment for the others, with the file's name.",
                "schema": {"type": "string"},
            }
        },
    }
}


COMPARISON_PAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The comparison as an HTML page.",
        "headers": {
            "Content-Disposition": {
                "description": "inline, with the page's file name.",
                "schema": {"type": "string"},
            }
        },
    }
}


COMPARISON_POLICY = f"{content_policy(STYLE)}; {NOT_FRAMED}"  # the page's own style, no script


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return problems(*sorted(set(codes)))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway; refuses unsafe key configuration (ConfigurationError) before it starts."""
    settings = settings or Settings()
    keys = KeyRing(settings.api_keys, settings.environment)
    # without Redis (the embedded mode) the counters live in this process
    counters = settings.redis_url if uses_redis(settings.redis_url) else "memory://"
    if settings.workers > 1 and counters == "memory://":
        raise ConfigurationError(
            f"GATEWAY_WORKERS={settings.workers} needs Redis (REDIS_URL): without it each worker would "
            "count rate limits on its own; set REDIS_URL, or GATEWAY_WORKERS=1"
        )
    limiter = RateLimiter(counters, settings.rate_limit)
    gateway = Gateway(settings)
    # every Redis call bounded, the whole enqueue within GATEWAY_QUEUE_TIMEOUT (a silent Redis: 503)
    enqueue = Enqueuer(producer(settings.redis_url, settings.queue_timeout), settings.queue_timeout)
    jobs = JobService(JobStore(settings.storage_url), enqueue, settings.max_upload_bytes)
    claims = IdempotencyStore(jobs.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("gateway", settings.log_level)
        yield
        enqueue.close()
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
    app.state.access = Access(keys, limiter)
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

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "alive"}

    @app.get("/readyz", tags=["health"], responses=_problems(*MODEL_SERVICE))
    async def readyz() -> dict[str, str]:
        """Ready when the model service is (else 503); `degraded` when only the queue is unavailable."""
        return await gateway.ready()

    @app.get(
        "/v1/pipeline",
        tags=["pipeline"],
        responses={200: VERSIONED, **_problems(*AUTHENTICATED, *MODEL_SERVICE)},
    )
    async def pipeline(response: Response, who: ANY_KEY) -> PipelineInfo:
        """What the pipeline is and does: steps, flags with defaults and descriptions, schemas, examples."""
        info = await gateway.pipeline()
        response.headers[VERSION_HEADER] = info.version
        return info

    @app.post(
        "/v1/predict",
        tags=["pipeline"],
        response_model=PredictResponse,
        response_model_exclude_none=True,
        responses={200: VERSIONED, **_problems(*AUTHENTICATED, 403, 413, 415, 422, *MODEL_SERVICE)},
    )
    async def predict(body: PublicPredictRequest, who: PREDICT) -> Response:
        """Run the pipeline on one input or a list (`predict` scope); traces need the `debug` scope."""
        answer = await gateway.predict(body, who)
        # the model service's answer is the public one: passed on as sent, not parsed and written again
        return Response(answer.body, media_type="application/json", headers={VERSION_HEADER: answer.version})

    app.add_api_route("/metrics", metrics_response, include_in_schema=False)

    case_store = CaseStore(settings.storage_url)

    @app.post(
        "/v1/cases",
        tags=["cases"],
        status_code=201,
        response_model=ReportedCase,
        response_model_exclude_none=True,
        responses=_problems(*AUTHENTICATED, 403, 413, 415, 422, *MODEL_SERVICE),
    )
    async def report_case(body: CaseReport, who: FEEDBACK) -> ReportedCase:
        """Report an answer you judge wrong (`feedback` scope): kept for the edge-case library, as your key's.

        Refused with 429 when the key has GATEWAY_MAX_PENDING_CASES reports waiting for `just cases pull`.
        """
        info = await gateway.pipeline()
        return await cases.report(gateway, case_store, info, who, body, settings.max_pending_cases)

    @app.get("/v1/cases", tags=["cases"], responses=_problems(*AUTHENTICATED, 403, 422, *MODEL_SERVICE))
    async def list_cases(
        who: CASES,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> CasePage:
        """The reported cases not yet merged into the library, newest first: those your key reported
        (`feedback` scope), or every key's (`cases:admin` scope)."""
        info = await gateway.pipeline()
        return await run_in_threadpool(cases.page, case_store, info, who, offset, limit)

    @app.post(
        "/v1/jobs",
        tags=["jobs"],
        status_code=202,
        response_model=JobView,
        responses={
            202: {"headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}}},
            **_problems(*AUTHENTICATED, 403, 409, 413, 422, *MODEL_SERVICE),
        },
    )
    async def submit_job(
        request: Request,
        who: JOBS,
        idempotency_key: Annotated[str | None, Depends(IdempotencyHeader())],
        file: Annotated[UploadFile, File(description="The dataset: .csv, .jsonl or .parquet.")],
        mapping: Annotated[
            str | None, Form(description="JSON object: input field -> column (default: same names).")
        ] = None,
        flags: Annotated[str | None, Form(description="JSON object: the flag set to run with.")] = None,
        compare_flags: Annotated[
            str | None, Form(description="JSON object: a second flag set to compare.")
        ] = None,
        truth: Annotated[
            str | None,
            Form(description="JSON object: output field -> the column of its right answers, to score."),
        ] = None,
    ) -> JSONResponse:
        """Queue a batch job over an uploaded file; answers 202 with the job and its URL.

        With an Idempotency-Key, a retry gets the first job back (202, same id and Location)."""
        parsed_mapping = parse_json_field("mapping", mapping, {})
        parsed_flags = parse_json_field("flags", flags, {})
        parsed_compare = parse_json_field("compare_flags", compare_flags, None)
        parsed_truth = parse_json_field("truth", truth, {})
        info = await gateway.pipeline()
        file_name = file.filename or "upload"

        def submit(job_id: str | None = None) -> JobMeta:
            return jobs.submit(
                who,
                info,
                file_name,
                file.file,
                parsed_mapping,
                parsed_flags,
                parsed_compare,
                parsed_truth,
                job_id,
            )

        if idempotency_key is None:
            meta = await run_in_threadpool(submit)
        else:
            fields = {"mapping": mapping, "flags": flags, "compare_flags": compare_flags, "truth": truth}
            print_ = await run_in_threadpool(fingerprint, file_name, file.file, fields)
            meta, _ = await run_in_threadpool(submit_once, claims, who, idempotency_key, print_, submit)
        shown = view(meta, str(request.base_url))
        return JSONResponse(shown.model_dump(mode="json"), status_code=202, headers={"Location": shown.url})

    @app.get("/v1/jobs", tags=["jobs"], responses=_problems(*AUTHENTICATED, 403, 422))
    async def list_jobs(
        request: Request,
        who: JOBS,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> JobPage:
        """Recent jobs, newest first (a key sees its own; admin sees all)."""
        found, total = await run_in_threadpool(jobs.page, who, offset, limit)
        return JobPage(
            jobs=[view(m, str(request.base_url)) for m in found], total=total, offset=offset, limit=limit
        )

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], responses=_problems(*AUTHENTICATED, 403, 404))
    async def get_job(job_id: str, request: Request, who: JOBS) -> JobView:
        """A job: state, rows done of total, rows failed, times, version, flags, report links."""
        return view(await run_in_threadpool(jobs.get, who, job_id), str(request.base_url))

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], responses=_problems(*AUTHENTICATED, 403, 404, 409))
    async def cancel_job(job_id: str, request: Request, who: JOBS) -> JobView:
        """Cancel a queued or running job."""
        return view(await run_in_threadpool(jobs.cancel, who, job_id), str(request.base_url))

    @app.post(
        "/v1/jobs/{job_id}/resume",
        tags=["jobs"],
        status_code=202,
        responses=_problems(*AUTHENTICATED, 403, 404, 409),
    )
    async def resume_job(job_id: str, request: Request, who: JOBS) -> JobView:
        """Queue a failed or cancelled job again; the rows already done are kept."""
        return view(await run_in_threadpool(jobs.resume, who, job_id), str(request.base_url))

    @app.get(
        "/v1/jobs/{job_id}/report.{file_format}",
        tags=["jobs"],
        response_class=StreamingResponse,
        responses={**REPORTS, **_problems(*AUTHENTICATED, 403, 404, 422)},
    )
    async def job_report(job_id: str, file_format: ReportFormat, who: JOBS) -> StreamingResponse:
        """A finished job's report: html, csv, jsonl or parquet."""
        meta, name = await run_in_threadpool(jobs.report, who, job_id, file_format)

        def first() -> bytes:
            with jobs.store.open(meta.id, name) as handle:
                return bytes(handle.read(1 << 12))  # the head, where an HTML report declares its policy

        def chunks() -> Iterator[bytes]:
            with jobs.store.open(meta.id, name) as handle:
                while block := handle.read(1 << 16):
                    yield block

        head = await run_in_threadpool(first) if file_format == "html" else b""
        return StreamingResponse(
            chunks(),
            media_type=REPORT_MEDIA_TYPES[file_format],
            headers=report_headers(file_format, meta.id, head),
        )

    async def comparison(job_id: str, other_id: str, who: Caller) -> JobComparison:
        info = await gateway.pipeline()  # its output schema says which fields are categories, scored
        return await run_in_threadpool(jobs.compare, who, job_id, other_id, info.output_schema)

    compare_problems = _problems(*AUTHENTICATED, 403, 404, 409, 422, *MODEL_SERVICE)

    # before the JSON route, whose {other_id} would otherwise take "<id>.html"
    @app.get(
        "/v1/jobs/{job_id}/compare/{other_id}.html",
        tags=["jobs"],
        response_class=HTMLResponse,
        responses={**COMPARISON_PAGE, **compare_problems},
    )
    async def compare_jobs_page(job_id: str, other_id: str, who: JOBS) -> HTMLResponse:
        """The comparison of two jobs as a page to read in a browser (the same figures as the JSON)."""
        found = await comparison(job_id, other_id, who)
        name = f"compare-{found.a.id}-{found.b.id}.html"
        headers = {"Content-Disposition": f'inline; filename="{name}"', CSP_HEADER: COMPARISON_POLICY}
        return HTMLResponse(render_html(found), headers=headers)

    @app.get("/v1/jobs/{job_id}/compare/{other_id}", tags=["jobs"], responses=compare_problems)
    async def compare_jobs(job_id: str, other_id: str, who: JOBS) -> JobComparison:
        """What changed from job A (`job_id`) to job B (`other_id`), two succeeded jobs on the same file."""
        return await comparison(job_id, other_id, who)

    base_document: dict[str, Any] = {}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        """The OpenAPI document, typed with the pipeline's schemas."""
        if not base_document:
            fastapi_document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            base_document.update(with_json_fields(exact(fastapi_document)))
        document = with_pipeline(base_document, await gateway.pipeline_or_none(), settings.max_inputs)
        return JSONResponse(document)

    install_docs(app)  # Swagger UI over /openapi.json, served from the installed package (no CDN)

    return app
