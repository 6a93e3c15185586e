"""Batch jobs: submit an upload, list, show, cancel, resume, their reports, and two compared."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from gateway.auth import Caller
from gateway.compare import STYLE, JobComparison, render_html
from gateway.deps import (
    BASE_URL,
    IDEMPOTENCY_KEY,
    JOBS,
    PAGE,
    AdmittedRoute,
    ClaimsDep,
    GatewayDep,
    JobServiceDep,
)
from gateway.idempotency import submit_keyed
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
from gateway.routes.responses import AUTHENTICATED, MODEL_SERVICE, problems
from gateway.service import Gateway
from onepipe.platform.http.html_policy import CSP_HEADER, content_policy
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import REPORT_FORMATS, ReportFormat

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
COMPARE_PROBLEMS = problems(*AUTHENTICATED, 403, 404, 409, 422, *MODEL_SERVICE)
BLOCK_BYTES = 1 << 16
VERSION_FIELD = (
    "The version to run with (needs the `versions` scope): an alias (`champion`, `challenger`), a "
    "registered version's number (`v3`) or a version hash. Unset: the champion when the job starts. "
    "Either way the job is pinned to the hash of its first answer: every row is answered by it."
)
COMPARE_VERSION_FIELD = (
    "A second version (needs the `versions` scope) every row also runs on, with the same flags, "
    "compared in the reports; pinned the same way. Not with `compare_flags`."
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=AdmittedRoute)


def report_blocks(store: JobStore, job_id: str, name: str) -> Iterator[bytes]:
    """A report's bytes, block by block."""
    with store.open(job_id, name) as handle:
        while block := handle.read(BLOCK_BYTES):
            yield block


async def comparison(
    gateway: Gateway, jobs: JobService, who: Caller, job_id: str, other_id: str
) -> JobComparison:
    """Two jobs compared, as `who` may see them."""
    info = await gateway.pipeline()  # its schemas say which fields are categories, scored; which flags differ
    return await run_in_threadpool(jobs.compare, who, job_id, other_id, info)


@router.post(
    "",
    status_code=202,
    response_model=JobView,
    responses={
        202: {"headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}}},
        **problems(*AUTHENTICATED, 403, 409, 413, 422, *MODEL_SERVICE),
    },
)
async def submit_job(
    base_url: BASE_URL,
    who: JOBS,
    idempotency_key: IDEMPOTENCY_KEY,
    gateway: GatewayDep,
    jobs: JobServiceDep,
    claims: ClaimsDep,
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
    version: Annotated[str | None, Form(description=VERSION_FIELD)] = None,
    compare_version: Annotated[str | None, Form(description=COMPARE_VERSION_FIELD)] = None,
) -> JSONResponse:
    """Queue a batch job over an uploaded file; answers 202 with the job and its URL.

    With an Idempotency-Key, a retry gets the first job back (202, same id and Location)."""
    version, compare_version = version or None, compare_version or None  # an empty field: none asked
    parsed_mapping = parse_json_field("mapping", mapping, {})
    parsed_flags = parse_json_field("flags", flags, {})
    parsed_compare = parse_json_field("compare_flags", compare_flags, None)
    parsed_truth = parse_json_field("truth", truth, {})
    info = await gateway.pipeline()
    file_name = file.filename or "upload"
    # the job id last: given by the idempotency claim, or None for a fresh one
    submit = partial(
        jobs.submit,
        who,
        info,
        file_name,
        file.file,
        parsed_mapping,
        parsed_flags,
        parsed_compare,
        parsed_truth,
        version=version,
        compare_version=compare_version,
    )
    fields = {
        "mapping": mapping,
        "flags": flags,
        "compare_flags": compare_flags,
        "truth": truth,
        "version": version,
        "compare_version": compare_version,
    }
    meta = await run_in_threadpool(
        submit_keyed, claims, who, idempotency_key, file_name, file.file, fields, submit
    )
    shown = view(meta, base_url)
    return JSONResponse(shown.model_dump(mode="json"), status_code=202, headers={"Location": shown.url})


@router.get("", responses=problems(*AUTHENTICATED, 403, 422))
async def list_jobs(base_url: BASE_URL, who: JOBS, jobs: JobServiceDep, page: PAGE) -> JobPage:
    """Recent jobs, newest first (a key sees its own; admin sees all)."""
    found, total = await run_in_threadpool(jobs.page, who, page.offset, page.limit)
    shown = [view(meta, base_url) for meta in found]
    return JobPage(jobs=shown, total=total, offset=page.offset, limit=page.limit)


@router.get("/{job_id}", responses=problems(*AUTHENTICATED, 403, 404))
async def get_job(job_id: str, base_url: BASE_URL, who: JOBS, jobs: JobServiceDep) -> JobView:
    """A job: state, rows done of total, rows failed, times, version, flags, report links."""
    return view(await run_in_threadpool(jobs.get, who, job_id), base_url)


@router.delete("/{job_id}", responses=problems(*AUTHENTICATED, 403, 404, 409))
async def cancel_job(job_id: str, base_url: BASE_URL, who: JOBS, jobs: JobServiceDep) -> JobView:
    """Cancel a queued, running or paused job."""
    return view(await run_in_threadpool(jobs.cancel, who, job_id), base_url)


@router.post("/{job_id}/resume", status_code=202, responses=problems(*AUTHENTICATED, 403, 404, 409))
async def resume_job(job_id: str, base_url: BASE_URL, who: JOBS, jobs: JobServiceDep) -> JobView:
    """Queue a paused, failed or cancelled job again; the rows already done, and its version, are kept."""
    return view(await run_in_threadpool(jobs.resume, who, job_id), base_url)


@router.get(
    "/{job_id}/report.{file_format}",
    response_class=StreamingResponse,
    responses={**REPORTS, **problems(*AUTHENTICATED, 403, 404, 422)},
)
async def job_report(
    job_id: str, file_format: ReportFormat, who: JOBS, jobs: JobServiceDep
) -> StreamingResponse:
    """A finished job's report: html, csv, jsonl or parquet."""
    meta, name = await run_in_threadpool(jobs.report, who, job_id, file_format)
    return StreamingResponse(
        report_blocks(jobs.store, meta.id, name),
        media_type=REPORT_MEDIA_TYPES[file_format],
        headers=report_headers(file_format, meta),
    )


# before the JSON route, whose {other_id} would otherwise take "<id>.html"
@router.get(
    "/{job_id}/compare/{other_id}.html",
    response_class=HTMLResponse,
    responses={**COMPARISON_PAGE, **COMPARE_PROBLEMS},
)
async def compare_jobs_page(
    job_id: str, other_id: str, who: JOBS, gateway: GatewayDep, jobs: JobServiceDep
) -> HTMLResponse:
    """The comparison of two jobs as a page to read in a browser (the same figures as the JSON)."""
    found = await comparison(gateway, jobs, who, job_id, other_id)
    name = f"compare-{found.a.id}-{found.b.id}.html"
    headers = {"Content-Disposition": f'inline; filename="{name}"', CSP_HEADER: COMPARISON_POLICY}
    return HTMLResponse(render_html(found), headers=headers)


@router.get("/{job_id}/compare/{other_id}", responses=COMPARE_PROBLEMS)
async def compare_jobs(
    job_id: str, other_id: str, who: JOBS, gateway: GatewayDep, jobs: JobServiceDep
) -> JobComparison:
    """What changed from job A (`job_id`) to job B (`other_id`), two succeeded jobs on the same file."""
    return await comparison(gateway, jobs, who, job_id, other_id)
