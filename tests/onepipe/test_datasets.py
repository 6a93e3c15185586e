"""Rows as the pipeline's input: CSV cells read as their fields' types, blank cells taking defaults."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from onepipe.platform.jobs.datasets import DatasetError, resolve_mapping, to_input


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class Ticket(BaseModel):
    """A support ticket, with fields of every kind a CSV cell may fill."""

    text: str = Field(min_length=1)
    channel: Channel | None = None
    priority: Literal["low", "high"] = "low"
    age_days: int = 0
    score: float | None = None
    tags: list[str] = Field(default_factory=list)
    code: str | int | None = None
    urgent: bool = False


SCHEMA = Ticket.model_json_schema()
MAPPING = {name: name for name in Ticket.model_fields}


def _ticket(cells: dict[str, Any], mapping: dict[str, str] = MAPPING) -> Ticket:
    built = to_input(cells, mapping, SCHEMA)
    # what the model service does with a request: strict JSON validation
    return Ticket.model_validate_json(json.dumps(built), strict=True)


BLANK = {name: "" for name in Ticket.model_fields} | {"text": "hello"}


def test_blank_cells_of_optional_fields_take_their_defaults() -> None:
    assert _ticket(BLANK) == Ticket(text="hello")
    assert _ticket({k: " " for k in BLANK} | {"text": "hello"}) == Ticket(text="hello")


def test_cells_are_read_as_their_fields_types() -> None:
    cells = {
        "text": "42",
        "channel": "phone",
        "priority": "high",
        "age_days": "7",
        "score": "0.5",
        "tags": '["a", "b"]',
        "code": "17",
        "urgent": "true",
    }
    assert _ticket(cells) == Ticket(
        text="42",
        channel=Channel.PHONE,
        priority="high",
        age_days=7,
        score=0.5,
        tags=["a", "b"],
        code=17,
        urgent=True,
    )


@pytest.mark.parametrize(("cell", "value"), [("A-17", "A-17"), ("17", 17), ("017", "017")])
def test_a_field_of_text_or_numbers_keeps_a_cell_that_is_no_number_as_text(cell: str, value: Any) -> None:
    assert _ticket({"text": "t", "code": cell}).code == value


def test_a_required_field_left_blank_is_still_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        _ticket(BLANK | {"text": ""})
    assert caught.value.errors()[0]["loc"] == ("text",)


def test_a_cell_of_the_wrong_type_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        _ticket({"text": "t", "age_days": "seven"})
    assert caught.value.errors()[0]["loc"] == ("age_days",)


def test_a_json_lines_file_fills_optional_fields_its_first_object_leaves_out() -> None:
    header = ["text"]  # the first object's keys; a later object may hold more
    mapping = resolve_mapping(SCHEMA, header, {"score": "confidence"}, "jsonl")
    assert mapping == {**MAPPING, "score": "confidence"}
    later = {"text": "hi", "channel": "phone", "confidence": 0.5}
    assert _ticket(later, mapping) == Ticket(text="hi", channel=Channel.PHONE, score=0.5)
    with pytest.raises(
        DatasetError, match=r"required input field\(s\) text; its first JSON object's keys: body"
    ):
        resolve_mapping(SCHEMA, ["body"], {}, "jsonl")


def test_a_table_maps_the_columns_it_has_and_refuses_a_mapping_to_one_it_lacks() -> None:
    assert resolve_mapping(SCHEMA, ["text", "tags"], {}, "csv") == {"text": "text", "tags": "tags"}
    with pytest.raises(DatasetError, match=r"column\(s\) the file does not have: score -> 'confidence'"):
        resolve_mapping(SCHEMA, ["text", "tags"], {"score": "confidence"}, "parquet")
