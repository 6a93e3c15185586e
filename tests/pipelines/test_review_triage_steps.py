"""Each step of the example pipeline on small inputs written here, with the real artifacts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from onepipe import LoadedPipeline, Recorder
from review_triage import pipeline as rt
from review_triage.pipeline import KnownSnippet, LabelScore, SnippetInput, TriageFlags

Loaded = LoadedPipeline[Any, Any, Any]

KNOWN = "The character of ZigZag is not sufficiently developed to support a film constructed around him."


@pytest.fixture(scope="module")
def res(example_pipeline: Loaded) -> dict[str, Any]:
    return example_pipeline.resources


def _debug(size: int) -> Recorder:
    return Recorder(size, enabled=True)


def test_normalised_text_folds_unicode_and_whitespace() -> None:
    inputs = [
        SnippetInput(text="  \uff26\uff55\uff4c\uff4c\u00a0width\n\ttext  "),
        SnippetInput(text="\ufb01ne"),
    ]
    assert rt.normalised_text(inputs) == ["Full width text", "fine"]


def test_duplicate_of_confirms_a_known_snippet_whatever_its_case_and_spacing(
    res: dict[str, Any],
) -> None:
    texts = [KNOWN.upper(), "Nobody has ever written this exact sentence about a film, surely."]
    recorder = _debug(2)
    found = rt.duplicate_of(
        rt.normalised_text([SnippetInput(text=t) for t in texts]),
        res["bloom"],
        res["snippet_store"],
        recorder,
    )
    assert found[0] is not None and found[0].label == "rotten" and found[0].movie == "zig_zag"
    assert found[1] is None
    assert recorder.details[0] == {
        "bloom": "maybe present",
        "confirmed": True,
        "bloom_false_positive": False,
    }
    assert recorder.details[1]["confirmed"] is False


def test_kind_tells_plot_summaries_from_reviews(res: dict[str, Any]) -> None:
    texts = [
        "A retired detective is pulled back into one last case when his former partner is found "
        "dead, and he follows the trail from the docks of Marseille to a villa in the hills.",
        "A dull, lifeless film with nothing to say.",
    ]
    decisions = rt.kind__tfidf(texts, res["tfidf_kind_model"], Recorder(0, enabled=False))
    assert [d.label for d in decisions] == ["plot", "review"]
    vectors = list(res["encoder"].encode(texts))
    assert [d.label for d in rt.kind__minilm(vectors, res["minilm_kind_model"], _debug(2))] == [
        "plot",
        "review",
    ]


def test_sentiment_gives_fresh_or_rotten_with_a_confidence(res: dict[str, Any]) -> None:
    texts = [
        "A funny, moving and beautifully acted delight.",
        "A boring, stupid and tedious waste of time.",
    ]
    recorder = _debug(2)
    decisions = rt.sentiment__tfidf(texts, res["tfidf_sentiment_model"], recorder)
    assert [d.label for d in decisions] == ["fresh", "rotten"]
    for d in decisions:
        assert 0.5 < d.confidence <= 1 and sum(d.scores.values()) == pytest.approx(1)
    assert {"delight", "beautifully", "moving"} & set(recorder.details[0]["top_terms"])
    assert {"boring", "tedious", "stupid", "waste"} & set(recorder.details[1]["top_terms"])
    vectors = list(res["encoder"].encode(texts))
    minilm = rt.sentiment__minilm(vectors, res["minilm_sentiment_model"], _debug(2))
    assert [d.label for d in minilm] == ["fresh", "rotten"]


def test_debug_detail_is_not_computed_when_off(res: dict[str, Any]) -> None:
    off = Recorder(0, enabled=False)
    rt.sentiment__tfidf(["A delight."], res["tfidf_sentiment_model"], off)
    assert off.details == []


def test_embeddings_are_unit_vectors(res: dict[str, Any]) -> None:
    recorder = _debug(2)
    vectors = rt.embeddings(["a great film", "a terrible film"], res["encoder"], recorder)
    assert [v.shape for v in vectors] == [(384,), (384,)]
    assert [float(np.linalg.norm(v)) for v in vectors] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert recorder.details[0]["encode_ms"] > 0


def test_similar_by_bm25_finds_the_snippet_sharing_the_words(res: dict[str, Any]) -> None:
    recorder = _debug(3)
    found = rt.similar__bm25(
        ["zigzag character sufficiently developed", "the and of", "zigzag"],
        res["bm25_index"],
        res["snippet_store"],
        TriageFlags(neighbours=2),
        recorder,
    )
    assert found[0][0].text == KNOWN and len(found[0]) == 2
    assert found[0][0].score is not None and found[0][0].score > found[0][1].score
    assert found[1] == []  # stop words only: nothing is similar
    assert recorder.details[1]["terms_in_index"] == []
    assert rt.similar__bm25(
        ["zigzag"], res["bm25_index"], res["snippet_store"], TriageFlags(neighbours=0), _debug(1)
    ) == [[]]


def test_similar_by_embedding_finds_the_same_text_first(res: dict[str, Any]) -> None:
    vectors = list(res["encoder"].encode([KNOWN]))
    found = rt.similar__embedding(
        vectors, res["snippet_vectors"], res["snippet_store"], TriageFlags(neighbours=4), _debug(1)
    )
    assert len(found[0]) == 4 and found[0][0].text == KNOWN
    assert found[0][0].score == pytest.approx(1.0, abs=1e-4)
    scores = [s.score for s in found[0]]
    assert scores == sorted(scores, reverse=True)


def _score(label: str, confidence: float) -> LabelScore:
    other = {"review": "plot", "plot": "review", "fresh": "rotten", "rotten": "fresh"}[label]
    return LabelScore(label=label, confidence=confidence, scores={label: confidence, other: 1 - confidence})


def test_triage_marks_low_confidence_and_contradicted_verdicts() -> None:
    known_fresh = KnownSnippet(id=7, label="fresh", movie="m", text="t")
    verdicts = rt.triage(
        kind=[
            _score("review", 0.95),
            _score("plot", 0.9),
            _score("review", 0.6),
            _score("review", 0.99),
        ],
        sentiment=[
            _score("fresh", 0.8),
            _score("rotten", 0.99),
            _score("fresh", 0.9),
            _score("rotten", 0.9),
        ],
        duplicate_of=[None, None, None, known_fresh],
        similar=[[], [], [], []],
        flags=TriageFlags(review_below=0.7),
    )
    assert [(v.label, v.confidence, v.needs_review) for v in verdicts] == [
        ("fresh", 0.8, False),
        ("plot", 0.9, False),
        ("fresh", 0.6, True),
        ("rotten", 0.9, True),
    ]
    assert verdicts[1].sentiment is None and verdicts[1].sentiment_confidence is None
    assert verdicts[2].review_reasons == ["confidence 0.60 is below 0.70"]
    assert verdicts[3].review_reasons == ["repeats known snippet 7, labelled fresh"]
