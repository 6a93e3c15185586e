"""`just new-pipeline`: the scaffold is a working pipeline that trains, passes its own test and is served."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from onepipe_harness.processes import ROOT, free_port, model_service

NAME, PACKAGE = "ticket-router", "ticket_router"


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "python", "scripts/new_pipeline.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("pipelines")
    made = _script(NAME, "--into", str(into))
    assert made.returncode == 0, made.stderr
    return into / NAME


def _env(folder: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{folder / 'src'}", **more}


def test_the_scaffold_is_a_package_with_a_test(scaffolded: Path) -> None:
    names = sorted(str(p.relative_to(scaffolded)) for p in scaffolded.rglob("*") if p.is_file())
    assert names == [
        "pyproject.toml",
        f"src/{PACKAGE}/__init__.py",
        f"src/{PACKAGE}/data.json",
        f"src/{PACKAGE}/pipeline.py",
        "tests/test_pipeline.py",
    ]
    assert f'name = "{NAME}"' in (scaffolded / "pyproject.toml").read_text()


def test_its_own_test_passes(scaffolded: Path) -> None:
    ran = subprocess.run(
        [
            "uv",
            "run",
            "--frozen",
            "--no-sync",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(scaffolded / "tests"),
        ],
        cwd=scaffolded,
        env=_env(scaffolded),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr


def test_it_trains_and_the_model_service_serves_both_variants(scaffolded: Path, tmp_path: Path) -> None:
    settings = {"MODEL_PIPELINE": f"{PACKAGE}.pipeline:pipeline", "MODEL_ARTIFACTS_DIR": str(tmp_path)}
    trained = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "model-service", "train"],
        cwd=ROOT,
        env=_env(scaffolded, **settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / NAME / "model.json").exists()
    with model_service(free_port(), PYTHONPATH=_env(scaffolded)["PYTHONPATH"], **settings) as served:
        info = httpx.get(served.url + "/v1/pipeline").json()
        assert info["name"] == NAME and [s["name"] for s in info["steps"]] == ["words", "scores", "verdict"]
        examples = list(info["examples"].values())
        body = {"inputs": examples, "debug": True}
        keywords = httpx.post(served.url + "/v1/predict", json=body).json()
        assert [o["label"] for o in keywords["outputs"]] == ["praise", "complaint"]
        assert keywords["traces"][0]["steps"][1]["variant"] == "keywords"
        prior = httpx.post(served.url + "/v1/predict", json={**body, "flags": {"method": "prior"}}).json()
        assert prior["traces"][0]["steps"][1]["variant"] == "prior"


@pytest.mark.parametrize(
    ("name", "words"),
    [("Ticket Router", "is no pipeline name"), ("9lives", "is no pipeline name"), (NAME, "already exists")],
)
def test_a_bad_name_or_an_existing_folder_is_refused_in_one_line(
    scaffolded: Path, name: str, words: str
) -> None:
    refused = _script(name, "--into", str(scaffolded.parent))
    assert refused.returncode == 2 and refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], refused.stderr
