"""A two-case edge-case library of the example for tests with two versions (v1 TF-IDF, v2 MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

from onepipe_harness.processes import ROOT
from review_triage.pipeline import pipeline as example

MINILM = {"classifier": "minilm"}
MUST_PASS = "case-b8dfb86b0e47"  # plain praise: the TF-IDF champion gets it right, MiniLM does not
FIXED = "case-addb37d65ea9"  # "not bad" is praise: MiniLM gets it right, TF-IDF does not


def two_case_library(folder: Path, must_pass: bool = True) -> Path:
    """Two cases of the example's library: one the challenger breaks (marked must-pass or not), one it
    fixes."""
    lines = (ROOT / "cases" / f"{example.name}.jsonl").read_text().splitlines()
    chosen = [json.loads(line) for line in lines if f'"{MUST_PASS}"' in line or f'"{FIXED}"' in line]
    for case in chosen:
        case["must_pass"] = must_pass and case["id"] == MUST_PASS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{example.name}.jsonl").write_text("".join(json.dumps(case) + "\n" for case in chosen))
    return folder
