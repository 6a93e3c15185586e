"""Real processes and servers: free ports, service subprocesses, a private Redis, ASGI apps on a thread."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[4]  # the workspace: libs/harness/src/onepipe_harness/
OUTPUT = ROOT / "test-output"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """The local addresses TCP sockets listen on at `port` (Linux: read from /proc/net)."""
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            flipped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(str(ipaddress.ip_address(flipped)))
    return found


class ServiceProcess:
    """A service started as its own process (as `just up` and compose start it), logs to test-output/."""

    def __init__(
        self, name: str, command: list[str], env: Mapping[str, str], port: int, ready_log: str | None = None
    ) -> None:
        self.name, self.command, self.port, self.ready_log = name, command, port, ready_log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.url = f"http://127.0.0.1:{port}"
        OUTPUT.mkdir(exist_ok=True)
        self.log_path = OUTPUT / f"{name}-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Start the process (it may still be loading)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True
        )
        self._log_start = self.log_path.stat().st_size if self.ready_log else 0
        return self

    def wait_ready(self, path: str = "/readyz", timeout: float = 120) -> None:
        """Wait until `path` answers 200, or fail with the process's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()[-5000:]}"
                )
            if self.ready_log is not None:
                if self.ready_log in self.log_path.read_text(errors="replace")[self._log_start :]:
                    return
            else:
                try:
                    if httpx.get(self.url + path, timeout=2).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log()[-5000:]}")

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """What the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_with(self, text: str, timeout: float = 10.0) -> str:
        """The log once it holds `text` (a request's line lands just after its answer), or as it is then."""
        deadline = time.monotonic() + timeout
        while text not in (found := self.log()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    def __enter__(self) -> ServiceProcess:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def model_service(port: int, **env: str) -> ServiceProcess:
    """The model service process, started with the same command as `just up`."""
    return ServiceProcess(
        "model",
        ["uv", "run", "--frozen", "--no-sync", "model-service", "serve"],
        # one process unless a test asks for more: quicker starts, and a kill stops the one pipeline;
        # no registry unless a test gives one (the artifacts folder alone, never the checkout's data/)
        {"MODEL_PORT": str(port), "MODEL_WORKERS": "1", "MODEL_REGISTRY": "none", **env},
        port,
    )


def worker(**env: str) -> ServiceProcess:
    """A batch worker process, started with the same command as `just up`."""
    return ServiceProcess(
        "worker",
        [
            "uv",
            "run",
            "--frozen",
            "--no-sync",
            "celery",
            "-A",
            "batch_worker.celery_app",
            "worker",
            "--queues",
            "jobs",
            "--loglevel",
            "INFO",
            "--hostname",
            f"worker-{free_port()}@%h",
        ],
        env,
        free_port(),  # names its log file only: a worker listens on no port
        ready_log=" ready.",
    )


def beat(schedule: Path, **env: str) -> ServiceProcess:
    """The beat process that sends the scheduled checks, started with the same command as `just up`
    but its schedule file (and heartbeat) at `schedule`, apart from any other beat on the machine."""
    return ServiceProcess(
        "beat",
        [
            *("uv", "run", "--frozen", "--no-sync", "celery", "-A", "batch_worker.celery_app", "beat"),
            *("--loglevel", "INFO", "--schedule", str(schedule)),
        ],
        env,
        free_port(),  # names its log file only
        ready_log="beat: Starting",
    )


class ThreadedServer:
    """An ASGI app served by a real uvicorn on a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def gateway(port: int, model_url: str, **env: str) -> ServiceProcess:
    """The gateway process, started with the same command as `just up`."""
    return ServiceProcess(
        "gateway",
        ["uv", "run", "--frozen", "--no-sync", "gateway", "serve"],
        {"GATEWAY_PORT": str(port), "MODEL_URL": model_url, **env},
        port,
    )


class RedisServer:
    """A redis-server of the test run's own, on a free port: the tests touch no other Redis."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("the tests need Redis: apt-get install redis-server (Debian)")
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.start()

    def start(self) -> None:
        """Start the server (again, after `stop`: on the same port, empty, as nothing is saved)."""
        folder = self.folder
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
                "--logfile",
                str(folder / "redis.log"),
            ],
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start; see {folder / 'redis.log'}") from None
                time.sleep(0.05)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    """The process ids below `pid`, children first (Linux: read from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command may hold spaces and parentheses: the parent's id follows the last ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, level = [], [pid]
    while level:
        level = [child for parent in level for child in parents.get(parent, [])]
        found.extend(level)
    return found
