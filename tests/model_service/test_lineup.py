"""The lineup's plain functions: which versions a process keeps loaded, and what a swap lets go."""

from __future__ import annotations

from typing import Any, cast

from model_service.lineup import Lineup, Served, chosen, next_lineup
from onepipe.platform.versions.types import CHALLENGER, CHAMPION, VersionInfo


def _served(number: int) -> Served:
    """A version as the lineup sees it: its loaded pipeline and batcher are not looked at here."""
    info = VersionInfo(number=number, version=f"hash{number}")
    return Served(info, cast(Any, None), cast(Any, None), base=f"base{number}")


def test_a_swap_keeps_the_aliased_versions_and_the_most_recently_used_up_to_the_limit() -> None:
    v1, v2, v3, v4 = (_served(n) for n in (1, 2, 3, 4))
    first, dropped = next_lineup(None, {CHAMPION: v1, CHALLENGER: v2})
    assert (list(first.by_hash), first.aliases, dropped) == (
        ["hash1", "hash2"],
        {CHAMPION: "hash1", CHALLENGER: "hash2"},
        [],
    )
    with_v3, dropped = next_lineup(first, {CHAMPION: v1, CHALLENGER: v2}, extra=[v3])
    assert (list(with_v3.by_hash), dropped) == (["hash3", "hash1", "hash2"], [])  # the aliased last
    # a fourth on demand: the least recently used version no alias names goes
    with_v4, dropped = next_lineup(with_v3, {CHAMPION: v1, CHALLENGER: v2}, extra=[v4])
    assert (sorted(with_v4.by_hash), dropped) == (["hash1", "hash2", "hash4"], [v3])
    # a promotion: v2 champion, v1 kept as the most recent other version
    promoted, dropped = next_lineup(with_v4, {CHAMPION: v2})
    assert promoted.champion is v2 and "hash1" in promoted.by_hash and dropped == []


def test_choosing_a_version_moves_it_last_and_the_last_one_is_not_copied() -> None:
    v1, v2, v3 = (_served(n) for n in (1, 2, 3))
    lineup = Lineup({"hash1": v1, "hash2": v2, "hash3": v3}, {CHAMPION: "hash1"})
    assert chosen(lineup, v3) is lineup  # a job's every chunk on one version: the same lineup
    moved = chosen(lineup, v1)
    assert list(moved.by_hash) == ["hash2", "hash3", "hash1"] and moved.aliases == lineup.aliases
    assert list(lineup.by_hash) == ["hash1", "hash2", "hash3"]  # never changed in place
