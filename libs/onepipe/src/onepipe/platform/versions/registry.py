"""A pipeline's versions in MLflow: register trained artifacts, move aliases, fetch a version.

One registered model per pipeline (named after it); each version's artifacts are the files of one
training run, immutable once registered: a fetched copy must match the manifest hash recorded then.
The embedded registry is a folder (an SQLite store and the artifacts beside it); a server is an URL.
MLflow is imported when a registry is opened, never by a service that has none.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from onepipe import ArtifactsError, Pipeline
from onepipe.platform.versions.types import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    RegistryState,
    VersionInfo,
    served_version,
)

log = logging.getLogger("onepipe.registry")
VERSION_TAG = "onepipe.version"
ARTIFACTS_TAG = "onepipe.artifacts"  # the manifest's hash: a fetched copy must match it
CODE_TAG = "onepipe.code"
DEFAULTS_TAG = "onepipe.flag_defaults"
METRICS_FILE = "metrics.json"
MAX_METRICS = 100


# MLflow error codes that mean the registry answered and refused (anything else: it did not answer)
REFUSALS = {
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
    "INVALID_PARAMETER_VALUE",
    "PERMISSION_DENIED",
}


class RegistryError(RuntimeError):
    """The registry did not answer, or refused: one sentence saying which and why."""


class UnknownVersionError(LookupError):
    """No registered version goes by that alias, number or hash."""


def redacted(uri: str) -> str:
    """The address without a password, for logs and pages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def flat_metrics(facts: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers in a metrics file, as MLflow metric names (nested keys joined by '.')."""
    found: dict[str, float] = {}
    for key, value in facts.items():
        name = f"{prefix}{key}".replace(" ", "_")
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            found[name] = float(value)
        elif isinstance(value, Mapping):
            found.update(flat_metrics(value, f"{name}."))
    return dict(list(found.items())[:MAX_METRICS])


def import_client(location: str) -> None:
    """Import what opening a registry at `location` imports, and open nothing (no client, no connection).

    What a parent forking the model service's workers imports once for all of them: each worker
    opens its own registry, as a connection must not be shared by two processes.
    """
    import mlflow.artifacts
    from mlflow import MlflowClient  # noqa: F401

    if "://" not in location:  # the embedded registry: MLflow's SQLAlchemy stores (SQLAlchemy, Alembic)
        import mlflow.store.model_registry.sqlalchemy_store
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


class Registry:
    """A pipeline's versions in MLflow's model registry."""

    def __init__(self, location: str, cache: Path) -> None:
        from mlflow import MlflowClient  # seconds of import: only where a registry is used

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in service logs
        # a server that does not answer is said within seconds (MLflow's own: 7 tries, 120 s each),
        # so the model service's poll reports it down instead of hanging; the environment may say more
        for variable, value in (("MAX_RETRIES", "2"), ("BACKOFF_FACTOR", "1"), ("TIMEOUT", "10")):
            os.environ.setdefault(f"MLFLOW_HTTP_REQUEST_{variable}", value)
        self.location = location
        self.cache = cache
        if "://" in location:
            self.uri, self.artifact_root = location, None
        else:  # the embedded registry: a folder holding the store and the artifacts
            folder = Path(location).resolve()
            folder.mkdir(parents=True, exist_ok=True)
            self.uri, self.artifact_root = (
                f"sqlite:///{folder / 'mlflow.db'}",
                (folder / "artifacts").as_uri(),
            )
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        # what a finished run holds never changes: its metrics, a promotion's evidence (by run id)
        self._run_metrics: dict[str, dict[str, float]] = {}
        self._records: dict[str, dict[str, Any]] = {}

    def state(self, error: str | None = None) -> RegistryState:
        """This registry as the service reports it."""
        return RegistryState(
            kind="mlflow", location=redacted(self.location), status="down" if error else "ok", error=error
        )

    # -- reading ------------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version number (one call: what the model service polls)."""
        model = self._call(f"read the aliases of {name!r}", lambda: self._model(name))
        return {alias: int(number) for alias, number in (model.aliases if model else {}).items()}

    def versions(self, name: str) -> list[VersionInfo]:
        """Every registered version, newest first."""
        found = self._call(
            f"list the versions of {name!r}", lambda: self.client.search_model_versions(f"name = '{name}'")
        )
        by_number: dict[int, list[str]] = {}
        for alias, number in self.aliases(name).items():  # a search does not carry them
            by_number.setdefault(number, []).append(alias)
        versions = [self._info(v, by_number) for v in found]
        return sorted(versions, key=lambda v: v.number or 0, reverse=True)

    def resolve(self, name: str, ref: str) -> VersionInfo:
        """The version an alias, a number (v3 or 3) or a hash names; UnknownVersionError otherwise."""
        versions = self.versions(name)
        number = ref[1:] if ref[:1] in "vV" and ref[1:].isdigit() else ref
        for version in versions:
            if ref in version.aliases or version.version == ref or str(version.number) == number:
                return version
        known = ", ".join(
            f"v{v.number} {v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else "") for v in versions
        )
        raise UnknownVersionError(
            f"version {ref!r} is not registered for pipeline {name!r}"
            + (f"; registered: {known}" if known else "; no version is registered yet (just train)")
        )

    def fetch(self, definition: Pipeline[Any, Any, Any], version: VersionInfo) -> Path:
        """A local copy of a version's artifacts, checked against the manifest recorded at registration."""
        from mlflow.artifacts import download_artifacts

        folder = self.cache / definition.name / f"v{version.number}"
        if not folder.is_dir():
            model = self._call(
                f"read version {version.number}",
                lambda: self.client.get_model_version(definition.name, str(version.number)),
            )
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".fetch-"))
            try:
                self._call(
                    f"download version {version.number}'s artifacts",
                    lambda: download_artifacts(
                        artifact_uri=model.source, dst_path=str(staging), tracking_uri=self.uri
                    ),
                )
                fetched = next((p.parent for p in staging.rglob("manifest.json")), staging)
                try:
                    fetched.rename(folder)  # whole or not at all: a half download is never served
                except OSError:
                    # another process of the service (MODEL_WORKERS) fetched it first, renamed whole
                    # as this one would have been: use theirs (checked below like any copy)
                    if not folder.is_dir():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        try:
            artifacts_hash = definition.check_artifacts(folder)
        except ArtifactsError as error:
            raise ArtifactsError(
                f"version v{version.number}'s artifacts fail their manifest check: {error}"
            ) from None
        expected = self._tag(definition.name, version, ARTIFACTS_TAG)
        if expected and artifacts_hash != expected:
            shutil.rmtree(folder, ignore_errors=True)
            raise ArtifactsError(
                f"version v{version.number}'s artifacts changed since it was registered (manifest hash "
                f"{artifacts_hash}, registered {expected}): registered artifacts are immutable; "
                "register a new version"
            )
        return folder

    # -- writing ------------------------------------------------------------------------

    def register(
        self,
        definition: Pipeline[Any, Any, Any],
        artifacts: Path,
        flag_defaults: Mapping[str, Any],
        alias: str | None = None,
    ) -> VersionInfo:
        """Log a training run of `artifacts` and register it as a new version (or find it registered)."""
        artifacts_hash = definition.check_artifacts(artifacts)
        code = definition.code_fingerprint()
        version = served_version(definition.version_of(artifacts), flag_defaults)
        name = definition.name
        existing = next((v for v in self.versions(name) if v.version == version), None)
        if existing is None:
            existing = self._call(
                f"register {name!r}",
                lambda: self._register(
                    definition, artifacts, artifacts_hash, code, version, dict(flag_defaults)
                ),
            )
            log.info(
                "version registered", extra={"pipeline": name, "version": version, "number": existing.number}
            )
        if not self.aliases(name).get(CHAMPION):
            alias = alias or CHAMPION  # the first version serves
        if alias:
            self.set_alias(name, alias, existing.number)
        return self.resolve(name, version)

    def bootstrap(self, definition: Pipeline[Any, Any, Any], artifacts: Path, wait_s: float = 120.0) -> None:
        """Make the artifacts folder the first champion when the registry has no version of the pipeline.

        Processes starting together race here: the one that creates the registered model registers,
        the others wait for its champion.
        """
        name = definition.name
        if CHAMPION in self.aliases(name):
            return
        definition.check_artifacts(artifacts)  # nothing to register: say so before claiming
        try:
            self._call(f"create {name!r}", lambda: self.client.create_registered_model(name))
        except RegistryError as error:
            if "RESOURCE_ALREADY_EXISTS" not in str(error) and "already exists" not in str(error):
                raise
            deadline = time.monotonic() + wait_s
            while CHAMPION not in self.aliases(name):
                if time.monotonic() > deadline:
                    raise RegistryError(
                        f"pipeline {name!r} is registered with no champion: run just train"
                    ) from None
                time.sleep(0.5)
            return
        self.register(definition, artifacts, {}, alias=CHAMPION)
        log.info("the artifacts folder registered as the first champion", extra={"pipeline": name})

    def set_alias(self, name: str, alias: str, number: int | None) -> None:
        """Point an alias at a version number."""
        self._call(
            f"set alias {alias!r}", lambda: self.client.set_registered_model_alias(name, alias, str(number))
        )

    def drop_alias(self, name: str, alias: str) -> None:
        """Remove an alias (a promoted challenger stops being one)."""
        self._call(f"remove alias {alias!r}", lambda: self.client.delete_registered_model_alias(name, alias))

    def promote(self, name: str) -> tuple[int, int]:
        """challenger becomes champion, the champion becomes previous; returns (old, new) numbers."""
        aliases = self.aliases(name)
        if CHALLENGER not in aliases:
            raise UnknownVersionError(
                f"pipeline {name!r} has no challenger to promote (just train --alias challenger)"
            )
        old, new = aliases[CHAMPION], aliases[CHALLENGER]
        self.set_alias(name, CHAMPION, new)  # first: at every moment some version is champion
        self.set_alias(name, PREVIOUS, old)
        self.drop_alias(name, CHALLENGER)
        return old, new

    def rollback(self, name: str) -> tuple[int, int]:
        """previous becomes champion again, the rolled-back one challenger; returns (old, new) numbers."""
        aliases = self.aliases(name)
        if PREVIOUS not in aliases:
            raise UnknownVersionError(f"pipeline {name!r} has no previous champion to roll back to")
        old, new = aliases[CHAMPION], aliases[PREVIOUS]
        self.set_alias(name, CHAMPION, new)
        self.set_alias(name, CHALLENGER, old)
        self.drop_alias(name, PREVIOUS)
        return old, new

    def record(self, name: str, kind: str, facts: Mapping[str, Any]) -> str:
        """Keep a promotion's or rollback's evidence as an MLflow run of the pipeline's experiment."""

        def log_run() -> str:
            run = self.client.create_run(self._experiment(name), run_name=kind, tags={"onepipe.kind": kind})
            self.client.log_dict(run.info.run_id, dict(facts), f"{kind}.json")
            self.client.set_terminated(run.info.run_id)
            self.client.set_registered_model_tag(name, f"onepipe.last_{kind}", run.info.run_id)
            return str(run.info.run_id)

        return str(self._call(f"record the {kind}", log_run))

    def last_record(self, name: str, kind: str) -> dict[str, Any] | None:
        """The evidence the last promotion (or rollback) recorded, if any."""
        model = self._call(f"read {name!r}", lambda: self._model(name))
        run_id = (model.tags or {}).get(f"onepipe.last_{kind}") if model else None
        if not run_id:
            return None
        if run_id in self._records:
            return self._records[run_id]
        from mlflow.artifacts import download_artifacts

        def read() -> dict[str, Any]:
            # downloaded with this registry's tracking URI: on an MLflow server the run's artifacts
            # are an mlflow-artifacts: URI, which only a client that knows the server can resolve
            with tempfile.TemporaryDirectory() as folder:
                path = download_artifacts(
                    run_id=run_id, artifact_path=f"{kind}.json", dst_path=folder, tracking_uri=self.uri
                )
                found: dict[str, Any] = json.loads(Path(path).read_text())
                return found

        last: dict[str, Any] = self._call(f"read the last {kind}", read)
        self._records[run_id] = last
        return last

    # -- MLflow ------------------------------------------------------------------------

    def _register(
        self,
        definition: Pipeline[Any, Any, Any],
        artifacts: Path,
        artifacts_hash: str,
        code: str,
        version: str,
        flag_defaults: dict[str, Any],
    ) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        name = definition.name
        run = self.client.create_run(
            self._experiment(name), run_name=f"train {version}", tags={"onepipe.kind": "train"}
        )
        run_id = run.info.run_id
        defaults = definition.flags_model().model_dump(mode="json") | flag_defaults
        for flag, value in defaults.items():
            self.client.log_param(run_id, f"flag.{flag}", json.dumps(value))
        self.client.log_param(run_id, "pipeline", name)
        self.client.log_param(run_id, "code", code)
        metrics_file = artifacts / METRICS_FILE
        if metrics_file.is_file():
            for key, value in flat_metrics(json.loads(metrics_file.read_text())).items():
                self.client.log_metric(run_id, key, value)
        self.client.log_artifacts(run_id, str(artifacts), "artifacts")
        self.client.set_terminated(run_id)
        try:
            self.client.create_registered_model(name, description=f"onepipe pipeline {name}")
        except MlflowException as error:
            if "RESOURCE_ALREADY_EXISTS" not in str(error.error_code):
                raise
        tags = {
            VERSION_TAG: version,
            ARTIFACTS_TAG: artifacts_hash,
            CODE_TAG: code,
            DEFAULTS_TAG: json.dumps(flag_defaults, sort_keys=True),
        }
        made = self.client.create_model_version(
            name, f"{run.info.artifact_uri}/artifacts", run_id=run_id, tags=tags
        )
        return self._info(made, {})

    def _experiment(self, name: str) -> str:
        title = f"onepipe/{name}"
        found = self.client.get_experiment_by_name(title)
        if found is not None:
            return str(found.experiment_id)
        return str(self.client.create_experiment(title, artifact_location=self.artifact_root))

    def _model(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error.error_code):
                return None
            raise

    def _info(self, model_version: Any, aliases: Mapping[int, list[str]]) -> VersionInfo:
        tags = model_version.tags or {}
        metrics: dict[str, float] = {}
        if model_version.run_id:
            metrics = self._metrics_of(model_version.run_id)
        return VersionInfo(
            number=int(model_version.version),
            version=tags.get(VERSION_TAG, ""),
            aliases=sorted(aliases.get(int(model_version.version), []), key=_alias_order),
            flag_defaults=json.loads(tags.get(DEFAULTS_TAG) or "{}"),
            metrics=metrics,
            created_at=datetime.fromtimestamp(model_version.creation_timestamp / 1000, tz=UTC),
            code=tags.get(CODE_TAG, ""),
            run_id=model_version.run_id,
        )

    def _metrics_of(self, run_id: str) -> dict[str, float]:
        """A training run's metrics, asked of the registry once (a listing would ask per version)."""
        if run_id not in self._run_metrics:
            self._run_metrics[run_id] = dict(self.client.get_run(run_id).data.metrics)
        return dict(self._run_metrics[run_id])

    def _tag(self, name: str, version: VersionInfo, tag: str) -> str | None:
        model = self._call("read a version", lambda: self.client.get_model_version(name, str(version.number)))
        found = (model.tags or {}).get(tag)
        return str(found) if found else None

    def _call(self, what: str, action: Any) -> Any:
        """Run one registry call; a failure to reach it becomes a RegistryError naming what was tried."""
        from mlflow.exceptions import MlflowException

        try:
            return action()
        except (UnknownVersionError, ArtifactsError):
            raise
        except MlflowException as error:
            if error.error_code in REFUSALS:  # it answered, and said no
                raise RegistryError(
                    f"the registry at {redacted(self.location)} refused to {what}: {error.message}"
                ) from None
            raise RegistryError(  # MLflow's client wraps a connection it could not make the same way
                f"the registry at {redacted(self.location)} did not answer ({what}): {_short(error)}"
            ) from None
        except Exception as error:  # timeouts, a broken store: the registry is down
            raise RegistryError(
                f"the registry at {redacted(self.location)} did not answer ({what}): "
                f"{type(error).__name__}: {error}"
            ) from None


def _short(error: BaseException) -> str:
    """What went wrong at the bottom of a wrapped error (MLflow wraps the connection's own), cut short."""
    root = error
    while (inner := root.__cause__ or root.__context__) is not None:
        root = inner
    reason = getattr(root.args[0], "reason", None) if root.args else None  # urllib3's MaxRetryError
    return str(reason or root)[:300]


def _alias_order(alias: str) -> int:
    order = [CHAMPION, CHALLENGER, PREVIOUS]
    return order.index(alias) if alias in order else len(order)
