"""Artifacts on disk: a manifest of file hashes, a model card, and the checks at load."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from onepipe.errors import ArtifactsError

MANIFEST = "manifest.json"
MODEL_CARD = "MODEL_CARD.md"
TRAIN_HINT = "run `just train` to build them"


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_files(files: Iterable[Path], root: Path) -> str:
    """One short hash over several files' relative names and contents."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()[:16]


def write_artifacts(
    artifacts_dir: Path, *, pipeline: str, trainer: str, build: Callable[[Path], str]
) -> Path:
    """Build into a fresh folder, add the manifest and model card, then swap it in whole.

    A failed or interrupted training leaves the previous artifacts untouched.
    """
    artifacts_dir = artifacts_dir.resolve()
    artifacts_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{artifacts_dir.name}-", dir=artifacts_dir.parent))
    # mkdtemp makes it private (0700); the folder it becomes is read by the service's own user
    staging.chmod(0o755)
    try:
        card = build(staging)
        files = {
            path.relative_to(staging).as_posix(): file_sha256(path)
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        manifest = {
            "pipeline": pipeline,
            "trainer": trainer,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        table = "\n".join(f"| `{name}` | `{sha[:16]}` |" for name, sha in files.items())
        (staging / MODEL_CARD).write_text(
            f"{card.rstrip()}\n\n## Artifacts\n\nTraining code fingerprint: `{trainer}`\n\n"
            f"| file | sha256 (first 16) |\n| --- | --- |\n{table}\n"
        )
        if artifacts_dir.exists():
            shutil.rmtree(artifacts_dir)
        staging.rename(artifacts_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return artifacts_dir / MODEL_CARD


def check_manifest(artifacts_dir: Path, *, pipeline: str, trainer: str) -> str:
    """Check the artifacts are there, fresh and intact; returns a hash of the manifest's files."""
    try:
        return _check_manifest(artifacts_dir, pipeline=pipeline, trainer=trainer)
    except PermissionError as error:
        raise ArtifactsError(
            f"the artifacts in {artifacts_dir} cannot be read by this user: {error.filename}: "
            "give the service's user read access (e.g. chmod -R a+rX)"
        ) from None


def _check_manifest(artifacts_dir: Path, *, pipeline: str, trainer: str) -> str:
    manifest_path = artifacts_dir / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactsError(f"no artifacts for pipeline {pipeline!r} in {artifacts_dir}: {TRAIN_HINT}")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("pipeline") != pipeline:
        raise ArtifactsError(
            f"the artifacts in {artifacts_dir} belong to pipeline {manifest.get('pipeline')!r}, "
            f"not {pipeline!r}: {TRAIN_HINT}"
        )
    if manifest.get("trainer") != trainer:
        raise ArtifactsError(
            f"the artifacts in {artifacts_dir} are stale (built by other training code, "
            f"{manifest.get('trainer')} instead of {trainer}): {TRAIN_HINT}"
        )
    for name, sha in manifest["files"].items():
        path = artifacts_dir / name
        if not path.is_file():
            raise ArtifactsError(f"artifact {name} is missing from {artifacts_dir}: {TRAIN_HINT}")
        if file_sha256(path) != sha:
            raise ArtifactsError(f"artifact {name} in {artifacts_dir} changed since training: {TRAIN_HINT}")
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()[:16]
