"""The gateway's commands: serve it, make API keys, run a batch job, compare two jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.auth import ConfigurationError, hash_key, new_key
from gateway.settings import SCOPES, Settings
from onepipe.platform.http.client import ServiceError
from onepipe.platform.http.gateway_client import GatewayClient
from onepipe.platform.settings import DEVELOPMENT_KEY, load_settings

app = typer.Typer(help="The public API gateway.", no_args_is_help=True, add_completion=False)


@app.command()
def serve() -> None:
    """Serve the gateway (settings from GATEWAY_* env variables, MODEL_URL, REDIS_URL)."""
    from gateway.app import create_app
    from onepipe.platform.http.server import serve as serve_app

    settings = load_settings(Settings)
    try:
        create_app(settings)  # refuses unsafe keys or workers here, in one line, before any worker starts
    except (ConfigurationError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    serve_app("gateway.app:create_app", settings.host, settings.port, settings.workers)


@app.command("new-key")
def new_key_command(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scope: Annotated[list[str] | None, typer.Option(help=f"Repeat for several: {', '.join(SCOPES)}.")] = None,
) -> None:
    """Make an API key: prints the key (give it to the caller) and a GATEWAY_API_KEYS line for .env."""
    scopes = scope or ["predict"]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        typer.echo(f"error: unknown scope {unknown}; scopes: {', '.join(SCOPES)}", err=True)
        raise typer.Exit(2)
    key = new_key()
    entry = json.dumps({"name": name, "sha256": hash_key(key), "scopes": scopes})
    # single-quoted for .env and shells; a quote in the name is escaped in the JSON so it cannot end the line
    entry = entry.replace("'", "\\u0027")
    typer.echo(f"key (shown once): {key}")
    typer.echo(f"GATEWAY_API_KEYS='[{entry}]'")
    typer.echo(
        "# several keys: one list, their entries separated by commas: GATEWAY_API_KEYS='[{...}, {...}]'"
    )


@app.command()
def batch(
    file: Annotated[
        Path, typer.Argument(help="The dataset: .csv, .jsonl or .parquet.", exists=True, dir_okay=False)
    ],
    flag: Annotated[list[str] | None, typer.Option(help="A flag as name=value; repeat for several.")] = None,
    compare: Annotated[
        list[str] | None,
        typer.Option(help="A flag of a second set to compare against, name=value; repeatable."),
    ] = None,
    map_column: Annotated[
        list[str] | None, typer.Option("--map", help="input_field=column, when the names differ; repeatable.")
    ] = None,
    truth: Annotated[
        list[str] | None,
        typer.Option(help="output_field=column holding its right answers, to score; repeatable."),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="The version to run with: champion, challenger, vN or a hash (the key needs the "
            "versions scope). Default: the champion. The job is pinned to the hash that answers first.",
        ),
    ] = None,
    compare_version: Annotated[
        str | None,
        typer.Option(
            help="A second version to compare on the same rows, with the same flags (versions scope)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the reports.")] = Path("reports"),
    url: Annotated[str, typer.Option(envvar="GATEWAY_URL", help="The gateway.")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str, typer.Option(envvar="ONEPIPE_API_KEY", help="Your API key (jobs scope).")
    ] = DEVELOPMENT_KEY,
    poll: Annotated[float, typer.Option(help="Seconds between progress checks.")] = 1.0,
) -> None:
    """Submit a batch job through the gateway, show its progress, and save its reports."""
    console = Console()
    try:
        with GatewayClient(url, api_key, timeout=300) as client, file.open("rb") as content:
            job = client.submit_job(
                file.name,
                content,
                _pairs(map_column, "--map"),
                _flag_values(_pairs(flag, "--flag")),
                _flag_values(_pairs(compare, "--compare")) if compare else None,
                _pairs(truth, "--truth"),
                version,
                compare_version,
            )
            pinned = f", version {version}" if version else ""
            also = f" against version {compare_version}" if compare_version else ""
            console.print(f"job {job['id']} queued{pinned}{also}: {job['url']}")
            job = _follow(client, job, console, poll)
            if job["state"] != "succeeded":  # failed, cancelled, or paused until resumed
                colour = "yellow" if job["state"] == "paused" else "red"
                console.print(f"[{colour}]job {job['state']}[/{colour}]: {escape(job.get('error') or '')}")
                raise typer.Exit(1)
            _save_reports(client, job, out, console)
    except ServiceError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None


def _follow(client: GatewayClient, job: dict[str, Any], console: Console, poll: float) -> dict[str, Any]:
    """The job once it stopped (finished, or paused), its progress shown meanwhile."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("queued", total=None)
        while job["state"] in ("queued", "running"):
            time.sleep(poll)
            job = client.job(job["id"])
            progress.update(
                bar,
                description=f"{job['state']}, {job['rows_failed']} failed",
                completed=job["rows_done"],
                total=job["rows_total"],
            )
    return job


def _save_reports(client: GatewayClient, job: dict[str, Any], out: Path, console: Console) -> None:
    """A succeeded job's reports saved in `out`, and what ran in one line."""
    out.mkdir(parents=True, exist_ok=True)
    for file_format in job["reports"]:
        target = out / f"{job['id']}.{file_format}"
        target.write_bytes(client.report(job["id"], file_format))
        console.print(f"saved {target}")
    versions = (job["pipeline_version"] or "(none answered)") + (
        f" against {job['compare_pipeline_version']}" if job.get("compare_pipeline_version") else ""
    )
    console.print(
        f"[green]done[/green]: {job['rows_done']} rows, {job['rows_failed']} failed; "
        f"version {versions}; open {out / (job['id'] + '.html')}"
    )


@app.command()
def compare(
    job_a: Annotated[str, typer.Argument(help="Job A: the one before the change.")],
    job_b: Annotated[str, typer.Argument(help="Job B: the one after (same file, succeeded).")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also save the comparison as an HTML page here.")
    ] = None,
    url: Annotated[str, typer.Option(envvar="GATEWAY_URL", help="The gateway.")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str, typer.Option(envvar="ONEPIPE_API_KEY", help="Your API key (jobs scope).")
    ] = DEVELOPMENT_KEY,
) -> None:
    """Compare two finished jobs on the same file: rows that changed, transitions, scores."""
    console = Console()
    try:
        with GatewayClient(url, api_key, timeout=300) as client:
            found = client.compare(job_a, job_b)
            page = client.compare_page(job_a, job_b) if html is not None else None
    except ServiceError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    _print_comparison(console, found)
    if html is not None and page is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_bytes(page)
        console.print(f"saved {escape(str(html))}")


def _print_comparison(console: Console, found: dict[str, Any]) -> None:
    """The comparison's summary as tables: what ran, rows, scores, fields."""
    ran = Table(title="What ran", title_justify="left")
    for column in ("", "named", "job", "version", "flags", "rows failed"):
        ran.add_column(column, overflow="fold")  # a job id is to be copied: folded, never cut
    for side in ("a", "b"):
        job = found[side]
        flags = json.dumps(job["flags"]) if job["flags"] else "(defaults)"
        row = [
            side.upper(),
            job["name"],
            job["id"],
            job["pipeline_version"] or "",
            flags,
            str(job["rows_failed"]),
        ]
        ran.add_row(*(escape(cell) for cell in row))
    console.print(ran)
    console.print(f"[bold]{escape(found['headline'])}[/bold]")
    changed, compared = found["rows_changed"], found["compared"]
    share = f" ({changed / compared:.1%})" if compared else ""
    console.print(
        f"{found['rows']} rows, {compared} with an output in both jobs: {found['decisions_changed']} "
        f"changed a decision, {changed}{share} changed in any field (numbers past their tolerance); "
        f"{found['failed_in_one']} failed in one job only, {found['failed_in_both']} in both"
    )
    if found["scores"]:
        scores = Table(title="Scores against the truth", title_justify="left")
        for column in ("field", "measure", "rows", "A", "B", "B - A", "fixed", "broken"):
            scores.add_column(column, justify="left" if column in ("field", "measure") else "right")
        for score in found["scores"]:
            scores.add_row(
                escape(score["field"]),
                score["measure"],
                str(score["scored"]),
                _figure(score["a"]),
                _figure(score["b"]),
                "-" if score["difference"] is None else f"{score['difference']:+.3f}",
                str(score["fixed"]),
                str(score["broken"]),
            )
        console.print(scores)
    fields = Table(title="Output fields", title_justify="left")
    for column in ("field", "rows changed", "what became what (changes only)"):
        fields.add_column(column)
    for field in found["fields"]:
        moves = [t for t in field["transitions"] if t["before"] != t["after"]]
        shown = ", ".join(f"{t['before']} -> {t['after']}: {t['rows']}" for t in moves[:5])
        more = f", ... ({len(moves) - 5} more)" if len(moves) > 5 else ""
        fields.add_row(escape(field["field"]), str(field["changed"]), escape(shown + more))
    console.print(fields)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _flag_values(pairs: dict[str, str]) -> dict[str, Any]:
    """Flag values as JSON when they read as JSON (5, true, 0.6), else as text (minilm)."""
    values: dict[str, Any] = {}
    for name, text in pairs.items():
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text
    return values


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            typer.echo(f"error: {option} {item!r} must look like name=value", err=True)
            raise typer.Exit(2)
        pairs[name.strip()] = value.strip()
    return pairs
