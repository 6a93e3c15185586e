"""Another pipeline, in a package of its own, served by the model image with no project file edited.

A copy of the project's tracked files gets a pipeline from `just new-pipeline`'s script
and a `uv lock`, as a user's checkout would; the model image is then built as compose.yaml
builds it (its target of the shared Dockerfile and its build arguments) with only the
arguments a user sets changed (PIPELINE_DIR, MODEL_PIPELINE), and serves it alone. It is
built with `docker build`, which uses the classic builder where there is no buildx: the
builder that runs every stage above the target.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from onepipe_harness.processes import ROOT, free_port
from tests.compose.stack import base_images, record

pytestmark = pytest.mark.timeout(1800)

NAME = "desk-router"
PACKAGE = "desk_router"
IMAGE = "onepipe-another-pipeline-test:latest"
# what `pip list` shows, read without pip (uv's venvs have none)
LIST_DISTRIBUTIONS = "import importlib.metadata as m; print(*(d.metadata['Name'] for d in m.distributions()))"


def _run(*args: str, cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's tracked files, as a fresh clone has them, plus a scaffolded pipeline, locked."""
    copy = tmp_path_factory.mktemp("another-pipeline") / "project"
    for name in filter(None, _run("git", "ls-files", "-z", cwd=ROOT).split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    script = str(copy / "scripts" / "new_pipeline.py")
    _run(
        "uv",
        "run",
        "--frozen",
        "--no-sync",
        "python",
        script,
        NAME,
        "--into",
        str(copy / "pipelines"),
        cwd=ROOT,
    )
    _run("uv", "lock", cwd=copy)
    return copy


@pytest.fixture(scope="module")
def served(checkout: Path) -> Iterator[str]:
    """The model image built for the scaffolded pipeline, running; its URL."""
    model = yaml.safe_load((checkout / "compose.yaml").read_text())["services"]["model"]["build"]
    # compose's arguments, each ${VAR:-default} as its default, then what the user sets
    arguments = {
        name: re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", str(value)) for name, value in model["args"].items()
    }
    bases = base_images()
    arguments |= {
        "PYTHON_IMAGE": bases["PYTHON_IMAGE"],
        "UV_IMAGE": bases["UV_IMAGE"],
        "PIPELINE_DIR": f"pipelines/{NAME}",
        "MODEL_PIPELINE": f"{PACKAGE}.pipeline:pipeline",
    }
    build = ["docker", "build", "-f", model["dockerfile"], "--target", model["target"], "-t", IMAGE]
    build += [arg for name, value in arguments.items() for arg in ("--build-arg", f"{name}={value}")]
    started = time.monotonic()
    _run(*build, ".", cwd=checkout, timeout=1800)
    record("another pipeline's model image: build seconds", round(time.monotonic() - started))
    port = free_port()
    container = _run(
        "docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8001", IMAGE, cwd=checkout
    ).strip()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            raise AssertionError(f"the model image never got ready:\n{logs.stdout}\n{logs.stderr}")
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def test_the_model_image_serves_another_pipeline_and_holds_it_alone(served: str, checkout: Path) -> None:
    info = httpx.get(served + "/v1/pipeline", timeout=10).json()
    assert info["name"] == NAME
    example = next(iter(info["examples"].values()))
    answer = httpx.post(served + "/v1/predict", json={"inputs": [example]}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == info["version"] and len(answer.json()["outputs"]) == 1
    installed = _run("docker", "run", "--rm", IMAGE, "python", "-c", LIST_DISTRIBUTIONS, cwd=checkout).split()
    assert NAME in installed and "model-service" in installed
    assert "review-triage" not in installed  # the example is not a dependency of the model service
    # no project file was edited: the pipeline is a new folder, and uv.lock now knows it
    tracked = filter(None, _run("git", "ls-files", "-z", cwd=ROOT).split("\0"))
    edited = [
        name for name in tracked if (ROOT / name).is_file() and not filecmp.cmp(ROOT / name, checkout / name)
    ]
    assert edited == ["uv.lock"]
