"""The Streamlit UI: explore one input step by step, compare two flag sets, run batch jobs.

Run with `streamlit run services/ui/src/ui_service/app.py`. It never imports the
pipeline: forms, flags and views come from the model service's /v1/pipeline, and
predictions from its /v1/predict with debug on; batch jobs go through the gateway.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import streamlit as st
import streamlit.components.v1 as components

from onepipe import PipelineInfo
from onepipe.client import GatewayClient, ModelServiceClient, RetryPolicy, ServiceError
from onepipe.datasets import DatasetError, detect_format, read_header
from onepipe.schemas import ROLES, output_roles, scorable_fields
from onepipe.settings import InvalidSettingsError, read_settings
from onepipe.values import show
from ui_service import forms, views
from ui_service.settings import Settings

T = TypeVar("T")
PAGES = ("Explore", "Compare", "Batch jobs", "Cases")
OWN_INPUT = "(your own input)"
QUICK = RetryPolicy(attempts=2, backoff_min=0.2, backoff_max=0.5)

st.set_page_config(page_title="onepipe", layout="wide")
try:
    settings = read_settings(Settings)
except InvalidSettingsError as error:
    # Streamlit runs this script per page view, so the one line goes to the page and the log, not an exit
    print(f"error: {error}", file=sys.stderr)
    st.error(f"error: {error}")
    st.stop()


@st.cache_resource
def model_client() -> ModelServiceClient:
    """The shared client for the model service."""
    return ModelServiceClient(settings.model_url, timeout=settings.timeout, retry=QUICK)


@st.cache_resource
def gateway_client() -> GatewayClient:
    """The shared client for the gateway (batch jobs)."""
    return GatewayClient(settings.gateway_url, settings.api_key, timeout=settings.timeout, retry=QUICK)


def attempt(service: str, call: Callable[[], T]) -> T | None:
    """Call a service; on failure say which one and what to do, and carry on."""
    try:
        return call()
    except ServiceError as error:
        st.error(views.problem_text(service, error), icon="⚠️")
        return None


@st.cache_data(ttl=30, show_spinner=False)
def _pipeline_json() -> dict[str, Any]:
    return model_client().pipeline().model_dump(mode="json")


def pipeline_info() -> PipelineInfo | None:
    """The pipeline's description (cached briefly), or None with a message when the model service is down."""
    found = attempt("model service", _pipeline_json)
    return PipelineInfo.model_validate(found) if found is not None else None


# -- forms ----------------------------------------------------------------------------------


def _widget(spec: forms.FieldSpec, key: str, where: Any = st, mark_optional: bool = True) -> Any:
    if key not in st.session_state:
        st.session_state[key] = forms.initial(spec)
    label = spec.label + ("" if spec.required or not mark_optional else " (optional)")
    if spec.kind == "choice":
        options = (None, *spec.options) if spec.nullable else spec.options
        return where.selectbox(
            label, options, key=key, help=spec.help, format_func=_choice_label, placeholder=forms.NOT_SET
        )
    if spec.kind == "checkbox":
        return where.checkbox(label, key=key, help=spec.help)
    if spec.kind == "integer":
        return where.number_input(
            label,
            key=key,
            help=spec.help,
            step=1,
            min_value=None if spec.minimum is None else int(spec.minimum),
            max_value=None if spec.maximum is None else int(spec.maximum),
        )
    if spec.kind == "number":
        return where.number_input(
            label,
            key=key,
            help=spec.help,
            format="%.3f",
            min_value=None if spec.minimum is None else float(spec.minimum),
            max_value=None if spec.maximum is None else float(spec.maximum),
        )
    if spec.kind == "long_text":
        return where.text_area(label, key=key, help=spec.help, height=120)
    if spec.kind == "json":
        return where.text_input(label + " (JSON)", key=key, help=spec.help)
    return where.text_input(label, key=key, help=spec.help)


def _choice_label(option: Any) -> str:
    return forms.NOT_SET if option is None else str(option)


def input_form(page: str, info: PipelineInfo) -> tuple[dict[str, Any], list[str]]:
    """The input form, built from the input schema, with the named examples to start from."""
    specs = forms.fields(info.input_schema)

    def use_example() -> None:
        chosen = info.examples.get(st.session_state[f"{page}.example"])
        for spec in specs:
            st.session_state[f"{page}.input.{spec.name}"] = forms.initial(spec, chosen or {})

    st.selectbox("Start from", [OWN_INPUT, *info.examples], key=f"{page}.example", on_change=use_example)
    values = {spec.name: _widget(spec, f"{page}.input.{spec.name}") for spec in specs}
    return forms.collect(specs, values)


def flag_form(key: str, info: PipelineInfo, where: Any) -> tuple[dict[str, Any], list[str]]:
    """Widgets for every flag, from the flags schema, with each flag's description as help."""
    specs = forms.fields(info.flags_schema)
    values = {spec.name: _widget(spec, f"{key}.{spec.name}", where, mark_optional=False) for spec in specs}
    return forms.collect(specs, values)


# -- showing results -------------------------------------------------------------------------


def show_value(value: Any, where: Any = st) -> None:
    """A value in the form that fits it: bars, a table, a record, or text."""
    shown = views.display_of(value)
    if shown == "bars":
        where.bar_chart({k: [v] for k, v in value.items()}, horizontal=True, height=max(120, 40 * len(value)))
    elif shown == "table":
        where.dataframe(value, hide_index=True)
    elif shown == "record":
        scores = views.scores_in(value)
        where.json(value, expanded=True)
        if scores:
            where.bar_chart(
                {k: [v] for k, v in scores.items()}, horizontal=True, height=max(120, 40 * len(scores))
            )
    else:
        where.write(value)


def show_output(output: dict[str, Any], info: PipelineInfo, changed: list[str] | None = None) -> None:
    """The output: its roles as metrics, then every field."""
    role = output_roles(info.output_schema)
    columns = st.columns(3)
    for column, name in zip(columns, ROLES, strict=True):
        if name in role:
            value = output.get(role[name])
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            column.metric(role[name] + (" (changed)" if changed and role[name] in changed else ""), text)
    for key, value in output.items():
        marker = " :orange[changed]" if changed and key in changed else ""
        st.markdown(f"**{key}**{marker}")
        show_value(value)


def show_trace(trace: dict[str, Any]) -> None:
    """Every step in order: time (as a chart), output and debug detail."""
    st.subheader("Steps")
    st.bar_chart(views.step_times(trace), x="step", y="ms", horizontal=True, sort=False)
    for number, step in enumerate(trace["steps"], start=1):
        variant = f" ({step['variant']})" if step.get("variant") else ""
        if step["status"] != "ran":
            why = "switched off by a flag" if step["status"] == "off" else "not needed with these flags"
            st.markdown(f"{number}\\. **{step['name']}**{variant}: _{why}_")  # "1\\." is text, not a list
            continue
        with st.expander(f"{number}. {step['name']}{variant}: {step['time_ms']:.2f} ms", expanded=False):
            st.caption(step["doc"])
            st.markdown("**output**")
            show_value(step["output"])
            if step["debug"]:
                st.markdown("**debug**")
                show_value(step["debug"])


def predict(inputs: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any] | None:
    """One input through the model service with debug on: its output and trace."""
    answer = attempt("model service", lambda: model_client().predict([inputs], flags, debug=True))
    if answer is None or not answer.traces:
        return None
    return {
        "version": answer.version,
        "output": answer.outputs[0],
        "trace": answer.traces[0].model_dump(mode="json"),
    }


# -- pages ------------------------------------------------------------------------------------


def explore(info: PipelineInfo) -> None:
    """One input, every step."""
    st.header("Explore")
    flags, flag_problems = flag_form("explore.flags", info, st.sidebar)
    inputs, problems = input_form("explore", info)
    if st.button("Run", key="explore.run", type="primary"):
        for problem in problems + flag_problems:
            st.error(problem)
        if not problems and not flag_problems:
            result = predict(inputs, flags)
            st.session_state["explore.result"] = result and {**result, "input": inputs, "flags": flags}
    result = st.session_state.get("explore.result")
    if result:
        st.subheader("Output")
        st.caption(f"pipeline version {result['version']}")
        show_output(result["output"], info)
        feedback_form(info, result)
        show_trace(result["trace"])


def feedback_form(info: PipelineInfo, result: dict[str, Any]) -> None:
    """ "This is wrong": the right answer and a note, kept by the gateway for the edge-case library."""
    judged = [s for s in forms.fields(info.output_schema) if s.name in scorable_fields(info.output_schema)]
    if not judged:
        return
    label = output_roles(info.output_schema).get("label")
    with st.expander("This is wrong"):
        names = [spec.name for spec in judged]
        wrong = st.multiselect(
            "Which answers are wrong?", names, default=[label] if label in names else [], key="explore.fix"
        )
        expected = {}
        for spec in judged:
            if spec.name in wrong:
                key = f"explore.fix.{spec.name}"
                st.session_state.setdefault(key, result["output"].get(spec.name))
                expected[spec.name] = _widget(spec, key, mark_optional=False)
        note = st.text_area("What is wrong, in your words", key="explore.fix.note", max_chars=2000)
        if st.button("Report", key="explore.fix.send", disabled=not expected):
            kept = attempt(
                "gateway",
                lambda: gateway_client().report_case(
                    result["input"], result["flags"], expected, note, source="ui"
                ),
            )
            if kept is not None:
                st.success(
                    f"Kept as case {kept['id']}; the pipeline answers it "
                    + ("rightly now." if not kept["wrong"] else "wrongly: " + ", ".join(kept["wrong"]) + ".")
                    + " `just cases pull` adds it to the edge-case library."
                )


def compare(info: PipelineInfo) -> None:
    """One input under two flag sets, side by side, with the differences marked."""
    st.header("Compare")
    inputs, problems = input_form("compare", info)
    left, right = st.columns(2)
    left.markdown("**Flag set A**")
    right.markdown("**Flag set B**")
    flags_a, problems_a = flag_form("compare.a", info, left)
    flags_b, problems_b = flag_form("compare.b", info, right)
    if st.button("Compare", key="compare.run", type="primary"):
        for problem in problems + problems_a + problems_b:
            st.error(problem)
        if not (problems or problems_a or problems_b):
            st.session_state["compare.result"] = (predict(inputs, flags_a), predict(inputs, flags_b))
    results = st.session_state.get("compare.result")
    if not results or None in results:
        return
    first, second = results
    changed = views.changed_fields(first["output"], second["output"])
    st.subheader("Outputs")
    st.markdown(
        f"{len(changed)} output field(s) differ: " + ", ".join(f":orange[{c}]" for c in changed)
        if changed
        else "The two outputs are identical."
    )
    for column, result, title in ((left, first, "A"), (right, second, "B")):
        with column:
            st.markdown(f"**{title}**")
            show_output(result["output"], info, changed)
    st.subheader("Steps")
    differences = views.step_differences(first["trace"], second["trace"])
    twins = {step["name"]: step for step in second["trace"]["steps"]}
    for number, step in enumerate(first["trace"]["steps"], start=1):
        twin = twins[step["name"]]
        mark = ":orange[differs]" if differences[step["name"]] else "same"
        with st.expander(f"{number}. {step['name']}: {mark}", expanded=differences[step["name"]]):
            a, b = st.columns(2)
            for where, shown in ((a, step), (b, twin)):
                variant = f" ({shown['variant']})" if shown.get("variant") else ""
                where.markdown(f"{shown['status']}{variant}, {shown['time_ms']:.2f} ms")
                if shown["status"] == "ran":
                    show_value(shown["output"], where)


def truth_form(info: PipelineInfo, header: list[str]) -> dict[str, str]:
    """Output field -> the file's column of its right answers, for the fields that can be scored."""
    scored = scorable_fields(info.output_schema)
    truth = {}
    with st.expander("Score against the truth", expanded=any(name in header for name in scored)):
        st.caption("Columns holding the right answers: the report then scores each flag set against them.")
        for name in scored:
            options = ["(none)", *header]
            chosen = st.selectbox(
                f"Right answers for {name}",
                options,
                index=options.index(name) if name in header else 0,
                key=f"batch.truth.{name}",
            )
            if chosen != "(none)":
                truth[name] = chosen
    return truth


def batch(info: PipelineInfo) -> None:
    """Upload a file, map its columns, pick flags, submit, watch it run, read the report."""
    st.header("Batch jobs")
    upload = st.file_uploader("Dataset", type=["csv", "jsonl", "parquet"], key="batch.file")
    if upload is not None:
        content = upload.getvalue()
        try:
            header = read_header(detect_format(upload.name), io.BytesIO(content))
        except DatasetError as error:
            st.error(f"{upload.name}: {error}")
            header = None
        if header is not None:
            st.caption(f"{upload.name}: columns {', '.join(header)}")
            mapping = {}
            for spec in forms.fields(info.input_schema):
                options = header if spec.required else ["(none)", *header]
                chosen = st.selectbox(
                    f"Column for {spec.name}",
                    options,
                    index=options.index(spec.name) if spec.name in options else 0,
                    key=f"batch.map.{spec.name}",
                    help=spec.help,
                )
                if chosen != "(none)":
                    mapping[spec.name] = chosen
            truth = truth_form(info, header)
            flags, problems = flag_form("batch.a", info, st.expander("Flags", expanded=False))
            compare_flags: dict[str, Any] | None = None
            if st.checkbox("Compare with a second flag set", key="batch.compare"):
                compare_flags, more = flag_form(
                    "batch.b", info, st.expander("Second flag set", expanded=True)
                )
                problems += more
            if st.button("Submit job", key="batch.submit", type="primary"):
                for problem in problems:
                    st.error(problem)
                if not problems:
                    job = attempt(
                        "gateway",
                        lambda: gateway_client().submit_job(
                            upload.name, io.BytesIO(content), mapping, flags, compare_flags, truth
                        ),
                    )
                    if job is not None:
                        st.session_state["batch.job"] = job["id"]
    if "batch.job" in st.session_state:
        job_status(st.session_state["batch.job"])
    st.subheader("Recent jobs")
    listed = attempt("gateway", lambda: gateway_client().jobs(limit=20))
    if listed is not None:
        st.dataframe(
            [
                {
                    "job": j["id"],
                    "file": j["file_name"],
                    "state": j["state"],
                    "rows": f"{j['rows_done']}/{j['rows_total'] or '?'}",
                    "failed": j["rows_failed"],
                    "created": j["created_at"],
                }
                for j in listed["jobs"]
            ],
            hide_index=True,
        )
        compare_jobs(listed["jobs"])


def _job_label(job: dict[str, Any]) -> str:
    flags = ", ".join(f"{k}={v}" for k, v in job["flags"].items()) or "default flags"
    return f"{job['id']}: {job['file_name']}, {flags}, version {job['pipeline_version']}"


def compare_jobs(jobs: list[dict[str, Any]]) -> None:
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
        "Job A (before)", ids, index=1, key="jobs.compare.a", format_func=lambda i: _job_label(done[i])
    )
    second = right.selectbox(
        "Job B (after)", ids, index=0, key="jobs.compare.b", format_func=lambda i: _job_label(done[i])
    )
    if st.button("Compare", key="jobs.compare.run"):
        st.session_state.pop("jobs.comparison", None)
        if first == second:
            st.error("Pick two different jobs.")
        else:
            found = attempt("gateway", lambda: gateway_client().compare(first, second))
            page = attempt("gateway", lambda: gateway_client().compare_page(first, second)) if found else None
            if found is not None and page is not None:
                st.session_state["jobs.comparison"] = {"found": found, "page": page}
    shown = st.session_state.get("jobs.comparison")
    if shown and (shown["found"]["a"]["id"], shown["found"]["b"]["id"]) == (first, second):
        show_comparison(shown["found"], shown["page"])


def show_comparison(found: dict[str, Any], page: bytes) -> None:
    """A comparison's figures: rows changed, score changes as metrics, fields, changed rows, the page."""
    compared = found["compared"]
    columns = st.columns(2 + len(found["scores"]))
    columns[0].metric(
        "Rows changed", found["rows_changed"], help=f"of {compared} rows with an output in both jobs"
    )
    columns[1].metric("Failed in one job only", found["failed_in_one"])
    for column, score in zip(columns[2:], found["scores"], strict=True):
        accuracy = score["measure"] == "accuracy"
        column.metric(
            f"{score['field']}: {'accuracy' if accuracy else 'MAE'} in B",
            "-" if score["b"] is None else f"{score['b']:.3f}",
            None if score["difference"] is None else f"{score['difference']:+.3f}",
            delta_color="normal" if accuracy else "inverse",
            help=f"job A: {'-' if score['a'] is None else format(score['a'], '.3f')}; "
            f"{score['fixed']} rows fixed, {score['broken']} broken, of {score['scored']} scored",
        )
    st.dataframe(
        [
            {
                "field": field["field"],
                "rows changed": field["changed"],
                "what became what": ", ".join(
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
            {
                "row": row["row"],
                "field": change["field"],
                "job A": show(change["before"]),
                "job B": show(change["after"]),
            }
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


def job_status(job_id: str) -> None:
    """The submitted job: a live progress bar while it runs, its reports once it is done."""
    job = attempt("gateway", lambda: gateway_client().job(job_id))
    if job is None:
        return
    if job["state"] in ("queued", "running"):
        job_progress(job_id)
    elif job["state"] == "succeeded":
        show_finished(job)
    else:
        st.error(f"Job {job_id} {job['state']}: {job['error']}")


def _progress(job: dict[str, Any]) -> None:
    total = job["rows_total"] or 0
    st.progress(
        job["rows_done"] / total if total else 0.0,
        text=f"job {job['id']}: {job['state']}, {job['rows_done']} of {total or '?'} rows, "
        f"{job['rows_failed']} failed",
    )


@st.fragment(run_every=settings.poll_seconds)
def job_progress(job_id: str) -> None:
    """Refreshes the progress bar on its own; the whole page reruns when the job ends."""
    job = attempt("gateway", lambda: gateway_client().job(job_id))
    if job is None:
        return
    _progress(job)
    if job["state"] not in ("queued", "running"):
        st.rerun()


def show_finished(job: dict[str, Any]) -> None:
    """A finished job: its figures, download buttons for every report, the HTML report inline."""
    _progress(job)
    st.success(f"Job {job['id']} succeeded: {job['rows_done']} rows, {job['rows_failed']} failed.")
    columns = st.columns(len(job["reports"]))
    for column, file_format in zip(columns, job["reports"], strict=True):
        column.download_button(
            f"Download .{file_format}",
            data=partial(gateway_client().report, job["id"], file_format),  # fetched when clicked
            file_name=f"{job['id']}.{file_format}",
            key=f"batch.download.{file_format}",
        )
    report = attempt("gateway", lambda: gateway_client().report(job["id"], "html"))
    if report is not None:
        components.html(report.decode(), height=900, scrolling=True)


def cases(info: PipelineInfo) -> None:
    """The cases reported from every face and not yet pulled into the library."""
    st.header("Cases")
    st.caption(
        "Answers people judged wrong, kept by the gateway until an engineer runs `just cases pull`, "
        "which merges them into the edge-case library that `just cases` replays through every face."
    )
    page = attempt("gateway", lambda: gateway_client().cases(limit=100))
    if page is None:
        return
    if not page["cases"]:
        st.info('No reported case is waiting: report one from Explore\'s "This is wrong".')
        return
    st.markdown(f"{page['total']} reported case(s), newest first")
    st.dataframe(views.case_rows(page["cases"]), hide_index=True)


def main() -> None:
    """Pick a page; every page keeps working when a service is down."""
    st.sidebar.title("onepipe")
    page = st.sidebar.radio("Page", PAGES, key="page")
    info = pipeline_info()
    if info is None:
        st.info("The pages need the model service: they come back as soon as it answers.")
        return
    st.sidebar.caption(f"Pipeline **{info.name}**, version `{info.version}`")
    {"Explore": explore, "Compare": compare, "Batch jobs": batch, "Cases": cases}[page](info)


main()
