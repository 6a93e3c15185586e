"""The Cases page: the cases reported from this UI, waiting to be pulled into the edge-case library."""

from __future__ import annotations

import streamlit as st

from onepipe import PipelineInfo
from ui_service import views, widgets
from ui_service.peers import Peers, attempt


def show(info: PipelineInfo, peers: Peers) -> None:
    """The cases reported from this UI (its gateway key's) and not yet pulled into the library."""
    widgets.intro(
        "Cases",
        info,
        "Cases reported from this UI: answers people judged wrong, kept by the gateway until an "
        "engineer runs `just cases pull`, which merges them into the edge-case library that "
        "`just cases` replays through every face. The gateway shows a key the cases it reported "
        "(every key's only to a key with the `cases:admin` scope).",
    )
    page = attempt("gateway", lambda: peers.gateway().cases(limit=100))
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
