"""The example pipeline: triage a movie snippet as a plot summary, a fresh or a rotten review.

This module is the one to edit to swap in your own pipeline: the input, output and
flags models, the steps, and the `pipeline` object at the bottom. Every face (the
model service, the gateway, the UI, the batch worker) reads them from here.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import bm25s
import numpy as np
import rbloom
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from onepipe import Pipeline, Recorder, when
from review_triage.data import duplicate_key, load_snippets, normalise
from review_triage.embedding import MiniLMEncoder
from review_triage.resources import SnippetStore, load_resources
from review_triage.training import BM25_STOPWORDS, build_artifacts, split

MAX_TEXT_CHARS = 5000
# what the schema says of a text that is not blank: a character str.strip() keeps (any regex engine)
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
TOP_TERMS = 5

# -- the models every face reads -----------------------------------------------------


class SnippetInput(BaseModel):
    """A snippet of text about a movie."""

    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description="A review snippet or a plot summary, in English.",
        json_schema_extra={"pattern": NOT_BLANK},  # the check is _not_blank's, with its message
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank (only whitespace)")
        return text


class KnownSnippet(BaseModel):
    """A snippet of the known corpus, with its label."""

    id: int
    label: Literal["fresh", "rotten", "plot"]
    movie: str
    text: str
    score: float | None = Field(None, description="Similarity to the input (higher is closer).")


class Triage(BaseModel):
    """The pipeline's verdict on one snippet."""

    # x-role tells the faces (reports, UI) which field is the verdict, its confidence, the review mark,
    # why, and whether the input is already known (a training snippet: scores on it say little)
    label: Literal["fresh", "rotten", "plot"] = Field(
        description="Plot summary, fresh or rotten review.", json_schema_extra={"x-role": "label"}
    )
    # x-tolerance: how far a probability may move before a comparison counts it changed
    confidence: float = Field(
        description="Confidence in the label: the weaker of the two decisions.",
        json_schema_extra={"x-role": "confidence", "x-tolerance": 0.05},
    )
    kind: Literal["review", "plot"] = Field(description="Model 1: review or plot summary.")
    kind_confidence: float = Field(json_schema_extra={"x-tolerance": 0.05})
    sentiment: Literal["fresh", "rotten"] | None = Field(
        description="Model 2: fresh or rotten (none for a plot summary)."
    )
    sentiment_confidence: float | None = Field(json_schema_extra={"x-tolerance": 0.05})
    needs_review: bool = Field(
        description="True when a person should check this verdict.", json_schema_extra={"x-role": "review"}
    )
    review_reasons: list[str] = Field(
        description="Why it needs review (empty when it does not).", json_schema_extra={"x-role": "reasons"}
    )
    duplicate_of: KnownSnippet | None = Field(
        description="The training snippet this text repeats, if any: known to the classifiers.",
        json_schema_extra={"x-role": "known"},
    )
    similar: list[KnownSnippet] = Field(description="The most similar known snippets.")


class TriageFlags(BaseModel):
    """Variants of the pipeline, picked per request."""

    model_config = ConfigDict(extra="forbid")

    classifier: Literal["tfidf", "minilm"] = Field(
        "tfidf",
        description="Classifiers for both decisions: TF-IDF + logistic regression, "
        "or MiniLM int8 embeddings + logistic regression.",
    )
    retriever: Literal["bm25", "embedding"] = Field(
        "bm25",
        description="How similar snippets are found: BM25 over words, or MiniLM cosine similarity.",
    )
    check_duplicates: bool = Field(
        True,
        description="Check the text against the snippets the classifiers learned from (bloom filter, "
        "then confirmed).",
    )
    neighbours: int = Field(3, ge=0, le=20, description="How many similar known snippets to return.")
    review_below: float = Field(
        0.7, ge=0.5, le=1.0, description="Mark for review when the confidence is below this."
    )


class LabelScore(BaseModel):
    """A classifier's decision: the label, its probability, and every class's probability."""

    label: str
    confidence: float
    scores: dict[str, float]


# -- steps -------------------------------------------------------------------------


def normalised_text(inputs: list[SnippetInput]) -> list[str]:
    """The text in Unicode NFKC form with runs of whitespace collapsed."""
    return [normalise(item.text) for item in inputs]


def embeddings(
    normalised_text: list[str], encoder: MiniLMEncoder, recorder: Recorder
) -> list[NDArray[np.float32]]:
    """MiniLM-L6 sentence vectors, computed only when a variant needs them."""
    with recorder.timed("encode"):
        vectors = encoder.encode(normalised_text)
    return list(vectors)


@when(check_duplicates=True)
def duplicate_of(
    normalised_text: list[str], bloom: rbloom.Bloom, snippet_store: SnippetStore, recorder: Recorder
) -> list[KnownSnippet | None]:
    """The training snippet this text repeats exactly, if any: bloom filter, then confirmed."""
    found: list[KnownSnippet | None] = []
    for index, text in enumerate(normalised_text):
        key = duplicate_key(text)
        maybe = key in bloom
        row = snippet_store.by_key.get(key) if maybe else None
        found.append(None if row is None else _known(snippet_store, row))
        recorder.add(
            index,
            bloom="maybe present" if maybe else "absent",
            confirmed=row is not None,
            bloom_false_positive=maybe and row is None,
        )
    return found


@when(classifier="tfidf")
def kind__tfidf(normalised_text: list[str], tfidf_kind_model: Any, recorder: Recorder) -> list[LabelScore]:
    """Review or plot summary (model 1), by TF-IDF + logistic regression."""
    return _tfidf_decisions(tfidf_kind_model, normalised_text, recorder)


@when(classifier="minilm")
def kind__minilm(
    embeddings: list[NDArray[np.float32]], minilm_kind_model: Any, recorder: Recorder
) -> list[LabelScore]:
    """Review or plot summary (model 1), by MiniLM embeddings + logistic regression."""
    return _vector_decisions(minilm_kind_model, embeddings)


@when(classifier="tfidf")
def sentiment__tfidf(
    normalised_text: list[str], tfidf_sentiment_model: Any, recorder: Recorder
) -> list[LabelScore]:
    """Fresh or rotten with a confidence (model 2), by TF-IDF + logistic regression."""
    return _tfidf_decisions(tfidf_sentiment_model, normalised_text, recorder)


@when(classifier="minilm")
def sentiment__minilm(
    embeddings: list[NDArray[np.float32]], minilm_sentiment_model: Any, recorder: Recorder
) -> list[LabelScore]:
    """Fresh or rotten with a confidence (model 2), by MiniLM embeddings + logistic regression."""
    return _vector_decisions(minilm_sentiment_model, embeddings)


@when(retriever="bm25")
def similar__bm25(
    normalised_text: list[str],
    bm25_index: bm25s.BM25,
    snippet_store: SnippetStore,
    flags: TriageFlags,
    recorder: Recorder,
) -> list[list[KnownSnippet]]:
    """The most similar known snippets by BM25 over their words, with their labels."""
    tokens = bm25s.tokenize(normalised_text, stopwords=BM25_STOPWORDS, return_ids=False, show_progress=False)
    found = []
    for index, query in enumerate(tokens):
        known = [t for t in query if t in bm25_index.vocab_dict]
        scores = bm25_index.get_scores(known) if known else np.zeros(len(snippet_store.ids))
        found.append(_top(snippet_store, scores, flags.neighbours))
        recorder.add(index, query_terms=query, terms_in_index=known)
    return found


@when(retriever="embedding")
def similar__embedding(
    embeddings: list[NDArray[np.float32]],
    snippet_vectors: NDArray[np.float32],
    snippet_store: SnippetStore,
    flags: TriageFlags,
    recorder: Recorder,
) -> list[list[KnownSnippet]]:
    """The most similar known snippets by cosine similarity of MiniLM vectors."""
    recorder.add_all(vectors_searched=len(snippet_vectors))
    # one query at a time: a matrix-vector product never depends on the batch
    return [_top(snippet_store, snippet_vectors @ vector, flags.neighbours) for vector in embeddings]


def triage(
    kind: list[LabelScore],
    sentiment: list[LabelScore],
    duplicate_of: list[KnownSnippet | None],
    similar: list[list[KnownSnippet]],
    flags: TriageFlags,
) -> list[Triage]:
    """The verdict: plot, fresh or rotten, marked for review when unsure or contradicted."""
    verdicts = []
    for kind_, sentiment_, duplicate, neighbours in zip(kind, sentiment, duplicate_of, similar, strict=True):
        is_plot = kind_.label == "plot"
        label = "plot" if is_plot else sentiment_.label
        confidence = kind_.confidence if is_plot else min(kind_.confidence, sentiment_.confidence)
        reasons = []
        if confidence < flags.review_below:
            reasons.append(f"confidence {confidence:.2f} is below {flags.review_below:.2f}")
        if duplicate is not None and duplicate.label != label:
            reasons.append(f"repeats known snippet {duplicate.id}, labelled {duplicate.label}")
        verdicts.append(
            Triage(
                label=label,
                confidence=confidence,
                kind=kind_.label,
                kind_confidence=kind_.confidence,
                sentiment=None if is_plot else sentiment_.label,
                sentiment_confidence=None if is_plot else sentiment_.confidence,
                needs_review=bool(reasons),
                review_reasons=reasons,
                duplicate_of=duplicate,
                similar=neighbours,
            )
        )
    return verdicts


# -- helpers the steps share ---------------------------------------------------------------


def _known(store: SnippetStore, row: int, score: float | None = None) -> KnownSnippet:
    return KnownSnippet(
        id=store.ids[row],
        label=store.labels[row],
        movie=store.movies[row],
        text=store.texts[row],
        score=score,
    )


def _top(store: SnippetStore, scores: NDArray[Any], k: int) -> list[KnownSnippet]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [_known(store, int(row), round(float(scores[row]), 6)) for row in order if scores[row] > 0]


def _decisions(classes: list[str], probabilities: NDArray[np.float64]) -> list[LabelScore]:
    decisions = []
    for row in probabilities:
        best = int(np.argmax(row))
        decisions.append(
            LabelScore(
                label=classes[best],
                confidence=float(row[best]),
                scores={c: float(p) for c, p in zip(classes, row, strict=True)},
            )
        )
    return decisions


def _vector_decisions(model: Any, vectors: list[NDArray[np.float32]]) -> list[LabelScore]:
    # a per-row dot product (not a batched matrix product) keeps each row's
    # probability independent of the batch it came in
    coef = model.coef_[0].astype(np.float64)
    logits = np.array([float(np.dot(v.astype(np.float64), coef)) for v in vectors]) + model.intercept_[0]
    positive = 1.0 / (1.0 + np.exp(-logits))
    return _decisions(list(model.classes_), np.column_stack([1.0 - positive, positive]))


def _tfidf_decisions(model: Any, texts: list[str], recorder: Recorder) -> list[LabelScore]:
    vectorizer, regression = model[0], model[-1]
    features = vectorizer.transform(texts)
    decisions = _decisions(list(regression.classes_), regression.predict_proba(features))
    if recorder.enabled:
        names = _feature_names(vectorizer)
        coef = regression.coef_[0]
        for index, decision in enumerate(decisions):
            row = features.getrow(index)
            # contribution of each present term towards the chosen class
            sign = 1.0 if decision.label == regression.classes_[1] else -1.0
            contributions = sorted(
                zip(row.indices, row.data * coef[row.indices] * sign, strict=True),
                key=lambda item: -item[1],
            )
            recorder.add(
                index,
                top_terms={str(names[i]): round(float(c), 4) for i, c in contributions[:TOP_TERMS] if c > 0},
            )
    return decisions


@functools.cache
def _feature_names(vectorizer: Any) -> NDArray[Any]:
    return vectorizer.get_feature_names_out()  # type: ignore[no-any-return]


# -- the held-out set ---------------------------------------------------------------------


def held_out() -> list[tuple[SnippetInput, dict[str, str]]]:
    """The held-out snippets (training's split) with their expected label; blank ones are no input."""
    # defined here, not in training.py: editing the steps module never makes the artifacts stale
    snippets = load_snippets()
    _, rows = split([s.label for s in snippets])
    return [
        (SnippetInput(text=snippets[row].text), {"label": snippets[row].label})
        for row in sorted(rows)
        if snippets[row].text.strip()
    ]


# -- the pipeline ------------------------------------------------------------------------

pipeline = Pipeline(
    name="review-triage",
    input_model=SnippetInput,
    output_model=Triage,
    flags_model=TriageFlags,
    steps=[
        normalised_text,
        embeddings,
        duplicate_of,
        kind__tfidf,
        kind__minilm,
        sentiment__tfidf,
        sentiment__minilm,
        similar__bm25,
        similar__embedding,
        triage,
    ],
    resources=[
        "encoder",
        "bloom",
        "snippet_store",
        "bm25_index",
        "snippet_vectors",
        "tfidf_kind_model",
        "tfidf_sentiment_model",
        "minilm_kind_model",
        "minilm_sentiment_model",
    ],
    load_resources=load_resources,
    build_artifacts=build_artifacts,
    held_out=held_out,
    examples={
        "fresh review": SnippetInput(
            text="A wonderfully acted, sharply written comedy that earns every one of its laughs."
        ),
        "rotten review": SnippetInput(
            text="A tedious, muddled mess that squanders a talented cast on a script with no jokes."
        ),
        "plot summary": SnippetInput(
            text="After her father disappears at sea, a young woman travels to a remote island "
            "where she uncovers a family secret and must decide whether to stay."
        ),
        "known snippet": SnippetInput(
            text="The character of ZigZag is not sufficiently developed to support a film "
            "constructed around him."
        ),
    },
)
