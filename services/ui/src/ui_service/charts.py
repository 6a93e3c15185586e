"""Charts as Vega-Lite specifications (plain dicts for st.vega_lite_chart): no Streamlit, no new dependency.

Each chart says what its numbers are: bars carry their values as text, scores by class mark
the chosen class, contributions are coloured by sign, step times fall as a waterfall.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ui_service import wording

CHOSEN: Final = "#1f6feb"  # the class the pipeline picked
OTHER: Final = "#a8b3c2"  # the other classes
POSITIVE: Final = "#1f6feb"  # contributions for (blue) ...
NEGATIVE: Final = "#d9622b"  # ... and against (orange): two colours told apart without red/green
STEP: Final = "#5b8def"
ROW_PX: Final = 26
MAX_BARS: Final = 25  # a chart of more bars shows the largest (by size)


def _height() -> dict[str, int]:
    """A row per bar, each tall enough for its label (Vega-Lite's step height)."""
    return {"step": ROW_PX}


def _room(low: float, high: float, share: float = 0.2) -> list[float]:
    """A scale's domain from low to high (zero included), with room beyond the bars for their values."""
    low, high = min(0.0, low), max(0.0, high)
    pad = (high - low) * share or 1.0
    return [low - pad if low < 0 else 0.0, high + pad if high > 0 else 0.0]


def _axis_labels(limit: int = 220) -> dict[str, Any]:
    return {"title": None, "labelLimit": limit, "ticks": False, "domain": False, "labelPadding": 6}


def score_bars(scores: Mapping[str, float], chosen: str | None, as_shares: bool) -> dict[str, Any]:
    """Every class's score as a bar, highest first, the chosen class in colour (like a classifier's label)."""
    ordered = sorted(scores.items(), key=lambda item: -item[1])[:MAX_BARS]
    values = [
        {
            "class": name,
            "score": score,
            "text": wording.percent(score) if as_shares else wording.number(score),
            "chosen": name == chosen,
        }
        for name, score in ordered
    ]
    x: dict[str, Any] = {"field": "score", "type": "quantitative", "axis": None}
    top = max((score for _, score in ordered), default=1.0)
    x["scale"] = {"domain": [0, 1.12] if as_shares else _room(min([0.0, *scores.values()]), top)}
    return {
        "data": {"values": values},
        "height": _height(),
        "encoding": {
            "y": {"field": "class", "type": "nominal", "sort": None, "axis": _axis_labels()},
            "x": x,
        },
        "layer": [
            {
                "mark": {"type": "bar", "cornerRadiusEnd": 3, "height": {"band": 0.7}},
                "encoding": {
                    "color": {
                        "field": "chosen",
                        "type": "nominal",
                        "scale": {"domain": [True, False], "range": [CHOSEN, OTHER]},
                        "legend": None,
                    },
                    "tooltip": [{"field": "class"}, {"field": "text", "title": "score"}],
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "fontWeight": "bold"},
                "encoding": {"text": {"field": "text"}},
            },
        ],
    }


def signed_bars(values: Mapping[str, float]) -> dict[str, Any]:
    """Numbers by name as bars from zero, sorted (largest first), positive and negative in two colours.

    Each bar carries its value (with its sign when some are negative).
    """
    ordered = sorted(values.items(), key=lambda item: -abs(item[1]))[:MAX_BARS]
    ordered.sort(key=lambda item: -item[1])
    mixed = any(value < 0 for _, value in ordered)  # signs shown only where some values are negative
    rows = [
        {
            "name": name,
            "value": value,
            "text": wording.signed(value) if mixed else wording.number(value),
            "sign": "positive" if value >= 0 else "negative",
        }
        for name, value in ordered
    ]
    return {
        "data": {"values": rows},
        "height": _height(),
        "encoding": {
            "y": {"field": "name", "type": "nominal", "sort": None, "axis": _axis_labels()},
            "x": {
                "field": "value",
                "type": "quantitative",
                "axis": {"title": None, "grid": True, "tickCount": 4},
                "scale": {"domain": _room(min(v for _, v in ordered), max(v for _, v in ordered), 0.25)},
            },
        },
        "layer": [
            {
                "mark": {"type": "bar", "cornerRadius": 2, "height": {"band": 0.7}},
                "encoding": {
                    "color": {
                        "field": "sign",
                        "type": "nominal",
                        "scale": {"domain": ["positive", "negative"], "range": [POSITIVE, NEGATIVE]},
                        "legend": None,
                    },
                    "tooltip": [{"field": "name"}, {"field": "text", "title": "value"}],
                },
            },
            {
                "transform": [{"filter": "datum.value >= 0"}],
                "mark": {"type": "text", "align": "left", "dx": 4},
                "encoding": {"text": {"field": "text"}},
            },
            {
                "transform": [{"filter": "datum.value < 0"}],
                "mark": {"type": "text", "align": "right", "dx": -4},
                "encoding": {"text": {"field": "text"}},
            },
        ],
    }


def waterfall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Step times as a waterfall: each step a bar from where the one before it ended, its time beside it."""
    return {
        "data": {"values": rows},
        "height": _height(),
        "encoding": {
            "y": {"field": "step", "type": "nominal", "sort": None, "axis": _axis_labels(260)},
            "x": {
                "field": "start",
                "type": "quantitative",
                "axis": {"title": "ms from the start", "grid": True},
                "scale": {"domain": _room(0.0, max((row["end"] for row in rows), default=1.0), 0.12)},
            },
        },
        "layer": [
            {
                "mark": {"type": "bar", "color": STEP, "cornerRadius": 2, "height": {"band": 0.65}},
                "encoding": {
                    "x2": {"field": "end"},
                    "tooltip": [{"field": "step"}, {"field": "time", "title": "time"}],
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4},
                "encoding": {"x": {"field": "end", "type": "quantitative"}, "text": {"field": "time"}},
            },
        ],
    }


def intervals(rows: list[dict[str, Any]], unit: str) -> dict[str, Any]:
    """Differences with their 95% intervals, a row each: a line from low to high, a dot at the difference
    with its words above, the line of no change at zero; better blue, worse orange, no clear difference gray.

    Each row: `name`, `difference`, `low`, `high`, `text` (the difference in words), `judgement`.
    """
    low = min((row["low"] for row in rows), default=0.0)
    high = max((row["high"] for row in rows), default=0.0)
    colour = {
        "field": "judgement",
        "type": "nominal",
        "scale": {"domain": ["better", "worse", "unclear"], "range": [POSITIVE, NEGATIVE, OTHER]},
        "legend": None,
    }
    tooltip = [{"field": "name"}, {"field": "text", "title": "challenger - champion (95% interval)"}]
    name = {"field": "name", "type": "nominal", "sort": None, "axis": _axis_labels()}
    return {
        "data": {"values": rows},
        "height": {"step": ROW_PX + 22},  # room for the words above each line
        "layer": [
            {  # no change: one line across every row
                "mark": {"type": "rule", "strokeDash": [4, 3], "color": "#8a94a6"},
                "encoding": {"x": {"datum": 0, "type": "quantitative"}},
            },
            {
                "mark": {"type": "rule", "strokeWidth": 4, "strokeCap": "round"},
                "encoding": {
                    "x": {
                        "field": "low",
                        "type": "quantitative",
                        "axis": {
                            "title": f"challenger minus champion ({unit}), 95% interval",
                            "grid": True,
                            "tickCount": 8,
                        },
                        "scale": {"domain": _room(low, high, 0.3)},
                    },
                    "x2": {"field": "high"},
                    "y": name,
                    "color": colour,
                    "tooltip": tooltip,
                },
            },
            {
                "mark": {"type": "point", "filled": True, "size": 90, "opacity": 1},
                "encoding": {
                    "x": {"field": "difference", "type": "quantitative"},
                    "y": name,
                    "color": colour,
                },
            },
            {
                "mark": {"type": "text", "align": "center", "dy": -14},  # above the dot: inside the plot
                "encoding": {
                    "x": {"field": "difference", "type": "quantitative"},
                    "y": name,
                    "text": {"field": "text"},
                },
            },
        ],
    }


def agreement(shares: Mapping[str, float]) -> dict[str, Any]:
    """Each output field's share of inputs both versions answer alike, in the answer's order (the label
    first, as the comparison reads), on a scale of 0 to 100% so fields are compared at a glance."""
    rows = [{"field": name, "share": share, "text": wording.percent(share)} for name, share in shares.items()]
    return {
        "data": {"values": rows[:MAX_BARS]},
        "height": _height(),
        "encoding": {
            "y": {"field": "field", "type": "nominal", "sort": None, "axis": _axis_labels()},
            "x": {"field": "share", "type": "quantitative", "axis": None, "scale": {"domain": [0, 1.12]}},
        },
        "layer": [
            {
                "mark": {"type": "bar", "cornerRadiusEnd": 3, "height": {"band": 0.7}, "color": CHOSEN},
                "encoding": {"tooltip": [{"field": "field"}, {"field": "text", "title": "agreement"}]},
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "fontWeight": "bold"},
                "encoding": {"text": {"field": "text"}},
            },
        ],
    }
