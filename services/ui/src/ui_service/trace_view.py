"""What a trace shows: each step's status in words, its previews read by their kinds (no Streamlit here).

A preview (onepipe.preview) is plain JSON where it can be, and a `$kind`-tagged object where a
value was cut or summarised; its parts are read as data, never parsed back from a string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from onepipe.preview import kind_of
from ui_service import wording
from ui_service.views import is_number

TIMES = " \u00d7 "  # a shape's sizes: 1 x 7, with the multiplication sign


# -- previews, by their kinds ----------------------------------------------------------------------


def shown(preview: Any) -> Any:
    """A preview as the page shows it: what was cut said in words; arrays kept for `array_summary`."""
    kind = kind_of(preview)
    if kind == "text":
        return f"{preview['head']}… ({preview['length']} chars)"
    if kind == "list":
        more = int(preview["length"]) - len(preview["head"])
        return [*(shown(item) for item in preview["head"]), f"… {more} more"]
    if kind == "mapping":
        items = {key: shown(item) for key, item in preview["head"].items()}
        more = int(preview["length"]) - len(items)
        return items | ({"…": f"{more} more"} if more else {})
    if kind == "bytes":
        cut = int(preview["length"]) > len(bytes.fromhex(preview["head"]))
        return f"{preview['length']} bytes: {preview['head']}{' …' if cut else ''}"
    if kind == "unshown":
        return f"<{preview['type']}: {preview['reason']}>"
    if kind is not None:  # an array or a sparse matrix: summarised where it is drawn
        return preview
    if isinstance(preview, Mapping):
        return {key: shown(item) for key, item in preview.items()}
    if isinstance(preview, list):
        return [shown(item) for item in preview]
    return preview


def array_summary(preview: Any) -> str | None:
    """An array's or sparse matrix's preview in a few words; None for any other value."""
    kind = kind_of(preview)
    if kind == "array":
        dims = [int(n) for n in preview["shape"]]
        first = ", ".join(_head_item(item) for item in preview["head"][:3])
        shape = TIMES.join(str(n) for n in dims)
        return (
            f"{wording.plural(math.prod(dims), 'value')} ({preview['dtype']}"
            + (f", shape {shape}" if len(dims) > 1 else "")
            + ")"
            + (f", starting {first} …" if first else "")
        )
    if kind == "sparse":
        sizes = TIMES.join(str(n) for n in preview["shape"])
        return (
            f"sparse matrix {sizes} ({preview['format']}, {preview['dtype']}) "
            f"with {wording.plural(int(preview['nnz']), 'value')} set"
        )
    return None


def _head_item(item: Any) -> str:
    return wording.number(float(item)) if is_number(item) else wording.value(item)


def same(preview: Any, value: Any) -> bool:
    """Whether a step's output (a preview: floats rounded, texts, lists and mappings cut) is this value."""
    kind = kind_of(preview)
    if kind == "text":
        text = preview["head"]
        return isinstance(value, str) and len(value) == preview["length"] and value.startswith(text)
    if kind == "list":
        kept = preview["head"]
        fits = isinstance(value, list | tuple) and len(value) == preview["length"]
        return fits and same(kept, list(value[: len(kept)]))
    if kind == "mapping":
        fits = isinstance(value, Mapping) and len(value) == preview["length"]
        return fits and all(key in value and same(item, value[key]) for key, item in preview["head"].items())
    if kind is not None:
        return False  # an array, bytes or a value not shown is never an output's JSON
    if isinstance(preview, float) or isinstance(value, float):
        close = is_number(preview) and is_number(value)
        return close and math.isclose(preview, value, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(preview, dict) and isinstance(value, Mapping):
        return preview.keys() == value.keys() and all(same(preview[k], value[k]) for k in preview)
    if isinstance(preview, list) and isinstance(value, list | tuple):
        return len(preview) == len(value) and all(same(a, b) for a, b in zip(preview, value, strict=True))
    return bool(preview == value)


# -- steps -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    """One step of a trace as its card shows it."""

    number: int
    name: str
    title: str
    variant: str | None
    ran: bool
    time_ms: float
    doc: str
    status_text: str  # how long it took, or why it did not run, in words
    output: Any  # the preview as shown (see `shown`)
    debug: dict[str, Any]
    output_is_answer: bool  # its output is the pipeline's output: shown once, as the answer


def _flag_words(flags_schema: Mapping[str, Any], condition: Mapping[str, Any]) -> str:
    titles = wording.field_titles(flags_schema)
    parts = []
    for flag, wanted in condition.items():
        title = titles.get(flag, wording.readable(flag))
        if isinstance(wanted, bool):
            parts.append(f"{title} is {'on' if wanted else 'off'}")
        else:
            parts.append(f"{title} is {wording.value(wanted)}")
    return " and ".join(parts)


def step_views(
    trace: Mapping[str, Any],
    steps_info: Sequence[Mapping[str, Any]] | None = None,
    flags_schema: Mapping[str, Any] | None = None,
    output: Mapping[str, Any] | None = None,
) -> list[StepView]:
    """Every step in order, with what it did (or why it did not run) in words."""
    infos = {info["name"]: info for info in steps_info or []}
    views = []
    for number, step in enumerate(trace["steps"], start=1):
        ran = step["status"] == "ran"
        if ran:
            status = wording.milliseconds(step.get("time_ms", 0.0))
        elif step["status"] == "off":
            conditions = [c for c in infos.get(step["name"], {}).get("variants", {}).values() if c]
            when = " or ".join(_flag_words(flags_schema or {}, c) for c in conditions)
            status = "switched off by a flag" + (f": it runs only when {when}" if when else "")
        else:
            status = "not needed with these flags: no step that ran uses it"
        views.append(
            StepView(
                number=number,
                name=step["name"],
                title=wording.readable(step["name"]),
                variant=step.get("variant"),
                ran=ran,
                time_ms=step.get("time_ms", 0.0),
                doc=step.get("doc", ""),
                status_text=status,
                output=shown(step.get("output")),
                debug=shown(dict(step.get("debug") or {})),
                output_is_answer=ran and output is not None and same(step.get("output"), output),
            )
        )
    return views


def step_times(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each step that ran with its time, for a bar chart."""
    return [
        {"step": step["name"], "ms": step["time_ms"]} for step in trace["steps"] if step["status"] == "ran"
    ]


def waterfall_rows(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The steps that ran as a waterfall: each starts where the one before it ended (they run in turn)."""
    rows, start = [], 0.0
    for number, step in enumerate(trace["steps"], start=1):
        if step["status"] != "ran":
            continue
        ms = float(step.get("time_ms", 0.0))
        variant = f" ({step['variant']})" if step.get("variant") else ""
        rows.append(
            {
                "step": f"{number}. {wording.readable(step['name'])}{variant}",
                "start": round(start, 4),
                "end": round(start + ms, 4),
                "ms": ms,
                "time": wording.milliseconds(ms),
            }
        )
        start += ms
    return rows
