"""What the command line prints about versions, as rich tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from onepipe.platform.versions.types import VersionInfo, headline_metrics


def _headline(metrics: dict[str, float]) -> str:
    """The few metrics worth a column, one a line; a metrics file's nesting ("metrics.") left out."""
    return "\n".join(f"{n.removeprefix('metrics.')} {metrics[n]:.4f}" for n in headline_metrics(metrics))


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
            _headline(version.metrics) or "-",
            f"{version.created_at:%Y-%m-%d %H:%M}" if version.created_at else "-",
        )
    if not versions:
        table.caption = "no version registered yet: just train"
    return table
