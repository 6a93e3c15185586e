"""Drawing what views.py chose, with Streamlit: values, the answer's headline, step cards.

The choices (what form fits a value, what the headline is, which step did what) are made in
views.py, wording.py and charts.py; this module only puts them on the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import streamlit as st

from onepipe import PipelineInfo
from ui_service import charts, trace_view, views, wording

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:])")
_CODE = re.compile(r"(`[^`]+`)")


def escape(text: str) -> str:
    """Text shown as is in Streamlit markdown: no emphasis, links, math or colour directives from the data."""
    return _MARKDOWN.sub(r"\\\1", text)


def prose(text: str) -> str:
    """Text shown as is, but for its `code` spans (a command to run), which stay code."""
    return "".join(part if _CODE.fullmatch(part) else escape(part) for part in _CODE.split(text))


def chips(items: list[Any], colour: str = "gray") -> str:
    """Short values as a row of badges (markdown)."""
    return " ".join(f":{colour}-badge[{escape(wording.value(item))}]" for item in items)


def bars(values: Mapping[str, float], chosen: str | None = None, where: Any = st) -> None:
    """Numbers by name: shares of a whole as a classifier's label, anything else as signed bars."""
    numbers = {str(k): float(v) for k, v in values.items()}
    if views.shares(numbers) or chosen is not None:
        spec = charts.score_bars(numbers, chosen, views.shares(numbers))
    else:
        spec = charts.signed_bars(numbers)
    where.vega_lite_chart(spec, width="stretch")


def value(item: Any, where: Any = st, columns: Mapping[str, str] | None = None, depth: int = 0) -> None:
    """A value in the form that fits it (views.display_of)."""
    display = views.display_of(item)
    if display == "none":
        where.markdown(f":gray[{wording.NONE}]")
    elif display == "scalar":
        where.markdown(escape(wording.value(item)))
    elif display == "long_text":
        where.markdown("> " + escape(str(item)))
    elif display == "array":
        where.markdown(":gray[" + escape(trace_view.array_summary(item) or wording.value(item)) + "]")
    elif display == "bars":
        bars(item, where=where)
    elif display == "terms":
        where.markdown(chips(item))
    elif display == "table":
        where.table(views.table_rows(item, columns))
    elif display == "record" and depth < 2:
        record(item, where, columns, depth)
    else:
        where.markdown(escape(wording.value(item)))


def record(
    item: Mapping[str, Any], where: Any = st, titles: Mapping[str, str] | None = None, depth: int = 0
) -> None:
    """A record: its short values in one line, then each other value under its title."""
    titles = titles or {}
    short = views.facts(item, titles)
    if short:
        where.markdown(" · ".join(f"**{escape(title)}** {escape(text)}" for title, text in short))
    for key, inner in item.items():
        shown = views.display_of(inner)
        if shown in ("none", "scalar"):
            continue
        where.markdown(f"**{escape(titles.get(str(key)) or wording.readable(str(key)))}**")
        if shown == "bars":  # a decision's scores: the class it chose (one of the record's values) marked
            chosen = next((str(v) for v in item.values() if isinstance(v, str) and v in inner), None)
            bars(inner, chosen, where)
        else:
            value(inner, where, depth=depth + 1)


def headline(verdict: views.Verdict, score_sets: list[views.ScoreSet]) -> None:
    """The verdict in words, its confidence as a bar, the review mark and its reasons, every class's score."""
    with st.container(border=True):
        left, middle, right = st.columns([2, 3, 3], gap="medium")
        if verdict.label:
            left.metric(verdict.label_title, verdict.label_text)
            if verdict.label_help:
                left.caption(escape(verdict.label_help))
        if verdict.confidence:
            middle.markdown(f"**{escape(verdict.confidence_title)}**")
            if verdict.confidence_share is not None:
                middle.progress(verdict.confidence_share, text=wording.percent(verdict.confidence_share))
            else:
                middle.markdown(f"### {wording.value(verdict.confidence_value)}")
            if verdict.confidence_help:
                middle.caption(escape(verdict.confidence_help))
        if verdict.review:
            if verdict.needs_review:
                right.markdown(f":orange-badge[:material/flag: {escape(verdict.review_title)}]")
                for reason in verdict.reasons or ["(no reason given)"]:
                    right.markdown(f"- {escape(reason)}")
            else:
                right.markdown(":green-badge[:material/check: no review needed]")
        if score_sets:
            columns = st.columns(min(3, len(score_sets)))
            for number, scores in enumerate(score_sets):
                where = columns[number % len(columns)]
                where.markdown(f"**{escape(scores.title)}**", help=scores.about)
                where.vega_lite_chart(
                    charts.score_bars(scores.scores, scores.chosen, scores.shares), width="stretch"
                )
    if verdict.known_value is not None:
        known = verdict.known_value
        text = (
            " · ".join(f"{t}: {v}" for t, v in views.facts(known))
            if isinstance(known, Mapping)
            else wording.value(known)
        )
        st.info(
            f"**{escape(verdict.known_title)}**: {escape(wording.shorten(text, 300))}  \n"
            "This input is one the pipeline already knows: its answer says little about new inputs.",
            icon=":material/history:",
        )


def answer(
    output: Mapping[str, Any],
    info: PipelineInfo,
    trace: Mapping[str, Any] | None = None,
    changed: list[str] | None = None,
    with_headline: bool = True,
) -> None:
    """An output: the headline (its roles), every class's score, then the other fields in words."""
    schema = info.output_schema
    verdict = views.verdict(output, schema)
    sets = views.score_sets(output, schema, trace)
    shown: list[str] = []
    if verdict is not None and with_headline:
        headline(verdict, sets)
        shown = [*verdict.fields, *(s.source for s in sets if s.from_output)]
    details = views.field_views(output, schema, skip=shown)
    if not details:
        return
    if verdict is not None and with_headline:
        st.markdown("**Details**")
    short = [f for f in details if f.display in ("none", "scalar")]
    if short:
        columns = st.columns(2 if len(short) > 3 else 1)
        for number, field in enumerate(short):
            mark = " :orange-badge[changed]" if changed and field.name in changed else ""
            columns[number % len(columns)].markdown(
                f"**{escape(field.title)}** {escape(wording.value(field.value))}{mark}", help=field.help
            )
    for field in details:
        if field in short:
            continue
        mark = " :orange-badge[changed]" if changed and field.name in changed else ""
        st.markdown(f"**{escape(field.title)}**{mark}", help=field.help)
        value(field.value, columns=field.columns)


def step_card(step: trace_view.StepView) -> None:
    """One step: its number and name, what it does, its output and its debug detail drawn for people."""
    variant = f" :blue-badge[{escape(step.variant)}]" if step.variant else ""
    with st.container(border=True):
        if not step.ran:
            st.markdown(
                f"**{step.number}. {escape(step.title)}**{variant} :gray[— {escape(step.status_text)}]"
            )
            st.caption(step.doc)
            return
        st.markdown(
            f"**{step.number}. {escape(step.title)}**{variant} :gray-badge[{escape(step.status_text)}]"
        )
        st.caption(step.doc)
        debug = {k: v for k, v in step.debug.items()}
        where_output, where_debug = st.columns(2, gap="large") if debug else (st.container(), None)
        with where_output:
            st.markdown(":gray[Output]")
            if step.output_is_answer:
                st.markdown("The pipeline's answer, shown in full under **Answer**.")
            else:
                value(step.output)
        if where_debug is not None:
            with where_debug:
                st.markdown(":gray[Debug detail]")
                record(debug)


def steps(
    trace: Mapping[str, Any], info: PipelineInfo, output: Mapping[str, Any], answered_ms: float | None
) -> None:
    """A waterfall of step times, then each step as a card."""
    cards = trace_view.step_views(trace, [s.model_dump() for s in info.steps], info.flags_schema, output)
    ran = [card for card in cards if card.ran]
    total = sum(card.time_ms for card in ran)
    answered = f"; the model service answered in {wording.milliseconds(answered_ms)}" if answered_ms else ""
    counted = f"{len(ran)} of {wording.plural(len(cards), 'step')} ran"
    st.caption(f"{counted}, {wording.milliseconds(total)} in all{answered}.")
    rows = trace_view.waterfall_rows(trace)
    if rows:
        st.vega_lite_chart(charts.waterfall(rows), width="stretch")
    for card in cards:
        step_card(card)
