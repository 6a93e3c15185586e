"""Load the trained artifacts once, when the serving process starts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bm25s
import joblib
import numpy as np
import rbloom
from numpy.typing import NDArray

from review_triage.data import duplicate_key, normalise, stable_hash
from review_triage.embedding import MiniLMEncoder
from review_triage.training import BLOOM, BM25_DIR, MODELS, SNIPPETS, VECTORS


@dataclass
class SnippetStore:
    """The corpus's snippets (all searched for similar ones), and an exact lookup by duplicate key of
    those the classifiers learned from, to confirm bloom hits."""

    ids: list[int]
    texts: list[str]
    labels: list[str]
    movies: list[str]
    by_key: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> SnippetStore:
        """Read snippets.jsonl."""
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        store = cls(
            ids=[r["id"] for r in rows],
            texts=[r["text"] for r in rows],
            labels=[r["label"] for r in rows],
            movies=[r["movie"] for r in rows],
        )
        for row, (text, record) in enumerate(zip(store.texts, rows, strict=True)):
            if record["trained_on"]:
                store.by_key.setdefault(duplicate_key(normalise(text)), row)
        return store


def load_resources(artifacts: Path, threads: int) -> dict[str, Any]:
    """Every resource the steps name, loaded from the artifacts folder; MiniLM runs on `threads` threads."""
    vectors: NDArray[np.float32] = np.load(artifacts / VECTORS)
    return {
        "encoder": MiniLMEncoder(threads),
        "bloom": rbloom.Bloom.load(str(artifacts / BLOOM), stable_hash),
        "snippet_store": SnippetStore.read(artifacts / SNIPPETS),
        "bm25_index": bm25s.BM25.load(str(artifacts / BM25_DIR), show_progress=False),
        "snippet_vectors": vectors,
        **{
            f"{variant}_{task}_model": joblib.load(artifacts / name)
            for (variant, task), name in MODELS.items()
        },
    }
