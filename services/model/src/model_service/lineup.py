"""The versions a model service process holds loaded, and which one each alias names.

A lineup is never changed in place: a new one is built beside it (new versions loaded first, off the
event loop) and swapped in with one assignment, so a request sees the old lineup or the new one,
never half of each, and no request waits for a load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from model_service.batching import MicroBatcher
from onepipe import LoadedPipeline
from onepipe.platform.versions.types import CHAMPION, VersionInfo


@dataclass(frozen=True)
class Served:
    """One version ready to answer: what the registry says of it, its pipeline, its batcher."""

    info: VersionInfo
    loaded: LoadedPipeline[Any, Any, Any]
    batcher: MicroBatcher
    base: str  # the code and artifacts' hash: versions that share it share their loaded resources

    @property
    def version(self) -> str:
        """The hash it answers with."""
        return self.info.version


@dataclass(frozen=True)
class Lineup:
    """Versions by hash, and the hash each alias names; the order is least recently chosen first."""

    by_hash: dict[str, Served]
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def champion(self) -> Served:
        """What callers get when they name no version."""
        return self.by_hash[self.aliases[CHAMPION]]

    def pick(self, ref: str | None) -> Served | None:
        """The loaded version an alias, a number (v3 or 3) or a hash names; None when none is loaded."""
        if ref is None:
            return self.champion
        if ref in self.aliases:
            return self.by_hash[self.aliases[ref]]
        if ref in self.by_hash:
            return self.by_hash[ref]
        number = ref[1:] if ref[:1] in "vV" else ref
        return next((s for s in self.by_hash.values() if str(s.info.number) == number), None)

    def numbers(self) -> dict[str, int | None]:
        """Alias -> version number, to compare with the registry's."""
        return {alias: self.by_hash[h].info.number for alias, h in self.aliases.items()}

    def infos(self) -> list[VersionInfo]:
        """Each loaded version as the API shows it."""
        return [
            replace_info(s.info, aliases=[a for a, h in self.aliases.items() if h == s.version], loaded=True)
            for s in self.by_hash.values()
        ]


def replace_info(info: VersionInfo, **changes: Any) -> VersionInfo:
    """A copy of `info` with some fields changed."""
    return info.model_copy(update=changes)


def next_lineup(
    current: Lineup | None,
    aliased: Mapping[str, Served],
    extra: Iterable[Served] = (),
    keep: int = 3,
) -> tuple[Lineup, list[Served]]:
    """The lineup after a change: the aliased versions, the others most recently used up to `keep`.

    Returns it with the versions it lets go (their batchers are closed once in-flight requests end).
    """
    by_hash: dict[str, Served] = {}
    for served in [*(current.by_hash.values() if current else []), *extra]:
        by_hash.pop(served.version, None)
        by_hash[served.version] = served  # the most recent last
    for served in aliased.values():
        by_hash[served.version] = by_hash.pop(served.version, served)
    aliases = {alias: served.version for alias, served in aliased.items()}
    named = set(aliases.values())
    others = [h for h in by_hash if h not in named]
    dropped = [by_hash.pop(h) for h in others[: max(0, len(by_hash) - max(keep, len(named)))]]
    return Lineup(by_hash, aliases), dropped


def chosen(lineup: Lineup, served: Served) -> Lineup:
    """The same lineup with `served` moved to most recently used (so a pinned job's version stays)."""
    if next(reversed(lineup.by_hash)) == served.version:
        return lineup  # the usual case, a job's every chunk on one version: nothing to copy
    by_hash = dict(lineup.by_hash)
    by_hash[served.version] = by_hash.pop(served.version)
    return replace(lineup, by_hash=by_hash)
