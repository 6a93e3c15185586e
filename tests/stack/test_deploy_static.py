"""The deployment files, checked without a Docker engine: compose.yaml, the Dockerfile, the workflows.

Real tools run as subprocesses (check-jsonschema with its vendored schemas, hadolint,
and `docker compose config` where the Compose plugin is installed); the rest parses
the files and holds them to the code: the Procfile's commands, the env variables the
settings classes read, and the dependency closures in uv.lock. One test installs:
each image's venv, built from the uv cache the way the Dockerfile builds it, must
import its service's code (the dev venv has every package, so it cannot tell).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from onepipe_harness.processes import ROOT
from scripts.settings_docs import variables

COMPOSE = ROOT / "compose.yaml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

# compose service, and its target in the Dockerfile: (folder under services/, uv package, settings module)
APPS = {
    "model": ("model", "model-service", "model_service.settings"),
    "gateway": ("gateway", "gateway", "gateway.settings"),
    "worker": ("batch-worker", "batch-worker", "batch_worker.settings"),
    "beat": ("batch-worker", "batch-worker", "batch_worker.settings"),
    "ui": ("ui", "ui-service", "ui_service.settings"),
}
# services that run another one's image with a command of their own: service -> the image's target
SAME_IMAGE = {"beat": "worker"}
# the version registry's server: MLflow's own command, no code or settings of ours (so no Procfile line)
REGISTRY_SERVER = "mlflow"
# every service compose builds, and the workspace package its image installs
TARGETS = {name: package for name, (_, package, _) in APPS.items()} | {REGISTRY_SERVER: "mlflow-server"}
# the one Dockerfile of the images, a target each
DOCKERFILE = ROOT / "docker" / "service.Dockerfile"
PROCFILE_PREFIX = "uv run --frozen --no-sync "
# variables a service reads that compose may leave to the settings' defaults (none so far)
LEFT_TO_DEFAULTS: dict[str, set[str]] = {name: set() for name in APPS}
# beat only sends the scheduled checks to the broker: the settings of jobs and of the model service's
# calls are the workers'
LEFT_TO_DEFAULTS["beat"] = {
    "MODEL_URL",
    "STORAGE_URL",
    *(
        f"WORKER_{name}"
        for name in ("CHUNK_SIZE", "MODEL_MAX_BODY_BYTES", "CALLS_IN_FLIGHT", "MODEL_TIMEOUT")
    ),
    *(f"WORKER_{name}" for name in ("MODEL_PATIENCE", "TASK_BUDGET", "LEASE_SECONDS", "VISIBILITY_TIMEOUT")),
    *(f"WORKER_{name}" for name in ("SWEEP_INTERVAL", "CONCURRENCY")),
}
# the stack's own wiring, fixed in compose.yaml and not read from .env: addresses, ports, peers,
# the storage root on its volume, the artifacts baked into the model image, the registry's address
# and where the model container keeps the versions it fetches
FIXED_IN_COMPOSE = {
    "MODEL_ARTIFACTS_DIR",
    "MODEL_REGISTRY",
    "MODEL_VERSIONS_CACHE",
    "MODEL_HOST",
    "MODEL_PORT",
    "GATEWAY_HOST",
    "GATEWAY_PORT",
    "MODEL_URL",
    "GATEWAY_URL",
    "REDIS_URL",
    "STORAGE_URL",
}
# variables that are not the service's settings but its framework's (Streamlit reads its own)
FRAMEWORK_PREFIXES = {"ui": "STREAMLIT_"}
REQUIRED_SECRETS = {"gateway": "GATEWAY_API_KEYS", "ui": "UI_API_KEY"}
INTERNAL_ONLY = ["model", "redis"]
PUBLISHED = {"gateway": 8000, "ui": 8501}
# where the mlflow service keeps its store and the versions' artifacts (its volume's mount point)
MLFLOW_DATA = "/data/mlflow"
ML_LIBRARIES = {
    "scikit-learn",
    "scipy",
    "onnxruntime",
    "tokenizers",
    "bm25s",
    "rbloom",
    "joblib",
    "torch",
    "review-triage",
}
INTERPOLATION = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+)(?P<op>:-|:\?)(?P<rest>.*)\}$")


def _variables(settings: type[Any]) -> dict[str, str]:
    """Each env variable a settings class reads, with its default."""
    return {name: default for name, (default, _) in variables(settings).items()}


# -- helpers ---------------------------------------------------------------------------


def _tool(name: str) -> str:
    """A dev tool from the venv pytest runs in (its bin folder), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `uv sync --frozen --all-packages`")
    return found


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict), "compose.yaml is not a mapping"
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services = _compose().get("services")
    assert isinstance(services, dict) and services, "compose.yaml has no services"
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whether compose.yaml writes a mapping or a list."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    # a variable with no value (KEY:) is passed through from the shell or .env: "" here
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert command, "no explicit `command:` (the image's CMD cannot be compared with the Procfile)"
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """Published ports as (host port, container port), from the short or the long syntax."""
    found = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.append((str(port.get("published", "")), int(port["target"])))
        else:
            # a host port from a variable counts as its default: ${GATEWAY_PORT:-8000}
            parts = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(port)).split(":")
            found.append((parts[-2] if len(parts) > 1 else "", int(parts[-1].split("/")[0])))
    return found


def _networks(service: dict[str, Any]) -> list[str]:
    networks = service.get("networks") or ["default"]
    return list(networks)


def _procfile() -> dict[str, list[str]]:
    """The Procfile's commands, without the `uv run` prefix the local runner needs."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, command = line.split(":", 1)
        command = command.strip()
        assert command.startswith(PROCFILE_PREFIX), f"Procfile {name}: no prefix {PROCFILE_PREFIX!r}"
        commands[name.strip()] = shlex.split(command.removeprefix(PROCFILE_PREFIX))
    return commands


def _settings(module: str) -> type[BaseSettings]:
    settings: object = importlib.import_module(module).Settings
    assert isinstance(settings, type) and issubclass(settings, BaseSettings), f"{module}.Settings"
    return settings


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def _stages() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """The Dockerfile's stages in file order: name -> (what it starts FROM, its instructions after FROM)."""
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] | None = None
    for keyword, arguments in _instructions(DOCKERFILE):
        if keyword == "FROM":
            base, _, name = arguments.partition(" AS ")
            assert name and name not in stages, f"FROM {arguments}: every stage has a name of its own"
            current = []
            stages[name] = (base, current)
        elif current is not None:
            current.append((keyword, arguments))
    return stages


def _image(target: str) -> list[tuple[str, str]]:
    """What a target's image is made of: the instructions of its stage and of the stages it starts
    FROM, back to the one on a base image (the stages it only copies from are not in it)."""
    stages = _stages()
    assert target in stages, f"{DOCKERFILE.relative_to(ROOT)} has no target {target}"
    instructions: list[tuple[str, str]] = []
    while target in stages:
        target, own = stages[target]
        instructions = own + instructions
    return instructions


def _build_args(name: str) -> dict[str, str]:
    return {str(key): str(value) for key, value in _services()[name]["build"]["args"].items()}


def _lock_closure(package: str) -> set[str]:
    """Every package `package` pulls in per uv.lock, with the extras it asks for (markers ignored)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    entries: dict[str, list[dict[str, Any]]] = {}
    for entry in lock["package"]:
        entries.setdefault(entry["name"], []).append(entry)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    pending: list[tuple[str, tuple[str, ...]]] = [(package, ())]
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        assert name in entries, f"uv.lock has no package {name}"
        for entry in entries[name]:
            dependencies = list(entry.get("dependencies", []))
            for extra in extras:
                dependencies += entry.get("optional-dependencies", {}).get(extra, [])
            pending += [(d["name"], tuple(sorted(d.get("extra", [])))) for d in dependencies]
    return {name for name, _ in seen}


def _workflow_steps(workflow: dict[Any, Any]) -> Iterator[str]:
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            yield str(step.get("run", ""))


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true
    triggers = workflow.get("on", workflow.get(True))
    if isinstance(triggers, str):
        return {triggers: None}
    if isinstance(triggers, list):
        return dict.fromkeys(triggers)
    assert isinstance(triggers, dict)
    return triggers


# -- real tools ------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert result.returncode == 0, result.stdout + result.stderr


# `docker compose config` (which needs no engine) runs in the compose workflow, where the plugin exists.


def test_dockerfile_passes_hadolint() -> None:
    assert DOCKERFILE.exists(), f"{DOCKERFILE.relative_to(ROOT)} is missing"
    result = _run([_tool("hadolint"), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)])
    assert result.returncode == 0, f"hadolint {DOCKERFILE.relative_to(ROOT)}:\n{result.stdout}{result.stderr}"


def test_there_are_workflows() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "compose.yml", "ui-nightly.yml"}


@pytest.mark.parametrize("schema", ["vendor.github-workflows", "custom.github-workflows-require-timeout"])
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_validates_against_the_github_schema(workflow: Path, schema: str) -> None:
    result = _run([_tool("check-jsonschema"), "--builtin-schema", schema, str(workflow)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_run_the_tests_the_stack_and_the_nightly_ui_tests() -> None:
    workflows = {path.name: yaml.safe_load(path.read_text()) for path in WORKFLOWS}
    ci = workflows["ci.yml"]
    assert {"push", "pull_request"} <= set(_triggers(ci))
    assert any("just test" in run for run in _workflow_steps(ci))
    stack = workflows["compose.yml"]
    assert any("just test-compose" in run for run in _workflow_steps(stack))
    # there, the official bases: the same variables a user sets
    (job,) = stack["jobs"].values()
    assert job["env"]["PYTHON_IMAGE"].startswith("python:3.11-slim") and job["env"]["REDIS_IMAGE"]
    nightly = workflows["ui-nightly.yml"]
    assert {"schedule", "workflow_dispatch"} <= set(_triggers(nightly))
    assert any("pytest tests/ui" in run for run in _workflow_steps(nightly))


# -- compose.yaml's structure ----------------------------------------------------------


def test_compose_has_no_obsolete_version_key() -> None:
    assert "version" not in _compose()


def test_compose_builds_each_app_from_the_repository_root_with_the_one_dockerfile() -> None:
    services = _services()
    assert {name for name, service in services.items() if "build" in service} == set(TARGETS)
    for name, package in TARGETS.items():
        build = services[name]["build"]
        assert build["context"] == ".", name
        assert ROOT / build["dockerfile"] == DOCKERFILE, name
        target = SAME_IMAGE.get(name, name)
        assert build["target"] == target and target in _stages(), name
        if name in SAME_IMAGE:
            assert build == services[target]["build"], f"{name} builds another image than {target}'s"
        assert _build_args(name)["PACKAGE"] == package, name
    # one definition: no Dockerfile of a service's own beside it
    assert not sorted(ROOT.glob("services/*/*Dockerfile*")), "services/ should hold no Dockerfile"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_compose_copies_the_sources_of_the_members_the_package_installs(name: str) -> None:
    """MEMBERS, the folders the image copies, are the workspace members in its package's closure
    (a virtual member, the mlflow server's, is its pyproject.toml alone)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    folders = {
        entry["name"]: entry["source"].get("editable") or entry["source"]["virtual"]
        for entry in lock["package"]
        if {"editable", "virtual"} & set(entry["source"])
    }
    expected = sorted(folders[member] for member in _lock_closure(TARGETS[name]) if member in folders)
    assert sorted(_build_args(name)["MEMBERS"].split()) == expected, name


@pytest.mark.parametrize("name", sorted(_services()))
def test_every_service_has_a_healthcheck(name: str) -> None:
    healthcheck = _services()[name].get("healthcheck") or {}
    assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


def test_healthchecks_probe_readiness() -> None:
    services = _services()

    def probe(name: str) -> str:
        test = services[name]["healthcheck"]["test"]
        return test if isinstance(test, str) else " ".join(test)

    assert "127.0.0.1:8001/readyz" in probe("model")
    assert "127.0.0.1:8000/readyz" in probe("gateway")
    assert "127.0.0.1:8501/_stcore/health" in probe("ui")
    assert "inspect ping" in probe("worker") and "$$HOSTNAME" in probe("worker")
    assert "/tmp/onepipe-beat-schedule.alive" in probe("beat")  # batch_worker.celery_app.HeartbeatScheduler
    assert "redis-cli ping" in probe("redis")
    assert "127.0.0.1:5000/health" in probe("mlflow")


def test_every_dependency_waits_until_healthy() -> None:
    found = 0
    for name, service in _services().items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on as a list only waits for the start"
        for peer, condition in depends_on.items():
            found += 1
            assert condition.get("condition") == "service_healthy", f"{name} -> {peer}"
    assert found


def test_model_and_redis_are_reachable_only_inside_the_stack() -> None:
    compose = _compose()
    networks = compose.get("networks") or {}
    for name in INTERNAL_ONLY:
        service = compose["services"][name]
        assert not service.get("ports"), f"{name} publishes ports"
        for network in _networks(service):
            assert (networks.get(network) or {}).get("internal") is True, f"{name} is on {network}"


def test_gateway_and_ui_are_published_and_reach_the_internal_network() -> None:
    compose = _compose()
    internal = {n for n, spec in (compose.get("networks") or {}).items() if (spec or {}).get("internal")}
    for name, port in PUBLISHED.items():
        service = compose["services"][name]
        assert (str(port), port) in _ports(service), f"{name} should publish {port}:{port}"
        assert internal & set(_networks(service)), f"{name} is not on the internal network"
    assert internal & set(_networks(compose["services"]["worker"]))


def _bound_address(port: object) -> str:
    """The host address a short-syntax port is published on by default ('' for every interface)."""
    parts = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(port)).split(":")
    return parts[0] if len(parts) == 3 else ""


@pytest.mark.parametrize(("name", "bind"), [("ui", "UI_BIND"), ("flower", None), ("mlflow", "MLFLOW_BIND")])
def test_services_without_a_login_are_published_on_loopback_only(name: str, bind: str | None) -> None:
    """The UI (which holds a key that runs jobs), Flower and MLflow's UI (which moves the champion)
    have no login: loopback unless told otherwise."""
    ports = _services()[name]["ports"]
    assert ports and all(_bound_address(port) == "127.0.0.1" for port in ports), ports
    if bind:
        assert all(str(port).startswith(f"${{{bind}:-127.0.0.1}}:") for port in ports), ports


def test_the_model_service_registers_in_the_mlflow_service_on_the_internal_network() -> None:
    compose = _compose()
    services, networks = compose["services"], compose.get("networks") or {}
    mlflow, model = services[REGISTRY_SERVER], services["model"]
    command = _command(mlflow)
    port = command[command.index("--port") + 1]
    assert command[:2] == ["mlflow", "server"] and command[command.index("--host") + 1] == "0.0.0.0"
    assert _environment(model)["MODEL_REGISTRY"] == f"http://{REGISTRY_SERVER}:{port}"
    assert model["depends_on"][REGISTRY_SERVER] == {"condition": "service_healthy"}
    # MLflow refuses a Host header it does not list: the name its peers use must be there
    assert f"{REGISTRY_SERVER}:{port}" in command[command.index("--allowed-hosts") + 1].split(",")
    # its peers reach it on the internal network; its UI's port is on a network of its own, not public
    internal = {n for n, spec in networks.items() if (spec or {}).get("internal")}
    on = set(_networks(mlflow))
    assert internal & on and "public" not in on, on
    (own,) = on - internal
    assert not (networks.get(own) or {}).get("internal"), f"{own} is internal: it would publish no port"
    assert [name for name, service in services.items() if own in _networks(service)] == [REGISTRY_SERVER]
    assert [target for _, target in _ports(mlflow)] == [int(port)]


def test_the_mlflow_store_and_artifacts_are_on_a_volume_the_app_user_owns() -> None:
    compose = _compose()
    mlflow = compose["services"][REGISTRY_SERVER]
    mounts = [str(volume).split(":") for volume in mlflow.get("volumes") or []]
    assert [m[:2] for m in mounts] == [["mlflow-data", MLFLOW_DATA]]
    assert "mlflow-data" in (compose.get("volumes") or {})
    command = _command(mlflow)
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{MLFLOW_DATA}/mlflow.db"
    assert command[command.index("--artifacts-destination") + 1].startswith(f"{MLFLOW_DATA}/")
    assert "--serve-artifacts" in command  # the model service has no path to the volume: it goes through
    # a new named volume takes the image's folder with its owner: the app user's, so the server writes
    runs = [a for k, a in _stages()[REGISTRY_SERVER][1] if k == "RUN"]
    assert runs == [f"mkdir -p {MLFLOW_DATA} && chown app:app {MLFLOW_DATA}"], runs


def test_no_container_names_and_the_worker_scales() -> None:
    services = _services()
    for name, service in services.items():
        assert "container_name" not in service, f"{name} has a container_name (it cannot be scaled)"
    assert not services["worker"].get("ports"), "a worker with ports cannot be scaled"


def test_storage_volume_is_shared_by_gateway_and_worker() -> None:
    compose = _compose()
    assert "storage" in (compose.get("volumes") or {})
    targets = set()
    for name in ["gateway", "worker"]:
        service = compose["services"][name]
        mounts = [str(volume).split(":") for volume in service.get("volumes") or []]
        target = next((m[1] for m in mounts if m[0] == "storage"), None)
        assert target, f"{name} does not mount the storage volume"
        assert _environment(service)["STORAGE_URL"] == target, f"{name}: STORAGE_URL is not on the volume"
        targets.add(target)
    assert len(targets) == 1


def test_redis_persists_its_queue() -> None:
    redis = _services()["redis"]
    command = _command(redis)
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(str(volume).endswith(":/data") for volume in redis.get("volumes") or [])


def test_flower_is_behind_the_monitoring_profile() -> None:
    flower = _services()["flower"]
    assert flower.get("profiles") == ["monitoring"]
    assert _environment(flower)["CELERY_BROKER_URL"] == "redis://redis:6379/0"


@pytest.mark.parametrize(("name", "variable"), sorted(REQUIRED_SECRETS.items()))
def test_required_secrets_stop_the_start_with_a_message(name: str, variable: str) -> None:
    value = _environment(_services()[name]).get(variable, "")
    match = INTERPOLATION.match(value)
    assert match and match["name"] == variable and match["op"] == ":?" and match["rest"].strip(), (
        f"{name}: {variable} should be ${{{variable}:?message}}, not {value!r}"
    )


def test_peers_by_service_name_and_listening_on_every_interface() -> None:
    services = _services()
    env = {name: _environment(services[name]) for name in APPS}
    model_port, gateway_port = env["model"]["MODEL_PORT"], env["gateway"]["GATEWAY_PORT"]
    for name in ["gateway", "worker", "ui"]:
        assert env[name]["MODEL_URL"] == f"http://model:{model_port}", name
    for name in ["gateway", "worker"]:
        assert env[name]["REDIS_URL"] == "redis://redis:6379/0", name
    assert env["ui"]["GATEWAY_URL"] == f"http://gateway:{gateway_port}"
    assert env["model"]["MODEL_HOST"] == "0.0.0.0"
    assert env["gateway"]["GATEWAY_HOST"] == "0.0.0.0"
    assert env["ui"]["STREAMLIT_SERVER_ADDRESS"] == "0.0.0.0"
    assert env["ui"]["STREAMLIT_SERVER_PORT"] == str(PUBLISHED["ui"])
    assert gateway_port == str(PUBLISHED["gateway"])


# -- the local runner and compose: same commands, same variables -----------------------


def test_procfile_and_compose_run_the_same_services() -> None:
    assert set(_procfile()) == set(APPS)


@pytest.mark.parametrize("name", sorted(APPS))
def test_compose_command_is_the_procfile_command(name: str) -> None:
    procfile = _procfile()
    assert name in procfile, f"the Procfile has no {name} line"
    assert _command(_services()[name]) == procfile[name]


@pytest.mark.parametrize("name", sorted(set(TARGETS) - set(SAME_IMAGE)))
def test_image_cmd_is_the_compose_command(name: str) -> None:
    commands = [arguments for keyword, arguments in _image(name) if keyword == "CMD"]
    assert commands, f"{name}: the image has no CMD"
    assert json.loads(commands[-1]) == _command(_services()[name])


@pytest.mark.parametrize("name", sorted(APPS))
def test_compose_sets_the_variables_the_service_reads(name: str) -> None:
    settings = _settings(APPS[name][2])
    reads = set(_variables(settings))
    prefix = FRAMEWORK_PREFIXES.get(name)
    sets = {key for key in _environment(_services()[name]) if not (prefix and key.startswith(prefix))}
    assert sets <= reads, f"{name}: compose sets variables the service never reads: {sorted(sets - reads)}"
    unset = reads - sets
    assert unset <= LEFT_TO_DEFAULTS[name], f"{name}: compose does not set {sorted(unset)}"


@pytest.mark.parametrize("name", sorted(APPS))
def test_compose_writes_no_settings_default(name: str) -> None:
    """A setting's default is written once, in its settings class: compose passes a setting through
    (no value), fixes the stack's own wiring, or requires a secret; it never restates a default."""
    settings = set(_variables(_settings(APPS[name][2])))
    environment = _services()[name].get("environment") or {}
    for key, value in environment.items():
        if key not in settings or value is None:
            continue
        match = INTERPOLATION.match(str(value))
        assert match is None or match["op"] == ":?", f"{name}: {key} restates a default: {value!r}"
        assert match is not None or key in FIXED_IN_COMPOSE, f"{name}: {key} is fixed to {value!r}"


# -- the images ------------------------------------------------------------------------


def test_dockerfile_builds_in_layers_without_buildkit_only_syntax() -> None:
    stages = _stages()
    instructions = _instructions(DOCKERFILE)
    text = "\n".join(f"{keyword} {arguments}" for keyword, arguments in instructions)
    # uv resolves the whole workspace: a manifests stage gathers every member's pyproject.toml
    assert re.search(r"^RUN .*find \. -name pyproject\.toml .*cp --parents", text, re.MULTILINE)
    build = stages["build"][1]
    assert ("COPY", "--from=manifests /manifests/ ./") in build
    syncs = [arguments for keyword, arguments in build if keyword == "RUN" and "uv sync" in arguments]
    assert len(syncs) == 2, "expected a dependencies sync, then a project sync"
    assert all(sync.count("--frozen") == sync.count("--no-dev") == sync.count("uv sync") for sync in syncs)
    # the package compose names, alone (the model adds its pipeline, --inexact); its dependencies first
    assert syncs[0].startswith('uv sync --frozen --no-dev --no-install-workspace --package "${PACKAGE:?')
    assert syncs[1].startswith('uv sync --frozen --no-dev --no-editable --package "${PACKAGE}"')
    assert build.index(("COPY", "--from=sources /sources/ ./")) > build.index(("RUN", syncs[0]))
    # the classic builder builds it too: no BuildKit-only syntax, no frontend to pull
    assert "--mount" not in text and "<<" not in text
    assert "syntax=" not in DOCKERFILE.read_text().split("\n", 1)[0]
    arguments = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    assert arguments["PYTHON_IMAGE"].startswith("python:3.11-slim"), arguments
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", arguments["UV_IMAGE"]), arguments
    assert stages["uv"][0] == "${UV_IMAGE}" and ("COPY", "--from=uv /uv /uvx /bin/") in build
    bases = {base for base, _ in stages.values()}
    assert bases <= {"${PYTHON_IMAGE}", "${UV_IMAGE}", *stages}, bases


def test_no_target_builds_another_ones_expensive_steps() -> None:
    """The classic builder runs every stage above the target: the light targets come before the
    model's training, and none of the targets installs or trains anything itself."""
    order = list(_stages())
    for name in ["gateway", "worker", "ui", REGISTRY_SERVER]:
        assert order.index(name) < order.index("train"), f"building {name} would train the model"
    for name in TARGETS:
        runs = [a for k, a in _stages()[SAME_IMAGE.get(name, name)][1] if k == "RUN"]
        assert all(run.startswith("mkdir ") for run in runs), f"{name}: {runs}"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_image_has_only_the_venv_and_runs_as_a_numeric_non_root_user(name: str) -> None:
    image = _image(SAME_IMAGE.get(name, name))
    # compose passes the same bases on, with the same defaults, so a user can swap them
    instructions = _instructions(DOCKERFILE)
    arguments = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    for variable in ("PYTHON_IMAGE", "UV_IMAGE"):
        assert _build_args(name)[variable] == f"${{{variable}:-{arguments[variable]}}}", (name, variable)
    assert ("COPY", "--from=build /app/.venv /app/.venv") in image
    assert not any(k == "RUN" and "uv " in a for k, a in image), "the image's stages run uv"
    users = [arguments for keyword, arguments in image if keyword == "USER"]
    assert users and users[-1] == "10001:10001", f"{name} runs as {users}"
    last_user = max(i for i, (keyword, _) in enumerate(image) if keyword == "USER")
    assert not [k for k, _ in image[last_user:] if k in {"RUN", "COPY"}], f"{name}: root after USER"
    assert any(k == "ENV" and "PATH=/app/.venv/bin:$PATH" in a for k, a in image)
    exposed = [int(a) for k, a in image if k == "EXPOSE"]
    published = [port for _, port in _ports(_services()[name])]
    assert exposed == ([8001] if name == "model" else published), f"{name}: EXPOSE {exposed}"


def test_model_image_trains_its_artifacts_at_build_time() -> None:
    train = _stages()["train"]
    assert train[0] == "build"
    assert any(k == "RUN" and a.endswith("model-service train") for k, a in train[1])
    image = _image("model")
    assert ("COPY", "--from=train /app/artifacts /app/artifacts") in image
    assert ("EXPOSE", "8001") in image
    assert _environment(_services()["model"])["MODEL_ARTIFACTS_DIR"] == "/app/artifacts"
    # the pipeline it installs, trains and serves: compose passes both, with the example as default
    arguments = _build_args("model")
    assert arguments["PIPELINE_DIR"] == "${PIPELINE_DIR:-pipelines/review-triage}"
    assert arguments["MODEL_PIPELINE"] == "${MODEL_PIPELINE:-review_triage.pipeline:pipeline}"
    assert not {"PIPELINE_DIR", "MODEL_PIPELINE"} & {
        key for name in ("gateway", "worker", "ui") for key in _build_args(name)
    }


def test_ui_image_has_the_app_script_at_the_command_path() -> None:
    script = _command(_services()["ui"])[2]
    assert (ROOT / script).exists(), f"{script} is missing"
    image = _image("ui")
    workdir = [arguments for keyword, arguments in image if keyword == "WORKDIR"][-1]
    target = PurePosixPath(workdir) / script
    copied = [PurePosixPath(a.split()[-1]) for k, a in image if k == "COPY"]
    assert any(target == dest or dest in target.parents for dest in copied if str(dest) != "/app/.venv"), (
        f"the image copies nothing to {target}"
    )


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    expected = {".git", ".venv", "artifacts", "data", "test-output", ".env", ".mypy_cache", ".pytest_cache"}
    assert expected <= ignored, f".dockerignore misses {sorted(expected - ignored)}"


# Runs in the image's venv: imports every module of the service's package, and for a
# script the command runs (streamlit run ...) the modules the script imports.
IMPORT_CHECK = """
import ast, importlib, pkgutil, sys
package, scripts = sys.argv[1], sys.argv[2:]
names = [m.name for m in pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")]
for script in scripts:
    names.remove(package + "." + script.rsplit("/", 1)[-1].removesuffix(".py"))
    for node in ast.walk(ast.parse(open(script).read())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.parametrize(
    "name",
    ["model", "gateway", "worker", "ui"],
)
def test_image_venv_has_every_module_the_service_imports(name: str, tmp_path: Path) -> None:
    """The one check that installs: the image's venv, built the Dockerfile's way (only the
    service's package, no dev group, not editable) from the uv cache, imports the service's code.

    The dev venv has every package, so the other tests cannot see a dependency that a
    service imports but does not declare; the image would crash on start.
    """
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = root["tool"]["uv"]["workspace"]["members"]
    members = sorted(str(p.parent.relative_to(ROOT)) for g in globs for p in ROOT.glob(f"{g}/pyproject.toml"))
    for member in members:
        (tmp_path / member).mkdir(parents=True)
        shutil.copy(ROOT / member / "pyproject.toml", tmp_path / member)
        if (ROOT / member / "src").is_dir():  # a virtual member (the mlflow server's) has no code
            shutil.copytree(
                ROOT / member / "src", tmp_path / member / "src", ignore=shutil.ignore_patterns("__pycache__")
            )
    for file in ["uv.lock", "pyproject.toml"]:
        shutil.copy(ROOT / file, tmp_path)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"UV_PROJECT_ENVIRONMENT": str(venv)}
    package = APPS[name][1]
    sync = subprocess.run(
        [
            uv,
            "sync",
            "--frozen",
            "--no-dev",
            "--no-editable",
            "--package",
            package,
            "--python",
            sys.executable,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert sync.returncode == 0, sync.stderr
    command = _command(_services()[name])
    scripts = [command[2]] if command[:2] == ["streamlit", "run"] else []
    module = APPS[name][2].split(".")[0]
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IMPORT_CHECK, module, *[str(ROOT / s) for s in scripts]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, f"the {name} image cannot import:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("package", ["gateway", "batch-worker", "ui-service"])
def test_light_images_carry_no_ml_libraries(package: str) -> None:
    closure = _lock_closure(package)
    assert package in closure and "onepipe" in closure
    assert not closure & ML_LIBRARIES, f"{package} pulls in {sorted(closure & ML_LIBRARIES)}"


def test_only_the_mlflow_image_has_the_mlflow_server_and_its_client_is_the_same_release() -> None:
    """The model service has MLflow's client alone (mlflow-skinny); the server, its UI and their
    dependencies (Flask, pandas, scikit-learn...) are the mlflow image's, whose pin makes the client the
    server's own release."""
    assert "mlflow" not in _lock_closure("model-service")
    assert "mlflow-skinny" in _lock_closure("model-service")
    for light in ("gateway", "batch-worker", "ui-service"):
        assert not {"mlflow", "mlflow-skinny"} & _lock_closure(light), light
    server = _lock_closure(TARGETS[REGISTRY_SERVER])
    assert {"mlflow", "mlflow-skinny"} <= server and not {"onepipe", "review-triage"} & server
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions = {e["name"]: e["version"] for e in lock["package"] if e["name"].startswith("mlflow")}
    assert versions["mlflow"] == versions["mlflow-skinny"], versions


def test_the_model_image_gets_its_ml_libraries_from_the_pipeline_it_is_built_with() -> None:
    # the model service names no pipeline: its image holds the one PIPELINE_DIR names, with its libraries
    assert not _lock_closure("model-service") & ML_LIBRARIES
    assert {"onnxruntime", "scikit-learn", "review-triage"} <= _lock_closure("review-triage")
