"""Adaptive micro-batching: concurrent requests with the same flags and debug run as one batch.

While the pipeline runs a batch, new requests queue up; the next batch takes them all
at once (up to the size limit), so batches grow with load and stay at one when idle.
A batch waits up to `max_wait_s` for more requests only under load (the last batch held
more than one request): an idle service runs a lone request at once, so a caller
alone never pays the wait.
The pipeline runs on one worker thread, off the event loop, so the server keeps
accepting requests while it computes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from onepipe import LoadedPipeline, RunResult


@dataclass
class _Request:
    inputs: list[BaseModel]
    flags: BaseModel
    debug: bool
    future: asyncio.Future[RunResult[Any]]

    @property
    def key(self) -> tuple[str, bool]:
        return self.flags.model_dump_json(), self.debug


class MicroBatcher:
    """Runs validated requests through the pipeline, gathering them into batches when enabled."""

    def __init__(
        self,
        pipeline: LoadedPipeline[Any, Any, Any],
        *,
        enabled: bool,
        max_size: int,
        max_wait_s: float,
        on_run: Callable[[int, int], None] = lambda inputs, requests: None,
        on_step: Callable[[str, float], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.enabled = enabled
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.on_run = on_run
        self.on_step = on_step
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._last_batch_requests = 1

    async def predict(self, inputs: list[BaseModel], flags: BaseModel, debug: bool) -> RunResult[Any]:
        """The pipeline's result for these (already validated) inputs."""
        if not self.enabled:
            return await self._run(inputs, flags, debug, requests=1)
        if self._task is None:
            self._task = asyncio.create_task(self._gather_forever())
        future: asyncio.Future[RunResult[Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(inputs, flags, debug, future))
        return await future

    async def close(self) -> None:
        """Stop gathering and let the worker thread finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _run(
        self, inputs: list[BaseModel], flags: BaseModel, debug: bool, requests: int
    ) -> RunResult[Any]:
        self.on_run(len(inputs), requests)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: self.pipeline.run(inputs, flags, debug=debug, on_step=self.on_step)
        )

    async def _gather_forever(self) -> None:
        while True:
            batch = await self._gather()
            groups: dict[tuple[str, bool], list[_Request]] = {}
            for request in batch:
                groups.setdefault(request.key, []).append(request)
            for group in groups.values():
                await self._run_group(group)

    async def _gather(self) -> list[_Request]:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        size = len(batch[0].inputs)
        wait = self.max_wait_s if self._last_batch_requests > 1 else 0.0
        deadline = loop.time() + wait
        while size < self.max_size:
            try:
                request = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    request = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(request)
            size += len(request.inputs)
        self._last_batch_requests = len(batch)
        return batch

    async def _run_group(self, group: list[_Request]) -> None:
        live = [r for r in group if not r.future.done()]  # a caller that went away is skipped
        if not live:
            return
        inputs = [item for request in live for item in request.inputs]
        try:
            result = await self._run(inputs, live[0].flags, live[0].debug, requests=len(live))
        except Exception as error:  # each caller gets the error of the run it was part of
            for request in live:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        start = 0
        for request in live:
            end = start + len(request.inputs)
            if not request.future.done():
                request.future.set_result(
                    RunResult[Any](
                        version=result.version,
                        outputs=result.outputs[start:end],
                        traces=result.traces[start:end] if result.traces is not None else None,
                    )
                )
            start = end
