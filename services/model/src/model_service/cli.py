"""The command-line face: train the artifacts and run the pipeline in-process (the notebook phase)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from redis.exceptions import RedisError
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table

from model_service.evidence_view import evidence_table
from model_service.promotion import library, loaded_versions, overridden
from model_service.promotion import promote as promote_version
from model_service.settings import Settings
from model_service.tables import versions_table
from onepipe import ArtifactsError, Pipeline, PipelineDefinitionError, PipelineInputError, Trace
from onepipe.platform.loading import import_pipeline
from onepipe.platform.settings import load_settings
from onepipe.platform.versions.evidence import candidate_of, gather_evidence, held_out_of, with_shadow
from onepipe.platform.versions.registry import Registry, RegistryError, UnknownVersionError
from onepipe.platform.versions.shadow import ShadowSource, read_summary
from onepipe.platform.versions.types import CHALLENGER, CHAMPION, PromotionRequest, ShadowSummary

app = typer.Typer(help="The pipeline from the command line.", no_args_is_help=True, add_completion=False)
T = TypeVar("T")
console = Console()
errors = Console(stderr=True)


@app.command()
def train(
    if_needed: Annotated[
        bool, typer.Option(help="Train only when the artifacts are missing, stale or damaged.")
    ] = False,
    alias: Annotated[
        Challenger | None, typer.Option(help="Also make the version registered the challenger.")
    ] = None,
    flag: Annotated[
        list[str] | None,
        typer.Option(help="A flag default this version sets, name=value; repeat for several."),
    ] = None,
) -> None:
    """Build the pipeline's artifacts and model card (fixed seed, held-out split), then register them."""
    settings = load_settings(Settings)
    pipeline = _pipeline(settings)
    target = settings.artifacts_for(pipeline.name)
    defaults = _flag_defaults(pipeline, flag or [])
    fresh = False
    if if_needed:
        try:
            pipeline.check_artifacts(target)
            fresh = True
        except ArtifactsError as error:
            console.print(f"training: {error}")
    if fresh:
        console.print(f"artifacts in {target} are up to date")
    else:
        with console.status(f"training {pipeline.name} into {target} ..."):
            card = pipeline.train(target)
        console.print(f"[green]artifacts written to {target}[/green]; model card: {card}")
        console.print(card.read_text())
    if settings.registry != "none":
        _register(settings, pipeline, target, defaults, alias.value if alias else None)


@app.command()
def versions() -> None:
    """The registered versions: aliases, held-out metrics, when each was trained."""
    settings = load_settings(Settings)
    pipeline = _pipeline(settings)
    found = _registry_call(lambda: _registry(settings).versions(pipeline.name))
    console.print(versions_table(pipeline.name, found))


@app.command()
def promote(
    force: Annotated[
        bool, typer.Option(help="Promote even when a must-pass case breaks (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why it is forced; recorded with the evidence.")] = None,
    held_out_rows: Annotated[
        int | None,
        typer.Option(min=10, help="Score a random sample of this many held-out rows (default: all)."),
    ] = None,
) -> None:
    """Gather the evidence on champion and challenger, print it, make the challenger champion if it holds."""
    settings = load_settings(Settings)
    pipeline = _pipeline(settings)
    registry = _registry(settings)
    request = PromotionRequest(force=force, reason=reason, held_out_rows=held_out_rows)
    if force and not (reason or "").strip():
        _fail("--force needs --reason TEXT: why it is forced is recorded with the evidence", code=2)
    infos = _registry_call(lambda: [registry.resolve(pipeline.name, a) for a in (CHAMPION, CHALLENGER)])
    with console.status("loading champion and challenger ..."):
        loaded = _registry_call(lambda: loaded_versions(pipeline, registry, infos))
    champion, challenger = (
        candidate_of(alias, version, info.number, info.flag_defaults)
        for alias, version, info in zip((CHAMPION, CHALLENGER), loaded, infos, strict=True)
    )
    cases = library(settings.cases_dir, pipeline.name)
    with console.status(f"replaying {len(cases)} cases and scoring the held-out rows on both ..."):
        evidence = gather_evidence(
            champion, challenger, cases, held_out_of(pipeline), held_out_rows=held_out_rows
        )
    evidence = with_shadow(evidence, _shadow(pipeline, champion.version, challenger.version))
    evidence = overridden(evidence, request, by=os.environ.get("USER"))
    console.print(evidence_table(evidence))
    if not evidence.may_promote:
        _fail(
            f"promotion refused: {evidence.refusal} (--force --reason TEXT overrides; it is recorded)", code=1
        )
    done = _registry_call(lambda: promote_version(registry, evidence))
    console.print(
        f"[green]v{done.champion} is champion[/green]; v{done.previous} is previous (`just rollback` brings "
        "it back). Every model service process serves it within MODEL_REGISTRY_POLL_SECONDS."
    )


def _shadow(pipeline: Pipeline[Any, Any, Any], champion: str, challenger: str) -> ShadowSummary | None:
    """The gateway's shadow record of these two versions (REDIS_URL, STORAGE_URL), or None with a note why."""
    try:
        found = read_summary(
            pipeline.name, pipeline.output_model.model_json_schema(), champion, challenger, ShadowSource()
        )
    except (OSError, RedisError) as error:
        console.print(f"[yellow]the shadow record could not be read ({escape(str(error))})[/yellow]")
        return None
    if found is None:
        console.print("no shadow record of these two versions (GATEWAY_SHADOW_RATE was 0, or it dropped)")
    return found


@app.command()
def rollback() -> None:
    """Make the previous champion the champion again (the model service follows within seconds)."""
    settings = load_settings(Settings)
    pipeline = _pipeline(settings)
    old, new = _registry_call(lambda: _registry(settings).rollback(pipeline.name))
    console.print(f"[green]champion is v{new} again[/green]; v{old} is the challenger")


@app.command()
def serve() -> None:
    """Serve the pipeline over HTTP (settings from MODEL_* env variables)."""
    from onepipe.platform.http.prefork import share_metrics

    settings = load_settings(Settings)
    if settings.workers > 1:
        # before the service's modules import prometheus-client, which picks its mode then (so this
        # module imports them only here)
        share_metrics()
    from model_service.app import preload
    from model_service.service import ModelService
    from onepipe.platform.http.server import serve as serve_app

    if settings.workers == 1:
        pipeline = _pipeline(settings)
        try:
            ModelService(pipeline, settings).check()
        except ArtifactsError as error:
            _fail(str(error), code=1)
    # with several processes this one imports the pipeline once and forks the workers after it;
    # each worker checks and loads its own models, and a refusal stops them all
    refused = serve_app(
        "model_service.app:create_app",
        settings.host,
        settings.port,
        settings.workers,
        preload=(lambda: preload(settings)) if settings.workers > 1 else None,
    )
    if refused:
        _fail(refused, code=1)


@app.command()
def predict(
    payload: Annotated[
        str | None, typer.Argument(help="One input as JSON, or a JSON list of inputs; - reads it from stdin.")
    ] = None,
    example: Annotated[str | None, typer.Option(help="Run a named example instead.")] = None,
    debug: Annotated[bool, typer.Option(help="Show every step's output, time and debug detail.")] = False,
    flag: Annotated[list[str] | None, typer.Option(help="A flag as name=value; repeat for several.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON result.")] = False,
) -> None:
    """Run the pipeline in this process and print its output (and trace with --debug)."""
    settings = load_settings(Settings)
    pipeline = _pipeline(settings)
    inputs = _inputs(pipeline.examples, payload, example)
    flags = _flags(flag or [])
    try:
        loaded = pipeline.load(settings.artifacts_for(pipeline.name))
        result = loaded.run(inputs, flags, debug=debug)
    except ArtifactsError as error:
        _fail(str(error), code=1)
    except PipelineInputError as error:
        _fail("invalid request:\n" + "\n".join(f"  {p}" for p in error.problems), code=2)
    if as_json:
        console.print_json(result.model_dump_json())
        return
    for index, output in enumerate(result.outputs):
        title = f"{loaded.name} {loaded.version}: input {index}"
        console.print(Panel(Pretty(output.model_dump(mode="json")), title=title))
        if result.traces:
            console.print(render_trace(result.traces[index]))


def render_trace(trace: Trace) -> Group:
    """A rich table per step: what it output, how long it took, its debug detail."""
    parts: list[RenderableType] = []
    for number, step in enumerate(trace.steps, start=1):
        heading = f"{number}. {escape(step.name)}" + (f" ({escape(step.variant)})" if step.variant else "")
        if step.status != "ran":
            why = "switched off by a flag" if step.status == "off" else "not needed with these flags"
            parts.append(f"[dim]{heading}: {why}[/dim]")
            continue
        table = Table(
            title=f"{heading}: {step.time_ms:.2f} ms (batch of {step.batch_size})",
            caption=escape(step.doc),
            title_justify="left",
            title_style="bold",
            show_header=False,
            expand=True,
        )
        table.add_column("what", style="cyan", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_row("output", Pretty(step.output))
        for key, value in step.debug.items():
            table.add_row(escape(key), Pretty(value))
        parts.append(table)
    parts.append(f"total {trace.total_ms:.2f} ms")
    return Group(*parts)


def _pipeline(settings: Settings) -> Any:
    try:
        return import_pipeline(settings.pipeline)
    except PipelineDefinitionError as error:
        _fail(str(error), code=1)


class Challenger(StrEnum):
    """The alias `just train --alias` may set: champion moves only by promotion or rollback."""

    challenger = CHALLENGER


def _registry(settings: Settings) -> Registry:
    if settings.registry == "none":
        _fail("no registry: MODEL_REGISTRY is none", code=2)
    return Registry(settings.registry, settings.versions_cache)


def _registry_call(action: Callable[[], T]) -> T:
    try:
        return action()
    except (RegistryError, UnknownVersionError, ArtifactsError) as error:
        _fail(str(error), code=1)


def _register(
    settings: Settings, pipeline: Any, target: Path, defaults: dict[str, Any], alias: str | None
) -> None:
    registry = _registry(settings)
    version = _registry_call(lambda: registry.register(pipeline, target, defaults, alias))
    named = ", ".join(version.aliases) or "no alias"
    console.print(f"[green]registered as v{version.number}[/green] ({version.version}): {named}")
    if not version.aliases:
        console.print("try it beside the champion with `just train --alias challenger`, then `just promote`")


def _flag_defaults(pipeline: Any, pairs: list[str]) -> dict[str, Any]:
    """The flag defaults given, checked by the flags model, as JSON values."""
    given = _flags(pairs)
    try:
        checked = pipeline.flags_model(**given).model_dump(mode="json")
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        _fail(f"--flag: {problems}", code=2)
    return {name: checked[name] for name in given}


def _inputs(examples: Any, payload: str | None, example: str | None) -> list[Any]:
    if example is not None:
        if example not in examples:
            _fail(f"no example {example!r}; examples: {', '.join(examples)}", code=2)
        return [examples[example]]
    if payload is None:
        _fail(f"give an input as JSON or --example NAME (examples: {', '.join(examples)})", code=2)
    if payload == "-":  # a file of any size, where an argument stops at 128 KiB
        payload = sys.stdin.read()
    try:
        parsed = json.loads(payload)
    except json.JSONDecodeError as error:
        _fail(f"the input is not valid JSON: {error}", code=2)
    return parsed if isinstance(parsed, list) else [parsed]


def _flags(pairs: list[str]) -> dict[str, str]:
    flags = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            _fail(f"--flag {pair!r} must look like name=value", code=2)
        flags[name.strip()] = value.strip()  # the flags model converts and checks the value
    return flags


def _fail(message: str, code: int) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
