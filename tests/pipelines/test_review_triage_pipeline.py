"""The whole example pipeline: named examples, variants, batches, debug, bad input, the model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from onepipe import ArtifactsError, LoadedPipeline, PipelineInputError
from review_triage.data import load_snippets
from review_triage.pipeline import MAX_TEXT_CHARS
from review_triage.pipeline import pipeline as example
from review_triage.training import split
from tests.conftest import EXAMPLE_ARTIFACTS

Loaded = LoadedPipeline[Any, Any, Any]

STEPS = ["normalised_text", "embeddings", "duplicate_of", "kind", "sentiment", "similar", "triage"]
VARIANTS = [
    {},
    {"classifier": "minilm"},
    {"retriever": "embedding"},
    {"classifier": "minilm", "retriever": "embedding"},
    {"check_duplicates": False},
    {"neighbours": 0},
]


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    """A dozen real snippets of every label, plus the named examples."""
    snippets = load_snippets()
    picked = [s.text for s in snippets[::1200]]
    return picked + [ex.text for ex in example.examples.values()]


def test_named_examples_get_the_expected_verdicts(example_pipeline: Loaded) -> None:
    outputs = example_pipeline.run(list(example.examples.values())).outputs
    verdicts = dict(zip(example.examples, outputs, strict=True))
    assert verdicts["fresh review"].label == "fresh"
    assert verdicts["rotten review"].label == "rotten"
    assert verdicts["plot summary"].label == "plot" and verdicts["plot summary"].sentiment is None
    known = verdicts["known snippet"]
    assert known.duplicate_of is not None and known.duplicate_of.movie == "zig_zag"
    assert known.similar[0].id == known.duplicate_of.id
    assert all(len(v.similar) == 3 for v in outputs)


def test_known_means_learned_from_a_held_out_snippet_is_unseen(example_pipeline: Loaded) -> None:
    rows = [json.loads(line) for line in (EXAMPLE_ARTIFACTS / "snippets.jsonl").read_text().splitlines()]
    trained = {r["text"] for r in rows if r["trained_on"]}
    # a held-out snippet whose text no training snippet repeats (the corpus has a few repeats)
    held_out = next(r for r in rows if not r["trained_on"] and r["text"].strip() and r["text"] not in trained)
    learned = next(r for r in rows if r["trained_on"] and r["text"].strip())
    assert sum(1 for r in rows if not r["trained_on"]) == 3477  # the model card's 25% held out
    unseen, known = example_pipeline.run([{"text": held_out["text"]}, {"text": learned["text"]}]).outputs
    assert unseen.duplicate_of is None
    assert known.duplicate_of is not None and known.duplicate_of.id == learned["id"]
    # the similar-snippet search still covers the whole corpus, held-out rows included
    assert unseen.similar[0].id == held_out["id"]


def test_the_held_out_split_is_written_for_a_reviewer(tmp_path: Path) -> None:
    import csv
    import subprocess

    from onepipe_harness.processes import ROOT

    target = tmp_path / "held-out.csv"
    done = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "python", "-m", "review_triage", "held-out", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"3477 held-out snippets written to {target}"
    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    snippets = load_snippets()
    _, held_out = split([s.label for s in snippets])
    assert [(r["text"], r["label"]) for r in rows] == [
        (snippets[i].text, snippets[i].label) for i in sorted(held_out)
    ]
    # the same rows the artifacts mark as not learned from
    stored = [json.loads(line) for line in (EXAMPLE_ARTIFACTS / "snippets.jsonl").read_text().splitlines()]
    assert {r["id"] for r in stored if not r["trained_on"]} == set(held_out.tolist())


@pytest.mark.parametrize(
    "flags", VARIANTS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "default"
)
def test_batch_of_n_equals_n_batches_of_one(
    example_pipeline: Loaded, sample_texts: list[str], flags: dict[str, Any]
) -> None:
    inputs = [{"text": t} for t in sample_texts]
    batched = example_pipeline.run(inputs, flags).outputs
    assert batched == [example_pipeline.run([item], flags).outputs[0] for item in inputs]


@pytest.mark.parametrize("flags", VARIANTS[:4], ids=["default", "minilm", "embedding", "both"])
def test_debug_on_and_off_give_the_same_outputs(
    example_pipeline: Loaded, sample_texts: list[str], flags: dict[str, Any]
) -> None:
    inputs = [{"text": t} for t in sample_texts[:5]]
    plain = example_pipeline.run(inputs, flags)
    debugged = example_pipeline.run(inputs, flags, debug=True)
    assert debugged.outputs == plain.outputs and plain.traces is None
    assert debugged.traces is not None
    for trace in debugged.traces:
        assert [s.name for s in trace.steps] == STEPS
        for step in trace.steps:
            if step.status == "ran":
                assert step.time_ms > 0
                # duplicate_of's output is None for a text no training snippet repeats
                assert step.output is not None or step.name == "duplicate_of"


def test_the_debug_trace_carries_each_steps_detail(example_pipeline: Loaded) -> None:
    trace = example_pipeline.run([example.examples["known snippet"]], debug=True).traces[0]  # type: ignore[index]
    assert trace.step("duplicate_of").debug["confirmed"] is True
    assert trace.step("kind").variant == "tfidf" and trace.step("kind").debug["top_terms"]
    assert trace.step("sentiment").output["label"] == "rotten"
    assert "zigzag" in trace.step("similar").debug["query_terms"]
    assert trace.step("embeddings").status == "not_needed"
    assert trace.step("triage").output["label"] == "rotten"


def test_the_classifier_flag_swaps_both_models(example_pipeline: Loaded, sample_texts: list[str]) -> None:
    inputs = [{"text": t} for t in sample_texts]
    tfidf = example_pipeline.run(inputs, {"classifier": "tfidf"}, debug=True)
    minilm = example_pipeline.run(inputs, {"classifier": "minilm"}, debug=True)
    assert minilm.traces[0].step("kind").variant == "minilm"  # type: ignore[index]
    assert minilm.traces[0].step("embeddings").status == "ran"  # type: ignore[index]
    # different models give different confidences on the same texts
    assert [o.sentiment_confidence for o in tfidf.outputs] != [o.sentiment_confidence for o in minilm.outputs]
    assert [o.similar for o in tfidf.outputs] == [o.similar for o in minilm.outputs]


def test_the_retriever_flag_swaps_the_search_index(example_pipeline: Loaded, sample_texts: list[str]) -> None:
    inputs = [{"text": t} for t in sample_texts]
    bm25 = example_pipeline.run(inputs, {"retriever": "bm25"}).outputs
    dense = example_pipeline.run(inputs, {"retriever": "embedding"}).outputs
    assert [o.similar for o in bm25] != [o.similar for o in dense]
    assert all(0 < s.score <= 1.0001 for o in dense for s in o.similar)
    assert any(s.score > 1.5 for o in bm25 for s in o.similar)  # BM25 scores are not cosines
    assert [o.label for o in bm25] == [o.label for o in dense]


def test_duplicate_check_can_be_switched_off(example_pipeline: Loaded) -> None:
    known = example.examples["known snippet"]
    result = example_pipeline.run([known], {"check_duplicates": False}, debug=True)
    assert result.outputs[0].duplicate_of is None
    assert result.traces[0].step("duplicate_of").status == "off"  # type: ignore[index]


def test_neighbours_and_review_threshold_flags(example_pipeline: Loaded) -> None:
    inputs = list(example.examples.values())
    assert [len(o.similar) for o in example_pipeline.run(inputs, {"neighbours": 7}).outputs] == [7] * 4
    assert all(o.needs_review for o in example_pipeline.run(inputs, {"review_below": 1.0}).outputs)


@pytest.mark.parametrize(
    ("item", "loc", "words"),
    [
        ({"text": ""}, "inputs[0].text", "at least 1 character"),
        ({"text": "   \n "}, "inputs[0].text", "blank"),
        (
            {"text": "x" * (MAX_TEXT_CHARS + 1)},
            "inputs[0].text",
            f"at most {MAX_TEXT_CHARS} characters",
        ),
        ({"text": 42}, "inputs[0].text", "valid string"),
        ({"review": "no text field"}, "inputs[0].text", "Field required"),
    ],
)
def test_bad_input_names_the_problem(example_pipeline: Loaded, item: Any, loc: str, words: str) -> None:
    with pytest.raises(PipelineInputError) as caught:
        example_pipeline.run([item])
    assert caught.value.problems[0].loc == loc and words in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("flags", "loc", "words"),
    [
        ({"clasifier": "minilm"}, "flags.clasifier", "unknown flag"),
        ({"classifier": "bert"}, "flags.classifier", "'tfidf' or 'minilm'"),
        ({"neighbours": "many"}, "flags.neighbours", "valid integer"),
        ({"neighbours": 50}, "flags.neighbours", "less than or equal to 20"),
        ({"review_below": 0.2}, "flags.review_below", "greater than or equal to 0.5"),
    ],
)
def test_bad_flags_name_the_flag(
    example_pipeline: Loaded, flags: dict[str, Any], loc: str, words: str
) -> None:
    with pytest.raises(PipelineInputError) as caught:
        example_pipeline.run([{"text": "fine"}], flags)
    assert caught.value.problems[0].loc == loc and words in caught.value.problems[0].message


def test_model_card_reports_held_out_scores(example_pipeline: Loaded) -> None:
    facts = json.loads((EXAMPLE_ARTIFACTS / "metrics.json").read_text())
    assert facts["metrics"]["tfidf/sentiment"]["accuracy"] >= 0.75
    assert facts["metrics"]["minilm/sentiment"]["accuracy"] >= 0.7
    assert facts["snippets"] == 13905 and facts["held_out_rows"] == 3477
    card = (EXAMPLE_ARTIFACTS / "MODEL_CARD.md").read_text()
    for needle in ("| tfidf | sentiment |", "| minilm | kind |", "snippet_vectors.npy", "seed 13"):
        assert needle in card


def test_serving_refuses_stale_artifacts(example_pipeline: Loaded, tmp_path: Path) -> None:
    copy = tmp_path / "review-triage"
    shutil.copytree(EXAMPLE_ARTIFACTS, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(manifest | {"trainer": "old"}))
    with pytest.raises(ArtifactsError, match=r"stale.*just train"):
        example.load(copy)
    with pytest.raises(ArtifactsError, match=r"no artifacts.*just train"):
        example.load(tmp_path / "empty")
