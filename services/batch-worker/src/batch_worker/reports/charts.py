"""Charts as inline SVG (Altair, rendered by vl-convert): no script, no network."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import altair as alt
import vl_convert

from batch_worker.reports.statistics import Categorical


def _svg(chart: Any) -> str:
    """A chart as inline SVG: no script, no network."""
    return str(vl_convert.vegalite_to_svg(chart.to_dict()))


def bar_chart(categorical: Categorical, variants: list[str]) -> str:
    """Rows per category; with two variants (flag sets or versions), their bars side by side."""
    comparing = len(variants) > 1
    order = categorical.order()
    values = [
        {"category": value, "rows": categorical.counts.get(variant, Counter())[value], "variant": variant}
        for variant in variants
        for value in order
    ]
    base = alt.Chart({"values": values}).encode(
        y=alt.Y("category:N", sort=order, title=None, axis=alt.Axis(labelLimit=220)),
        x=alt.X("rows:Q", title="rows"),
    )
    bars = base.mark_bar(color="#4c78a8")
    labels = base.mark_text(align="left", dx=3, fontSize=10).encode(text="rows:Q")
    if comparing:
        bars = bars.encode(
            color=alt.Color("variant:N", sort=variants, title=None, legend=alt.Legend(orient="bottom")),
            yOffset=alt.YOffset("variant:N", sort=variants),
        )
        labels = labels.encode(yOffset=alt.YOffset("variant:N", sort=variants))
    height = max(60, 22 * len(order) * len(variants))
    chart = alt.layer(bars, labels).properties(title=categorical.name, width=360, height=height)
    return _svg(chart)


def histogram(
    bins: Mapping[str, list[int]], low: float, high: float, title: str, per_value: bool = False
) -> str:
    """Rows per bin from low to high; with two flag sets, their bars side by side in each bin.

    `per_value`: a bin per whole number, centred on it, so the axis ticks whole numbers only.
    """
    variants = list(bins)
    width = (high - low) / len(bins[variants[0]])
    share = width / len(variants)
    values = [
        {
            "start": round(low + i * width + v * share, 9),
            "end": round(low + i * width + (v + 1) * share, 9),
            "rows": n,
            "variant": variant,
        }
        for v, variant in enumerate(variants)
        for i, n in enumerate(bins[variant])
    ]
    bars = alt.Chart({"values": values}).mark_bar(stroke="white", strokeWidth=0.5)
    encoding: dict[str, Any] = {
        "x": alt.X(
            "start:Q",
            title=title,
            scale=alt.Scale(domain=[low, high], nice=False),
            axis=alt.Axis(tickMinStep=1, format="d") if per_value else alt.Axis(),
        ),
        "x2": "end:Q",
        # with x2 set, a bar needs its baseline spelled out or it is drawn as a thin tick
        "y": alt.Y("rows:Q", title="rows", scale=alt.Scale(zero=True)),
        "y2": alt.datum(0),
    }
    if len(variants) > 1:
        encoding["color"] = alt.Color(
            "variant:N", sort=variants, title=None, legend=alt.Legend(orient="bottom")
        )
    else:
        bars = bars.mark_bar(color="#4c78a8", stroke="white", strokeWidth=0.5)
    return _svg(bars.encode(**encoding).properties(width=380, height=180))


def reliability(bins: Mapping[str, list[tuple[int, float, float]]], title: str) -> str:
    """Accuracy against mean confidence per confidence bin, one line per flag set, with the diagonal
    of perfect calibration."""
    variants = list(bins)
    values = [
        {"confidence": round(confidence, 4), "accuracy": round(accuracy, 4), "rows": n, "variant": variant}
        for variant in variants
        for n, confidence, accuracy in bins[variant]
    ]
    scale = alt.Scale(domain=[0, 1], nice=False)
    diagonal = (
        alt.Chart({"values": [{"x": 0, "y": 0}, {"x": 1, "y": 1}]})
        .mark_line(color="#999", strokeDash=[4, 4])
        .encode(x=alt.X("x:Q", scale=scale), y=alt.Y("y:Q", scale=scale))
    )
    base = alt.Chart({"values": values}).encode(
        x=alt.X("confidence:Q", title="mean confidence in the bin (0-1)", scale=scale),
        y=alt.Y("accuracy:Q", title="accuracy in the bin", scale=scale),
        color=alt.Color("variant:N", sort=variants, title=None, legend=alt.Legend(orient="bottom")),
    )
    # the line joins the bins in order of confidence; each point's area tells how many rows it holds
    lines = alt.layer(
        base.mark_line().encode(order=alt.Order("confidence:Q")),
        base.mark_circle(opacity=0.8).encode(size=alt.Size("rows:Q", title="rows", legend=None)),
    )
    return _svg(alt.layer(diagonal, lines).properties(title=title, width=300, height=300))
