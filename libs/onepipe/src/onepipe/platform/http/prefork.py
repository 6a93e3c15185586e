"""Worker processes forked from a parent that imported the app's modules once (gunicorn + uvicorn's worker).

The parent imports (the pipeline and its libraries: most of a start), then gunicorn forks the
workers, which share those pages copy-on-write; each worker then builds its app and loads its own
models. No model, ONNX Runtime session, thread pool or registry connection is made before the fork:
an ONNX Runtime session inherited across a fork has lost its thread pool, and a database connection
must not be shared by two processes; a worker ends with `os._exit`, as ONNX Runtime's exit handler,
inherited from the parent's import, waits forever on the parent's threads (docs/performance.md,
finding 9).

Importing this module imports no prometheus-client: the parent sets its multiprocess folder
(`share_metrics`) before anything does, as prometheus-client picks its mode at import.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import tempfile
from typing import Any, ClassVar, NoReturn

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer
from uvicorn.importer import import_from_string
from uvicorn_worker import UvicornWorker

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# below compose's default stop_grace_period (10 s), which then SIGKILLs; a predict takes milliseconds
GRACEFUL_SHUTDOWN_SECONDS = 5
# a worker whose event loop has not ticked for this long is replaced (gunicorn's heartbeat); far
# above a load, as a worker loads its models before its loop ticks
HEARTBEAT_SECONDS = 120
KEEP_ALIVE_SECONDS = 5  # uvicorn's own default (gunicorn's is 2): callers keep their pooled connections


def share_metrics() -> None:
    """Point prometheus-client at a fresh folder that every worker writes its metrics to.

    Call it before anything imports prometheus-client: it picks its mode (one process or several)
    when imported, and forked workers inherit that choice.
    """
    os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="onepipe-metrics-")


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn serving in a gunicorn worker, with the graceful shutdown of `serve`'s single process."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


class RootLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's own lines through the root logger, so they come out as the service's JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers = []
            logger.propagate = True


class ForkedWorkers(BaseApplication):  # type: ignore[misc]
    """gunicorn running the app that `factory` (module:function) makes, built in each worker."""

    def __init__(self, factory: str, options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        return import_from_string(self.factory)()


def run_forked(factory: str, host: str, port: int, workers: int) -> int:
    """Fork `workers` processes from this one and serve until stopped; the exit status gunicorn gave.

    3 (gunicorn's and uvicorn's "worker failed to boot"): a worker could not start, and every
    worker was stopped.
    """
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": Worker,
        "logger_class": RootLogger,
        "loglevel": logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
        "timeout": HEARTBEAT_SECONDS,
        "graceful_timeout": GRACEFUL_SHUTDOWN_SECONDS + 2,
        "keepalive": KEEP_ALIVE_SECONDS,
        "control_socket_disable": True,  # gunicornc's socket: one path per user, shared by every service
    }
    # what was imported stays shared: a collection in a worker would write to every object's header
    # and so copy the page holding it (Python's gc docs: freeze before fork)
    gc.freeze()
    parent = os.getpid()
    try:
        ForkedWorkers(factory, options).run()
    except SystemExit as stopped:
        code = stopped.code if isinstance(stopped.code, int) else 1
        if os.getpid() != parent:  # a worker, ending: SystemExit raised through gunicorn's fork
            _exit_worker(code)
        return code
    except HaltServer as halted:  # raised again when a second worker also failed to boot while stopping
        return int(halted.exit_status)
    return 0


def _exit_worker(code: int) -> NoReturn:
    """End a forked worker as multiprocessing ends its forked children: without the C exit handlers
    inherited from the parent. ONNX Runtime's, registered when the parent imported it, wait for
    the parent's threads and hang the worker forever (measured: docs/performance.md, finding 9)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
