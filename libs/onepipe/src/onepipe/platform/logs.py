"""JSON logs for every service: one line per record, with the service name and the request id.

Needs the `logs` extra (python-json-logger); no web framework.
"""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# the id of the request being served, set by the HTTP services' middleware
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr, each with the service name and the current request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{request_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
            # uvicorn adds a copy of each message with ANSI colour codes: not for JSON lines
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )
    )
    # what no line here holds is not gathered for each record (the Logging HOWTO's "Optimization"):
    # the caller's file and line (a walk up the stack), the thread's and the process's names
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # RequestContextMiddleware logs each request
