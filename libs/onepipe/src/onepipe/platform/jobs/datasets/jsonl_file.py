"""JSON lines files: one object a line; a blank line is no row."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from onepipe.platform.jobs.datasets.common import (
    UNDECODABLE,
    DatasetError,
    Row,
    byte_name,
    column_names,
    not_text,
    not_utf8,
)
from onepipe.platform.jobs.datasets.json_values import (
    MAX_JSON_DEPTH,
    RepeatedKeyError,
    parse_json,
    too_deep,
    unpaired_surrogate,
)

JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def jsonl_header(text: io.TextIOWrapper) -> list[str]:
    """The first object's keys, or a DatasetError saying why the file is not JSON lines of objects."""
    for number, line in enumerate(text, start=1):
        if number == 1:
            not_text(line)
        if not line.strip():
            continue
        not_utf8(line, number)
        value, problem = _json_object(line)
        if problem is not None:
            raise DatasetError(f"the file is not JSON lines of objects: line {number} is {problem}")
        return column_names(list(value or {}), "first JSON object")
    raise DatasetError("the file is empty")


def _json_object(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON line's object, or None and why it is not one."""
    found = UNDECODABLE.search(line)
    if found is not None:
        return None, f"not UTF-8 text (the byte {byte_name(found.group())}); save the file as UTF-8"
    try:
        value = parse_json(line)
    except json.JSONDecodeError as error:
        return None, f"not valid JSON: {error.msg} (column {error.colno})"
    except RepeatedKeyError as error:
        return None, f"ambiguous: {error}"
    except ValueError as error:  # NaN, Infinity, a number out of range or with too many digits
        return None, f"not valid JSON: {error}"
    except RecursionError:
        return None, f"nested more than {MAX_JSON_DEPTH} levels deep (the limit)"
    if not isinstance(value, dict):
        return None, f"not a JSON object but {JSON_KINDS.get(type(value), 'a number')}"
    if (line.count("[") + line.count("{") > MAX_JSON_DEPTH) and too_deep(value):
        return None, f"nested more than {MAX_JSON_DEPTH} levels deep (the limit)"
    code = unpaired_surrogate(line, value)
    if code is not None:
        return None, f"not text: a string holds \\u{code:04x}, half of a surrogate pair, alone"
    return value, None


def jsonl_rows(text: io.TextIOWrapper) -> Iterator[Row]:
    """Every object, numbered from 1 without the blank lines."""
    number = 0
    for line in text:
        if not line.strip():
            continue
        number += 1
        value, problem = _json_object(line)
        yield Row(number, value, None) if problem is None else Row(number, None, problem)
