"""The edge-case library: replay it through every face, add cases to it, pull reported ones in.

    just cases [--file F] [--save RUN.json] [--against RUN.json]
        every case in-process, through the model service, through the gateway and as a
        batch job (a private stack started here); a table of each case's answer, whether
        the four faces agree exactly (outputs and version) and whether it is right.
        Fails when faces disagree or a `must_pass` case is wrong; other wrong answers are
        counted. --save keeps the run; --against shows what changed since a kept run.
    just cases pull [--storage URL]
        merge the cases reported to the running services (UI, gateway) into the library.
    just case add --input JSON --expect field=value [...] [--flag name=value] [--note TEXT]
    just case add --from FILE
        add one case, or the cases of a file (a batch report's wrong rows), to the library.

The library is cases/<pipeline>.jsonl (onepipe.platform.cases); the pipeline is MODEL_PIPELINE's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from model_service.settings import Settings
from onepipe import LoadedPipeline, PipelineInputError
from onepipe.platform.cases import (
    SOURCES,
    Case,
    CasesFileError,
    expected_problems,
    input_problems,
    merge_cases,
    read_cases,
    without_defaults,
    write_cases,
)
from onepipe.platform.http.client import ServiceError
from onepipe.platform.http.gateway_client import GatewayClient
from onepipe.platform.jobs.storage import CaseStore
from onepipe.platform.jobs.types import input_key
from onepipe.platform.jsonlines import read_values
from onepipe.platform.loading import import_pipeline
from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.settings import DEVELOPMENT_KEY, load_settings
from onepipe.platform.settings import storage_url as storage_setting
from scripts.case_faces import (  # re-exported: the tests replay through them
    FACES,
    as_batch_job,
    in_process,
    over_http,
    private_stack,
)
from scripts.case_replay import (
    CaseRun,
    as_text,
    changes_since,
    changes_table,
    replay,
    results_table,
    saved_run,
)

ROOT = Path(__file__).resolve().parent.parent

# the replay's parts, as tests/gateway/test_cases.py imports them from here
__all__ = [
    "FACES",
    "CaseRun",
    "as_batch_job",
    "changes_since",
    "check_cases",
    "in_process",
    "over_http",
    "replay",
    "saved_run",
]

app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__.splitlines()[0])
# a terminal's own width; piped (CI, a file), wide enough for the tables
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(2)


def library_path(pipeline_name: str) -> Path:
    """Where a pipeline's library lives in the repo."""
    return ROOT / "cases" / f"{pipeline_name}.jsonl"


def _pipeline() -> tuple[Settings, LoadedPipeline[Any, Any, Any]]:
    settings = load_settings(Settings)
    definition = import_pipeline(settings.pipeline)
    return settings, definition.load(settings.artifacts_for(definition.name).resolve())


def check_cases(loaded: LoadedPipeline[Any, Any, Any], cases: Sequence[Case]) -> list[str]:
    """Each case the pipeline cannot run, with input fields it lacks, or whose expected values its
    outputs cannot take, in words."""
    info = loaded.describe()
    found = []
    for case in cases:
        problems = [str(p) for p in input_problems(case.input, info.input_schema)]
        problems += [str(p) for p in expected_problems(case.expected, info.output_schema)]
        try:
            loaded.definition.validate_inputs([case.input], strict=True)
            loaded.definition.validate_flags(case.flags, strict=True)
        except PipelineInputError as error:
            problems.append(str(error))
        if problems:
            found.append(f"{case.id}: " + "; ".join(problems))
    return found


@app.callback(invoke_without_command=True)
def main(
    context: typer.Context,
    file: Annotated[Path | None, typer.Option(help="The library (default: cases/<pipeline>.jsonl).")] = None,
    save: Annotated[Path | None, typer.Option(help="Keep this run in a JSON file.")] = None,
    against: Annotated[
        Path | None, typer.Option(help="A run kept by --save: show what changed since.")
    ] = None,
) -> None:
    """Replay the library through every face (when no command is given)."""
    if context.invoked_subcommand is not None:
        return
    settings, loaded = _pipeline()
    path = file or library_path(loaded.definition.name)
    try:
        cases = read_cases(path)
        before = json.loads(against.read_text()) if against else None
    except (CasesFileError, OSError, ValueError) as error:
        raise _fail(str(error)) from None
    if not cases:
        raise _fail(f"{path} holds no cases: add some with `just case add`")
    if problems := check_cases(loaded, cases):
        raise _fail(f"{path}: cases the pipeline cannot run: " + "; ".join(problems))
    console.print(f"{len(cases)} cases of {loaded.definition.name} {loaded.version} from {path}")
    with private_stack(settings) as served:
        runs = replay(cases, {FACES[0]: in_process(loaded), **served})
    console.print(results_table(runs))
    right = sum(1 for run in runs if not run.wrong)
    disagreeing = [run for run in runs if run.disagreeing]
    must = [run for run in runs if run.wrong and run.case.must_pass]
    console.print(
        f"right: {right} of {len(runs)} ({right / len(runs):.0%}); faces disagree on {len(disagreeing)}; "
        f"must-pass cases wrong: {len(must)}"
    )
    if save:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.write_text(json.dumps(saved_run(runs, loaded.definition.name), indent=2, ensure_ascii=False))
        console.print(f"run kept in {save}")
    if before is not None:
        changes = changes_since(before, runs)
        if changes:
            console.print(changes_table(changes, before, loaded.version))
        counts = {what: sum(1 for c in changes if c.what == what) for what in ("fixed", "broken", "changed")}
        console.print(
            f"since {against}: {counts['fixed']} fixed, {counts['broken']} broken, "
            f"{counts['changed']} other changes"
        )
    if disagreeing or must:
        raise typer.Exit(1)


def _pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """name=value pairs; a value that reads as JSON (a number, true, null, a list) is taken as JSON."""
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise _fail(f"{what} {pair!r}: write it as name=value")
        try:
            found[name] = json.loads(text)
        except ValueError:
            found[name] = text
    return found


@app.command()
def add(
    input_json: Annotated[str | None, typer.Option("--input", help="The input, as a JSON object.")] = None,
    expect: Annotated[
        list[str] | None, typer.Option(help="field=value the pipeline should answer (repeat).")
    ] = None,
    flag: Annotated[list[str] | None, typer.Option(help="name=value to run the case with (repeat).")] = None,
    note: Annotated[str, typer.Option(help="Why the case matters.")] = "",
    source: Annotated[str, typer.Option(help="Where it came from: " + ", ".join(SOURCES) + ".")] = "engineer",
    must_pass: Annotated[bool, typer.Option(help="A wrong answer fails `just cases`.")] = False,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="Add every case of a JSON Lines file instead.")
    ] = None,
    from_job: Annotated[
        str | None,
        typer.Option(help="Add a scored job's wrong rows instead (the most confident first)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Most wrong rows to take from --from-job.")] = 50,
    url: Annotated[str, typer.Option(envvar="GATEWAY_URL", help="The gateway, for --from-job.")] = (
        "http://127.0.0.1:8000"
    ),
    api_key: Annotated[
        str, typer.Option(envvar="ONEPIPE_API_KEY", help="Your API key (jobs scope), for --from-job.")
    ] = DEVELOPMENT_KEY,
    file: Annotated[Path | None, typer.Option(help="The library (default: cases/<pipeline>.jsonl).")] = None,
) -> None:
    """Add a case (or a file of cases) to the library, checked against the pipeline first."""
    _, loaded = _pipeline()
    path = file or library_path(loaded.definition.name)
    try:
        if from_file is not None:
            incoming = read_cases(from_file)
        elif from_job is not None:
            incoming = cases_from_job(loaded, from_job, limit, url, api_key)
        else:
            if input_json is None or not expect:
                raise _fail(
                    "give --input JSON and at least one --expect field=value (or --from FILE, --from-job JOB)"
                )
            incoming = [
                Case.model_validate(
                    {
                        "input": json.loads(input_json),
                        "flags": without_defaults(
                            loaded.definition.validate_flags(_pairs(flag or [], "--flag")).model_dump(
                                mode="json", exclude_unset=True
                            ),
                            loaded.describe().flags_schema,
                        ),
                        "expected": _pairs(expect, "--expect"),
                        "note": note,
                        "source": source,
                        "must_pass": must_pass,
                    }
                )
            ]
        library = read_cases(path)
    except (CasesFileError, OSError, ValueError, ServiceError) as error:
        raise _fail(str(error)) from None
    if problems := check_cases(loaded, incoming):
        raise _fail("; ".join(problems))
    merged = merge_cases(library, incoming)
    write_cases(path, merged.cases)
    _merge_summary(merged, path)


def cases_from_job(
    loaded: LoadedPipeline[Any, Any, Any], job_id: str, limit: int, url: str, api_key: str
) -> list[Case]:
    """A scored job's wrong rows as cases (the right answer from the truth column), most confident first."""
    output_schema, output_flags_schema = loaded.describe().output_schema, loaded.describe().flags_schema
    confidence = Outputs.from_schema(output_schema).confidence
    with GatewayClient(url, api_key, timeout=300) as client:
        job = client.job(job_id)
        if not job["truth"]:
            raise ValueError(f"job {job_id} has no truth columns: nothing says which rows are wrong")
        if job["state"] != "succeeded":
            raise ValueError(f"job {job_id} is {job['state']}: only a finished job has scored rows")
        records = read_values(client.report(job_id, "jsonl").decode())
    flag_sets = [("", "output", job["flags"])]
    if job["compare_flags"] is not None:
        flag_sets.append(("compare_", "compare", job["compare_flags"]))
    wrong: list[tuple[float, Case]] = []
    for record in records:
        raw = {field: record.get(input_key(column)) for field, column in job["mapping"].items()}
        raw = {field: value for field, value in raw.items() if value is not None}
        try:  # the file's cells as the pipeline reads them (a CSV holds text)
            given = loaded.definition.validate_inputs([raw])[0].model_dump(mode="json", exclude_unset=True)
        except PipelineInputError:
            continue  # a row the job could not run either
        for prefix, output, flags in flag_sets:
            missed = [f for f in job["truth"] if record.get(f"{prefix}correct.{f}") is False]
            if not missed:
                continue
            expected = {f: _as_output(record.get(f"truth.{f}"), f, output_schema) for f in missed}
            answered = ", ".join(f"{f}={as_text(record.get(f'{output}.{f}'))}" for f in missed)
            sure = record.get(f"{output}.{confidence}") if confidence else None
            note = f"wrong in job {job_id}, row {record['row']}: answered {answered}" + (
                f" (confidence {sure:.2f})" if isinstance(sure, int | float) else ""
            )
            flags = without_defaults(flags, output_flags_schema)
            case = Case(input=given, flags=flags, expected=expected, note=note, source="reviewer")
            wrong.append((float(sure) if isinstance(sure, int | float) else 0.0, case))
    wrong.sort(key=lambda pair: -pair[0])
    return [case for _, case in wrong[:limit]]


def _as_output(value: Any, name: str, output_schema: Mapping[str, Any]) -> Any:
    """A truth cell as the output field's value: text that the field cannot take is read as JSON."""
    if isinstance(value, str) and expected_problems({name: value}, output_schema):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@app.command()
def pull(
    storage: Annotated[
        str | None, typer.Option(help="The services' storage root (default: STORAGE_URL).")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="The library (default: cases/<pipeline>.jsonl).")] = None,
) -> None:
    """Merge the cases reported to running services into the library, without duplicates.

    A report is removed from storage only once the library holding it is written and read back.
    """
    _, loaded = _pipeline()
    name = loaded.definition.name
    path = file or library_path(name)
    root = storage or os.environ.get("STORAGE_URL") or str(storage_setting().default)
    store = CaseStore(root)
    try:
        reported = store.stored(name)
        merged = merge_cases(read_cases(path), [stored.case for stored in reported])
        write_cases(path, merged.cases)
        kept = {case.id: case for case in read_cases(path)}
    except (CasesFileError, OSError, ValueError) as error:
        raise _fail(f"{error}; no report was removed from {root}") from None
    # merged and duplicate reports are in the library now; a conflict stays until a person settles it
    conflicting = {id(incoming) for _, incoming in merged.conflicts}
    settled = [stored for stored in reported if id(stored.case) not in conflicting]
    missing = [stored.case.id for stored in settled if not _holds(kept, stored.case)]
    if missing:
        raise _fail(f"{path} read back lacks {', '.join(missing)}; no report was removed from {root}")
    for stored in settled:
        store.remove(name, stored.key, stored.owner)
    console.print(f"{len(reported)} reported cases in {root}")
    _merge_summary(merged, path)


def _holds(library: Mapping[str, Case], case: Case) -> bool:
    """Whether the library holds the case: its question with the same answer and the same input."""
    held = library.get(case.id)
    return held is not None and held.input == case.input and held.expected == case.expected


def _merge_summary(merged: Any, path: Path) -> None:
    console.print(
        f"{len(merged.added)} added to {path}, {len(merged.duplicates)} already there, "
        f"{len(merged.conflicts)} in conflict; {len(merged.cases)} cases in all"
    )
    for held, incoming in merged.conflicts:
        console.print(
            f"[yellow]conflict[/yellow] {held.id}: the library expects {as_text(held.expected)}, "
            f"a report ({incoming.source}, {incoming.added_at:%Y-%m-%d}) says {as_text(incoming.expected)}"
            + (f": {escape(incoming.note)}" if incoming.note else "")
        )


if __name__ == "__main__":
    app()
