"""The services' JSON log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from onepipe.platform.logs import configure_logging, request_id_var


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers, root.level
    configure_logging("svc")
    written = io.StringIO()
    root.handlers[0].setStream(written)  # type: ignore[attr-defined]
    yield written
    root.handlers, root.level = handlers, level


def test_lines_are_json_with_the_time_as_logging_writes_it(lines: io.StringIO) -> None:
    # the time to the millisecond, as logging's own formatter writes it, across a second's edge
    times = [1_700_000_000.042, 1_700_000_000.9999, 1_700_000_001.0, 1_700_000_000.5]
    records = []
    token = request_id_var.set("r-1")
    try:
        for created in times:
            record = logging.LogRecord("svc.part", logging.INFO, __file__, 1, "ready %s", ("now",), None)
            record.created, record.msecs = created, (created - int(created)) * 1000
            record.count = 3
            logging.getLogger().handle(record)
            records.append(record)
    finally:
        request_id_var.reset(token)
    written = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [line["time"] for line in written] == [logging.Formatter().formatTime(r) for r in records]
    assert len({line["time"] for line in written}) == 4
    assert written[0] == {
        "time": written[0]["time"],
        "level": "INFO",
        "logger": "svc.part",
        "message": "ready now",
        "request_id": "r-1",
        "service": "svc",
        "count": 3,
    }
