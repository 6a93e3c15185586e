"""The Streamlit UI: explore one input step by step, compare two flag sets, run batch jobs, read cases.

Run with `streamlit run services/ui/src/ui_service/app.py`; its settings for a viewer (toolbar,
error details, address) are in `.streamlit/config.toml` beside this script, which Streamlit
reads whatever the working directory. It never imports the pipeline: forms, flags and views
come from the model service's /v1/pipeline, and predictions from its /v1/predict with debug on;
batch jobs and reported cases go through the gateway. What to show is decided in views.py,
forms.py, jobs_view.py and wording.py; render.py draws it; the pages here stay thin.
"""

from __future__ import annotations

import io
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import streamlit as st
import streamlit.components.v1 as components

from onepipe import PipelineInfo
from onepipe.client import GatewayClient, ModelServiceClient, RetryPolicy, ServiceError
from onepipe.datasets import DatasetError, detect_format, read_header
from onepipe.schemas import scorable_fields
from onepipe.settings import InvalidSettingsError, read_settings
from ui_service import forms, jobs_view, render, views, wording
from ui_service.settings import Settings

T = TypeVar("T")
PAGES = ("Explore", "Compare", "Batch jobs", "Cases")
NONE_COLUMN = "(none)"
QUICK = RetryPolicy(attempts=2, backoff_min=0.2, backoff_max=0.5)

st.set_page_config(
    page_title="onepipe",
    page_icon=":material/account_tree:",
    layout="wide",
    menu_items={"Get help": None, "Report a bug": None, "About": "onepipe: one ML pipeline, four faces."},
)
try:
    settings = read_settings(Settings)
except InvalidSettingsError as error:
    # Streamlit runs this script per page view, so the one line goes to the page and the log, not an exit
    print(f"error: {error}", file=sys.stderr)
    st.error(f"error: {error}")
    st.stop()


@st.cache_resource
def model_client(url: str) -> ModelServiceClient:
    """The shared client for the model service at `url`."""
    return ModelServiceClient(url, timeout=settings.timeout, retry=QUICK)


@st.cache_resource
def gateway_client(url: str, api_key: str) -> GatewayClient:
    """The shared client for the gateway at `url` (batch jobs, reported cases)."""
    return GatewayClient(url, api_key, timeout=settings.timeout, retry=QUICK)


def model() -> ModelServiceClient:
    return model_client(settings.model_url)


def gateway() -> GatewayClient:
    return gateway_client(settings.gateway_url, settings.api_key)


def attempt(service: str, call: Callable[[], T]) -> T | None:
    """Call a service; on any failure say which one and what to do in one sentence, and carry on."""
    try:
        return call()
    except ServiceError as error:
        st.error(views.problem_text(service, error), icon=":material/error:")
    except Exception as error:  # never a traceback on the page: the log gets it
        traceback.print_exc(file=sys.stderr)
        st.error(views.problem_text(service, error), icon=":material/error:")
    return None


@st.cache_data(ttl=30, show_spinner=False)
def _pipeline_json(url: str) -> dict[str, Any]:
    """The pipeline's description from the model service at `url`, kept 30 s (reruns do not ask again)."""
    return model_client(url).pipeline().model_dump(mode="json")


def pipeline_info() -> PipelineInfo | None:
    """The pipeline's description (cached), or None with a message when the model service is down."""
    found = attempt("model service", lambda: _pipeline_json(settings.model_url))
    return PipelineInfo.model_validate(found) if found is not None else None


@st.cache_data(max_entries=32, show_spinner=False)
def _report(url: str, api_key: str, job_id: str, file_format: str) -> bytes:
    """A succeeded job's report (it never changes once written), fetched once."""
    return gateway_client(url, api_key).report(job_id, file_format)


def report(job_id: str, file_format: str) -> bytes | None:
    return attempt("gateway", lambda: _report(settings.gateway_url, settings.api_key, job_id, file_format))


def intro(title: str, info: PipelineInfo, purpose: str) -> None:
    """The page's title, what the pipeline is (from its own schemas), and what the page is for."""
    st.header(title)
    takes = wording.sentence_start(info.input_schema.get("description", "") or "an input")
    gives = wording.sentence_start(info.output_schema.get("description", "") or "an answer")
    st.caption(
        f"**{render.escape(info.name)}** takes {render.escape(takes)} and gives {render.escape(gives)}, "
        f"in {wording.plural(len(info.steps), 'step')}. {purpose}"
    )


# -- forms ----------------------------------------------------------------------------------


def _widget(spec: forms.FieldSpec, key: str, where: Any = st, mark_optional: bool = True) -> Any:
    if key not in st.session_state:
        st.session_state[key] = forms.initial(spec)
    label = spec.title + ("" if spec.required or not mark_optional else " :gray[optional]")
    if spec.kind == "choice":
        options = (None, *spec.options) if spec.nullable else spec.options
        return where.selectbox(
            label, options, key=key, help=spec.help, format_func=_choice_label, placeholder=forms.NOT_SET
        )
    if spec.kind == "checkbox":
        return where.toggle(label, key=key, help=spec.help)
    if spec.kind == "integer":
        return where.number_input(
            label,
            key=key,
            help=spec.help,
            step=1,
            min_value=None if spec.minimum is None else int(spec.minimum),
            max_value=None if spec.maximum is None else int(spec.maximum),
            placeholder=forms.NOT_SET,
        )
    if spec.kind == "number":
        return where.number_input(
            label,
            key=key,
            help=spec.help,
            format="%g",
            min_value=None if spec.minimum is None else float(spec.minimum),
            max_value=None if spec.maximum is None else float(spec.maximum),
            placeholder=forms.NOT_SET,
        )
    if spec.kind == "long_text":
        return where.text_area(label, key=key, help=spec.help, height=110, max_chars=spec.max_length)
    if spec.kind == "list":
        return where.text_input(label, key=key, help=spec.help, placeholder="values separated by commas")
    if spec.kind == "json":
        return where.text_input(label + " :gray[JSON]", key=key, help=spec.help)
    return where.text_input(label, key=key, help=spec.help, max_chars=spec.max_length)


def _choice_label(option: Any) -> str:
    return forms.NOT_SET if option is None else wording.value(option)


def input_form(page: str, info: PipelineInfo) -> tuple[dict[str, Any], list[str]]:
    """The input form, built from the input schema, with the named examples as cards under it."""
    specs = forms.fields(info.input_schema)
    values = {spec.name: _widget(spec, f"{page}.input.{spec.name}") for spec in specs}
    if info.examples:
        example_cards(page, info, specs)
    return forms.collect(specs, values)


def example_cards(page: str, info: PipelineInfo, specs: list[forms.FieldSpec]) -> None:
    """The pipeline's named examples as cards: a click fills the form with one and runs it."""

    def use(name: str) -> None:
        for spec in specs:
            st.session_state[f"{page}.input.{spec.name}"] = forms.initial(spec, info.examples[name])
        st.session_state[f"{page}.run_now"] = True

    st.caption("Examples: click one to run it")
    names = list(info.examples)
    columns = st.columns(min(4, len(names)))
    for number, name in enumerate(names):
        with columns[number % len(columns)].container(border=True):
            st.button(
                name,
                key=f"{page}.example.{name}",
                on_click=use,
                args=(name,),
                type="tertiary",
                icon=":material/play_arrow:",
                help="Fill the form with this example and run it",
            )
            st.caption(render.escape(forms.example_preview(info.examples[name], specs)))


def flag_form(key: str, info: PipelineInfo, where: Any) -> tuple[dict[str, Any], list[str]]:
    """Widgets for every flag, from the flags schema, with each flag's description as help."""
    specs = forms.fields(info.flags_schema)
    with where:
        values = {spec.name: _widget(spec, f"{key}.{spec.name}", st, mark_optional=False) for spec in specs}
    return forms.collect(specs, values)


def predict(inputs: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any] | None:
    """One input through the model service with debug on: its output, trace and how long the answer took."""
    started = time.perf_counter()
    answer = attempt("model service", lambda: model().predict([inputs], flags, debug=True))
    if answer is None or not answer.traces:
        return None
    return {
        "version": answer.version,
        "output": answer.outputs[0],
        "trace": answer.traces[0].model_dump(mode="json"),
        "answered_ms": (time.perf_counter() - started) * 1000,
    }


def _ready(problems: list[str]) -> bool:
    for problem in problems:
        st.error(problem, icon=":material/edit:")
    return not problems


# -- Explore -------------------------------------------------------------------------------------


def explore(info: PipelineInfo) -> None:
    """One input: the answer first, then how every step got there."""
    intro("Explore", info, "Type an input or click an example: the answer comes first, then every step.")
    st.sidebar.subheader("Flags")
    st.sidebar.caption(render.escape(info.flags_schema.get("description", "")))
    flags, flag_problems = flag_form("explore.flags", info, st.sidebar)
    inputs, problems = input_form("explore", info)
    clicked = st.button("Run", key="explore.run", type="primary", icon=":material/play_arrow:")
    if (st.session_state.pop("explore.run_now", False) or clicked) and _ready(problems + flag_problems):
        result = predict(inputs, flags)
        st.session_state["explore.result"] = result and {**result, "input": inputs, "flags": flags}
    result = st.session_state.get("explore.result")
    if not result:
        return
    answer_tab, steps_tab = st.tabs(["Answer", "Steps"])
    with answer_tab:
        took = wording.milliseconds(result["answered_ms"])
        st.caption(f"Pipeline version `{result['version']}`, answered in {took}.")
        render.answer(result["output"], info, result["trace"])
        feedback_form(info, result)
    with steps_tab:
        render.steps(result["trace"], info, result["output"], result["answered_ms"])


def feedback_form(info: PipelineInfo, result: dict[str, Any]) -> None:
    """ "This is wrong": the right answer and a note, kept by the gateway for the edge-case library."""
    judged = [s for s in forms.fields(info.output_schema) if s.name in scorable_fields(info.output_schema)]
    if not judged:
        return
    titles = {spec.name: spec.label for spec in judged}
    label = views.verdict(result["output"], info.output_schema)
    with st.expander("This is wrong", icon=":material/feedback:"):
        st.caption(
            "Give the right answer and say why: the case is kept for the edge-case library, "
            "which replays every case through every face."
        )
        names = list(titles)
        start = label.label if label is not None and label.label in names else None
        wrong = st.multiselect(
            "Which answers are wrong?",
            names,
            default=[start] if start else [],
            key="explore.fix",
            format_func=lambda name: titles[name],
        )
        expected = {}
        for spec in judged:
            if spec.name in wrong:
                key = f"explore.fix.{spec.name}"
                st.session_state.setdefault(key, result["output"].get(spec.name))
                expected[spec.name] = _widget(spec, key, mark_optional=False)
        note = st.text_area("What is wrong, in your words", key="explore.fix.note", max_chars=2000)
        if st.button("Report", key="explore.fix.send", disabled=not expected, icon=":material/send:"):
            kept = attempt(
                "gateway",
                lambda: gateway().report_case(result["input"], result["flags"], expected, note, source="ui"),
            )
            if kept is not None:
                wrongly = ", ".join(titles.get(name, name) for name in kept["wrong"])
                st.success(
                    f"Kept as case {kept['id']}; the pipeline answers it "
                    + (f"wrongly now: {wrongly}." if kept["wrong"] else "rightly now.")
                    + " `just cases pull` adds it to the edge-case library."
                )


# -- Compare -------------------------------------------------------------------------------------


def compare(info: PipelineInfo) -> None:
    """One input under two flag sets: the sets side by side, one summary, then what differs."""
    intro("Compare", info, "One input, two flag sets: what changes in the answer and in each step.")
    inputs, problems = input_form("compare", info)
    sets = st.columns(2, gap="medium")
    found = []
    for column, name in zip(sets, ("A", "B"), strict=True):
        box = column.container(border=True)
        box.markdown(f"**Flag set {name}**")
        found.append(flag_form(f"compare.{name.lower()}", info, box))
    (flags_a, problems_a), (flags_b, problems_b) = found
    differ = views.flag_differences(flags_a, flags_b, info.flags_schema)
    st.caption(
        f"B differs from A in: {render.escape(differ)}."
        if differ
        else "A and B are the same flag set: change one of B's flags to see what it does."
    )
    clicked = st.button("Compare", key="compare.run", type="primary", icon=":material/compare_arrows:")
    if (st.session_state.pop("compare.run_now", False) or clicked) and _ready(
        problems + problems_a + problems_b
    ):
        first = predict(inputs, flags_a)
        second = predict(inputs, flags_b) if first is not None else None
        st.session_state["compare.result"] = (first, second) if first and second else None
    results = st.session_state.get("compare.result")
    if results:
        comparison(info, *results)


def comparison(info: PipelineInfo, first: dict[str, Any], second: dict[str, Any]) -> None:
    """The summary line with metrics, the fields that differ, the steps compared, both answers."""
    schema = info.output_schema
    changed = views.changed_fields(first["output"], second["output"])
    st.markdown("#### " + render.escape(views.compare_summary(first["output"], second["output"], schema)))
    metrics = views.compare_metrics(first["output"], second["output"], schema)
    if metrics:
        for column, metric in zip(st.columns(len(metrics)), metrics, strict=True):
            column.metric(
                metric.label + " (B)",
                metric.value,
                metric.delta,
                delta_color=metric.delta_color,
                help=metric.help,
                border=True,
            )
    if changed:
        st.markdown(
            f"**{wording.plural(len(changed), 'field')} {'differs' if len(changed) == 1 else 'differ'}**"
        )
        st.table(views.difference_rows(first["output"], second["output"], schema))
    st.markdown("**Steps**")
    differences = views.step_differences(first["trace"], second["trace"])
    steps_b = views.step_views(second["trace"], _steps(info), info.flags_schema, second["output"])
    twins = {step.name: step for step in steps_b}
    for step in views.step_views(first["trace"], _steps(info), info.flags_schema, first["output"]):
        differs = differences[step.name]
        mark = ":orange[differs]" if differs else "same"
        with st.expander(f"{step.number}. {step.title}: {mark}", expanded=differs):
            for where, shown, name in zip(st.columns(2), (step, twins[step.name]), "AB", strict=True):
                with where:
                    variant = f", variant {shown.variant}" if shown.variant else ""
                    st.caption(f"{name}: {shown.status_text}{variant}")
                    if shown.output_is_answer:
                        st.markdown("The pipeline's answer: what differs is listed above.")
                    elif shown.ran:
                        render.value(shown.output)
    with st.expander("Both answers in full", expanded=False):
        for where, result, name in zip(st.columns(2), (first, second), "AB", strict=True):
            with where:
                st.markdown(f"**{name}**")
                render.answer(result["output"], info, result["trace"], changed)


def _steps(info: PipelineInfo) -> list[dict[str, Any]]:
    return [step.model_dump() for step in info.steps]


# -- Batch jobs ------------------------------------------------------------------------------------


def batch(info: PipelineInfo) -> None:
    """Submit a file, follow every job live, cancel or resume one, reopen any job's report, compare two."""
    intro(
        "Batch jobs",
        info,
        "Run a whole file through the pipeline (and a second flag set to compare), scored against a "
        "column of right answers when it has one.",
    )
    with st.expander("New job", expanded=True, icon=":material/upload_file:"):
        new_job(info)
    st.subheader("Jobs")
    live = st.session_state.get("batch.live", False)
    st.fragment(run_every=settings.poll_seconds if live else None)(jobs_table)()
    jobs = st.session_state.get("batch.jobs")
    if jobs is None:
        st.session_state.pop("batch.picker_shown", None)
        return
    open_job(jobs)
    compare_jobs(info, jobs)


def new_job(info: PipelineInfo) -> None:
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
    flags, flag_problems = flag_form("batch.a", info, st.expander("Flags", expanded=False))
    problems += flag_problems
    compare_flags: dict[str, Any] | None = None
    if st.toggle("Compare with a second flag set", key="batch.compare"):
        compare_flags, more = flag_form("batch.b", info, st.expander("Second flag set", expanded=True))
        problems += more
    if st.button("Submit job", key="batch.submit", type="primary", icon=":material/send:") and _ready(
        problems
    ):
        job = attempt(
            "gateway",
            lambda: gateway().submit_job(
                upload.name, io.BytesIO(content), mapping, flags, compare_flags, truth
            ),
        )
        if job is not None:
            st.session_state["batch.job"] = job["id"]
            st.session_state["batch.open"] = job["id"]
            st.session_state["batch.live"] = True


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
    scored = scorable_fields(info.output_schema)
    titles = wording.field_titles(info.output_schema)
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


def jobs_table() -> None:
    """Every recent job, live: state, progress, rows/s and time left; the page reruns when one ends."""
    listed = attempt("gateway", lambda: gateway().jobs(limit=20))
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


def open_job(jobs: list[dict[str, Any]]) -> None:
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
        st.fragment(run_every=settings.poll_seconds)(job_progress)(picked)
    else:
        finished_job(job)


def job_progress(job_id: str) -> None:
    """A queued or running job: its progress bar, live, and a button to cancel it."""
    job = attempt("gateway", lambda: gateway().job(job_id))
    if job is None:
        return
    now = datetime.now(UTC)
    st.progress(jobs_view.progress(job), text=f"Job {job['id']}: {jobs_view.status_line(job, now)}")
    actions = jobs_view.actions(job, now)
    columns = st.columns(6)
    cancel = "cancel" in actions and columns[0].button(
        "Cancel", key=f"batch.cancel.{job_id}", icon=":material/stop:"
    )
    if cancel and attempt("gateway", lambda: gateway().cancel_job(job_id)) is not None:
        st.rerun()  # the page shows it cancelled, with its resume button
    if "resume" in actions:
        resume_button(job_id, columns[1], "No worker has worked on it for a while: resume it if it is stuck.")
    if not jobs_view.active(job):
        st.rerun()  # it ended: the whole page shows it finished


def resume_button(job_id: str, where: Any, hint: str | None = None) -> None:
    clicked = where.button("Resume", key=f"batch.resume.{job_id}", icon=":material/replay:", help=hint)
    if clicked and attempt("gateway", lambda: gateway().resume_job(job_id)) is not None:
        st.session_state["batch.note"] = f"Job {job_id} queued again; the rows already done are kept."
        st.session_state["batch.live"] = True
        st.rerun()


def finished_job(job: dict[str, Any]) -> None:
    """A finished job: what happened, resume for a stopped one, and for a succeeded one its reports."""
    now = datetime.now(UTC)
    if job["state"] != "succeeded":
        (st.warning if job["state"] == "cancelled" else st.error)(jobs_view.ending_text(job))
        if "resume" in jobs_view.actions(job, now):
            resume_button(job["id"], st)
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
            data = report(job["id"], file_format)
            if data is not None:
                row.download_button(
                    f"Download .{file_format}",
                    data=data,
                    file_name=f"{job['id']}.{file_format}",
                    key=f"batch.download.{file_format}",
                    icon=":material/download:",
                )
    page = report(job["id"], "html") if "html" in job["reports"] else None
    if page is not None:
        components.html(page.decode(), height=900, scrolling=True)


def compare_jobs(info: PipelineInfo, jobs: list[dict[str, Any]]) -> None:
    """Two succeeded jobs from the list, compared by the gateway: scores, fields, changed rows, the page."""
    st.subheader("Compare two jobs")
    done = {job["id"]: job for job in jobs if job["state"] == "succeeded"}
    if len(done) < 2:
        st.caption(
            "Two succeeded jobs on the same file (other flags, or another pipeline version) compare here."
        )
        return
    left, right = st.columns(2)
    ids = list(done)  # newest first: by default the older one is A, the newer B
    first = left.selectbox(
        "Job A (before)",
        ids,
        index=1,
        key="jobs.compare.a",
        format_func=lambda i: jobs_view.job_label(done[i]),
    )
    second = right.selectbox(
        "Job B (after)",
        ids,
        index=0,
        key="jobs.compare.b",
        format_func=lambda i: jobs_view.job_label(done[i]),
    )
    if st.button("Compare", key="jobs.compare.run", icon=":material/compare_arrows:"):
        st.session_state.pop("jobs.comparison", None)
        if first == second:
            st.error("Pick two different jobs.")
        else:
            found = attempt("gateway", lambda: gateway().compare(first, second))
            page = attempt("gateway", lambda: gateway().compare_page(first, second)) if found else None
            if found is not None and page is not None:
                st.session_state["jobs.comparison"] = {"found": found, "page": page}
    shown = st.session_state.get("jobs.comparison")
    if shown and (shown["found"]["a"]["id"], shown["found"]["b"]["id"]) == (first, second):
        show_comparison(info, shown["found"], shown["page"])


def show_comparison(info: PipelineInfo, found: dict[str, Any], page: bytes) -> None:
    """A comparison's figures: rows changed, score changes as metrics, fields, changed rows, the page."""
    compared = found["compared"]
    columns = st.columns(2 + len(found["scores"]))
    columns[0].metric(
        "Rows changed",
        found["rows_changed"],
        help=f"of {compared} rows with an output in both jobs",
        border=True,
    )
    columns[1].metric("Failed in one job only", found["failed_in_one"], border=True)
    for column, score in zip(columns[2:], found["scores"], strict=True):
        accuracy = score["measure"] == "accuracy"
        column.metric(
            f"{score['field']}: {'accuracy' if accuracy else 'MAE'} in B",
            "-" if score["b"] is None else f"{score['b']:.3f}",
            None if score["difference"] is None else f"{score['difference']:+.3f}",
            delta_color="normal" if accuracy else "inverse",
            help=f"job A: {'-' if score['a'] is None else format(score['a'], '.3f')}; "
            f"{score['fixed']} rows fixed, {score['broken']} broken, of {score['scored']} scored",
            border=True,
        )
    titles = wording.field_titles(info.output_schema)
    st.dataframe(
        [
            {
                "Field": titles.get(field["field"], field["field"]),
                "Rows changed": field["changed"],
                "What became what": ", ".join(
                    f"{t['before']} → {t['after']}: {t['rows']}"
                    for t in field["transitions"]
                    if t["before"] != t["after"]
                ),
            }
            for field in found["fields"]
        ],
        hide_index=True,
    )
    st.caption(f"Changed rows (the first {len(found['changed_rows'])} of {found['rows_changed']})")
    st.dataframe(
        [
            {"Row": row["row"], "Field": titles.get(change["field"], change["field"])}
            | dict(zip(("Job A", "Job B"), views.pair_text(change["before"], change["after"]), strict=True))
            for row in found["changed_rows"]
            for change in row["changes"]
        ],
        hide_index=True,
    )
    st.download_button(
        "Download the comparison (.html)",
        data=page,
        file_name=f"compare-{found['a']['id']}-{found['b']['id']}.html",
        mime="text/html",
        key="jobs.compare.download",
    )
    with st.expander("The comparison page", expanded=False):
        components.html(page.decode(), height=900, scrolling=True)


# -- Cases ---------------------------------------------------------------------------------------


def cases(info: PipelineInfo) -> None:
    """The cases reported from this UI (its gateway key's) and not yet pulled into the library."""
    intro(
        "Cases",
        info,
        "Cases reported from this UI: answers people judged wrong, kept by the gateway until an "
        "engineer runs `just cases pull`, which merges them into the edge-case library that "
        "`just cases` replays through every face. The gateway shows a key the cases it reported "
        "(every key's only to a key with the `cases:admin` scope).",
    )
    page = attempt("gateway", lambda: gateway().cases(limit=100))
    if page is None:
        return
    if not page["cases"]:
        st.info(
            'No case reported from this UI is waiting: report one from Explore\'s "This is wrong".',
            icon=":material/inbox:",
        )
        return
    st.metric("Reported cases waiting", page["total"], border=True, width="content")
    st.table(views.case_rows(page["cases"], info.input_schema, info.output_schema, info.flags_schema))


# -- the app ---------------------------------------------------------------------------------------


def main() -> None:
    """Pick a page; every page keeps working when a service is down, and none shows a traceback."""
    st.sidebar.title("onepipe")
    page = st.sidebar.radio("Page", PAGES, key="page", label_visibility="collapsed")
    info = pipeline_info()
    if info is None:
        st.info("The pages need the model service: they come back as soon as it answers.")
        return
    st.sidebar.caption(f"Pipeline **{render.escape(info.name)}** · version `{info.version}`")
    pages: dict[str, Callable[[PipelineInfo], None]] = {
        "Explore": explore,
        "Compare": compare,
        "Batch jobs": batch,
        "Cases": cases,
    }
    try:
        pages[page](info)
    except Exception as error:  # a bug of this page: one sentence here, the traceback in the log
        traceback.print_exc(file=sys.stderr)
        st.error(
            f"This page hit a problem it cannot show ({type(error).__name__}). "
            "Reload the page and try again; the UI's log has the details."
        )


main()
