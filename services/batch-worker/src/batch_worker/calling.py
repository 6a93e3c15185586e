"""One chunk's rows through the model service: the rows it can send, in calls under its body limit, each
call asking for the job's pinned version; a row refused or failed on gets its reason, the others go on.

A job compared under a second flag set, or with a second version (`compare_version`), sends the rows
that answered once more: the same calls under the compare flags, or under the job's flags asking for
the compared version. The runner (`runner.py`) supplies how to wait out an outage and how to keep a
version once its first answer pinned it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from batch_worker.pinning import PausedError, Pin
from batch_worker.sending import (
    TOO_LARGE,
    InputLimits,
    RejectedError,
    TooLargeError,
    VersionRefusedError,
    envelope_size,
    json_size,
    pack,
    too_large,
)
from onepipe import PipelineInfo
from onepipe.platform.http.client import ModelServiceClient, ServiceFailedError
from onepipe.platform.http.envelopes import PredictResponse
from onepipe.platform.jobs.datasets import Row, to_input
from onepipe.platform.jobs.types import JobMeta, RowResult

log = logging.getLogger("batch_worker")
# outputs by input index, and reasons for the inputs without one
Answers = tuple[dict[int, dict[str, Any]], dict[int, str]]


@dataclass
class Caller:
    """Sends a job's chunks to the model service.

    `wait_for(meta, call)` makes a call, riding out outages (the runner's patience); `keep(meta)`
    saves a version the moment a call pinned it, before any row it answered is written.
    """

    client: ModelServiceClient
    max_body_bytes: int
    wait_for: Callable[[JobMeta, Callable[[], PredictResponse]], PredictResponse]
    keep: Callable[[JobMeta], None]
    lock: threading.Lock

    def chunk_results(
        self,
        meta: JobMeta,
        info: PipelineInfo,
        limits: InputLimits,
        mapping: dict[str, str],
        rows: list[Row],
    ) -> list[RowResult]:
        """Each row's result: its output (and compare output), or why it has none."""
        results = {
            row.number: RowResult(row=row.number, input=row.values or {}, error=row.error) for row in rows
        }
        readable = [row for row in rows if row.error is None and row.values is not None]
        inputs = [to_input(row.values or {}, mapping, info.input_schema) for row in readable]
        # a row over a length limit is never sent: it fails alone, and the rest of the chunk goes on
        reasons = {i: why for i, value in enumerate(inputs) if (why := limits.refusal(value)) is not None}
        sendable = {i: value for i, value in enumerate(inputs) if i not in reasons}
        pin = Pin(meta, False, self.lock)
        outputs, sent_reasons = self._predict_all(meta, sendable, meta.spec.flags, pin)
        reasons.update(sent_reasons)
        for index, row in enumerate(readable):
            if index in reasons:
                results[row.number].error = reasons[index]
            else:
                results[row.number].output = outputs[index]
        spec = meta.spec
        if spec.comparing:
            compare_pin = Pin(meta, True, self.lock) if spec.compare_version is not None else pin
            flags = spec.compare_flags if spec.compare_flags is not None else spec.flags
            kept = {i: value for i, value in sendable.items() if i not in reasons}
            compared, compare_reasons = self._predict_all(meta, kept, flags, compare_pin)
            under = (
                "with the compare flags"
                if spec.compare_version is None
                else f"with the compared version {compare_pin.ref()}"
            )
            for index in kept:
                result = results[readable[index].number]
                if index in compare_reasons:
                    result.error = f"{under}: {compare_reasons[index]}"
                else:
                    result.compare_output = compared[index]
        return [results[row.number] for row in rows]

    def _predict_all(
        self, meta: JobMeta, inputs: Mapping[int, dict[str, Any]], flags: dict[str, Any], pin: Pin
    ) -> Answers:
        """Outputs by index, and reasons for the inputs that could not be sent, or were refused or failed on.

        The inputs go in calls whose bodies fit the model service's limit; one too large alone fails.
        A call that pins the version makes the calls after it carry the hash: the rest is packed again.
        """
        limit = self.max_body_bytes
        sizes = {i: json_size(value) for i, value in inputs.items()}
        outputs: dict[int, dict[str, Any]] = {}
        reasons: dict[int, str] = {}
        while sizes:
            ref = pin.ref()
            packing = pack(sizes, envelope_size(flags, ref), limit)
            for index, size in packing.too_large.items():
                reasons[index] = too_large(size, limit)
                del sizes[index]
            for call in packing.calls:
                call_outputs, call_reasons = self._predict_call(meta, call, inputs, flags, pin)
                outputs.update(call_outputs)
                reasons.update(call_reasons)
                for index in call:
                    del sizes[index]
                if pin.ref() != ref:
                    break
        return outputs, reasons

    def _predict_call(
        self,
        meta: JobMeta,
        pending: list[int],
        inputs: Mapping[int, dict[str, Any]],
        flags: dict[str, Any],
        pin: Pin,
    ) -> Answers:
        """One call of the inputs `pending` (indexes into `inputs`): outputs and reasons by index.

        A call the service fails on (500) or refuses as too large (413: a limit lower than the
        worker's, or more inputs than it takes) is split in halves, down to single rows.
        """
        outputs: dict[int, dict[str, Any]] = {}
        reasons: dict[int, str] = {}
        while pending:
            try:
                answer = self._ask(meta, [inputs[i] for i in pending], flags, pin)
            except RejectedError as rejected:
                for position, reason in rejected.reasons.items():
                    reasons[pending[position]] = reason
                pending = [
                    index for position, index in enumerate(pending) if position not in rejected.reasons
                ]
                continue
            except (ServiceFailedError, TooLargeError) as error:
                if len(pending) == 1:
                    reasons[pending[0]] = (
                        f"{TOO_LARGE}{error}"
                        if isinstance(error, TooLargeError)
                        else "the pipeline failed on this row (the model service answered 500)"
                    )
                    pending = []
                    continue
                if isinstance(error, TooLargeError):  # the worker's limit is above the service's
                    log.warning(
                        "job %s: the model service refused a call of %d rows as too large (%s); "
                        "sending it in halves",
                        meta.id,
                        len(pending),
                        error,
                    )
                # find the rows that make the pipeline fail, or fit the calls to the limit: halves
                half = len(pending) // 2
                for part in (pending[:half], pending[half:]):
                    part_outputs, part_reasons = self._predict_call(meta, part, inputs, flags, pin)
                    outputs.update(part_outputs)
                    reasons.update(part_reasons)
                pending = []
                continue
            outputs.update(zip(pending, answer.outputs, strict=True))
            pending = []
        return outputs, reasons

    def _ask(
        self, meta: JobMeta, inputs: list[dict[str, Any]], flags: dict[str, Any], pin: Pin
    ) -> PredictResponse:
        """One predict call asking for the pinned version; its answer's version checked, or pinned."""
        ref = pin.ref()
        try:
            answer = self.wait_for(meta, partial(self.client.predict, inputs, flags, version=ref))
        except VersionRefusedError as refused:
            raise PausedError(pin.pause_reason(f"it answered: {refused}")) from None
        if pin.record(answer.version):
            log.info("job %s: pinned to version %s (asked: %s)", meta.id, answer.version, ref or "champion")
            self.keep(meta)
        return answer
