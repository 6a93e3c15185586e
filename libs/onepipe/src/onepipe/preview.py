"""Readable, JSON-safe previews of whatever a step returns or records.

A preview never raises: arrays, sparse matrices, pandas objects, numpy scalars,
bytes, sets, dataclasses, pydantic models, NaN and infinities, huge or deeply
nested containers all come out as plain JSON values (None, bool, int, float,
str, list, dict with str keys). What is shortened or summarised comes as a
kind-tagged object (`{"$kind": "array", ...}`, see KINDS), so a reader takes its
parts as data and never parses a string back.
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
MAX_BYTES = 32

# the tag of a summarised value: "$" because no pydantic model or dataclass field can be named so
KIND = "$kind"
KINDS = ("text", "list", "mapping", "array", "sparse", "bytes", "unshown")


def preview(value: Any) -> Any:
    """A JSON-safe rendering of `value`, shortened where it would be unreadable."""
    try:
        return _preview(value, 0)
    except Exception as error:  # a value whose own methods fail: say what it is, never crash the trace
        return _unshown(value, f"no preview ({type(error).__name__})")


def kind_of(shown: Any) -> str | None:
    """The kind of a summarised preview (one of KINDS), None for a plain JSON value."""
    if isinstance(shown, Mapping) and isinstance(shown.get(KIND), str):
        return str(shown[KIND])
    return None


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
        return _text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return {KIND: "bytes", "length": len(data), "head": data[:MAX_BYTES].hex(" ")}
    if isinstance(value, date | time):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        return _unshown(value, "nested too deep to show")
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
        return _mapping(value, depth)
    if isinstance(value, set | frozenset):
        return _sequence(sorted(value, key=repr), depth)
    if isinstance(value, list | tuple):
        return _sequence(value, depth)
    return _text(repr(value))


def _text(text: str) -> Any:
    if len(text) <= MAX_TEXT:
        return text
    return {KIND: "text", "head": text[:MAX_TEXT], "length": len(text)}


def _number(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"  # JSON has no NaN nor infinity: strict encoders refuse them
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return round(float(value), 6)  # a numpy float would stay one, and overflow to inf near its limit


def _mapping(value: Mapping[Any, Any], depth: int) -> Any:
    items = list(value.items())
    shown = {str(key): _preview(item, depth + 1) for key, item in items[:MAX_ITEMS]}
    # a mapping holding the tag itself is wrapped too, so a reader never mistakes it for a summary
    if len(items) > MAX_ITEMS or KIND in shown:
        return {KIND: "mapping", "head": shown, "length": len(items)}
    return shown


def _sequence(items: list[Any] | tuple[Any, ...], depth: int) -> Any:
    shown = [_preview(item, depth + 1) for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        return {KIND: "list", "head": shown, "length": len(items)}
    return shown


def _type_name(value: Any) -> str:
    return type(value).__name__


def _unshown(value: Any, reason: str) -> dict[str, Any]:
    return {KIND: "unshown", "type": _type_name(value), "reason": reason}


# numpy, scipy and pandas are recognised by their attributes: previews never import them


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "ravel")


def _array(value: Any, depth: int) -> Any:
    shape = [int(n) for n in value.shape]
    if not shape:  # a numpy scalar, or a 0-d array: its plain Python value
        return _preview(value.item(), depth)
    flat = value.ravel()
    head = [_preview(item, depth + 1) for item in flat[:HEAD]]
    return {KIND: "array", "shape": shape, "dtype": str(value.dtype), "head": head}


def _is_sparse(value: Any) -> bool:
    return hasattr(value, "nnz") and hasattr(value, "tocoo") and hasattr(value, "shape")


def _sparse(value: Any) -> dict[str, Any]:
    coo = value.tocoo()
    head = [
        [int(r), int(c), _number(float(v))]
        for r, c, v in zip(coo.row[:HEAD], coo.col[:HEAD], coo.data[:HEAD], strict=False)
    ]
    return {
        KIND: "sparse",
        "format": str(getattr(value, "format", "sparse")),
        "shape": [int(n) for n in value.shape],
        "dtype": str(value.dtype),
        "nnz": int(value.nnz),
        "head": head,
    }


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
