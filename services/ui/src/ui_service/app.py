"""The Streamlit UI: explore an input step by step, compare flag sets, run batch jobs, read cases, versions.

Run with `streamlit run services/ui/src/ui_service/app.py`; its settings for a viewer (toolbar,
error details, address) are in `.streamlit/config.toml` beside this script, which Streamlit
reads whatever the working directory. It never imports the pipeline: forms, flags and views
come from the model service's /v1/pipeline, and predictions from its /v1/predict with debug on;
batch jobs, reported cases and the registered versions go through the gateway. This script lays
out the sidebar and runs the page picked; each page is a module of screens/, what it shows is
decided in views.py, trace_view.py, compare_view.py, forms.py, jobs_view.py, versions_view.py and
wording.py, and render.py draws it.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import streamlit as st

from onepipe import PipelineInfo
from onepipe.platform.settings import InvalidSettingsError, read_settings
from ui_service import render
from ui_service.peers import Peers
from ui_service.screens import batch_jobs, cases, compare, explore, versions
from ui_service.settings import Settings

PAGES: dict[str, Callable[[PipelineInfo, Peers], None]] = {
    "Explore": explore.show,
    "Compare": compare.show,
    "Batch jobs": batch_jobs.show,
    "Cases": cases.show,
    "Versions": versions.show,
}


def main() -> None:
    """Pick a page; every page keeps working when a service is down, and none shows a traceback."""
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
        return
    peers = Peers(settings)
    st.sidebar.title("onepipe")
    page = st.sidebar.radio("Page", list(PAGES), key="page", label_visibility="collapsed")
    info = peers.pipeline_info()
    if info is None:
        st.info("The pages need the model service: they come back as soon as it answers.")
        return
    st.sidebar.caption(f"Pipeline **{render.escape(info.name)}** · version `{info.version}`")
    try:
        PAGES[page](info, peers)
    except Exception as error:  # a bug of this page: one sentence here, the traceback in the log
        traceback.print_exc(file=sys.stderr)
        st.error(
            f"This page hit a problem it cannot show ({type(error).__name__}). "
            "Reload the page and try again; the UI's log has the details."
        )


main()
