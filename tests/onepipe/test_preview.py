"""Previews never crash: values of every kind a step may return, through preview, trace JSON and the UI."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import BaseModel

from onepipe.preview import KIND, MAX_ITEMS, MAX_TEXT, kind_of, preview
from onepipe.trace import StepTrace, Trace
from ui_service.trace_view import shown as shown_on_page
from ui_service.views import display_of, scores_in


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Shade(enum.StrEnum):
    DARK = "dark"


class Size(enum.IntEnum):
    BIG = 3


class Inner(BaseModel):
    label: str
    score: float


class Outer(BaseModel):
    inner: Inner
    tags: list[str]


@dataclasses.dataclass
class Point:
    x: float
    y: Any


def _arrays() -> st.SearchStrategy[Any]:
    dtypes: st.SearchStrategy[np.dtype[Any]] = st.sampled_from(
        [np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_), np.dtype("U5")]
    )
    return dtypes.flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6))
    )


def _sparse() -> st.SearchStrategy[Any]:
    dense = hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=8), elements=st.floats(-5, 5)
    )
    return st.tuples(dense, st.sampled_from(["csr", "csc", "coo"])).map(
        lambda pair: scipy.sparse.csr_matrix(pair[0]).asformat(pair[1])
    )


def _pandas() -> st.SearchStrategy[Any]:
    numbers = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=30)
    return st.one_of(
        numbers.map(pd.Series),
        numbers.map(lambda values: pd.DataFrame({"a": values, "b": [str(v) for v in values]})),
    )


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=600),
    st.binary(max_size=80),
    st.sampled_from(list(Colour)),
    st.datetimes(),
    st.builds(Inner, label=st.text(max_size=20), score=st.floats(allow_nan=False)),
    _arrays(),
    _sparse(),
    _pandas(),
    st.sampled_from([np.float64("nan"), np.int32(7), np.bool_(True), np.float32(1.5), np.str_("x")]),
)

VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=30),
        st.lists(children, max_size=5).map(tuple),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=5)), max_size=25),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=25),
        st.builds(Point, x=st.floats(), y=children),
        st.builds(
            Outer,
            inner=st.builds(Inner, label=st.text(max_size=5), score=st.floats()),
            tags=st.lists(st.text(max_size=5)),
        ),
    ),
    max_leaves=40,
)


def _plain_json(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_any_value_previews_as_plain_json_through_the_trace_and_the_ui(value: Any) -> None:
    shown = preview(value)
    assert _plain_json(shown), shown
    json.dumps(shown, allow_nan=False)  # what a strict JSON response encoder does
    step = StepTrace(name="step", doc="", status="ran", output=shown, debug={"detail": preview(value)})
    trace = Trace(pipeline="p", version="1", steps=[step])
    assert Trace.model_validate_json(trace.model_dump_json()).steps[0].output == shown
    display_of(shown)
    scores_in({"scores": shown})
    display_of(shown_on_page(shown))


def test_a_preview_is_plain_json_except_what_it_cut_or_summarised() -> None:
    plain = {"label": "fresh", "kind": "review", "scores": [0.25, 1], "none": None, "yes": True}
    assert preview(plain) == plain and kind_of(preview(plain)) is None
    assert preview("x" * MAX_TEXT) == "x" * MAX_TEXT  # a text that fits stays a string


def test_arrays_preview_as_their_shape_type_and_first_values() -> None:
    vector = np.arange(384, dtype=np.float32) / 4
    assert preview(vector) == {
        KIND: "array",
        "shape": [384],
        "dtype": "float32",
        "head": [0.0, 0.25, 0.5, 0.75, 1.0],
    }
    assert preview(np.zeros((2, 3), dtype=np.int64))["shape"] == [2, 3]


def test_numpy_scalars_preview_as_their_values() -> None:
    assert preview(np.float64(0.25)) == 0.25
    assert preview(np.int64(3)) == 3 and preview(np.bool_(False)) is False
    assert preview(np.array(2.5)) == 2.5


def test_non_finite_numbers_preview_as_words() -> None:
    assert preview([math.nan, math.inf, -math.inf, np.float32("nan")]) == [
        "NaN",
        "Infinity",
        "-Infinity",
        "NaN",
    ]


def test_sparse_rows_preview_with_shape_and_non_zeros() -> None:
    row = scipy.sparse.csr_matrix(np.array([[0.0, 2.0, 0.0, 0.5]]))
    assert preview(row) == {
        KIND: "sparse",
        "format": "csr",
        "shape": [1, 4],
        "dtype": "float64",
        "nnz": 2,
        "head": [[0, 1, 2.0], [0, 3, 0.5]],
    }


def test_pandas_objects_preview_as_their_first_rows() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert preview(frame) == {
        "shape": [3, 2],
        "columns": ["a", "b"],
        "head": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}],
    }
    assert preview(pd.Series([1.5, None])) == {"0": 1.5, "1": "NaN"}


def test_long_containers_and_texts_are_shortened() -> None:
    assert preview(list(range(100))) == {KIND: "list", "head": list(range(MAX_ITEMS)), "length": 100}
    assert preview("a" * 1000) == {KIND: "text", "head": "a" * MAX_TEXT, "length": 1000}
    many = preview({str(i): i for i in range(50)})
    assert many == {KIND: "mapping", "head": {str(i): i for i in range(MAX_ITEMS)}, "length": 50}
    # a mapping of the step's own that holds the tag is wrapped: a reader never takes it for a summary
    assert preview({KIND: "text"}) == {KIND: "mapping", "head": {KIND: "text"}, "length": 1}


def test_other_kinds_preview_readably() -> None:
    assert preview(b"\x00\xff") == {KIND: "bytes", "length": 2, "head": "00 ff"}
    assert preview({3, 1, 2}) == [1, 2, 3]
    assert preview(Colour.RED) == "red"
    for member, plain in ((Shade.DARK, "dark"), (Size.BIG, 3)):  # str and int enums show their plain values
        assert preview(member) == plain and type(preview(member)) is type(plain)
    assert preview(datetime(2026, 1, 2, 3, 4)) == "2026-01-02T03:04:00"
    assert preview(Point(1.0, np.int8(2))) == {"x": 1.0, "y": 2}
    assert preview(Outer(inner=Inner(label="a", score=0.5), tags=["t"])) == {
        "inner": {"label": "a", "score": 0.5},
        "tags": ["t"],
    }
    nested: list[Any] = []
    nested.append(nested)  # a list that holds itself
    deepest = preview(nested)
    while isinstance(deepest, list):
        deepest = deepest[0]
    assert deepest == {KIND: "unshown", "type": "list", "reason": "nested too deep to show"}


def test_a_value_whose_own_methods_fail_still_previews() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert preview(Broken()) == {KIND: "unshown", "type": "Broken", "reason": "no preview (RuntimeError)"}


class Text(BaseModel):
    """One text."""

    text: str


class Verdict(BaseModel):
    """A count."""

    words: int


class NoFlags(BaseModel):
    """No flags."""


def counts(inputs: list[Text], recorder: Any) -> list[Any]:
    """Word counts as sparse rows."""
    rows = [scipy.sparse.csr_matrix(np.array([[len(item.text.split()), 0.0, math.nan]])) for item in inputs]
    for index, row in enumerate(rows):
        recorder.add(index, row=row, total=np.float32("inf"), kinds={"a", "b"})
    return rows


def verdict(counts: list[Any]) -> list[Verdict]:
    """The count, as the output."""
    return [Verdict(words=int(row[0, 0])) for row in counts]


def test_a_step_returning_and_recording_odd_values_traces_as_strict_json() -> None:
    from onepipe import Pipeline

    odd = Pipeline(
        name="odd",
        input_model=Text,
        output_model=Verdict,
        flags_model=NoFlags,
        steps=[counts, verdict],
        examples={"one": Text(text="a b c")},
    )
    traced = odd.load(None).run([{"text": "a b c"}], debug=True)
    assert traced.traces is not None
    step = traced.traces[0].step("counts")
    assert step.output[KIND] == "sparse" and step.output["shape"] == [1, 3]
    assert step.debug["total"] == "Infinity" and step.debug["kinds"] == ["a", "b"]
    json.dumps(traced.traces[0].model_dump(mode="json"), allow_nan=False)
