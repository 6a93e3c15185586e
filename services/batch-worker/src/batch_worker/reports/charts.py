"""Charts as inline SVG (Altair, rendered by vl-convert): no script, no network."""

from __future__ import annotations

from collections import Counter
from typing import Any

import altair as alt
import vl_convert

from batch_worker.reports.statistics import Categorical


def _svg(chart: Any) -> str:
    """A chart as inline SVG: no script, no network."""
    return str(vl_convert.vegalite_to_svg(chart.to_dict()))


def bar_chart(categorical: Categorical, comparing: bool) -> str:
    order = categorical.order()
    variants = ["flags", "compare flags"] if comparing else ["flags"]
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


def histogram(bins: list[int], low: float, high: float, title: str) -> str:
    width = (high - low) / len(bins)
    values = [
        {"start": round(low + i * width, 6), "end": round(low + (i + 1) * width, 6), "rows": n}
        for i, n in enumerate(bins)
    ]
    chart = (
        alt.Chart({"values": values})
        .mark_bar(color="#4c78a8", stroke="white")
        .encode(
            x=alt.X("start:Q", title=title, scale=alt.Scale(domain=[low, high])),
            x2="end:Q",
            # with x2 set, a bar needs its baseline spelled out or it is drawn as a thin tick
            y=alt.Y("rows:Q", title="rows", scale=alt.Scale(zero=True)),
            y2=alt.datum(0),
        )
        .properties(width=480, height=200)
    )
    return _svg(chart)
