"""The Cases page: the edge-case library with the champion's answers, then the cases reported from this UI
that wait to be pulled into it."""

from __future__ import annotations

import sys
import traceback
from typing import Any, Final

import pandas as pd
import streamlit as st

from onepipe import PipelineInfo
from onepipe.platform.http.client import ServiceError
from onepipe.platform.versions.library import LibraryReplay
from ui_service import library_view, views, widgets
from ui_service.library_view import MUST_PASS, RIGHT, SHOWN, WRONG, Filter
from ui_service.peers import Peers, attempt, gateway_client
from ui_service.render import escape

REPLAY_SECONDS: Final = 15  # filtering reruns the page: the answers are asked for again after this long
ROW_PX: Final = 35  # Streamlit's row height, for a table that shows this many rows before it scrolls
ROWS_SHOWN: Final = 16
ANSWER_PX: Final = 150  # the expected answer and the champion's: short, side by side, leaving the input room
PURPOSE: Final = (
    "The edge-case library: inputs for which a person said what the pipeline must answer, each replayed "
    "now on the champion, right or wrong; `just promote` refuses a challenger that breaks a must-pass case. "
    'Below it, the cases reported from this UI (Explore\'s "This is wrong"), kept by the gateway until an '
    "engineer runs `just cases pull`, which merges them into the library."
)


@st.cache_data(ttl=REPLAY_SECONDS, show_spinner="Replaying the library on the champion …")
def _library_json(url: str, api_key: str, timeout: float) -> dict[str, Any]:
    """The library replayed on the champion by the gateway, kept a few seconds across reruns."""
    return gateway_client(url, api_key, timeout).case_library()


def show(info: PipelineInfo, peers: Peers) -> None:
    """The library with the champion's answers and filters, then the reported cases waiting for a pull."""
    widgets.intro("Cases", info, PURPOSE)
    st.subheader("The library on the champion")
    settings = peers.settings
    if st.button("Replay now", key="cases.library.replay", icon=":material/replay:"):
        _library_json.clear()
    try:
        found = _library_json(settings.gateway_url, settings.api_key, settings.timeout)
        replay = library_view.as_replay(found)
    except Exception as error:  # one sentence, as attempt() says it, naming the scope when that is why
        if not isinstance(error, ServiceError):  # a bug: the log gets the traceback, never the page
            traceback.print_exc(file=sys.stderr)
        st.error(library_view.problem_text(error), icon=":material/error:")
        if library_view.says_it_all(error):
            return
    else:
        library(replay, info)
    reported(info, peers)


def library(replay: LibraryReplay, info: PipelineInfo) -> None:
    """The headline and counts, a red line per must-pass case answered wrongly, the filters, the table."""
    st.markdown(f"**{escape(library_view.headline(replay))}**")
    if not replay.total:
        return
    right, wrong, must = st.columns(3)
    right.metric("Right", f"{replay.right} of {replay.total}", border=True)
    wrong.metric("Wrong", replay.total - replay.right, border=True)
    must.metric("Must-pass wrong", f"{replay.must_pass_wrong} of {replay.must_pass}", border=True)
    for line in library_view.must_pass_lines(replay, info.output_schema):
        st.error(escape(line), icon=":material/block:")
    st.caption(escape(library_view.answered_when(replay)))
    shown, must_pass, words = st.columns([2, 1, 3], vertical_alignment="bottom")
    keep = Filter(
        shown.radio(
            "Show",
            SHOWN,
            format_func=lambda choice: library_view.shown_label(choice, replay),
            horizontal=True,
            key="cases.library.shown",
        ),
        must_pass.toggle("Must-pass only", key="cases.library.must_pass"),
        words.text_input(
            "Search",
            key="cases.library.search",
            placeholder="words of an input, a note, an answer, a case id",
        ),
    )
    rows = library_view.library_rows(replay, info.input_schema, info.output_schema, info.flags_schema, keep)
    st.caption(f"Showing {len(rows)} of {replay.total} cases, wrong must-pass cases first.")
    if not rows:
        st.info("No case matches these filters.", icon=":material/filter_alt_off:")
        return
    table = pd.DataFrame(rows)
    st.dataframe(
        table.style.map(_colour, subset=["Result", "Must pass"]),
        hide_index=True,
        height=(min(len(rows), ROWS_SHOWN) + 1) * ROW_PX + 3,
        column_config={  # what decides first, then what was asked; the rest read on hover or by scrolling
            "Result": st.column_config.TextColumn("Result", width="small"),
            "Must pass": st.column_config.TextColumn("Must pass", width="small"),
            **{name: st.column_config.TextColumn(name, width=ANSWER_PX) for name in list(table)[2:4]},
            "Flags": st.column_config.TextColumn("Flags", width="small"),
            "Note": st.column_config.TextColumn("Note", width="medium"),
        },
        key="cases.library.table",
    )


def _colour(cell: str) -> str:
    return {
        RIGHT: "color: #1b7f3b",
        WRONG: "color: #c62828; font-weight: 600",
        MUST_PASS: "font-weight: 600",
    }.get(cell, "")


def reported(info: PipelineInfo, peers: Peers) -> None:
    """The cases reported from this UI (its gateway key's) and not yet pulled into the library."""
    st.subheader("Reported here, waiting for `just cases pull`")
    st.caption(
        "The gateway shows a key the cases it reported (every key's only to a key with the `cases:admin` "
        "scope)."
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
