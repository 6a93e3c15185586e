"""Readable, JSON-safe previews of whatever a step returns or records.

A preview never raises: arrays, sparse matrices, pandas objects, numpy scalars,
bytes, sets, dataclasses, pydantic models, NaN and infinities, huge or deeply
nested containers all come out as plain JSON values (None, bool, int, float,
str, list, dict with str keys), shortened where they would be unreadable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date, time
from enum import Enum
from typing import Any

from pydantic import BaseModel

MAX_TEXT = 300
MAX_ITEMS = 20
MAX_DEPTH = 6
HEAD = 5


def preview(value: Any) -> Any:
    """A JSON-safe rendering of `value`, shortened where it would be unreadable."""
    try:
        return _preview(value, 0)
    except Exception as error:  # a value whose own methods fail: say what it is, never crash the trace
        return f"<{_type_name(value)}: no preview ({type(error).__name__})>"


def _preview(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):  # before str and int: a StrEnum or IntEnum shows its plain value
        return _preview(value.value, depth)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}… ({len(value)} chars)"
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return f"{len(data)} bytes: {data[:32].hex(' ')}{' …' if len(data) > 32 else ''}"
    if isinstance(value, date | time):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        return f"<{_type_name(value)}: nested too deep to show>"
    if isinstance(value, BaseModel):
        return _preview({name: getattr(value, name) for name in type(value).model_fields}, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return _preview(fields, depth + 1)
    if _is_sparse(value):
        return _sparse(value)
    if _is_pandas(value):
        return _pandas(value, depth)
    if _is_array(value):
        return _array(value, depth)
    if isinstance(value, Mapping):
        items = list(value.items())
        shown = {str(key): _preview(item, depth + 1) for key, item in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            shown["…"] = f"{len(items) - MAX_ITEMS} more"
        return shown
    if isinstance(value, set | frozenset):
        return _sequence(sorted(value, key=repr), depth)
    if isinstance(value, list | tuple):
        return _sequence(value, depth)
    text = repr(value)
    return text if len(text) <= MAX_TEXT else f"{text[:MAX_TEXT]}…"


def _number(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"  # JSON has no NaN nor infinity: strict encoders refuse them
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return round(value, 6)


def _sequence(items: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
    shown = [_preview(item, depth + 1) for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        shown.append(f"… {len(items) - MAX_ITEMS} more")
    return shown


def _type_name(value: Any) -> str:
    return type(value).__name__


# numpy, scipy and pandas are recognised by their attributes: previews never import them


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "ravel")


def _array(value: Any, depth: int) -> Any:
    shape = tuple(int(n) for n in value.shape)
    if shape == ():  # a numpy scalar, or a 0-d array: its plain Python value
        return _preview(value.item(), depth)
    flat = value.ravel()
    head = [_preview(item, depth + 1) for item in flat[:HEAD]]
    return f"array(shape={shape}, dtype={value.dtype}, head={head})"


def _is_sparse(value: Any) -> bool:
    return hasattr(value, "nnz") and hasattr(value, "tocoo") and hasattr(value, "shape")


def _sparse(value: Any) -> str:
    coo = value.tocoo()
    head = [
        (int(r), int(c), _number(float(v)))
        for r, c, v in zip(coo.row[:HEAD], coo.col[:HEAD], coo.data[:HEAD], strict=False)
    ]
    kind = getattr(value, "format", "sparse")
    return f"sparse {kind} (shape={tuple(value.shape)}, dtype={value.dtype}, nnz={value.nnz}, head={head})"


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_dict")


def _pandas(value: Any, depth: int) -> Any:
    if hasattr(value, "columns"):  # a DataFrame: its first rows as records
        rows = value.head(HEAD).to_dict(orient="records")
        return {
            "shape": list(value.shape),
            "columns": _preview([str(c) for c in value.columns], depth + 1),
            "head": _preview(rows, depth + 1),
        }
    return _preview(value.head(MAX_ITEMS).to_dict(), depth)  # a Series: index -> value
