"""JSON as RFC 8259 has it, for values a file or a body brings: no NaN, no repeated key, a bounded depth."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

MAX_JSON_DEPTH = 32  # the deepest nesting of a JSON value (a JSON line, a cell holding JSON)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


class RepeatedKeyError(ValueError):
    """A JSON object names a key twice: valid JSON, but which value was meant is unknown."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        repeated = sorted({key for key, _ in pairs if sum(1 for k, _ in pairs if k == key) > 1})
        raise RepeatedKeyError(f"an object repeats the key(s) {', '.join(repeated)}")
    return found


def parse_json(text: str) -> Any:
    """JSON as RFC 8259 has it: NaN, Infinity and numbers out of range are ValueErrors, as are repeated keys.

    A value Python's json would take but JSON cannot carry on (to the model service, to the reports)
    is refused here, where the row it is in can be named.
    """
    try:
        return json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite
        )
    except ValueError as error:
        if "integer string conversion" not in str(error):
            raise
        limit = sys.get_int_max_str_digits()
        raise ValueError(f"a number has more than {limit} digits (the limit)") from None


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON value nests objects and arrays deeper than `limit` levels."""
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def unpaired_surrogate(text: str, value: Any) -> int | None:
    """The code of a surrogate a JSON escape in `text` left unpaired in `value`, if any."""
    if "\\u" not in text:
        return None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        return ord(error.object[error.start])
    return None
