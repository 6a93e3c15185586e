"""What the command line prints about versions, as rich tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from onepipe.platform.versions.types import VersionInfo

SHOWN_METRICS = 4  # the accuracy-like ones first: a table, not the whole model card


def headline_metrics(metrics: dict[str, float], limit: int = SHOWN_METRICS) -> dict[str, float]:
    """The few metrics worth a column: accuracies first, then the others, in name order."""
    names = sorted(metrics, key=lambda n: (not n.endswith("accuracy"), n))
    # a metrics file's nesting shows as a shared first part ("metrics."): the table shows the rest
    return {name.removeprefix("metrics."): metrics[name] for name in names[:limit]}


def versions_table(pipeline: str, versions: Sequence[VersionInfo]) -> Table:
    """Each registered version: number, hash, aliases, flag defaults, headline metrics, when trained."""
    table = Table(title=f"{pipeline}: registered versions", title_justify="left")
    for column in ("version", "hash", "aliases", "flag defaults"):
        table.add_column(column, no_wrap=True)
    table.add_column("held-out", overflow="fold", min_width=30)
    table.add_column("trained", no_wrap=True)
    for version in versions:
        table.add_row(
            f"v{version.number}",
            version.version,
            ", ".join(version.aliases) or "-",
            ", ".join(f"{k}={v}" for k, v in version.flag_defaults.items()) or "-",
            "\n".join(f"{k} {v:.4f}" for k, v in headline_metrics(version.metrics).items()) or "-",
            f"{version.created_at:%Y-%m-%d %H:%M}" if version.created_at else "-",
        )
    if not versions:
        table.caption = "no version registered yet: just train"
    return table
