"""Versions side by side: the MLflow registry, two versions loaded, promotion and rollback, no restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import hash_key
from onepipe import ArtifactsError, LoadedPipeline
from onepipe.platform.versions.evidence import held_out_of
from onepipe.platform.versions.registry import Registry, RegistryError, UnknownVersionError
from onepipe.platform.versions.shadow import FileShadowStore, ShadowRecord, input_hash
from onepipe.platform.versions.types import served_version
from onepipe_harness.processes import (
    OUTPUT,
    ROOT,
    RedisServer,
    ServiceProcess,
    free_port,
    gateway,
    model_service,
)
from review_triage.pipeline import pipeline as example
from tests.callers import Load
from tests.case_library import two_case_library
from tests.conftest import EXAMPLE_ARTIFACTS, MINILM, example_labels, registry_env
from tests.stacks import KEYS, Stack, as_key, keys_env, stack

Loaded = LoadedPipeline[Any, Any, Any]
TEXTS = [
    "A gorgeous, moving film with a cast at the top of its game.",
    "Dull, overlong and badly acted; I left halfway.",
    "A retired detective returns to his home town to solve one last case.",
    "Not bad.",
]


def _predict(url: str, version: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"inputs": [{"text": t} for t in TEXTS]}
    if version is not None:
        body["version"] = version
    return httpx.post(f"{url}/v1/predict", json=body, headers=headers or {}, timeout=60)


def _outputs(loaded: Loaded, flags: dict[str, Any]) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in loaded.run([{"text": t} for t in TEXTS], flags).outputs]


# -- the registry ------------------------------------------------------------------------------


def test_the_first_version_is_champion_and_registering_again_finds_it(
    registry: Registry, example_pipeline: Loaded
) -> None:
    first = registry.register(example, EXAMPLE_ARTIFACTS, {})
    assert (first.number, first.aliases, first.version) == (1, ["champion"], example_pipeline.version)
    assert first.metrics["metrics.tfidf/kind.accuracy"] > 0.9  # the held-out scores of the model card
    again = registry.register(example, EXAMPLE_ARTIFACTS, {})
    assert again.number == 1 and len(registry.versions(example.name)) == 1
    second = registry.register(example, EXAMPLE_ARTIFACTS, MINILM, alias="challenger")
    assert second.number == 2 and second.aliases == ["challenger"]
    assert second.version == served_version(example_pipeline.version, MINILM) != first.version
    assert registry.aliases(example.name) == {"champion": 1, "challenger": 2}
    assert [registry.resolve(example.name, ref).number for ref in ("champion", "v2", "2", first.version)] == [
        1,
        2,
        2,
        1,
    ]


def test_promotion_and_rollback_move_the_aliases(two_versions: Registry) -> None:
    assert two_versions.promote(example.name) == (1, 2)
    assert two_versions.aliases(example.name) == {"champion": 2, "previous": 1}
    with pytest.raises(UnknownVersionError, match="no challenger to promote"):
        two_versions.promote(example.name)
    assert two_versions.rollback(example.name) == (2, 1)
    assert two_versions.aliases(example.name) == {"champion": 1, "challenger": 2}
    with pytest.raises(UnknownVersionError, match="no previous champion"):
        two_versions.rollback(example.name)


def test_listing_again_asks_the_registry_only_what_can_change(
    two_versions: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run's metrics and a promotion's evidence never change: GET /v1/versions reads them once."""
    import mlflow.artifacts

    registry = Registry(two_versions.location, tmp_path / "another-cache")  # as another process starts
    asked: Counter[str] = Counter()

    def counted(name: str, call: Any) -> Any:
        def passing(*args: Any, **kwargs: Any) -> Any:
            asked[name] += 1
            return call(*args, **kwargs)

        return passing

    monkeypatch.setattr(registry.client, "get_run", counted("get_run", registry.client.get_run))
    download = mlflow.artifacts.download_artifacts
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", counted("download", download))
    first = registry.versions(example.name)
    assert asked["get_run"] == 2  # a version each, the first time
    registry.record(example.name, "promotion", {"verdict": "first"})
    assert registry.last_record(example.name, "promotion") == {"verdict": "first"}
    assert asked["download"] == 1
    registry.promote(example.name)
    again = registry.versions(example.name)
    assert registry.last_record(example.name, "promotion") == {"verdict": "first"}
    assert (asked["get_run"], asked["download"]) == (2, 1)  # nothing asked twice
    assert [v.metrics for v in again] == [v.metrics for v in first]
    assert [v.aliases for v in again] == [["champion"], ["previous"]]  # what can change is read afresh
    registry.record(example.name, "promotion", {"verdict": "second"})
    assert registry.last_record(example.name, "promotion") == {"verdict": "second"}  # a new record


def test_an_unknown_version_is_one_sentence_naming_the_registered_ones(two_versions: Registry) -> None:
    with pytest.raises(UnknownVersionError) as raised:
        two_versions.resolve(example.name, "v9")
    assert str(raised.value) == (
        f"version 'v9' is not registered for pipeline 'review-triage'; registered: "
        f"v2 {two_versions.resolve(example.name, 'v2').version} (challenger), "
        f"v1 {two_versions.resolve(example.name, 'v1').version} (champion)"
    )


def test_a_registered_version_whose_artifacts_changed_is_refused(
    two_versions: Registry, tmp_path: Path
) -> None:
    version = two_versions.resolve(example.name, "v1")
    stored = next(  # v1's own copy: each version's run keeps its artifacts under its run id
        p
        for p in Path(two_versions.location, "artifacts").rglob("snippets.jsonl")
        if str(version.run_id) in str(p)
    )
    stored.write_text(stored.read_text() + '{"text": "smuggled"}\n')  # the store's copy, after registration
    with pytest.raises(ArtifactsError, match="v1's artifacts fail their manifest check"):
        Registry(two_versions.location, tmp_path / "fresh-cache").fetch(example, version)


def test_two_processes_fetching_one_version_at_once_both_get_it(
    two_versions: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model service's processes share the versions cache: both download, one renames first."""
    import mlflow.artifacts

    download = mlflow.artifacts.download_artifacts
    both_downloaded = threading.Barrier(2, timeout=60)

    def in_step(*args: Any, **kwargs: Any) -> str:
        path = str(download(*args, **kwargs))
        both_downloaded.wait()  # neither renames before the other has its own copy
        return path

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", in_step)
    version = two_versions.resolve(example.name, "v1")
    cache = tmp_path / "shared-cache"
    found: list[Path | BaseException] = []

    def fetch() -> None:
        try:
            found.append(Registry(two_versions.location, cache).fetch(example, version))
        except BaseException as error:
            found.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [cache / example.name / "v1"] * 2, found
    assert sorted(p.name for p in (cache / example.name).iterdir()) == ["v1"]  # no staging left


def test_a_registry_that_cannot_be_reached_is_one_sentence(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(
        RegistryError, match=r"^the registry at http://127.0.0.1:\d+ did not answer \(read the aliases"
    ):
        Registry(f"http://127.0.0.1:{free_port()}", tmp_path / "cache").aliases(example.name)
    assert time.monotonic() - started < 30  # said within seconds, not MLflow's minutes of retries


def test_just_train_registers_and_sets_the_challenger(empty_registry: Path, tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    shutil.copytree(empty_registry, folder)
    env = {
        **os.environ,
        "MODEL_REGISTRY": str(folder),
        "MODEL_VERSIONS_CACHE": str(tmp_path / "cache"),
        "MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent),
    }

    def train(*args: str) -> str:
        command = ["uv", "run", "--frozen", "--no-sync", "model-service", "train", "--if-needed", *args]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "registered as v1" in train() and "champion" in train()
    assert "registered as v2" in train("--alias", "challenger", "--flag", "classifier=minilm")
    refused = subprocess.run(
        [
            "uv",
            "run",
            "--frozen",
            "--no-sync",
            "model-service",
            "train",
            "--if-needed",
            "--flag",
            "classifer=x",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2 and "--flag: classifer: Extra inputs are not permitted" in refused.stderr
    found = Registry(str(folder), tmp_path / "cache")
    assert found.aliases(example.name) == {"champion": 1, "challenger": 2}
    assert found.resolve(example.name, "challenger").flag_defaults == MINILM


# -- the model service ---------------------------------------------------------------------------


@pytest.fixture
def versions_service(two_versions: Registry, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A model service on the registry with v1 champion and v2 challenger."""
    with model_service(free_port(), **registry_env(two_versions, tmp_path)) as process:
        yield process


def test_champion_and_challenger_answer_side_by_side(
    versions_service: ServiceProcess, two_versions: Registry, example_pipeline: Loaded
) -> None:
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    ready = httpx.get(f"{versions_service.url}/readyz").json()
    assert (ready["version"], ready["challenger"], ready["registry"]) == (v1, v2, "ok")
    for ref, expected in [(None, v1), ("champion", v1), ("challenger", v2), ("v2", v2), (v1, v1), (v2, v2)]:
        answer = _predict(versions_service.url, ref)
        assert answer.status_code == 200 and answer.json()["version"] == expected, (ref, answer.text)
    # the challenger is the champion's artifacts with its own flag default: its answers are minilm's
    assert _predict(versions_service.url, "challenger").json()["outputs"] == _outputs(
        example_pipeline, MINILM
    )
    assert _predict(versions_service.url).json()["outputs"] == _outputs(example_pipeline, {})
    # a flag the caller sets wins over the version's default
    body = {"inputs": [{"text": TEXTS[0]}], "version": "challenger", "flags": {"classifier": "tfidf"}}
    answer = httpx.post(f"{versions_service.url}/v1/predict", json=body).json()
    assert answer["outputs"] == _outputs(example_pipeline, {})[:1]
    listed = httpx.get(f"{versions_service.url}/v1/versions").json()
    assert [(v["number"], v["aliases"], v["loaded"]) for v in listed["versions"]] == [
        (2, ["challenger"], True),
        (1, ["champion"], True),
    ]


def test_an_unknown_version_is_422_and_a_registered_one_loads_on_demand(
    versions_service: ServiceProcess, two_versions: Registry, example_pipeline: Loaded
) -> None:
    unknown = _predict(versions_service.url, "v7")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == "version"
    assert "version 'v7' is not registered for pipeline 'review-triage'" in unknown.json()["detail"]
    third = two_versions.register(example, EXAMPLE_ARTIFACTS, {"classifier": "minilm", "neighbours": 5})
    first = _predict(versions_service.url, "v3")
    assert first.status_code == 503 and first.headers["retry-after"] == "2"
    assert f"version v3 ({third.version}) of 'review-triage' is loading" in first.json()["detail"]
    deadline = time.monotonic() + 60
    while (answer := _predict(versions_service.url, "v3")).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 200 and answer.json()["version"] == third.version
    assert answer.json()["outputs"] == _outputs(example_pipeline, third.flag_defaults)
    assert (
        _predict(versions_service.url).json()["version"] == two_versions.resolve(example.name, "v1").version
    )


def test_a_registry_that_goes_down_leaves_the_service_serving(
    versions_service: ServiceProcess, two_versions: Registry
) -> None:
    store = Path(two_versions.location) / "mlflow.db"
    intact = store.read_bytes()
    with store.open("r+b") as damaged:  # in place: the service's open connections read it too
        damaged.write(b"\0" * 4096)
    try:
        deadline = time.monotonic() + 30
        while "down" not in (ready := httpx.get(f"{versions_service.url}/readyz")).json()["registry"]:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        assert ready.status_code == 200 and ready.json()["registry"].startswith("down: the registry at ")
        assert _predict(versions_service.url).status_code == 200
        assert _predict(versions_service.url, "challenger").status_code == 200
        listed = httpx.get(f"{versions_service.url}/v1/versions").json()
        assert listed["registry"]["status"] == "down" and len(listed["versions"]) == 2
    finally:
        store.write_bytes(intact)
    deadline = time.monotonic() + 30
    while httpx.get(f"{versions_service.url}/readyz").json()["registry"] != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_two_forked_processes_each_poll_the_registry_and_swap(
    two_versions: Registry, tmp_path: Path, example_pipeline: Loaded
) -> None:
    """Forked after the parent imported the pipeline and MLflow's client (nothing opened), each process
    opens its own registry, loads champion and challenger, and follows a promotion on its own poll."""
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    env = registry_env(two_versions, tmp_path) | {"MODEL_WORKERS": "2"}

    async def burst(url: str, version: str | None = None) -> list[httpx.Response]:
        async def one() -> httpx.Response:  # a connection each: whichever process is free takes it
            async with httpx.AsyncClient(timeout=60) as client:
                body: dict[str, Any] = {"inputs": [{"text": t} for t in TEXTS]}
                return await client.post(
                    f"{url}/v1/predict", json=body | ({"version": version} if version else {})
                )

        return list(await asyncio.gather(*(one() for _ in range(40))))

    with model_service(free_port(), **env) as service:
        champion, challenger = asyncio.run(burst(service.url)), asyncio.run(burst(service.url, "challenger"))
        assert {(a.status_code, a.json()["version"]) for a in champion} == {(200, v1)}
        assert {(a.status_code, a.json()["version"]) for a in challenger} == {(200, v2)}
        assert [a.json()["outputs"] for a in champion[:1] + challenger[:1]] == [
            _outputs(example_pipeline, {}),
            _outputs(example_pipeline, MINILM),
        ]
        two_versions.promote(example.name)
        deadline = time.monotonic() + 30
        while {a.json()["version"] for a in asyncio.run(burst(service.url))} != {v2}:
            assert time.monotonic() < deadline, "a process still serves v1"
            time.sleep(0.5)
        # every process swapped: a burst over fresh connections meets v2 only, as minilm answers
        assert all(
            a.json()["outputs"] == _outputs(example_pipeline, MINILM) for a in asyncio.run(burst(service.url))
        )


# -- promotion and rollback under load --------------------------------------------------------------


def test_promotion_and_rollback_under_load_fail_no_request(
    versions_service: ServiceProcess, two_versions: Registry, tmp_path: Path, redis_server: RedisServer
) -> None:
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    env = {
        "GATEWAY_API_KEYS": keys_env(),
        "GATEWAY_RATE_LIMIT": "100000/minute",  # the load, not the limit, is under test
        "STORAGE_URL": str(tmp_path / "storage"),
        "REDIS_URL": redis_server.url(13),
    }
    with (
        gateway(free_port(), versions_service.url, **env) as front,
        Load(
            f"{front.url}/v1/predict", as_key("app"), [{"inputs": {"text": text}} for text in TEXTS]
        ) as load,
    ):
        time.sleep(2)
        promoted = time.monotonic()
        two_versions.promote(example.name)
        time.sleep(4)  # the poll (0.5 s) finds the move; the challenger is loaded: the swap is at once
        settled = time.monotonic()
        time.sleep(2)
        rolled_back = time.monotonic()
        two_versions.rollback(example.name)
        time.sleep(4)
        back = time.monotonic()
        time.sleep(2)
    statuses = {status for _, status, _ in load.answers}
    assert statuses == {200}, [a for a in load.answers if a[1] != 200][:3]
    assert len(load.answers) > 100
    assert {version for at, _, version in load.answers if at < promoted} == {v1}
    assert load.since(settled) - {v1} == {v2} and {
        v for at, _, v in load.answers if settled < at < rolled_back
    } == {v2}
    assert load.since(back) == {v1}


# -- promotion with evidence ---------------------------------------------------------------------


def _shadowed(storage: Path, two_versions: Registry, loaded: Loaded, texts: list[str]) -> None:
    """The gateway's shadow record of these texts, as an embedded-mode gateway keeps it (files)."""
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    answers = [loaded.run([{"text": t} for t in texts], flags).outputs for flags in ({}, MINILM)]
    store = FileShadowStore(str(storage), example.name, record_max=100, hours=24)
    for text, champion, challenger in zip(texts, *answers, strict=True):
        record = ShadowRecord(
            at=datetime.now(UTC),
            champion=v1,
            challenger=v2,
            inputs=[{"text": text}],
            input_hashes=[input_hash({"text": text})],
            champion_outputs=[champion.model_dump(mode="json")],
            challenger_outputs=[challenger.model_dump(mode="json")],
            champion_ms=5.0,
            challenger_ms=7.0,
        )
        asyncio.run(store.add([record]))


def test_just_promote_refuses_a_broken_must_pass_case_and_records_a_forced_one(
    two_versions: Registry, tmp_path: Path, example_pipeline: Loaded
) -> None:
    texts = _held_out_texts(12)
    _shadowed(tmp_path / "storage", two_versions, example_pipeline, texts)
    env = {
        **os.environ,
        **registry_env(two_versions, tmp_path),
        "MODEL_CASES_DIR": str(two_case_library(tmp_path / "cases", must_pass=True)),
        "COLUMNS": "200",  # rich wraps at the terminal's width: one line per message here
        # where the gateway keeps its shadow record in embedded mode: the files under the storage root
        "REDIS_URL": f"sqla+sqlite:///{tmp_path / 'queue.sqlite'}",
        "STORAGE_URL": str(tmp_path / "storage"),
    }

    def promote(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            "uv",
            "run",
            "--frozen",
            "--no-sync",
            "model-service",
            "promote",
            "--held-out-rows",
            "60",
            *args,
        ]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    refused = promote()
    assert refused.returncode == 1, refused.stderr
    assert "promotion refused: The challenger breaks 1 must-pass case: case-b8dfb86b0e47." in refused.stderr
    assert "Held-out rows" in refused.stdout and "A random sample of 60" in refused.stdout
    # the shadow record joins the evidence: each field's agreement over the texts shadowed
    labels = [example_labels(example_pipeline, texts, flags) for flags in ({}, MINILM)]
    agreeing = sum(a == b for a, b in zip(*labels, strict=True))
    assert "Shadow traffic" in refused.stdout and "12 requests shadowed since" in refused.stdout
    assert re.search(rf"\blabel\s+│?\s*{agreeing}\s+│?\s*12\b", refused.stdout), refused.stdout
    assert two_versions.aliases(example.name) == {"champion": 1, "challenger": 2}
    assert promote("--force").returncode == 2  # a reason is required
    done = promote("--force", "--reason", "the must-pass case is wrong; fixed in the library next")
    assert done.returncode == 0, done.stderr
    assert "v2 is champion" in done.stdout
    assert two_versions.aliases(example.name) == {"champion": 2, "previous": 1}
    record = two_versions.last_record(example.name, "promotion")
    assert record is not None and record["forced"] is True and record["cases"]["must_pass_broken"] == 1
    assert record["reason"] == "the must-pass case is wrong; fixed in the library next"
    assert (record["cases"]["fixed"], record["cases"]["broken"]) == (1, 1)


def test_the_model_service_promotes_through_its_own_batchers(two_versions: Registry, tmp_path: Path) -> None:
    env = {
        **registry_env(two_versions, tmp_path),
        "MODEL_CASES_DIR": str(two_case_library(tmp_path / "c", must_pass=True)),
    }
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    with model_service(free_port(), **env) as service:
        url = f"{service.url}/v1/versions/promote"
        refused = httpx.post(url, json={"held_out_rows": 50}, timeout=300)
        assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"].startswith(
            "The challenger breaks 1 must-pass case: case-b8dfb86b0e47."
        )
        assert refused.json()["evidence"]["cases"]["must_pass_broken"] == 1
        no_reason = httpx.post(url, json={"force": True}, timeout=300)
        assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["loc"] == "reason"
        body = {"force": True, "reason": "accepted", "held_out_rows": 50}
        done = httpx.post(url, json=body, headers={"X-Caller": "release-bot"}, timeout=300)
        assert done.status_code == 200, done.text
        assert (done.json()["champion"], done.json()["previous"]) == (2, 1)
        assert done.json()["evidence"]["forced_by"] == "release-bot"
        # this process swapped before answering: the next request is the new champion's
        assert _predict(service.url).json()["version"] == v2
        # the description is the champion's: its version, and its own flag default where it sets one
        described = httpx.get(f"{service.url}/v1/pipeline").json()
        assert (described["version"], _classifier_default(described)) == (v2, "minilm")
        listed = httpx.get(f"{service.url}/v1/versions").json()
        assert listed["last_promotion"]["reason"] == "accepted"
        assert httpx.post(f"{service.url}/v1/versions/rollback").status_code == 200
        assert _predict(service.url).json()["version"] == v1
        described = httpx.get(f"{service.url}/v1/pipeline").json()
        assert (described["version"], _classifier_default(described)) == (v1, "tfidf")


def _classifier_default(described: dict[str, Any]) -> Any:
    return described["flags_schema"]["properties"]["classifier"]["default"]


def test_the_gateway_lists_versions_and_only_the_versions_scope_chooses_or_moves_them(
    two_versions: Registry, tmp_path: Path, redis_server: RedisServer
) -> None:
    release = f"release-{uuid.uuid4().hex[:8]}"
    scopes = ["predict", "versions"]
    keys = [*json.loads(keys_env()), {"name": "release", "sha256": hash_key(release), "scopes": scopes}]
    env = {
        "GATEWAY_API_KEYS": json.dumps(keys),
        "STORAGE_URL": str(tmp_path / "storage"),
        "REDIS_URL": redis_server.url(12),
    }
    service_env = {
        **registry_env(two_versions, tmp_path),
        "MODEL_CASES_DIR": str(two_case_library(tmp_path / "c", must_pass=False)),
    }
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    as_release = {"X-API-Key": release}
    with (
        model_service(free_port(), **service_env) as service,
        gateway(free_port(), service.url, **env) as front,
    ):
        listed = httpx.get(f"{front.url}/v1/versions", headers=as_key("app")).json()
        assert [(v["number"], v["aliases"]) for v in listed["versions"]] == [
            (2, ["challenger"]),
            (1, ["champion"]),
        ]
        assert httpx.get(f"{front.url}/v1/versions").status_code == 401
        chosen = _predict(front.url, "challenger", as_key("app"))
        assert chosen.status_code == 403 and "versions" in chosen.json()["detail"]
        assert _predict(front.url, "challenger", as_release).json()["version"] == v2
        bad = _predict(front.url, "no such/version", as_release)
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == "version"
        unknown = _predict(front.url, "v9", as_release)
        assert unknown.status_code == 422 and "version 'v9' is not registered" in unknown.json()["detail"]
        assert (
            httpx.post(f"{front.url}/v1/versions/promote", json={}, headers=as_key("app")).status_code == 403
        )
        done = httpx.post(
            f"{front.url}/v1/versions/promote", json={"held_out_rows": 40}, headers=as_release, timeout=600
        )
        assert done.status_code == 200, done.text
        assert done.json()["champion"] == 2 and done.json()["evidence"]["cases"]["fixed"] == 1
        assert _predict(front.url, headers=as_key("app")).json()["version"] == v2
        back = httpx.post(f"{front.url}/v1/versions/rollback", headers=as_release, timeout=600)
        assert back.status_code == 200 and [v["aliases"] for v in back.json()["versions"]] == [
            ["challenger"],
            ["champion"],
        ]
        assert _predict(front.url, headers=as_key("app")).json()["version"] == v1
        again = httpx.post(f"{front.url}/v1/versions/rollback", headers=as_release)
        assert again.status_code == 409 and "no previous champion" in again.json()["detail"]


# -- jobs pinned to a version -------------------------------------------------------------------------


@dataclass
class JobStack:
    """A model service on the registry, a gateway, a worker, and a key with the jobs and versions scopes."""

    service: ServiceProcess
    started: Stack
    key: str

    def submit(self, texts: list[str], **form: str) -> dict[str, Any]:
        content = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
        answer = httpx.post(
            f"{self.started.gateway.url}/v1/jobs",
            files={"file": ("texts.jsonl", content)},
            data={"mapping": json.dumps({"text": "text"}), **form},
            headers={"X-API-Key": self.key},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def job(self, job_id: str) -> dict[str, Any]:
        url = f"{self.started.gateway.url}/v1/jobs/{job_id}"
        return dict(httpx.get(url, headers={"X-API-Key": self.key}, timeout=30).json())

    def until(self, job_id: str, *states: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (job := self.job(job_id))["state"] not in states:
            assert time.monotonic() < deadline, (job, self.started.worker.log()[-3000:])
            time.sleep(0.2)
        return job

    def rows(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return self.started.rows(job, "release")


@pytest.fixture
def job_stack(two_versions: Registry, tmp_path: Path, redis_server: RedisServer) -> Iterator[JobStack]:
    with (
        model_service(free_port(), **registry_env(two_versions, tmp_path)) as service,
        stack(service.url, tmp_path, redis_server.url(11)) as started,
    ):
        yield JobStack(service, started, KEYS["release"])


def _held_out_texts(count: int) -> list[str]:
    rows = held_out_of(example) or []
    return [str(row["text"]) for row, _ in rows[:count]]


def test_a_promotion_mid_job_does_not_move_the_job_off_its_version(
    job_stack: JobStack, two_versions: Registry, example_pipeline: Loaded
) -> None:
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    texts = _held_out_texts(1500)
    job_id = job_stack.submit(texts)["id"]
    deadline = time.monotonic() + 120
    while (started := job_stack.job(job_id))["pipeline_version"] is None:
        assert time.monotonic() < deadline, started
        time.sleep(0.05)
    two_versions.promote(example.name)
    while httpx.get(f"{job_stack.service.url}/readyz").json()["version"] != v2:
        time.sleep(0.1)
    during = job_stack.job(job_id)
    assert during["state"] == "running" and during["rows_done"] < len(texts), during  # the swap came mid-job
    done = job_stack.until(job_id, "succeeded", "failed", "paused")
    assert (done["state"], done["rows_failed"], done["pipeline_version"]) == ("succeeded", 0, v1), done
    # every row answered by the first champion: its labels, not the new champion's (minilm)
    assert [row["output.label"] for row in job_stack.rows(done)] == example_labels(
        example_pipeline, texts, {}
    )
    assert example_labels(example_pipeline, texts, {}) != example_labels(example_pipeline, texts, MINILM)


def test_one_job_compares_champion_and_challenger_on_one_file(
    job_stack: JobStack, two_versions: Registry, example_pipeline: Loaded
) -> None:
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    texts = _held_out_texts(60)
    job = job_stack.submit(texts, version="champion", compare_version="challenger")
    done = job_stack.until(job["id"], "succeeded", "failed", "paused")
    assert done["state"] == "succeeded", done
    assert (done["pipeline_version"], done["compare_pipeline_version"]) == (v1, v2)
    rows = job_stack.rows(done)
    assert [row["output.label"] for row in rows] == example_labels(example_pipeline, texts, {})
    assert [row["compare.label"] for row in rows] == example_labels(example_pipeline, texts, MINILM)
    html = httpx.get(done["reports"]["html"], headers={"X-API-Key": job_stack.key}, timeout=60).text
    assert f"champion {v1}" in html and f"challenger {v2}" in html
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "report-two-versions.html").write_text(html)  # to look at


def test_a_job_on_a_version_not_registered_yet_pauses_then_runs_once_it_is(
    job_stack: JobStack, two_versions: Registry, example_pipeline: Loaded
) -> None:
    texts = _held_out_texts(30)
    job_id = job_stack.submit(texts, version="v3")["id"]
    paused = job_stack.until(job_id, "paused", "succeeded", "failed")
    assert (paused["state"], paused["rows_done"], paused["rows_failed"]) == ("paused", 0, 0), paused
    assert "v3" in paused["error"] and "not registered" in paused["error"]
    third = two_versions.register(example, EXAMPLE_ARTIFACTS, {"classifier": "minilm", "neighbours": 5})
    resumed = httpx.post(
        f"{job_stack.started.gateway.url}/v1/jobs/{job_id}/resume", headers={"X-API-Key": job_stack.key}
    )
    assert resumed.status_code == 202, resumed.text
    done = job_stack.until(job_id, "succeeded", "failed", "paused")  # 503 while v3 loads, waited out
    assert (done["state"], done["pipeline_version"]) == ("succeeded", third.version), done
    assert [row["output.label"] for row in job_stack.rows(done)] == example_labels(
        example_pipeline, texts, MINILM
    )
