"""The example's MiniLM encoder: length buckets, and batched vectors equal to one-at-a-time ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from review_triage import pipeline as rt
from review_triage.embedding import MAX_TOKENS, MiniLMEncoder, length_buckets


def test_similar_lengths_share_a_bucket_and_outliers_get_their_own() -> None:
    lengths = [128, 12, 15, 60, 13, 14, 127]
    assert length_buckets(lengths) == [[1, 4, 5, 2], [3], [6, 0]]


def test_a_bucket_holds_max_items_at_most() -> None:
    assert length_buckets([5] * 5, max_items=2) == [[0, 1], [2, 3], [4]]


def test_no_padding_allowed_groups_equal_lengths_only() -> None:
    assert length_buckets([3, 4, 3, 4], max_padding=0) == [[0, 2], [1, 3]]


def test_an_empty_batch_has_no_buckets() -> None:
    assert length_buckets([]) == []


@pytest.mark.parametrize(
    ("options", "name"), [({"max_padding": 1.0}, "max_padding"), ({"max_items": 0}, "max_items")]
)
def test_bad_bounds_are_refused(options: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        length_buckets([1, 2], **options)  # type: ignore[arg-type]


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=200), max_size=80),
    max_padding=st.floats(min_value=0, max_value=0.9),
    max_items=st.integers(min_value=1, max_value=20),
)
def test_every_position_once_shortest_first_within_bounds(
    lengths: list[int], max_padding: float, max_items: int
) -> None:
    buckets = length_buckets(lengths, max_padding=max_padding, max_items=max_items)
    assert sorted(p for bucket in buckets for p in bucket) == list(range(len(lengths)))
    flat = [lengths[p] for bucket in buckets for p in bucket]
    assert flat == sorted(flat)
    for bucket in buckets:
        sizes = [lengths[p] for p in bucket]
        assert 1 <= len(bucket) <= max_items
        # padding to the longest wastes at most max_padding of the padded size
        assert sum(sizes) >= (1 - max_padding) * max(sizes) * len(sizes) - 1e-9


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.fixture(scope="module")
def varied_texts() -> list[str]:
    """The named examples and held-out corpus snippets of every length, the longest cut at MAX_TOKENS."""
    held = [item for item, _ in rt.held_out()]
    inputs = list(rt.pipeline.examples.values()) + held[::60] + [max(held, key=lambda item: len(item.text))]
    return rt.normalised_text(inputs)


def test_a_batch_encodes_as_each_text_alone(encoder: MiniLMEncoder, varied_texts: list[str]) -> None:
    lengths = [len(e.ids) for e in encoder.tokenizer.encode_batch(varied_texts)]
    buckets = length_buckets(lengths)
    # the batch really is grouped: several buckets, some of several texts, lengths from short to cut
    assert len(buckets) > 2 and max(len(b) for b in buckets) > 8
    assert min(lengths) < 20 and max(lengths) == MAX_TOKENS
    batched = encoder.encode(varied_texts)
    alone = np.concatenate([encoder.encode([text]) for text in varied_texts])
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-6)
    # in another order, each text still gets its own vector
    order = np.random.default_rng(0).permutation(len(varied_texts))
    shuffled = encoder.encode([varied_texts[i] for i in order])
    np.testing.assert_allclose(shuffled, batched[order], rtol=0, atol=1e-6)
    assert np.linalg.norm(batched, axis=1) == pytest.approx(np.ones(len(varied_texts)), abs=1e-5)
