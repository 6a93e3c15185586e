"""The blocking client for the public gateway, with an API key: batch jobs, cases and versions for
`just batch`, `just cases` and the UI (the model service's clients are in onepipe.platform.http.client)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any

import httpx

from onepipe.platform.http.client import (  # the same transport rules as the model service clients
    ServiceClient,
    ServiceUnavailableError,
    _check,
    _RetryableError,
    _transport_error,
)


class GatewayClient(ServiceClient):
    """Blocking client for the public gateway, with an API key: batch jobs (`just batch`, the UI)."""

    service = "gateway"

    def __init__(self, base_url: str, api_key: str, **kwargs: Any) -> None:
        super().__init__(base_url, headers={"X-API-Key": api_key}, **kwargs)

    def submit_job(
        self,
        file_name: str,
        content: IO[bytes],
        mapping: Mapping[str, str] | None = None,
        flags: Mapping[str, Any] | None = None,
        compare_flags: Mapping[str, Any] | None = None,
        truth: Mapping[str, str] | None = None,
        version: str | None = None,
        compare_version: str | None = None,
    ) -> dict[str, Any]:
        """Queue a batch job over a file; returns the job as the gateway shows it.

        `version`, `compare_version`: the version to run with, and a second one to compare (the key
        needs the `versions` scope); unset: the champion, no second version."""
        form = {
            "mapping": json.dumps(dict(mapping or {})),
            "flags": json.dumps(dict(flags or {})),
            "truth": json.dumps(dict(truth or {})),
        }
        if compare_flags is not None:
            form["compare_flags"] = json.dumps(dict(compare_flags))
        for name, ref in (("version", version), ("compare_version", compare_version)):
            if ref is not None:
                form[name] = ref
        # an upload is not retried: the stream would have to be rewound; what would be worth
        # another try (unreachable, or a 503: the queue or the model service down) is final here
        try:
            sent = _check(
                self.service, self._http.post("/v1/jobs", data=form, files={"file": (file_name, content)})
            )
        except httpx.TransportError as error:
            failure = _transport_error(self.service, "POST", "/v1/jobs", error)
            if isinstance(failure, _RetryableError):
                reason = f"unavailable at {self.base_url}: {failure}"
                failure = ServiceUnavailableError(self.service, reason, 503)
            raise failure from None
        except _RetryableError as error:
            reason = f"unavailable at {self.base_url}: {error}"
            raise ServiceUnavailableError(self.service, reason, 503, error.detail) from None
        return dict(sent.json())

    def report_case(
        self,
        inputs: Mapping[str, Any],
        flags: Mapping[str, Any],
        expected: Mapping[str, Any],
        note: str = "",
        source: str = "app",
    ) -> dict[str, Any]:
        """Report an answer judged wrong, for the edge-case library; returns the case as kept."""
        body = {"input": dict(inputs), "flags": dict(flags), "expected": dict(expected), "note": note}
        return dict(self._request("POST", "/v1/cases", json=body | {"source": source}).json())

    def cases(self, offset: int = 0, limit: int = 20) -> dict[str, Any]:
        """The reported cases not yet merged into the library, newest first."""
        return dict(self._request("GET", "/v1/cases", params={"offset": offset, "limit": limit}).json())

    def case_library(self) -> dict[str, Any]:
        """The edge-case library replayed on the champion: each case, its answer, right or wrong (a
        LibraryReplay; the key needs the `feedback` scope)."""
        return dict(self._request("GET", "/v1/cases/library").json())

    def versions(self) -> dict[str, Any]:
        """The registered versions, the registry's state and the last promotion's evidence (a VersionList)."""
        return dict(self._request("GET", "/v1/versions").json())

    def checks(self) -> dict[str, Any]:
        """The latest scheduled check of the versions and the ones before it (a CheckList)."""
        return dict(self._request("GET", "/v1/versions/checks").json())

    def shadow(self, since: datetime | None = None) -> dict[str, Any]:
        """What shadowing live traffic to the challenger found since `since` (a ShadowSummary; the key
        needs the `versions` scope). Unset: since the pair's first record, in effect since the
        challenger was set."""
        params = {"since": since.isoformat()} if since is not None else {}
        return dict(self._request("GET", "/v1/versions/shadow", params=params).json())

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's state and progress."""
        return dict(self._request("GET", f"/v1/jobs/{job_id}").json())

    def jobs(self, offset: int = 0, limit: int = 20) -> dict[str, Any]:
        """Recent jobs, newest first."""
        return dict(self._request("GET", "/v1/jobs", params={"offset": offset, "limit": limit}).json())

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Stop a queued or running job; returns the job as the gateway shows it."""
        return dict(self._request("DELETE", f"/v1/jobs/{job_id}").json())

    def resume_job(self, job_id: str) -> dict[str, Any]:
        """Queue a paused, failed, cancelled or stuck job again (rows already done are kept); returns the
        job."""
        return dict(self._request("POST", f"/v1/jobs/{job_id}/resume").json())

    def report(self, job_id: str, file_format: str) -> bytes:
        """A finished job's report, as bytes."""
        return self._request("GET", f"/v1/jobs/{job_id}/report.{file_format}").content

    def compare(self, job_id: str, other_id: str) -> dict[str, Any]:
        """What changed from job A to job B (two succeeded jobs on the same file), as the gateway shows it."""
        return dict(self._request("GET", f"/v1/jobs/{job_id}/compare/{other_id}").json())

    def compare_page(self, job_id: str, other_id: str) -> bytes:
        """The comparison of two jobs as an HTML page."""
        return self._request("GET", f"/v1/jobs/{job_id}/compare/{other_id}.html").content
