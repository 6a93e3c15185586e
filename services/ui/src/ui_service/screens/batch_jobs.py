"""The Batch jobs page: submit a file, follow jobs live, cancel or resume one, read and compare reports."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import streamlit as st
import streamlit.components.v1 as components

from onepipe import PipelineInfo
from onepipe.platform.jobs.datasets import DatasetError, detect_format, read_header
from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.versions.types import VersionList
from ui_service import compare_view, forms, jobs_view, render, versions_view, views, widgets
from ui_service.peers import Peers, attempt

NONE_COLUMN = "(none)"
COMPARE_WITH = {"nothing": "Nothing", "flags": "A second flag set", "version": "Another version"}
VERSION_HELP = (
    "The job is pinned to it: every row is answered by the same version, even if the champion changes "
    "meanwhile. Choosing a version needs the UI's gateway key to have the `versions` scope."
)


def show(info: PipelineInfo, peers: Peers) -> None:
    """Submit a file, follow every job live, cancel or resume one, reopen any job's report, compare two."""
    widgets.intro(
        "Batch jobs",
        info,
        "Run a whole file through the pipeline (and a second flag set or another version to compare), "
        "scored against a column of right answers when it has one.",
    )
    with st.expander("New job", expanded=True, icon=":material/upload_file:"):
        new_job(info, peers)
    st.subheader("Jobs")
    live = st.session_state.get("batch.live", False)
    st.fragment(run_every=peers.settings.poll_seconds if live else None)(jobs_table)(peers)
    jobs = st.session_state.get("batch.jobs")
    if jobs is None:
        st.session_state.pop("batch.picker_shown", None)
        return
    open_job(jobs, peers)
    compare_jobs(info, jobs, peers)


def new_job(info: PipelineInfo, peers: Peers) -> None:
    """Upload, map the file's columns to the input fields, pick the truth and flags, submit."""
    upload = st.file_uploader(
        "Dataset (.csv, .jsonl or .parquet)", type=["csv", "jsonl", "parquet"], key="batch.file"
    )
    if upload is None:
        return
    content = upload.getvalue()
    try:
        header = read_header(detect_format(upload.name), io.BytesIO(content))
    except DatasetError as error:
        st.error(f"{upload.name}: {error}. Choose another file.")
        return
    st.caption(f"{render.escape(upload.name)}: columns {render.escape(', '.join(header))}")
    mapping, problems = column_mapping(info, header)
    truth = truth_form(info, header)
    # flags left at their default are not sent: each version of a job applies its own defaults
    flags, flag_problems = widgets.flag_form(
        "batch.a", info, st.expander("Flags", expanded=False), changed_only=True
    )
    problems += flag_problems
    run, more = run_form(info, peers)
    problems += more
    if st.button("Submit job", key="batch.submit", type="primary", icon=":material/send:") and widgets.ready(
        problems
    ):
        job = attempt(
            "gateway",
            lambda: peers.gateway().submit_job(
                upload.name,
                io.BytesIO(content),
                mapping,
                flags,
                run.compare_flags,
                truth,
                version=run.version,
                compare_version=run.compare_version,
            ),
        )
        if job is not None:
            st.session_state["batch.job"] = job["id"]
            st.session_state["batch.open"] = job["id"]
            st.session_state["batch.live"] = True


@dataclass(frozen=True)
class JobRun:
    """Which version answers a job, and what it is compared with (at most one of a flag set and a version)."""

    version: str | None = None  # None: the champion when the job starts
    compare_flags: dict[str, Any] | None = None
    compare_version: str | None = None


def run_form(info: PipelineInfo, peers: Peers) -> tuple[JobRun, list[str]]:
    """The version to run with (when more than one is registered), and what to compare: nothing, a second
    flag set or another version, on every row of the same file."""
    listing, trouble = None, ""
    try:
        listing = VersionList.model_validate(peers.gateway().versions())
    except Exception as error:  # choosing a version is optional: why it cannot be is said only when asked
        trouble = views.problem_text("gateway", error)
    choices = versions_view.version_choices(listing.versions, info.flags_schema) if listing else {}
    version = None
    if len(choices) > 1:
        picked = st.selectbox(
            "Version", list(choices), format_func=choices.__getitem__, key="batch.version", help=VERSION_HELP
        )
        version = None if picked == next(iter(choices)) else picked  # the champion: whichever it is then
    compare_with = st.radio(
        "Compare with",
        list(COMPARE_WITH),
        format_func=COMPARE_WITH.__getitem__,
        horizontal=True,
        key="batch.compare_with",
    )
    if compare_with == "flags":
        compare_flags, problems = widgets.flag_form(
            "batch.b", info, st.expander("Second flag set", expanded=True), changed_only=True
        )
        return JobRun(version, compare_flags=compare_flags), problems
    if compare_with == "version":
        first = version or next(iter(choices), None)
        others = {ref: label for ref, label in choices.items() if ref != first}
        if not others:
            return JobRun(version), [versions_view.no_second_version_text(listing) if listing else trouble]
        second = st.selectbox(
            "Second version",
            list(others),
            format_func=others.__getitem__,
            key="batch.compare_version",
            help=f"Every row also runs on this version, with the same flags. {VERSION_HELP}",
        )
        return JobRun(version, compare_version=second), []
    return JobRun(version), []


def column_mapping(info: PipelineInfo, header: list[str]) -> tuple[dict[str, str], list[str]]:
    """Input field -> the file's column; pre-filled only where a column is named like the field."""
    st.markdown("**Columns**")
    mapping, problems = {}, []
    specs = forms.fields(info.input_schema)
    columns = st.columns(min(3, len(specs)) or 1)
    for number, spec in enumerate(specs):
        match = jobs_view.matching_column(spec.name, header)
        where = columns[number % len(columns)]
        if spec.required:
            chosen = where.selectbox(
                f"{spec.label} from column",
                header,
                index=header.index(match) if match else None,
                key=f"batch.map.{spec.name}",
                help=spec.help,
                placeholder="Choose a column",
            )
            if chosen is None:
                problems.append(f"Choose the file's column for {spec.label} (no column has its name).")
        else:
            options = [NONE_COLUMN, *header]
            chosen = where.selectbox(
                f"{spec.label} from column :gray[optional]",
                options,
                index=options.index(match) if match else 0,
                key=f"batch.map.{spec.name}",
                help=spec.help,
            )
        if chosen is not None and chosen != NONE_COLUMN:
            mapping[spec.name] = chosen
    return mapping, problems


def truth_form(info: PipelineInfo, header: list[str]) -> dict[str, str]:
    """Output field -> the file's column of its right answers, for the fields that can be scored."""
    outputs = Outputs.of(info)
    scored = outputs.scorable()
    titles = views.output_titles(outputs)
    truth = {}
    matches = {name: jobs_view.matching_column(name, header) for name in scored}
    with st.expander("Score against the truth", expanded=any(matches.values())):
        st.caption("Columns holding the right answers: the report then scores each flag set against them.")
        for name in scored:
            options = [NONE_COLUMN, *header]
            match = matches[name]
            chosen = st.selectbox(
                f"Right answers for {titles.get(name, name)}",
                options,
                index=options.index(match) if match else 0,
                key=f"batch.truth.{name}",
            )
            if chosen != NONE_COLUMN:
                truth[name] = chosen
    return truth


def jobs_table(peers: Peers) -> None:
    """Every recent job, live: state, progress, rows/s and time left; the page reruns when one ends."""
    listed = attempt("gateway", lambda: peers.gateway().jobs(limit=20))
    if listed is None:
        st.session_state.pop("batch.jobs", None)
        return
    jobs = listed["jobs"]
    before = {job["id"]: job["state"] for job in st.session_state.get("batch.jobs") or []}
    st.session_state["batch.jobs"] = jobs
    live = any(jobs_view.active(job) for job in jobs)
    if not jobs:
        st.caption("No job yet: submit a file above.")
    else:
        st.dataframe(
            jobs_view.job_rows(jobs, datetime.now(UTC)),
            hide_index=True,
            column_config={
                "Progress": st.column_config.ProgressColumn(
                    "Progress", min_value=0.0, max_value=1.0, format="percent"
                ),
                "Job": st.column_config.TextColumn("Job", width="medium"),
            },
            key="batch.table",
        )
    ended = any(before.get(job["id"]) != job["state"] for job in jobs if job["id"] in before)
    if live != st.session_state.get("batch.live", False) or (ended and st.session_state.get("batch.live")):
        st.session_state["batch.live"] = live
        if before:  # the live refresh starts or stops, or a job changed state: the whole page follows
            st.rerun()


def open_job(jobs: list[dict[str, Any]], peers: Peers) -> None:
    """Pick any job to follow it, cancel or resume it, or read its report."""
    known = {job["id"]: job for job in jobs}
    # a run without the picker (the gateway was down) reset it: the job shown before is shown again
    if (
        not st.session_state.pop("batch.picker_shown", False)
        and st.session_state.get("batch.opened") in known
    ):
        st.session_state["batch.open"] = st.session_state["batch.opened"]
    if st.session_state.get("batch.open") not in known:
        st.session_state["batch.open"] = None
    if not known:
        return
    picked = st.selectbox(
        "Open a job",
        list(known),
        index=None,
        key="batch.open",
        format_func=lambda job_id: f"{job_id}: {known[job_id]['file_name']}",  # its state is shown below
        placeholder="Pick a job to follow it, cancel or resume it, or read its report",
    )
    st.session_state["batch.opened"], st.session_state["batch.picker_shown"] = picked, True
    if picked is None:
        return
    note = st.session_state.pop("batch.note", None)
    if note:
        st.info(note, icon=":material/info:")
    job = known[picked]
    if jobs_view.active(job):
        st.fragment(run_every=peers.settings.poll_seconds)(job_progress)(picked, peers)
    else:
        finished_job(job, peers)


def job_progress(job_id: str, peers: Peers) -> None:
    """A queued or running job: its progress bar, live, and a button to cancel it."""
    job = attempt("gateway", lambda: peers.gateway().job(job_id))
    if job is None:
        return
    now = datetime.now(UTC)
    st.progress(jobs_view.progress(job), text=f"Job {job['id']}: {jobs_view.status_line(job, now)}")
    actions = jobs_view.actions(job, now)
    columns = st.columns(6)
    cancel = "cancel" in actions and columns[0].button(
        "Cancel", key=f"batch.cancel.{job_id}", icon=":material/stop:"
    )
    if cancel and attempt("gateway", lambda: peers.gateway().cancel_job(job_id)) is not None:
        st.rerun()  # the page shows it cancelled, with its resume button
    if "resume" in actions:
        resume_button(
            job_id, peers, columns[1], "No worker has worked on it for a while: resume it if it is stuck."
        )
    if not jobs_view.active(job):
        st.rerun()  # it ended: the whole page shows it finished


def resume_button(job_id: str, peers: Peers, where: Any, hint: str | None = None) -> None:
    """A button that queues a stopped job again."""
    clicked = where.button("Resume", key=f"batch.resume.{job_id}", icon=":material/replay:", help=hint)
    if clicked and attempt("gateway", lambda: peers.gateway().resume_job(job_id)) is not None:
        st.session_state["batch.note"] = f"Job {job_id} queued again; the rows already done are kept."
        st.session_state["batch.live"] = True
        st.rerun()


def finished_job(job: dict[str, Any], peers: Peers) -> None:
    """A finished or paused job: what happened, resume (or cancel a paused one) for a stopped one, and for a
    succeeded one its reports."""
    now = datetime.now(UTC)
    if job["state"] != "succeeded":
        (st.error if job["state"] == "failed" else st.warning)(jobs_view.ending_text(job))
        actions = jobs_view.actions(job, now)
        columns = st.columns(6)
        if "resume" in actions:
            resume_button(job["id"], peers, columns[0])
        # a paused job waits for its version: it can be given up instead
        cancel = "cancel" in actions and columns[1].button(
            "Cancel", key=f"batch.cancel.{job['id']}", icon=":material/stop:"
        )
        if cancel and attempt("gateway", lambda: peers.gateway().cancel_job(job["id"])) is not None:
            st.rerun()
        return
    speed, spent = jobs_view.rate(job, now), jobs_view.timing_text(job, now)
    done = f"Job {job['id']} succeeded: {job['rows_done']} rows, {job['rows_failed']} failed" + (
        f"; {speed:,.1f} rows/s, {spent}." if speed else "."
    )
    if job["rows_failed"]:  # a job that ran to its end, but not every row: said in amber, with where to look
        st.warning(done + " The report lists the failed rows with their reasons.", icon=":material/warning:")
    else:
        st.success(done)
    if job["reports"]:
        row = st.container(horizontal=True)
        for file_format in job["reports"]:
            data = peers.report(job["id"], file_format)
            if data is not None:
                row.download_button(
                    f"Download .{file_format}",
                    data=data,
                    file_name=f"{job['id']}.{file_format}",
                    key=f"batch.download.{file_format}",
                    icon=":material/download:",
                )
    page = peers.report(job["id"], "html") if "html" in job["reports"] else None
    if page is not None:
        components.html(page.decode(), height=900, scrolling=True)


def compare_jobs(info: PipelineInfo, jobs: list[dict[str, Any]], peers: Peers) -> None:
    """Two succeeded jobs from the list, compared by the gateway: scores, fields, changed rows, the page."""
    st.subheader("Compare two jobs")
    done = {job["id"]: job for job in jobs if job["state"] == "succeeded"}
    if len(done) < 2:
        st.caption(
            "Two succeeded jobs on the same file (other flags, or another pipeline version) compare here."
        )
        return
    ids = list(done)  # newest first: by default the older one is A, the newer B
    pickers = (("Job A (before)", 1, "jobs.compare.a"), ("Job B (after)", 0, "jobs.compare.b"))
    first, second = (
        where.selectbox(label, ids, index=index, key=key, format_func=lambda i: jobs_view.job_label(done[i]))
        for where, (label, index, key) in zip(st.columns(2), pickers, strict=True)
    )
    if st.button("Compare", key="jobs.compare.run", icon=":material/compare_arrows:"):
        st.session_state.pop("jobs.comparison", None)
        if first == second:
            st.error("Pick two different jobs.")
        else:
            found = attempt("gateway", lambda: peers.gateway().compare(first, second))
            page = attempt("gateway", lambda: peers.gateway().compare_page(first, second)) if found else None
            if found is not None and page is not None:
                st.session_state["jobs.comparison"] = {"found": found, "page": page}
    shown = st.session_state.get("jobs.comparison")
    if shown and (shown["found"]["a"]["id"], shown["found"]["b"]["id"]) == (first, second):
        show_comparison(info, shown["found"], shown["page"])


def show_comparison(info: PipelineInfo, found: dict[str, Any], page: bytes) -> None:
    """A comparison's figures: the headline, decisions and rows changed, score changes as metrics, fields,
    changed rows, the page; each job named by what differs from the other."""
    compared, before, after = found["compared"], found["a"]["name"], found["b"]["name"]
    names = f"{render.escape(before)} → {render.escape(after)}"
    st.markdown(f"**{names}:** {render.escape(found['headline'])}")
    columns = st.columns(3 + len(found["scores"]))
    columns[0].metric(
        "Decisions changed",
        found["decisions_changed"],
        help=f"of {compared} rows with an output in both jobs: rows where a category, a yes/no field or the "
        "label, review or known field changed",
        border=True,
    )
    columns[1].metric(
        "Rows changed (any field)",
        found["rows_changed"],
        help=f"of {compared} rows with an output in both jobs; a number counts only past its tolerance",
        border=True,
    )
    columns[2].metric("Failed in one job only", found["failed_in_one"], border=True)
    for column, score in zip(columns[3:], found["scores"], strict=True):
        accuracy = score["measure"] == "accuracy"
        column.metric(
            f"{score['field']}: {'accuracy' if accuracy else 'MAE'} under {after}",
            "-" if score["b"] is None else f"{score['b']:.3f}",
            None if score["difference"] is None else f"{score['difference']:+.3f}",
            delta_color="normal" if accuracy else "inverse",
            help=f"{before}: {'-' if score['a'] is None else format(score['a'], '.3f')}; "
            f"{score['fixed']} rows fixed, {score['broken']} broken, of {score['scored']} scored",
            border=True,
        )
    titles = views.output_titles(Outputs.of(info))
    st.dataframe(compare_view.job_field_rows(found, titles), hide_index=True)
    st.caption(f"Changed rows (the first {len(found['changed_rows'])} of {found['rows_changed']})")
    st.dataframe(compare_view.job_changed_rows(found, titles), hide_index=True)
    st.download_button(
        "Download the comparison (.html)",
        data=page,
        file_name=f"compare-{found['a']['id']}-{found['b']['id']}.html",
        mime="text/html",
        key="jobs.compare.download",
    )
    with st.expander("The comparison page", expanded=False):
        components.html(page.decode(), height=900, scrolling=True)
