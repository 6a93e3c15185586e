"""Output values as every face reads them: as text (a category), as a number, and against a truth cell.

One definition for the worker's reports and the gateway's comparison of two jobs, so that a
row right in one is right in the other. A categorical output is right when its text equals
its truth cell's category; a numeric one is judged by its absolute error.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

NONE: Final = "(none)"
# how an output field is scored against a truth column (scored_kind in onepipe.platform.schema.schemas
# says which)
CATEGORICAL: Final = "categorical"
NUMERIC: Final = "numeric"
_TRUE: Final = {"true", "1", "yes", "y", "t"}
_FALSE: Final = {"false", "0", "no", "n", "f"}


def json_type(value: Any) -> str:
    """The JSON type of a parsed JSON value: boolean, integer, number, null, string, array or object."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_JSON_TYPE_WORDS: Final = {
    "string": "a string",
    "boolean": "a boolean",
    "integer": "a number",
    "number": "a number",
    "null": "null",
    "array": "an array",
}


def json_type_words(value: Any) -> str:
    """A value's JSON type as a message names it ("a string", "an array"); objects are another kind."""
    return _JSON_TYPE_WORDS.get(json_type(value), "a value of another kind")


def json_text(value: Any) -> str:
    """A value as JSON text (non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def show(value: Any) -> str:
    """A value as text: a table cell, a chart's category, what a truth cell is compared with."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json_text(value)


def as_number(value: Any) -> float | None:
    """A finite number as a float; anything else (booleans, text, NaN) as None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def truth_category(value: Any, boolean: bool) -> str | None:
    """A truth cell as the category it names (None when blank): text trimmed, yes/no words for booleans."""
    if value is None:
        return None
    text = show(value).strip()
    if not text:
        return None
    if boolean and isinstance(value, str):
        lowered = text.lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
    return text


def truth_number(value: Any) -> float | None:
    """A truth cell as a finite number, or None (blank or not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_truth(cell: Any, kind: str, boolean: bool) -> str | float | None:
    """A truth cell as its field is scored: a category (CATEGORICAL) or a number (NUMERIC); None if blank."""
    return truth_category(cell, boolean) if kind == CATEGORICAL else truth_number(cell)


def is_right(truth: str, value: Any) -> bool:
    """Whether a categorical output value is its truth category."""
    return show(value) == truth


def abs_error(truth: float, value: Any) -> float | None:
    """A numeric output value's distance from its truth (None when the value is not a number)."""
    number = as_number(value)
    return None if number is None else abs(number - truth)
