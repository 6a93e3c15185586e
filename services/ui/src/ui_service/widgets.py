"""The widgets every page shares: its intro, forms built from the pipeline's schemas, a form's problems."""

from __future__ import annotations

from typing import Any

import streamlit as st

from onepipe import PipelineInfo
from ui_service import forms, render, wording


def intro(title: str, info: PipelineInfo, purpose: str) -> None:
    """The page's title, what the pipeline is (from its own schemas), and what the page is for."""
    st.header(title)
    takes = wording.sentence_start(info.input_schema.get("description", "") or "an input")
    gives = wording.sentence_start(info.output_schema.get("description", "") or "an answer")
    st.caption(
        f"**{render.escape(info.name)}** takes {render.escape(takes)} and gives {render.escape(gives)}, "
        f"in {wording.plural(len(info.steps), 'step')}. {purpose}"
    )


def field_widget(spec: forms.FieldSpec, key: str, where: Any = st, mark_optional: bool = True) -> Any:
    """The widget that fits a form field, starting from its initial value."""
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
    values = {spec.name: field_widget(spec, f"{page}.input.{spec.name}") for spec in specs}
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


def flag_form(
    key: str, info: PipelineInfo, where: Any, changed_only: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Widgets for every flag, from the flags schema, with each flag's description as help.

    `changed_only`: only the flags changed from their default are returned (the version that answers
    applies its own defaults to the rest)."""
    specs = forms.fields(info.flags_schema)
    with where:
        values = {
            spec.name: field_widget(spec, f"{key}.{spec.name}", st, mark_optional=False) for spec in specs
        }
    flags, problems = forms.collect(specs, values)
    return (forms.changed_only(specs, flags) if changed_only else flags), problems


def ready(problems: list[str]) -> bool:
    """Whether a form can be sent; if not, each problem shown, in words."""
    for problem in problems:
        st.error(problem, icon=":material/edit:")
    return not problems
