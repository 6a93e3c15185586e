"""The UI's peers, the model service and the gateway: shared clients, cached answers, failures in words."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st

from onepipe import PipelineInfo
from onepipe.platform.http.client import ModelServiceClient, RetryPolicy, ServiceError
from onepipe.platform.http.gateway_client import GatewayClient
from ui_service import views
from ui_service.settings import Settings

T = TypeVar("T")
QUICK = RetryPolicy(attempts=2, backoff_min=0.2, backoff_max=0.5)


@st.cache_resource
def model_client(url: str, timeout: float) -> ModelServiceClient:
    """The shared client for the model service at `url`."""
    return ModelServiceClient(url, timeout=timeout, retry=QUICK)


@st.cache_resource
def gateway_client(url: str, api_key: str, timeout: float) -> GatewayClient:
    """The shared client for the gateway at `url` (batch jobs, reported cases)."""
    return GatewayClient(url, api_key, timeout=timeout, retry=QUICK)


@st.cache_data(ttl=30, show_spinner=False)
def _pipeline_json(url: str, timeout: float) -> dict[str, Any]:
    """The pipeline's description from the model service at `url`, kept 30 s (reruns do not ask again)."""
    return model_client(url, timeout).pipeline().model_dump(mode="json")


@st.cache_data(max_entries=32, show_spinner=False)
def _report(url: str, api_key: str, timeout: float, job_id: str, file_format: str) -> bytes:
    """A succeeded job's report (it never changes once written), fetched once."""
    return gateway_client(url, api_key, timeout).report(job_id, file_format)


def attempt(service: str, call: Callable[[], T]) -> T | None:
    """Call a service; on any failure say which one and what to do in one sentence, and carry on."""
    try:
        return call()
    except ServiceError as error:
        st.error(views.problem_text(service, error), icon=":material/error:")
    except Exception as error:  # never a traceback on the page: the log gets it
        traceback.print_exc(file=sys.stderr)
        st.error(views.problem_text(service, error), icon=":material/error:")
    return None


@dataclass(frozen=True)
class Peers:
    """The services a page calls, as this run's settings name them."""

    settings: Settings

    def model(self) -> ModelServiceClient:
        """The model service's client."""
        return model_client(self.settings.model_url, self.settings.timeout)

    def gateway(self) -> GatewayClient:
        """The gateway's client, with the UI's key."""
        return gateway_client(self.settings.gateway_url, self.settings.api_key, self.settings.timeout)

    def pipeline_info(self) -> PipelineInfo | None:
        """The pipeline's description (cached), or None with a message when the model service is down."""
        found = attempt(
            "model service", lambda: _pipeline_json(self.settings.model_url, self.settings.timeout)
        )
        return PipelineInfo.model_validate(found) if found is not None else None

    def report(self, job_id: str, file_format: str) -> bytes | None:
        """A succeeded job's report file, or None with a message when the gateway fails."""
        settings = self.settings
        return attempt(
            "gateway",
            lambda: _report(settings.gateway_url, settings.api_key, settings.timeout, job_id, file_format),
        )

    def predict(self, inputs: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any] | None:
        """One input through the model service with debug on: its output, trace and how long it took."""
        started = time.perf_counter()
        answer = attempt("model service", lambda: self.model().predict([inputs], flags, debug=True))
        if answer is None or not answer.traces:
            return None
        return {
            "version": answer.version,
            "output": answer.outputs[0],
            "trace": answer.traces[0].model_dump(mode="json"),
            "answered_ms": (time.perf_counter() - started) * 1000,
        }
