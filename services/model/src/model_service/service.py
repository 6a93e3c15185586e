"""The model service's logic, reachable without a server: loading, readiness, predict."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from model_service import metrics
from model_service.batching import MicroBatcher
from model_service.settings import Settings
from onepipe import LoadedPipeline, Pipeline, PipelineInfo, Problem
from onepipe.platform.http.envelopes import PredictRequest, PredictResponse
from onepipe.platform.http.server import ProblemError

log = logging.getLogger("model_service")
RETRY_AFTER_LOADING = "2"


class ModelService:
    """Holds the loaded pipeline (once it is) and answers predicts through the micro-batcher."""

    def __init__(self, definition: Pipeline[Any, Any, Any], settings: Settings) -> None:
        self.definition = definition
        self.settings = settings
        self.loaded: LoadedPipeline[Any, Any, Any] | None = None
        self.batcher: MicroBatcher | None = None
        self.load_error: str | None = None

    @property
    def artifacts(self) -> Any:
        """This pipeline's artifacts folder."""
        return self.settings.artifacts_for(self.definition.name)

    def check(self) -> None:
        """Fail fast (ArtifactsError) when artifacts are missing or stale: no model is loaded yet."""
        self.definition.check_artifacts(self.artifacts)

    async def load(self) -> None:
        """Load the pipeline's resources off the event loop; /readyz answers 503 until done."""
        try:
            loaded = await asyncio.to_thread(self.definition.load, self.artifacts)
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            log.exception("loading the pipeline failed")
            return
        self.batcher = MicroBatcher(
            loaded,
            enabled=self.settings.batching,
            max_size=self.settings.batch_max_size,
            max_wait_s=self.settings.batch_max_wait_ms / 1000,
            on_run=_observe_run,
            on_step=lambda step, seconds: metrics.STEP_SECONDS.labels(step).observe(seconds),
        )
        self.loaded = loaded
        log.info("pipeline ready", extra={"pipeline": loaded.name, "version": loaded.version})

    async def close(self) -> None:
        """Stop the micro-batcher."""
        if self.batcher is not None:
            await self.batcher.close()

    def ready(self) -> LoadedPipeline[Any, Any, Any]:
        """The loaded pipeline, or a 503 problem saying why it is not ready."""
        if self.loaded is not None:
            return self.loaded
        if self.load_error is not None:
            raise ProblemError(503, "Pipeline failed to load", self.load_error)
        raise ProblemError(
            503,
            "Pipeline loading",
            f"the model service is still loading pipeline {self.definition.name!r}; retry shortly",
            headers={"Retry-After": RETRY_AFTER_LOADING},
        )

    def describe(self) -> PipelineInfo:
        """What the pipeline is and does."""
        return self.ready().describe()

    async def predict(self, request: PredictRequest) -> PredictResponse:
        """Validate, check the limits, run (micro-batched), answer."""
        loaded = self.ready()
        limit = self.settings.max_inputs
        if len(request.inputs) > limit:
            raise ProblemError(
                413,
                "Too many inputs",
                f"inputs: {len(request.inputs)} inputs is over the limit of {limit} per request",
                errors=[Problem(loc="inputs", message=f"at most {limit} inputs per request")],
            )
        # strict: a JSON value of another type than the schema's is refused, never converted
        inputs, flags = loaded.definition.validate_request(request.inputs, request.flags, strict=True)
        assert self.batcher is not None  # set together with self.loaded
        result = await self.batcher.predict(inputs, flags, request.debug)
        return PredictResponse(
            version=result.version,
            outputs=[o.model_dump(mode="json") for o in result.outputs],
            traces=result.traces,
        )


def _observe_run(inputs: int, requests: int) -> None:
    metrics.PIPELINE_CALLS.inc()
    metrics.BATCH_INPUTS.observe(inputs)
    metrics.BATCH_REQUESTS.observe(requests)
