"""The Explore page: one input, the answer first, then how every step got there."""

from __future__ import annotations

from typing import Any

import streamlit as st

from onepipe import PipelineInfo
from onepipe.platform.schema.outputs import Outputs
from ui_service import forms, render, views, widgets, wording
from ui_service.peers import Peers, attempt


def show(info: PipelineInfo, peers: Peers) -> None:
    """One input: the answer first, then how every step got there."""
    widgets.intro(
        "Explore", info, "Type an input or click an example: the answer comes first, then every step."
    )
    st.sidebar.subheader("Flags")
    st.sidebar.caption(render.escape(info.flags_schema.get("description", "")))
    flags, flag_problems = widgets.flag_form("explore.flags", info, st.sidebar)
    inputs, problems = widgets.input_form("explore", info)
    clicked = st.button("Run", key="explore.run", type="primary", icon=":material/play_arrow:")
    if (st.session_state.pop("explore.run_now", False) or clicked) and widgets.ready(
        problems + flag_problems
    ):
        result = peers.predict(inputs, flags)
        st.session_state["explore.result"] = result and {**result, "input": inputs, "flags": flags}
    result = st.session_state.get("explore.result")
    if not result:
        return
    answer_tab, steps_tab = st.tabs(["Answer", "Steps"])
    with answer_tab:
        took = wording.milliseconds(result["answered_ms"])
        st.caption(f"Pipeline version `{result['version']}`, answered in {took}.")
        render.answer(result["output"], info, result["trace"])
        feedback_form(info, result, peers)
    with steps_tab:
        render.steps(result["trace"], info, result["output"], result["answered_ms"])


def feedback_form(info: PipelineInfo, result: dict[str, Any], peers: Peers) -> None:
    """ "This is wrong": the right answer and a note, kept by the gateway for the edge-case library."""
    scorable = Outputs.of(info).scorable()
    judged = [spec for spec in forms.fields(info.output_schema) if spec.name in scorable]
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
                expected[spec.name] = widgets.field_widget(spec, key, mark_optional=False)
        note = st.text_area("What is wrong, in your words", key="explore.fix.note", max_chars=2000)
        if st.button("Report", key="explore.fix.send", disabled=not expected, icon=":material/send:"):
            kept = attempt(
                "gateway",
                lambda: peers.gateway().report_case(
                    result["input"], result["flags"], expected, note, source="ui"
                ),
            )
            if kept is not None:
                wrongly = ", ".join(titles.get(name, name) for name in kept["wrong"])
                st.success(
                    f"Kept as case {kept['id']}; the pipeline answers it "
                    + (f"wrongly now: {wrongly}." if kept["wrong"] else "rightly now.")
                    + " `just cases pull` adds it to the edge-case library."
                )
