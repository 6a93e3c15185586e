"""The distribution of outputs: counts per category, numeric summaries, lists and text, histograms."""

from __future__ import annotations

from typing import Any, Final

from markupsafe import Markup

from batch_worker.reports.charts import bar_chart, histogram
from batch_worker.reports.html.formatting import count, decimal
from batch_worker.reports.statistics import Summary, histogram_of
from onepipe.platform.schema.sample import SAMPLE_SIZE

RANGE_SOURCES: Final = {
    "schema": "the schema's range",
    "data": "the data's range",
    "schema and data": "the schema's bound and the data's",
}


def bar_charts(summary: Summary) -> list[Markup]:
    """A bar chart of each categorical field that holds counts, both flag sets in one."""
    return [
        Markup(bar_chart(categorical, summary.variants))
        for categorical in summary.categoricals.values()
        if categorical.counts
    ]


def numeric_rows(summary: Summary) -> list[dict[str, Any]]:
    """Each numeric field's summary under each flag set, one row per set, the sets side by side."""
    rows = []
    for name, by_variant in summary.numeric.items():
        for index, (variant, numbers) in enumerate(by_variant.items()):
            rows.append(
                {
                    "name": name,
                    "span": len(by_variant) if index == 0 else 0,
                    "variant": variant,
                    "count": count(numbers.count),
                    "mean": decimal(numbers.mean),
                    "low": decimal(numbers.low if numbers.count else None),
                    "q1": decimal(numbers.quantile(0.25)),
                    "median": decimal(numbers.quantile(0.5)),
                    "q3": decimal(numbers.quantile(0.75)),
                    "high": decimal(numbers.high if numbers.count else None),
                }
            )
    return rows


def shape_rows(summary: Summary) -> list[dict[str, Any]]:
    """Lists, objects and free text: rows with a value, empty, none, mean list size, per flag set."""
    rows = []
    for name, shapes in summary.shapes.items():
        for index, variant in enumerate(summary.variants):
            items = shapes.items.get(variant)
            rows.append(
                {
                    "name": name,
                    "kind": summary.kinds[name],
                    "span": len(summary.variants) if index == 0 else 0,
                    "variant": variant,
                    "present": count(shapes.present[variant]),
                    "empty": count(shapes.empty[variant]),
                    "missing": count(shapes.missing[variant]),
                    "mean_items": decimal(items.mean) if items is not None else "",
                }
            )
    return rows


def histograms(summary: Summary) -> list[dict[str, Any]]:
    """A histogram per numeric field, over its schema's range, else the data's; both flag sets in one."""
    figures = []
    for name, by_variant in summary.numeric.items():
        found = histogram_of(by_variant, summary.outputs.fields[name])
        if found is None:
            continue
        counts = [f"{count(n.count)} rows ({variant})" for variant, n in by_variant.items()]
        rows = counts[0].removesuffix(f" ({summary.variants[0]})") if len(counts) == 1 else ", ".join(counts)
        if any(numbers.sampled for numbers in by_variant.values()):
            rows += f", binned from a uniform sample of {count(SAMPLE_SIZE)}"
        figure = {"field": name, "rows": rows, "svg": None, "constant": None}
        if found.constant is not None:
            figures.append({**figure, "constant": decimal(found.constant)})
            continue
        bins = len(next(iter(found.bins.values())))
        shown = (found.low + 0.5, found.high - 0.5) if found.per_value else (found.low, found.high)
        figures.append(
            {
                **figure,
                "low": decimal(shown[0]),
                "high": decimal(shown[1]),
                "source": RANGE_SOURCES[found.source],
                "bins": "one bin per value"
                if found.per_value
                else f"in bins of {decimal((found.high - found.low) / bins)}",
                "svg": Markup(histogram(found.bins, found.low, found.high, name, found.per_value)),
            }
        )
    # the charts first, two to a line; the fields with nothing to bin after them
    return sorted(figures, key=lambda figure: figure["svg"] is None)
