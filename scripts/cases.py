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
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model_service.settings import Settings  # noqa: E402
from onepipe import LoadedPipeline, PipelineInputError  # noqa: E402
from onepipe.platform.cases import (  # noqa: E402
    SOURCES,
    Case,
    CasesFileError,
    expected_problems,
    input_problems,
    merge_cases,
    read_cases,
    without_defaults,
    write_cases,
    wrong_fields,
)
from onepipe.platform.http.client import GatewayClient, ServiceError  # noqa: E402
from onepipe.platform.jobs.storage import CaseStore  # noqa: E402
from onepipe.platform.jobs.types import input_key  # noqa: E402
from onepipe.platform.jsonlines import json_line, read_values  # noqa: E402
from onepipe.platform.loading import import_pipeline  # noqa: E402
from onepipe.platform.schema.schemas import output_roles  # noqa: E402
from onepipe.platform.settings import DEVELOPMENT_KEY, load_settings  # noqa: E402
from onepipe.platform.settings import storage_url as storage_setting  # noqa: E402

FACES = ("in-process", "model service", "gateway", "batch job")
PER_REQUEST = 32  # inputs per predict call: under every service's limit

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


# -- the four faces --------------------------------------------------------------------

Answer = tuple[list[dict[str, Any]], str]  # the outputs, in order, and the pipeline's version
Face = Callable[[list[dict[str, Any]], dict[str, Any]], Answer]


def in_process(loaded: LoadedPipeline[Any, Any, Any]) -> Face:
    """The pipeline called in this process."""

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> Answer:
        result = loaded.run(inputs, flags)
        return [o.model_dump(mode="json") for o in result.outputs], loaded.version

    return run


def over_http(url: str, headers: Mapping[str, str] | None = None) -> Face:
    """POST /v1/predict of a service (the model service, or the gateway with a key)."""

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> Answer:
        outputs: list[dict[str, Any]] = []
        versions = set()
        for start in range(0, len(inputs), PER_REQUEST):
            answer = httpx.post(
                url + "/v1/predict",
                json={"inputs": inputs[start : start + PER_REQUEST], "flags": flags},
                headers=dict(headers or {}),
                timeout=120,
            )
            if answer.status_code != 200:
                raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:500]}")
            body = answer.json()
            outputs += body["outputs"]
            versions.add(body["version"])
        return outputs, ",".join(sorted(versions))

    return run


def as_batch_job(gateway_url: str, headers: Mapping[str, str], like: Face) -> Face:
    """The inputs as a JSON Lines file through a batch job; outputs read back from its JSONL report.

    The report writes a nested output (a list or an object) as JSON text: read back as JSON
    wherever `like` (the in-process face) gives one.
    """

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> Answer:
        lines = "".join(json_line(item) for item in inputs).encode()
        sent = httpx.post(
            gateway_url + "/v1/jobs",
            files={"file": ("cases.jsonl", lines)},
            data={"flags": json.dumps(flags)},
            headers=dict(headers),
            timeout=120,
        )
        if sent.status_code != 202:
            raise RuntimeError(f"the gateway refused the batch job: {sent.status_code} {sent.text[:500]}")
        job = _finished(sent.json()["url"], headers)
        if job["state"] != "succeeded":
            raise RuntimeError(f"the batch job {job['id']} ended {job['state']}: {job.get('error')}")
        report = httpx.get(job["reports"]["jsonl"], headers=dict(headers), timeout=120)
        records = read_values(report.text)
        shapes, _ = like(inputs, flags)
        outputs = [
            {
                name: json.loads(record[f"output.{name}"])
                if isinstance(value, dict | list) and isinstance(record.get(f"output.{name}"), str)
                else record.get(f"output.{name}")
                for name, value in shape.items()
            }
            for record, shape in zip(records, shapes, strict=True)
        ]
        return outputs, str(job.get("pipeline_version") or "")

    return run


def _finished(url: str, headers: Mapping[str, str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = dict(httpx.get(url, headers=dict(headers), timeout=30).json())
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise RuntimeError(f"the batch job at {url} did not finish within {timeout:g} s")


@contextmanager
def private_stack(settings: Settings) -> Iterator[dict[str, Face]]:
    """The model service, the gateway and a worker, started here on free ports (no Redis needed)."""
    from gateway.auth import hash_key
    from onepipe_harness.processes import free_port, gateway, model_service, worker

    key = "cases-" + os.urandom(8).hex()
    keys = [{"name": "cases", "sha256": hash_key(key), "scopes": ["predict", "jobs"]}]
    with tempfile.TemporaryDirectory(prefix="onepipe-cases-") as folder, ExitStack() as started:
        shared = {
            "STORAGE_URL": str(Path(folder) / "storage"),
            "REDIS_URL": f"sqla+sqlite:///{Path(folder) / 'queue.sqlite'}",
        }
        model = started.enter_context(
            model_service(
                free_port(),
                MODEL_PIPELINE=settings.pipeline,
                MODEL_ARTIFACTS_DIR=str(settings.artifacts_dir.resolve()),
            )
        )
        front = started.enter_context(
            gateway(
                free_port(),
                model.url,
                GATEWAY_API_KEYS=json.dumps(keys),
                GATEWAY_RATE_LIMIT="100000/minute",
                **shared,
            )
        )
        started.enter_context(worker(MODEL_URL=model.url, **shared))
        headers = {"X-API-Key": key}
        yield {
            "model service": over_http(model.url),
            "gateway": over_http(front.url, headers),
            "batch job": as_batch_job(front.url, headers, over_http(model.url)),
        }


# -- a replay --------------------------------------------------------------------------


@dataclass
class CaseRun:
    """One case through every face."""

    case: Case
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # face -> outputs
    versions: dict[str, str] = field(default_factory=dict)  # face -> pipeline version

    @property
    def output(self) -> dict[str, Any]:
        """The in-process output: the reference every face must equal."""
        return self.answers[FACES[0]]

    @property
    def disagreeing(self) -> list[str]:
        """The faces whose outputs or version differ from the in-process ones."""
        return [
            face
            for face in self.answers
            if self.answers[face] != self.output or self.versions[face] != self.versions[FACES[0]]
        ]

    @property
    def wrong(self) -> list[str]:
        """The expected fields the pipeline gets wrong."""
        return wrong_fields(self.case, self.output)


def replay(cases: Sequence[Case], faces: Mapping[str, Face]) -> list[CaseRun]:
    """Every case through every face, one call per face and flag set."""
    runs = {case.id: CaseRun(case) for case in cases}
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(json.dumps(case.flags, sort_keys=True), []).append(case)
    for group in groups.values():
        inputs, flags = [c.input for c in group], group[0].flags
        for face, run in faces.items():
            outputs, version = run(inputs, flags)
            for case, output in zip(group, outputs, strict=True):
                runs[case.id].answers[face] = output
                runs[case.id].versions[face] = version
    return [runs[case.id] for case in cases]


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def results_table(runs: Sequence[CaseRun]) -> Table:
    """Per case: what a person expects, what the pipeline answers, whether the faces agree."""
    table = Table(title="Cases", show_lines=False)
    for column in ("case", "note", "expected", "answer", "faces", "result"):
        table.add_column(column, overflow="fold")
    for run in runs:
        expected = ", ".join(f"{k}={_value(v)}" for k, v in run.case.expected.items())
        answer = ", ".join(f"{k}={_value(run.output.get(k))}" for k in run.case.expected)
        faces = (
            f"[green]all {len(run.answers)} agree[/green]"
            if not run.disagreeing
            else "[red]differ: " + ", ".join(run.disagreeing) + "[/red]"
        )
        if not run.wrong:
            result = "[green]right[/green]"
        elif run.case.must_pass:
            result = "[red]WRONG (must pass)[/red]"
        else:
            result = "[yellow]wrong[/yellow]"
        note = run.case.note if len(run.case.note) <= 60 else run.case.note[:57] + "..."
        table.add_row(run.case.id, escape(note), escape(expected), escape(answer), faces, result)
    return table


def saved_run(runs: Sequence[CaseRun], pipeline: str) -> dict[str, Any]:
    """A replay as kept by --save: each case's output and whether it was right."""
    return {
        "pipeline": pipeline,
        "version": runs[0].versions[FACES[0]] if runs else "",
        "at": datetime.now(UTC).isoformat(),
        "cases": {
            run.case.id: {
                "expected": run.case.expected,
                "note": run.case.note,
                "output": run.output,
                "right": not run.wrong,
            }
            for run in runs
        },
    }


@dataclass
class Change:
    """What happened to one case between a kept run and this one."""

    case_id: str
    what: str  # fixed, broken, changed, new, removed
    fields: dict[str, tuple[Any, Any]]  # output field -> (before, now)
    note: str


def changes_since(before: Mapping[str, Any], runs: Sequence[CaseRun]) -> list[Change]:
    """The cases whose outputs changed since `before` (a --save file), fixed and broken first."""
    kept: Mapping[str, Any] = before["cases"]
    found = []
    for run in runs:
        old = kept.get(run.case.id)
        if old is None:
            found.append(Change(run.case.id, "new", {}, run.case.note))
            continue
        fields = {
            name: (old["output"].get(name), value)
            for name, value in run.output.items()
            if old["output"].get(name) != value
        }
        right = not run.wrong
        what = (
            "fixed"
            if right and not old["right"]
            else "broken"
            if old["right"] and not right
            else "changed"
            if fields
            else ""
        )
        if what:
            found.append(Change(run.case.id, what, fields, run.case.note))
    current = {run.case.id for run in runs}
    found += [Change(i, "removed", {}, str(c.get("note", ""))) for i, c in kept.items() if i not in current]
    order = {"broken": 0, "fixed": 1, "changed": 2, "new": 3, "removed": 4}
    return sorted(found, key=lambda change: order[change.what])


def changes_table(changes: Sequence[Change], before: Mapping[str, Any], version: str) -> Table:
    """What changed since a kept run, case by case."""
    table = Table(title=f"Since the run of {before['at'][:19]} (version {before['version']} -> {version})")
    for column in ("case", "change", "outputs that changed", "note"):
        table.add_column(column, overflow="fold")
    colours = {"broken": "red", "fixed": "green"}
    for change in changes:
        fields = "; ".join(f"{k}: {_value(a)} -> {_value(b)}" for k, (a, b) in change.fields.items())
        what = change.what
        if what in colours:
            what = f"[{colours[what]}]{what}[/{colours[what]}]"
        table.add_row(change.case_id, what, escape(fields), escape(change.note[:60]))
    return table


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
    confidence = output_roles(output_schema).get("confidence")
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
            answered = ", ".join(f"{f}={_value(record.get(f'{output}.{f}'))}" for f in missed)
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
            f"[yellow]conflict[/yellow] {held.id}: the library expects {_value(held.expected)}, "
            f"a report ({incoming.source}, {incoming.added_at:%Y-%m-%d}) says {_value(incoming.expected)}"
            + (f": {escape(incoming.note)}" if incoming.note else "")
        )


if __name__ == "__main__":
    app()
