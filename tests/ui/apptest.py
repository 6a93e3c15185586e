"""What the UI's AppTest tests do on a page: read its errors, upload a file, submit a job and wait for it."""

from __future__ import annotations

import time
from typing import Any

from streamlit.testing.v1 import AppTest


def errors_on(at: AppTest) -> list[str]:
    """The page's error messages."""
    return [e.value for e in at.error]


def assert_clean(at: AppTest) -> None:
    """No exception and no error on the page."""
    assert not at.exception, at.exception
    assert not at.error, errors_on(at)


def upload_file(at: AppTest, name: str, content: bytes) -> None:
    """A file given to the Batch jobs page's uploader."""
    kind = "application/jsonl" if name.endswith(".jsonl") else "text/csv"
    at.file_uploader(key="batch.file").set_value((name, content, kind)).run()


def submit_and_wait(at: AppTest, rows: int) -> None:
    """Submit the batch form, then rerun the page until the job's success shows every row done."""
    at.button(key="batch.submit").click().run()
    assert_clean(at)
    deadline = time.monotonic() + 120
    while not at.success and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert at.success and f"{rows} rows, 0 failed" in at.success[0].value


def jobs_table(at: AppTest) -> Any:
    """The Batch jobs page's table of jobs, as a DataFrame."""
    return next(d.value for d in at.dataframe if "File" in d.value.columns)
