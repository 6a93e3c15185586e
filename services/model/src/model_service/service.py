"""The model service's logic, reachable without a server: loading, readiness, versions, predict."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from model_service import metrics
from model_service.batching import LiveTraffic, MicroBatcher
from model_service.lineup import Lineup, Served, chosen, next_lineup
from model_service.promotion import PROMOTION, Promotion, library, overridden, promote
from model_service.settings import Settings
from onepipe import ArtifactsError, LoadedPipeline, Pipeline, PipelineInfo, Problem
from onepipe.platform.cases import CaseLibrary, CasesFileError
from onepipe.platform.http.envelopes import PredictRequest, PredictResponse
from onepipe.platform.http.server import ProblemError
from onepipe.platform.versions.evidence import Candidate, gather_evidence, held_out_of, with_shadow
from onepipe.platform.versions.registry import Registry, RegistryError, UnknownVersionError
from onepipe.platform.versions.types import (
    CHALLENGER,
    CHAMPION,
    PromotionOrder,
    RegistryState,
    VersionInfo,
    VersionList,
    served_description,
    served_version,
)

log = logging.getLogger("model_service")
RETRY_AFTER_LOADING = "2"
SERVED_ALIASES = (CHAMPION, CHALLENGER)  # loaded at start and on every change; others on demand
RETIRE_AFTER_S = 30.0  # a version let go keeps its batcher this long, for requests already in it


class ModelService:
    """Holds the loaded versions (once they are) and answers predicts through their micro-batchers."""

    def __init__(self, definition: Pipeline[Any, Any, Any], settings: Settings) -> None:
        self.definition = definition
        self.settings = settings
        self.lineup: Lineup | None = None
        self.load_error: str | None = None
        self.registry: Registry | None = None
        self.registry_error: str | None = None
        self._changing = asyncio.Lock()  # one lineup change at a time (the poll, a promotion, a load)
        self._on_demand: dict[str, asyncio.Task[None]] = {}
        self._failed: dict[str, str] = {}  # version hash -> why it cannot be loaded
        self._poller: asyncio.Task[None] | None = None
        self.traffic = LiveTraffic()  # every version's batcher counts its callers here

    @property
    def artifacts(self) -> Path:
        """This pipeline's artifacts folder (what serves without a registry, and what `just train` writes)."""
        return self.settings.artifacts_for(self.definition.name)

    @property
    def loaded(self) -> LoadedPipeline[Any, Any, Any] | None:
        """The champion's pipeline, once loaded."""
        return self.lineup.champion.loaded if self.lineup else None

    def check(self) -> None:
        """Fail fast (ArtifactsError) when there is nothing to serve: no model is loaded yet.

        Without a registry the artifacts folder must pass its check; with one, the registry must have a
        champion or the folder must pass (it becomes the first champion). A registry that does not answer
        now is tried again by the loading.
        """
        if self.settings.registry == "none":
            self.definition.check_artifacts(self.artifacts)
            return
        self.registry = Registry(self.settings.registry, self.settings.versions_cache)
        try:
            if CHAMPION in self.registry.aliases(self.definition.name):
                return
        except RegistryError as error:
            log.warning("the registry does not answer yet", extra={"reason": str(error)})
            return
        try:
            self.definition.check_artifacts(self.artifacts)
        except ArtifactsError as error:
            raise ArtifactsError(
                f"no version of {self.definition.name!r} is registered in {self.registry.state().location} "
                f"and {error}"
            ) from None

    async def load(self) -> None:
        """Load the champion (and challenger) off the event loop; /readyz answers 503 until done."""
        try:
            if self.settings.registry == "none":
                served = await self._served(self.artifacts, None)
                self.lineup = Lineup({served.version: served}, {CHAMPION: served.version})
            else:
                if self.registry is None:
                    self.registry = await asyncio.to_thread(
                        Registry, self.settings.registry, self.settings.versions_cache
                    )
                self._poller = asyncio.create_task(self._poll())  # a registry down now is tried again
                async with self._changing:
                    self.lineup = await self._lineup_from_registry()
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            log.exception("loading the pipeline failed")
            return
        log.info(
            "pipeline ready",
            extra={
                "pipeline": self.definition.name,
                "serving": self.lineup.aliases,
                "threads": self.settings.threads_per_process(),
            },
        )

    async def close(self) -> None:
        """Stop polling and every micro-batcher."""
        if self._poller is not None:
            self._poller.cancel()
        for served in self.lineup.by_hash.values() if self.lineup else []:
            await served.batcher.close()

    def ready(self) -> LoadedPipeline[Any, Any, Any]:
        """The champion's pipeline, or a 503 problem saying why it is not ready."""
        if self.lineup is not None:
            return self.lineup.champion.loaded
        if self.load_error is not None:
            raise ProblemError(503, "Pipeline failed to load", self.load_error)
        raise ProblemError(
            503,
            "Pipeline loading",
            f"the model service is still loading pipeline {self.definition.name!r}; retry shortly",
            headers={"Retry-After": RETRY_AFTER_LOADING},
        )

    def describe(self) -> PipelineInfo:
        """What the pipeline is and does as the champion serves it (its flag defaults among the flags')."""
        self.ready()
        assert self.lineup is not None
        champion = self.lineup.champion
        return served_description(champion.loaded.describe(), champion.info.flag_defaults)

    async def case_library(self) -> CaseLibrary:
        """The pipeline's edge-case library, the one a promotion replays (none: an empty one)."""
        try:
            cases = await asyncio.to_thread(library, self.settings.cases_dir, self.definition.name)
        except CasesFileError as error:
            raise ProblemError(500, "Case library unreadable", str(error)) from None
        return CaseLibrary(pipeline=self.definition.name, cases=cases)

    def registry_state(self) -> RegistryState:
        """Where versions come from and whether it answered last time."""
        if self.registry is None:
            return RegistryState(kind="none", location=str(self.artifacts))
        return self.registry.state(self.registry_error)

    async def predict(
        self, request: PredictRequest, background: bool = False
    ) -> tuple[PredictResponse, float]:
        """Validate, check the limits, run (micro-batched) on the version asked for: the answer and
        its pipeline milliseconds. `background`: yield to every other request (batching.LiveTraffic)."""
        self.ready()
        limit = self.settings.max_inputs
        if len(request.inputs) > limit:
            raise ProblemError(
                413,
                "Too many inputs",
                f"inputs: {len(request.inputs)} inputs is over the limit of {limit} per request",
                errors=[Problem(loc="inputs", message=f"at most {limit} inputs per request")],
            )
        served = await self.pick(request.version)
        flags = {**served.info.flag_defaults, **request.flags} if served.info.flag_defaults else request.flags
        # strict: a JSON value of another type than the schema's is refused, never converted
        inputs, valid = served.loaded.definition.validate_request(request.inputs, flags, strict=True)
        answer = await served.batcher.predict(inputs, valid, request.debug, background)
        result = answer.result
        response = PredictResponse(
            version=result.version,
            outputs=[o.model_dump(mode="json") for o in result.outputs],
            traces=result.traces,
        )
        return response, answer.pipeline_ms

    async def pick(self, ref: str | None) -> Served:
        """The loaded version `ref` names; a registered one not loaded starts loading (503, retry)."""
        assert self.lineup is not None  # ready() was called
        served = self.lineup.pick(ref)
        if served is not None:
            if ref is not None and ref not in self.lineup.aliases:  # a pinned version stays loaded
                self.lineup = chosen(self.lineup, served)
            return served
        assert ref is not None  # the champion is always loaded
        await self._load_on_demand(ref)

    async def versions(self) -> VersionList:
        """Every registered version, the loaded ones marked; the loaded ones alone if the registry is down."""
        self.ready()
        assert self.lineup is not None
        loaded = self.lineup.infos()
        registered: list[VersionInfo] = []
        last: dict[str, Any] | None = None
        if self.registry is not None:
            try:
                registered = await asyncio.to_thread(self.registry.versions, self.definition.name)
                last = await asyncio.to_thread(self.registry.last_record, self.definition.name, PROMOTION)
                self.registry_error = None
            except RegistryError as error:
                self.registry_error = str(error)
        numbers = {v.number for v in loaded}
        found = [v.model_copy(update={"loaded": v.number in numbers}) for v in registered] or loaded
        return VersionList(
            pipeline=self.definition.name, registry=self.registry_state(), versions=found, last_promotion=last
        )

    async def refresh(self) -> None:
        """Serve what the registry's aliases name now: new versions loaded first, then one swap."""
        assert self.registry is not None
        try:
            numbers = await asyncio.to_thread(self.registry.aliases, self.definition.name)
        except RegistryError as error:
            self.registry_error = str(error)  # keep serving what is loaded
            return
        self.registry_error = None
        wanted = {a: n for a, n in numbers.items() if a in SERVED_ALIASES}
        if self.lineup is not None and wanted == self.lineup.numbers():
            return
        async with self._changing:
            try:
                self.lineup = await self._lineup_from_registry()
                self.load_error = None
            except (RegistryError, ArtifactsError, UnknownVersionError) as error:
                self.registry_error = str(error)
                log.error("the registry's versions cannot be served", extra={"reason": str(error)})
                return
        log.info("serving", extra={"pipeline": self.definition.name, "serving": self.lineup.aliases})

    async def promote(self, request: PromotionOrder, by: str | None) -> Promotion:
        """Gather the evidence through the loaded versions' batchers; refuse (409) or move the aliases."""
        self.ready()
        assert self.lineup is not None
        if self.registry is None or CHALLENGER not in self.lineup.aliases:
            raise ProblemError(
                409,
                "No challenger",
                f"pipeline {self.definition.name!r} has no challenger to promote "
                "(just train --alias challenger)",
            )
        registry = self.registry
        loop = asyncio.get_running_loop()
        champion, challenger = (self._candidate(a, loop) for a in (CHAMPION, CHALLENGER))
        cases = library(self.settings.cases_dir, self.definition.name)
        evidence = await asyncio.to_thread(
            gather_evidence,
            champion,
            challenger,
            cases,
            held_out_of(self.definition),
            held_out_rows=request.held_out_rows,
        )
        evidence = with_shadow(evidence, request.shadow)  # the gateway's record of live traffic, if sent
        try:
            evidence = overridden(evidence, request, by)
        except ValueError as error:
            raise ProblemError(
                422, "A reason is needed", str(error), errors=[Problem(loc="reason", message=str(error))]
            ) from None
        if not evidence.may_promote:
            raise ProblemError(
                409,
                "Promotion refused",
                f"{evidence.refusal} (force it with a reason to override; it is recorded)",
                extra={"evidence": evidence.model_dump(mode="json")},
            )
        try:
            done = await asyncio.to_thread(promote, registry, evidence)
        except (RegistryError, UnknownVersionError) as error:
            raise ProblemError(
                503, "Registry unavailable", str(error), headers={"Retry-After": "5"}
            ) from None
        await self.refresh()  # this process serves the new champion at once; the others within a poll
        return done

    def _candidate(self, alias: str, loop: asyncio.AbstractEventLoop) -> Candidate:
        """A loaded version as the evidence runs it: through its batcher, from the evidence's thread."""
        assert self.lineup is not None
        served = self.lineup.by_hash[self.lineup.aliases[alias]]

        def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[dict[str, Any]]:
            valid, valid_flags = served.loaded.definition.validate_request(
                inputs, {**served.info.flag_defaults, **flags}
            )
            answer = asyncio.run_coroutine_threadsafe(served.batcher.predict(valid, valid_flags, False), loop)
            return [output.model_dump(mode="json") for output in answer.result().result.outputs]

        return Candidate(alias, self.definition.name, served.version, served.info.number, run)

    async def rollback(self) -> VersionList:
        """Move champion back to the previous version in the registry, then serve it (loaded first)."""
        self.ready()
        if self.registry is None:
            raise ProblemError(
                409,
                "No registry",
                "without a registry (MODEL_REGISTRY=none) there is nothing to roll back to",
            )
        try:
            await asyncio.to_thread(self.registry.rollback, self.definition.name)
        except UnknownVersionError as error:
            raise ProblemError(409, "Nothing to roll back to", str(error)) from None
        except RegistryError as error:
            raise ProblemError(
                503, "Registry unavailable", str(error), headers={"Retry-After": "5"}
            ) from None
        await self.refresh()
        return await self.versions()

    # -- loading --------------------------------------------------------------------------

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.registry_poll_seconds)
            try:
                await self.refresh()
            except Exception:  # never let the poller die: the next round tries again
                log.exception("reading the registry failed")

    async def _lineup_from_registry(self) -> Lineup:
        """The lineup the aliases name now (the caller holds the lock)."""
        assert self.registry is not None
        name = self.definition.name
        numbers = await asyncio.to_thread(self.registry.aliases, name)
        if CHAMPION not in numbers:  # a registry with no version yet: the artifacts folder is the first
            await asyncio.to_thread(self.registry.bootstrap, self.definition, self.artifacts)
            numbers = await asyncio.to_thread(self.registry.aliases, name)
        versions = {v.number: v for v in await asyncio.to_thread(self.registry.versions, name)}
        aliased = {
            alias: await self._served_version(versions[numbers[alias]])
            for alias in SERVED_ALIASES
            if alias in numbers
        }
        lineup, dropped = next_lineup(self.lineup, aliased, keep=self.settings.max_versions)
        self._retire(dropped)
        return lineup

    async def _served_version(self, info: VersionInfo) -> Served:
        """A registered version ready to answer: the one loaded already, else fetched and loaded."""
        if self.lineup is not None:
            for served in self.lineup.by_hash.values():
                if served.info.number == info.number:
                    return served
        assert self.registry is not None
        folder = await asyncio.to_thread(self.registry.fetch, self.definition, info)
        return await self._served(folder, info)

    async def _served(self, folder: Path, info: VersionInfo | None) -> Served:
        """Load one version from a folder (sharing resources with a loaded version of the same artifacts)."""
        base = await asyncio.to_thread(self.definition.version_of, folder)
        defaults = info.flag_defaults if info else {}
        version = served_version(base, defaults)
        if info is not None and info.version != version:
            log.warning(
                "the pipeline code changed since this version was registered",
                extra={"number": info.number, "registered": info.version, "served_as": version},
            )
        shared = self._twin_resources(base)
        if shared is None:
            threads = self.settings.threads_per_process()
            shared = (await asyncio.to_thread(self.definition.load, folder, threads)).resources
        loaded = LoadedPipeline(self.definition, shared, version)
        info = (info or VersionInfo(number=None, version=version)).model_copy(update={"version": version})
        return Served(info, loaded, self._batcher(loaded), base)

    def _twin_resources(self, base: str) -> dict[str, Any] | None:
        """The resources of a loaded version with the same code and artifacts (memory shared)."""
        for served in self.lineup.by_hash.values() if self.lineup else []:
            if served.base == base:
                return served.loaded.resources
        return None

    def _batcher(self, loaded: LoadedPipeline[Any, Any, Any]) -> MicroBatcher:
        return MicroBatcher(
            loaded,
            enabled=self.settings.batching,
            max_size=self.settings.batch_max_size,
            max_wait_s=self.settings.batch_max_wait_ms / 1000,
            on_run=_observe_run,
            on_step=lambda step, seconds: metrics.STEP_SECONDS.labels(step).observe(seconds),
            traffic=self.traffic,
        )

    def _retire(self, dropped: list[Served]) -> None:
        """Close the batchers of versions let go, once the requests already in them are answered."""
        loop = asyncio.get_running_loop()
        for served in dropped:
            loop.call_later(RETIRE_AFTER_S, partial(_close_later, loop, served.batcher))

    async def _load_on_demand(self, ref: str) -> NoReturn:
        """Start loading the registered version `ref` names and answer 503; 422 when none goes by it."""
        if self.registry is None:
            raise _unknown_version(
                f"version {ref!r} is not served: this model service serves {self.ready().version} alone "
                "(MODEL_REGISTRY=none)"
            )
        try:
            info = await asyncio.to_thread(self.registry.resolve, self.definition.name, ref)
        except UnknownVersionError as error:
            raise _unknown_version(str(error)) from None
        except RegistryError as error:
            raise ProblemError(
                503, "Registry unavailable", str(error), headers={"Retry-After": "5"}
            ) from None
        if info.version in self._failed:
            raise _unknown_version(self._failed[info.version])
        if info.version not in self._on_demand:
            self._on_demand[info.version] = asyncio.create_task(self._add(info))
        raise ProblemError(
            503,
            "Version loading",
            f"version v{info.number} ({info.version}) of {self.definition.name!r} is loading; retry shortly",
            headers={"Retry-After": RETRY_AFTER_LOADING},
        )

    async def _add(self, info: VersionInfo) -> None:
        """Load a version asked for by a request and add it to the lineup."""
        try:
            async with self._changing:
                served = await self._served_version(info)
                assert self.lineup is not None
                aliased = {a: self.lineup.by_hash[h] for a, h in self.lineup.aliases.items()}
                self.lineup, dropped = next_lineup(self.lineup, aliased, [served], self.settings.max_versions)
                self._retire(dropped)
        except (RegistryError, ArtifactsError) as error:
            self._failed[info.version] = str(error)
            log.error("a version asked for cannot be loaded", extra={"reason": str(error)})
        finally:
            self._on_demand.pop(info.version, None)


def _close_later(loop: asyncio.AbstractEventLoop, batcher: MicroBatcher) -> None:
    loop.create_task(batcher.close())


def _unknown_version(detail: str) -> ProblemError:
    return ProblemError(422, "Unknown version", detail, errors=[Problem(loc="version", message=detail)])


def _observe_run(inputs: int, requests: int) -> None:
    metrics.PIPELINE_CALLS.inc()
    metrics.BATCH_INPUTS.observe(inputs)
    metrics.BATCH_REQUESTS.observe(requests)
