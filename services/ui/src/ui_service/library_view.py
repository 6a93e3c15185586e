"""The edge-case library as people read it on the Cases page (no Streamlit here).

Plain functions over the gateway's GET /v1/cases/library (`LibraryReplay`: each case with the champion's
answer, right or wrong): the headline count, a red line per must-pass case answered wrongly, the filters,
and the table's rows. Columns come from the pipeline's schemas (one per input field, the expected and
answered output fields by their titles) and the case format, never from the example's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from onepipe.platform.http.client import ServiceError, ServiceUnavailableError
from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.versions.library import LibraryCase, LibraryReplay
from ui_service import views, wording
from ui_service.versions_view import moment

Shown = Literal["all", "wrong", "right"]
SHOWN: Final[tuple[Shown, ...]] = ("all", "wrong", "right")
RIGHT: Final = "✓ right"
WRONG: Final = "✗ wrong"
MUST_PASS: Final = "must pass"
DEFAULT_FLAGS: Final = "defaults"
# the case's own columns: an input field of the same title is named "Input: <title>"
CASE_COLUMNS: Final = ("Result", "Must pass", "Flags", "Expected", "Note", "Case")
SCOPE_TEXT: Final = (
    "The library needs the `feedback` scope, which the UI's key (`UI_API_KEY`) lacks: give it the `jobs`, "
    "`feedback` and `versions` scopes in `GATEWAY_API_KEYS`."
)


def headline(replay: LibraryReplay) -> str:
    """The library in one sentence: how many cases the champion gets right, and the must-pass ones."""
    if not replay.total:
        return (
            f"The edge-case library of {replay.pipeline} holds no case yet: `just case add` adds one, "
            "`just cases pull` merges the ones reported here."
        )
    share = wording.percent(replay.right / replay.total)
    right = f"{replay.right} of {wording.plural(replay.total, 'case')} right ({share})"
    if not replay.must_pass:
        must = "no case is marked must-pass"
    elif not replay.must_pass_wrong:
        must = (
            "the must-pass case right"
            if replay.must_pass == 1
            else f"all {replay.must_pass} must-pass cases right"
        )
    else:
        wrong = "is" if replay.must_pass_wrong == 1 else "are"
        must = f"{replay.must_pass_wrong} of the {replay.must_pass} must-pass cases {wrong} wrong"
    return f"The {replay.label} ({replay.version}) gets {right}; {must}."


def answered_when(replay: LibraryReplay) -> str:
    """When and how fast the answers were asked for: a fresh replay, not a stored one."""
    return (
        f"Every case answered by the {replay.label} ({replay.version}) through the gateway "
        f"{moment(replay.replayed_at)}, in {replay.seconds:.2f} s, and judged as a promotion judges it."
    )


def fields_text(values: Mapping[str, Any], titles: Mapping[str, str]) -> str:
    """Output (or input, or flag) values by their titles: "Label: fresh; Needs review: no"."""
    return "; ".join(f"{titles.get(k) or wording.readable(k)}: {wording.value(v)}" for k, v in values.items())


def answer_text(case: LibraryCase, titles: Mapping[str, str]) -> str:
    """The answer's expected fields, which a person compares with the expectation; or why there is none."""
    if case.answer is None:
        return f"no answer ({case.error})" if case.error else "no answer"
    return fields_text({name: case.answer.get(name) for name in case.expected}, titles)


def must_pass_lines(replay: LibraryReplay, output_schema: Mapping[str, Any]) -> list[str]:
    """One sentence per must-pass case the version answers wrongly: expected, answered, the note."""
    titles = views.output_titles(Outputs.from_schema(output_schema))
    return [
        f"Must-pass case {case.id} is wrong on the {replay.label}: expected "
        f"{fields_text(case.expected, titles)}, answered {answer_text(case, titles)}"
        + (f" ({case.note.rstrip('.')})." if case.note else ".")
        for case in replay.cases
        if case.must_pass and not case.right
    ]


@dataclass(frozen=True)
class Filter:
    """Which cases the table shows: right, wrong or all; must-pass only; words anywhere in the row."""

    shown: Shown = "all"
    must_pass_only: bool = False
    words: str = ""

    def keeps(self, case: LibraryCase, row: Mapping[str, Any]) -> bool:
        """Whether the case (and its row, searched as shown) passes the filter."""
        if (self.shown == "wrong" and case.right) or (self.shown == "right" and not case.right):
            return False
        if self.must_pass_only and not case.must_pass:
            return False
        text = " ".join(str(value) for value in row.values()).casefold()
        return all(word in text for word in self.words.casefold().split())


def shown_label(shown: Shown, replay: LibraryReplay) -> str:
    """A choice of the filter with its count: "Wrong (18)"."""
    count = {"all": replay.total, "right": replay.right, "wrong": replay.total - replay.right}[shown]
    return f"{shown.capitalize()} ({count})"


def library_rows(
    replay: LibraryReplay,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any],
    flags_schema: Mapping[str, Any],
    keep: Filter | None = None,
) -> list[dict[str, Any]]:
    """The table's rows, wrong must-pass cases first, then the wrong ones, then the right, each group in
    the library's order: result, must-pass, expected, answer (side by side, where the eye lands), one
    column per input field, flags, note, id."""
    in_titles = wording.field_titles(input_schema)
    out_titles = views.output_titles(Outputs.from_schema(output_schema))
    flag_titles = wording.field_titles(flags_schema)
    rows = []
    for case in sorted(replay.cases, key=lambda c: (c.right, not c.must_pass)):
        row: dict[str, Any] = {
            "Result": RIGHT if case.right else WRONG,
            "Must pass": MUST_PASS if case.must_pass else "",
            "Expected": fields_text(case.expected, out_titles),
            f"{replay.label.capitalize()}'s answer": answer_text(case, out_titles),
        }
        for name in input_schema.get("properties", {}):
            title = in_titles.get(name) or wording.readable(name)
            row[f"Input: {title}" if title in CASE_COLUMNS else title] = wording.value(case.input.get(name))
        row["Flags"] = fields_text(case.flags, flag_titles) if case.flags else DEFAULT_FLAGS
        row["Note"] = case.note
        row["Case"] = case.id
        if keep is None or keep.keeps(case, row):
            rows.append(row)
    return rows


def problem_text(error: Exception) -> str:
    """What to say when the library cannot be shown: the scope, the gateway's reason, or the gateway."""
    if isinstance(error, ServiceError) and error.status == 403:
        return SCOPE_TEXT
    detail = getattr(error, "detail", None)
    if isinstance(error, ServiceUnavailableError) and detail:  # the gateway answered: what it said
        return f"The gateway cannot replay the library on the champion now: {str(detail).rstrip('.')}."
    return views.problem_text("gateway", error)


def says_it_all(error: Exception) -> bool:
    """The reported cases, asked of the gateway with the same key, would only fail the same way: the key
    lacks the scope both need, or the gateway (or the model service behind it, which tells it the
    pipeline's name) does not answer."""
    return isinstance(error, ServiceUnavailableError) or (
        isinstance(error, ServiceError) and error.status == 403
    )


def as_replay(found: Mapping[str, Any]) -> LibraryReplay:
    """The gateway's answer, read."""
    return LibraryReplay.model_validate(found)
