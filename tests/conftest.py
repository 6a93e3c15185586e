"""Shared fixtures: the example pipeline (trained once when needed), the tiny one and the rich one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from onepipe import ArtifactsError, LoadedPipeline
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess, free_port, model_service
from review_triage.pipeline import pipeline as example
from tests import rich_pipeline, tiny_pipeline

if TYPE_CHECKING:
    from onepipe.platform.versions.registry import Registry

# a model service built in a test serves the artifacts folder alone unless the test gives a registry
# (never the checkout's data/registry); processes started by the harness get the same
os.environ["MODEL_REGISTRY"] = "none"
EXAMPLE_ARTIFACTS = ROOT / "artifacts" / example.name
RICH_PIPELINE = "tests.rich_pipeline:pipeline"


def example_labels(
    loaded: LoadedPipeline[Any, Any, Any], texts: list[str], flags: dict[str, Any]
) -> list[str]:
    """The label the example gives each text with these flags, run in-process: what a service must answer."""
    return [
        o.model_dump(mode="json")["label"] for o in loaded.run([{"text": t} for t in texts], flags).outputs
    ]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The run's own Redis (broker and rate-limit counters), never one it did not start."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_pipeline() -> LoadedPipeline[Any, Any, Any]:
    """The example, loaded from artifacts/ at the root; trained first if missing or stale."""
    try:
        return example.load(EXAMPLE_ARTIFACTS)
    except ArtifactsError:
        example.train(EXAMPLE_ARTIFACTS)
        return example.load(EXAMPLE_ARTIFACTS)


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline's artifacts, trained into a temporary folder."""
    folder = tmp_path_factory.mktemp("tiny") / "tiny"
    tiny_pipeline.pipeline.train(folder)
    return folder


@pytest.fixture(scope="session")
def rich_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rich test pipeline's artifacts, trained into a temporary folder."""
    folder = tmp_path_factory.mktemp("rich") / rich_pipeline.pipeline.name
    rich_pipeline.pipeline.train(folder)
    return folder


@pytest.fixture
def tiny(tiny_artifacts: Path) -> LoadedPipeline[Any, Any, Any]:
    """The tiny pipeline, loaded, with its call counters reset."""
    tiny_pipeline.CALLS.clear()
    return tiny_pipeline.pipeline.load(tiny_artifacts)


@pytest.fixture(scope="session")
def example_service(example_pipeline: LoadedPipeline[Any, Any, Any]) -> Iterator[ServiceProcess]:
    """One model service process serving the example, shared by the tests that only read from it."""
    with model_service(free_port(), MODEL_ARTIFACTS_DIR=str(EXAMPLE_ARTIFACTS.parent)) as process:
        yield process


@pytest.fixture(scope="session")
def rich_service(rich_artifacts: Path) -> Iterator[ServiceProcess]:
    """One model service process serving the rich test pipeline."""
    env = {"MODEL_PIPELINE": RICH_PIPELINE, "MODEL_ARTIFACTS_DIR": str(rich_artifacts.parent)}
    with model_service(free_port(), **env) as process:
        yield process


# -- registries with versions of the example (docs/versions.md) ------------------------------------------

MINILM = {"classifier": "minilm"}


@pytest.fixture(scope="session")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded registry with its tables made (MLflow's migrations take seconds: once per run)."""
    from onepipe.platform.versions.registry import Registry  # MLflow: imported by the tests that use it

    folder = tmp_path_factory.mktemp("registry-template") / "registry"
    Registry(str(folder), folder.parent / "cache").aliases(example.name)
    return folder


@pytest.fixture
def registry(empty_registry: Path, tmp_path: Path) -> Registry:
    """A fresh embedded registry of the test's own."""
    from onepipe.platform.versions.registry import Registry

    folder = tmp_path / "registry"
    shutil.copytree(empty_registry, folder)
    return Registry(str(folder), tmp_path / "cache")


@pytest.fixture
def two_versions(registry: Registry, example_pipeline: LoadedPipeline[Any, Any, Any]) -> Registry:
    """v1 the example as trained (champion), v2 the same artifacts with classifier=minilm (challenger)."""
    registry.register(example, EXAMPLE_ARTIFACTS, {})
    registry.register(example, EXAMPLE_ARTIFACTS, MINILM, alias="challenger")
    return registry


def registry_env(registry: Registry, tmp_path: Path) -> dict[str, str]:
    """A model service's settings to serve the versions of `registry`, polled every half second."""
    return {
        "MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent),
        "MODEL_REGISTRY": registry.location,
        "MODEL_VERSIONS_CACHE": str(tmp_path / "service-cache"),
        "MODEL_REGISTRY_POLL_SECONDS": "0.5",
    }
