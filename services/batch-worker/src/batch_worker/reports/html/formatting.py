"""How the HTML report writes figures, times and flag sets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from onepipe.platform.schema.values import json_text

MISSING: Final = "\u2013"  # an en dash: nothing to show


def count(value: int | None) -> str:
    """A count with thousands separators."""
    return MISSING if value is None else f"{value:,}"


def percent(part: int, whole: int) -> str:
    """`part` as a share of `whole`, to one decimal."""
    return MISSING if whole == 0 else f"{100 * part / whole:.1f}%"


def decimal(value: float | None) -> str:
    """A figure to three decimals, or three significant digits when very large or small."""
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.3f}"


def timestamp(value: datetime | None) -> str:
    """A moment as date, time and zone."""
    return MISSING if value is None else value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def duration(seconds: float | None) -> str:
    """Seconds as people read them (s, min, h)."""
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def flag_list(flags: Mapping[str, Any] | None) -> str:
    """A flag set as `key=value` pairs, or "defaults"."""
    if not flags:
        return "defaults"
    return ", ".join(
        f"{key}={value if isinstance(value, str) else json_text(value)}"
        for key, value in sorted(flags.items())
    )
