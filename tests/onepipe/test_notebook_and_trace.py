"""The notebook phase: the trace renders as HTML, and the example notebook runs top to bottom."""

from __future__ import annotations

import html as html_module
from typing import Any

import nbformat
from nbclient import NotebookClient

from onepipe import LoadedPipeline
from onepipe_harness.processes import ROOT
from review_triage.pipeline import pipeline as example
from tests.pipelines.test_review_triage_pipeline import STEPS


def test_trace_renders_as_html_with_every_step(
    example_pipeline: LoadedPipeline[Any, Any, Any],
) -> None:
    trace = example_pipeline.run([example.examples["plot summary"]], debug=True).traces[0]  # type: ignore[index]
    html = trace._repr_html_()
    assert html.count("<tr>") == len(STEPS) + 1  # a header row, then a row per step
    for name in STEPS:
        assert f"<b>{name}</b>" in html
    assert "not_needed" in html and example_pipeline.version in html
    minilm = example_pipeline.run([example.examples["plot summary"]], {"classifier": "minilm"}, debug=True)
    embedding = minilm.traces[0].step("embeddings").output  # type: ignore[index]
    assert embedding["$kind"] == "array" and embedding["shape"] == [384]
    shown = minilm.traces[0]._repr_html_()  # type: ignore[index]
    one_line = '{"$kind": "array", "shape": [384], "dtype": "float32"'
    assert html_module.escape(one_line) in shown  # a summary on one line of its own


def test_the_notebook_executes(example_pipeline: LoadedPipeline[Any, Any, Any]) -> None:
    notebook = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    ).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert html and all(f"<b>{name}</b>" in html[0] for name in STEPS)
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "default=fresh" in printed and "default=plot" in printed
    plain = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    assert "('array', [384], 'float32')" in plain  # a preview's kind and parts read as data
