"""A compose project driven from a test: `docker compose` with its own name, env file and ports.

The project never reads the developer's `.env`: every variable comes from the env file the
test writes, and the base images are the ones named in the environment (the stand-ins from
`just images-local` unless the caller names others), passed as a user would pass them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from onepipe_harness.processes import OUTPUT, ROOT

# The variables a user sets to build on other base images (compose.yaml passes them on).
BASE_IMAGES = {
    "PYTHON_IMAGE": "onepipe-local/python:3.11",
    "UV_IMAGE": "onepipe-local/uv:0.13.9",
    "REDIS_IMAGE": "onepipe-local/redis:7",
}
FIGURES = OUTPUT / "compose-figures.json"


def base_images() -> dict[str, str]:
    """The base images to build on: the environment's, else the local stand-ins."""
    return {name: os.environ.get(name) or default for name, default in BASE_IMAGES.items()}


def record(name: str, value: Any) -> None:
    """Keep a measured figure (image sizes, times) in test-output/compose-figures.json."""
    OUTPUT.mkdir(exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = value
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")


@dataclass
class ComposeStack:
    """One compose project: `docker compose -p NAME --env-file FILE -f compose.yaml [-f override]`."""

    project: str
    env_file: Path
    overrides: list[Path] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        files = [arg for path in [ROOT / "compose.yaml", *self.overrides] for arg in ("-f", str(path))]
        return ["docker", "compose", "-p", self.project, "--env-file", str(self.env_file), *files, *args]

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a compose command; a failure shows its output."""
        # only what docker itself needs from this process: nothing else leaks into interpolation
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG")}
        done = subprocess.run(
            self.command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers."""
        return self.run("ps", "-q", service).stdout.split()

    def logs(self, *services: str) -> str:
        return self.run("logs", "--no-color", *services, check=False).stdout

    def up_wait(self, *args: str, timeout: float = 600) -> float:
        """`up -d --wait` and the seconds it took to have every service healthy."""
        started = time.monotonic()
        done = self.run("up", "-d", "--wait", "--wait-timeout", str(int(timeout)), *args, check=False)
        took = time.monotonic() - started
        if done.returncode != 0:
            raise AssertionError(f"up --wait failed:\n{done.stderr}\n{self.logs()[-6000:]}")
        return took

    def down(self) -> None:
        """Keep every container's logs in test-output/, then remove the project with its volumes."""
        if logs := self.logs():
            (OUTPUT / f"{self.project}.log").write_text(logs)
        self.run("down", "-v", "--remove-orphans")

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes of this project still on the engine."""
        label = f"label=com.docker.compose.project={self.project}"
        found: dict[str, list[str]] = {}
        for kind in ("container", "network", "volume"):
            listed = ["docker", kind, "ls", "-q", "--filter", label]
            if kind == "container":
                listed.insert(3, "-a")
            found[kind] = subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split()
        return found


@dataclass
class Gateway:
    """The gateway's published port, with the test's key."""

    url: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, headers=self.headers, timeout=60, **kwargs)

    def submit(self, name: str, content: bytes, **form: Any) -> dict[str, Any]:
        answer = self.post(
            "/v1/jobs", files={"file": (name, content)}, data={k: json.dumps(v) for k, v in form.items()}
        )
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def progress(self, job: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The job's state, polled until it ends (at most 10 minutes)."""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(job["url"], headers=self.headers, timeout=10)
            except httpx.TransportError:
                time.sleep(0.5)  # the gateway restarting along with a fault
                continue
            assert answer.status_code == 200, f"job {job['id']}: {answer.status_code} {answer.text}"
            current = answer.json()
            yield current
            if current["state"] in ("succeeded", "failed", "cancelled"):
                return
            time.sleep(0.25)
        raise TimeoutError(f"job {job['id']} did not finish in 10 minutes")

    def wait(self, job: dict[str, Any]) -> dict[str, Any]:
        *_, last = self.progress(job)
        return last

    def wait_rows(self, job: dict[str, Any], rows: int) -> dict[str, Any]:
        """Block until the job has at least `rows` rows done (it must still be running)."""
        for current in self.progress(job):
            if current["rows_done"] >= rows:
                assert current["state"] == "running", current
                return current
        raise AssertionError(f"job {job['id']} ended before {rows} rows")

    def report_rows(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        answer = httpx.get(job["reports"]["jsonl"], headers=self.headers, timeout=120)
        assert answer.status_code == 200, answer.text
        return [json.loads(line) for line in answer.text.splitlines()]
