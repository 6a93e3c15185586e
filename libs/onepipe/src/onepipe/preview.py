"""Readable, JSON-safe previews of step outputs (arrays, long texts, long lists)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

MAX_TEXT = 300
MAX_ITEMS = 20


def preview(value: Any) -> Any:
    """A JSON-safe rendering of `value`, shortened where it would be unreadable."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}… ({len(value)} chars)"
    if isinstance(value, BaseModel):
        return preview(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): preview(v) for k, v in value.items()}
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):  # numpy arrays, without importing numpy
        head = [round(float(x), 4) for x in value.reshape(-1)[:5]]
        return f"array(shape={tuple(shape)}, dtype={value.dtype}, head={head})"
    if isinstance(value, list | tuple):
        items = [preview(v) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"… {len(value) - MAX_ITEMS} more")
        return items
    return repr(value)[:MAX_TEXT]
