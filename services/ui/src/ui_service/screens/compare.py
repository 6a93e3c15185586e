"""The Compare page: one input under two flag sets, what changes in the answer and in each step."""

from __future__ import annotations

from typing import Any

import streamlit as st

from onepipe import PipelineInfo
from ui_service import compare_view, render, trace_view, widgets, wording
from ui_service.peers import Peers


def show(info: PipelineInfo, peers: Peers) -> None:
    """One input under two flag sets: the sets side by side, one summary, then what differs."""
    widgets.intro("Compare", info, "One input, two flag sets: what changes in the answer and in each step.")
    inputs, problems = widgets.input_form("compare", info)
    sets = st.columns(2, gap="medium")
    found = []
    for column, name in zip(sets, ("A", "B"), strict=True):
        box = column.container(border=True)
        box.markdown(f"**Flag set {name}**")
        found.append(widgets.flag_form(f"compare.{name.lower()}", info, box))
    (flags_a, problems_a), (flags_b, problems_b) = found
    differ = compare_view.flag_differences(flags_a, flags_b, info.flags_schema)
    st.caption(
        f"B differs from A in: {render.escape(differ)}."
        if differ
        else "A and B are the same flag set: change one of B's flags to see what it does."
    )
    clicked = st.button("Compare", key="compare.run", type="primary", icon=":material/compare_arrows:")
    if (st.session_state.pop("compare.run_now", False) or clicked) and widgets.ready(
        problems + problems_a + problems_b
    ):
        first = peers.predict(inputs, flags_a)
        second = peers.predict(inputs, flags_b) if first is not None else None
        names = compare_view.side_names(flags_a, flags_b, info)
        st.session_state["compare.result"] = (first, second, names) if first and second else None
    results = st.session_state.get("compare.result")
    if results:
        comparison(info, *results)


def comparison(
    info: PipelineInfo, first: dict[str, Any], second: dict[str, Any], names: tuple[str, str] = ("A", "B")
) -> None:
    """The summary line with metrics, the fields that differ, the steps compared, both answers; A and B
    named by what differs between their flag sets."""
    schema = info.output_schema
    changed = compare_view.changed_fields(first["output"], second["output"])
    st.markdown(
        "#### " + render.escape(compare_view.compare_summary(first["output"], second["output"], schema))
    )
    metrics = compare_view.compare_metrics(first["output"], second["output"], schema)
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
        st.table(compare_view.difference_rows(first["output"], second["output"], schema, names))
    st.markdown("**Steps**")
    differences = compare_view.step_differences(first["trace"], second["trace"])
    steps_b = trace_view.step_views(second["trace"], _steps(info), info.flags_schema, second["output"])
    twins = {step.name: step for step in steps_b}
    for step in trace_view.step_views(first["trace"], _steps(info), info.flags_schema, first["output"]):
        differs = differences[step.name]
        mark = ":orange[differs]" if differs else "same"
        with st.expander(f"{step.number}. {step.title}: {mark}", expanded=differs):
            for where, shown, name in zip(st.columns(2), (step, twins[step.name]), names, strict=True):
                with where:
                    variant = f", variant {shown.variant}" if shown.variant else ""
                    st.caption(f"{render.escape(name)}: {shown.status_text}{variant}")
                    if shown.output_is_answer:
                        st.markdown("The pipeline's answer: what differs is listed above.")
                    elif shown.ran:
                        render.value(shown.output)
    with st.expander("Both answers in full", expanded=False):
        for where, result, name in zip(st.columns(2), (first, second), names, strict=True):
            with where:
                st.markdown(f"**{render.escape(name)}**")
                render.answer(result["output"], info, result["trace"], changed)


def _steps(info: PipelineInfo) -> list[dict[str, Any]]:
    return [step.model_dump() for step in info.steps]
