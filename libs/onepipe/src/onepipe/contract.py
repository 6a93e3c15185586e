"""The pipeline contract: typed step functions wired by their parameter names.

A step is a plain function named for what it produces. Its parameters name what it
needs: `inputs` (the validated batch), `flags` (the validated flags), `recorder`
(debug detail), a loaded resource, or an earlier step's output by that step's name.
Every step takes a batch and returns a list with one value per input, so a single
request is a batch of one and gives the same result.

Variants are configuration, not `if`s: `name__variant` functions marked with
`@when(flag=value)` share the step name `name`, and the flags pick one. A step whose
variants all miss the flags is off and yields None for every input.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from onepipe.artifacts import check_manifest, fingerprint_files, write_artifacts
from onepipe.errors import PipelineDefinitionError, PipelineInputError, Problem, problem_at
from onepipe.preview import preview
from onepipe.recorder import DISABLED, Recorder
from onepipe.trace import StepTrace, Trace

InputT = TypeVar("InputT", bound=BaseModel)
OutputT = TypeVar("OutputT", bound=BaseModel)
FlagsT = TypeVar("FlagsT", bound=BaseModel)
ModelT = TypeVar("ModelT", bound=BaseModel)

RESERVED_PARAMS = ("inputs", "flags", "recorder")
_WHEN_ATTR = "__onepipe_when__"


def when(**flag_values: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a step (or a variant of one) to run only when the flags have these values."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, _WHEN_ATTR, dict(flag_values))
        return fn

    return mark


@dataclass(frozen=True)
class Step:
    """One step function, with what the contract reads off it."""

    name: str
    variant: str | None
    fn: Callable[..., Sequence[Any]]
    doc: str
    params: tuple[str, ...]
    when: Mapping[str, Any]

    @classmethod
    def of(cls, fn: Callable[..., Sequence[Any]]) -> Step:
        """Read a step off a function: name__variant, first docstring line, parameters."""
        name, _, variant = fn.__name__.partition("__")
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        if not doc:
            raise PipelineDefinitionError(f"step {fn.__name__} needs a one-line docstring")
        return cls(
            name=name,
            variant=variant or None,
            fn=fn,
            doc=doc[0],
            params=tuple(inspect.signature(fn).parameters),
            when=getattr(fn, _WHEN_ATTR, {}),
        )

    def matches(self, flags: BaseModel) -> bool:
        """Whether the flags select this step (or variant)."""
        return all(getattr(flags, key) == value for key, value in self.when.items())


@dataclass(frozen=True)
class PlannedStep:
    """A step name, the variant the flags chose (None: off) and whether it is needed."""

    name: str
    chosen: Step | None
    needed: bool


class RunResult(BaseModel, Generic[OutputT]):
    """Outputs of one batch and, with debug on, a trace per input."""

    version: str
    outputs: list[OutputT]
    traces: list[Trace] | None = None


class StepInfo(BaseModel):
    """A step as the pipeline describes it."""

    name: str
    doc: str
    variants: dict[str, dict[str, Any]] = {}
    variant_docs: dict[str, str] = Field(default_factory=dict, description="Each variant's docstring.")
    needs: list[str]


class PipelineInfo(BaseModel):
    """Everything a face needs to build forms, docs and reports for a pipeline."""

    name: str
    version: str
    steps: list[StepInfo]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    flags_schema: dict[str, Any]
    examples: dict[str, dict[str, Any]]


@dataclass
class Pipeline(Generic[InputT, OutputT, FlagsT]):
    """A pipeline definition: models, steps, resources, examples and how to train."""

    name: str
    input_model: type[InputT]
    output_model: type[OutputT]
    flags_model: type[FlagsT]
    steps: Sequence[Callable[..., Sequence[Any]]]
    examples: Mapping[str, InputT]
    resources: Sequence[str] = ()
    load_resources: Callable[..., Mapping[str, Any]] | None = None
    build_artifacts: Callable[[Path], str] | None = None
    # the rows no classifier saw in training: (input, expected output fields), scored before a promotion
    held_out: Callable[[], Sequence[tuple[InputT | Mapping[str, Any], Mapping[str, Any]]]] | None = None
    artifacts_format: str = "1"
    _steps: list[Step] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._steps = [Step.of(fn) for fn in self.steps]
        self._check_wiring()

    # -- definition ---------------------------------------------------------------

    @property
    def step_names(self) -> list[str]:
        """Step names in pipeline order (variants share one name)."""
        return list(dict.fromkeys(step.name for step in self._steps))

    def _check_wiring(self) -> None:
        if not self._steps:
            raise PipelineDefinitionError(f"pipeline {self.name} has no steps")
        for flag, info in self.flags_model.model_fields.items():
            if info.is_required():
                raise PipelineDefinitionError(f"flag {flag!r} needs a default")
            if not info.description:
                raise PipelineDefinitionError(f"flag {flag!r} needs a description")
        known: set[str] = set(RESERVED_PARAMS) | set(self.resources)
        seen: list[str] = []
        for step in self._steps:
            for param in step.params:
                if param not in known and param not in seen:
                    raise PipelineDefinitionError(
                        f"step {step.fn.__name__} needs {param!r}, which is neither "
                        f"{', '.join(RESERVED_PARAMS)}, a resource ({', '.join(self.resources)}) "
                        f"nor an earlier step ({', '.join(seen) or 'none'})"
                    )
            for flag in step.when:
                if flag not in self.flags_model.model_fields:
                    raise PipelineDefinitionError(
                        f"step {step.fn.__name__}: @when names unknown flag {flag!r}"
                    )
            if step.name not in seen:
                seen.append(step.name)
        last = [s for s in self._steps if s.name == seen[-1]]
        if any(s.when for s in last):
            raise PipelineDefinitionError(f"the last step {seen[-1]!r} must always run (no @when)")
        # never called here: reading a held-out set may load a whole corpus
        if self.held_out is not None and not _takes_nothing(self.held_out):
            raise PipelineDefinitionError("held_out must be a function of no arguments")

    def _source_files(self) -> tuple[list[Path], Path, Path | None]:
        """The package's source files, their root, and the file that defines the steps."""
        module = inspect.getmodule(self._steps[0].fn)
        steps_file = Path(inspect.getfile(module)).resolve() if module else None
        if steps_file is None:
            return [], Path("."), None
        if (steps_file.parent / "__init__.py").exists():
            return sorted(steps_file.parent.rglob("*.py")), steps_file.parent, steps_file
        return [steps_file], steps_file.parent, steps_file

    def code_fingerprint(self) -> str:
        """A hash of the source of the package (or lone module) that defines the steps."""
        files, root, _ = self._source_files()
        return fingerprint_files(files, root=root)

    def trainer_fingerprint(self) -> str:
        """A hash of the artifact format and of the package's code other than the steps.

        Artifacts built by other training, data or loading code are stale; editing
        only the steps module changes the version but needs no retraining.
        """
        if self.build_artifacts is None:
            return ""
        files, root, steps_file = self._source_files()
        code = fingerprint_files([f for f in files if f != steps_file], root=root)
        return hashlib.sha256(f"{self.artifacts_format}:{code}".encode()).hexdigest()[:16]

    # -- training and loading ----------------------------------------------------------

    def train(self, artifacts_dir: Path) -> Path:
        """Build the artifacts into `artifacts_dir`; returns the model card's path."""
        if self.build_artifacts is None:
            raise PipelineDefinitionError(f"pipeline {self.name} has nothing to train")
        return write_artifacts(
            artifacts_dir,
            pipeline=self.name,
            trainer=self.trainer_fingerprint(),
            build=self.build_artifacts,
        )

    def check_artifacts(self, artifacts_dir: Path | None) -> str:
        """Check the artifacts are there, fresh and intact (cheap: no model is loaded).

        Returns a hash of the artifact files; raises ArtifactsError saying what to run.
        """
        if self.load_resources is None:
            return ""
        if artifacts_dir is None:
            raise PipelineDefinitionError(f"pipeline {self.name} needs an artifacts folder")
        return check_manifest(artifacts_dir, pipeline=self.name, trainer=self.trainer_fingerprint())

    def version_of(self, artifacts_dir: Path | None) -> str:
        """The version this code with these artifacts answers as (checked, not loaded)."""
        artifacts_hash = self.check_artifacts(artifacts_dir)
        return hashlib.sha256(f"{self.code_fingerprint()}:{artifacts_hash}".encode()).hexdigest()[:12]

    def load(
        self, artifacts_dir: Path | None = None, threads: int | None = None
    ) -> LoadedPipeline[InputT, OutputT, FlagsT]:
        """Load the checked artifacts' resources once; a loader taking `threads` gets it, or cpu_threads()."""
        version = self.version_of(artifacts_dir)
        resources: Mapping[str, Any] = {}
        if self.load_resources is not None and artifacts_dir is not None:
            wants = "threads" in inspect.signature(self.load_resources).parameters
            given = {"threads": threads or cpu_threads()} if wants else {}
            resources = self.load_resources(artifacts_dir, **given)
        missing = [name for name in self.resources if name not in resources]
        if missing:
            raise PipelineDefinitionError(f"load_resources did not provide {missing}")
        return LoadedPipeline(self, dict(resources), version)

    # -- validation ---------------------------------------------------------------

    def validate_inputs(
        self, inputs: Sequence[InputT | Mapping[str, Any]], strict: bool = False
    ) -> list[InputT]:
        """The inputs as the input model, or an error naming each bad field by index.

        `strict`: as JSON values, exactly as the JSON Schema says (no `"3"` for a number, no `1` for a
        boolean): what an HTTP face asks. Otherwise pydantic converts what it can (the command line).
        """
        if not inputs:
            raise PipelineInputError([Problem(loc="inputs", message="at least one input is required")])
        valid: list[InputT] = []
        problems: list[Problem] = []
        for index, item in enumerate(inputs):
            try:
                valid.append(
                    item if isinstance(item, self.input_model) else _validate(self.input_model, item, strict)
                )
            except ValidationError as error:
                problems.extend(_problems(error, prefix=("inputs", index)))
        if problems:
            raise PipelineInputError(problems)
        return valid

    def validate_flags(self, flags: FlagsT | Mapping[str, Any] | None, strict: bool = False) -> FlagsT:
        """The flags as the flags model, or an error naming an unknown or invalid flag (`strict`: as JSON)."""
        if flags is None:
            return self.flags_model()
        if isinstance(flags, self.flags_model):
            return flags
        if not isinstance(flags, Mapping):
            raise PipelineInputError([Problem(loc="flags", message="flags must be an object")])
        fields = self.flags_model.model_fields
        # every problem at once: unknown flags, and the known ones' invalid values
        problems = [
            Problem(loc=f"flags.{key}", message=f"unknown flag; known flags: {', '.join(fields)}")
            for key in flags
            if key not in fields
        ]
        try:
            valid = _validate(self.flags_model, {k: v for k, v in flags.items() if k in fields}, strict)
        except ValidationError as error:
            problems.extend(_problems(error, prefix=("flags",)))
        if problems:
            raise PipelineInputError(problems)
        return valid

    def validate_request(
        self,
        inputs: Sequence[InputT | Mapping[str, Any]],
        flags: FlagsT | Mapping[str, Any] | None,
        strict: bool = False,
    ) -> tuple[list[InputT], FlagsT]:
        """Inputs and flags validated together: one error lists every problem of both."""
        problems: list[Problem] = []
        valid_inputs: list[InputT] = []
        valid_flags = self.flags_model()
        try:
            valid_inputs = self.validate_inputs(inputs, strict)
        except PipelineInputError as error:
            problems.extend(error.problems)
        try:
            valid_flags = self.validate_flags(flags, strict)
        except PipelineInputError as error:
            problems.extend(error.problems)
        if problems:
            raise PipelineInputError(problems)
        return valid_inputs, valid_flags

    def plan(self, flags: FlagsT) -> list[PlannedStep]:
        """Which variant of each step the flags choose, and which steps the output needs."""
        chosen: dict[str, Step | None] = {}
        for step in self._steps:
            if chosen.get(step.name) is None and step.matches(flags):
                chosen[step.name] = step
            chosen.setdefault(step.name, None)
        names = self.step_names
        needed = {names[-1]}
        for name in reversed(names):
            picked = chosen[name]
            if name in needed and picked is not None:
                needed.update(p for p in picked.params if p in chosen)
        return [PlannedStep(name, chosen[name], name in needed) for name in names]

    def describe(self, version: str) -> PipelineInfo:
        """What the pipeline is and does, in plain JSON-able form."""
        steps = []
        for name in self.step_names:
            variants = [s for s in self._steps if s.name == name]
            needs = list(dict.fromkeys(p for s in variants for p in s.params if p != "recorder"))
            steps.append(
                StepInfo(
                    name=name,
                    doc=variants[0].doc,
                    variants={s.variant or s.name: dict(s.when) for s in variants if s.when},
                    variant_docs={s.variant or s.name: s.doc for s in variants if s.when},
                    needs=needs,
                )
            )
        return PipelineInfo(
            name=self.name,
            version=version,
            steps=steps,
            input_schema=self.input_model.model_json_schema(),
            output_schema=self.output_model.model_json_schema(),
            flags_schema=self.flags_model.model_json_schema(),
            examples={key: ex.model_dump(mode="json") for key, ex in self.examples.items()},
        )


class LoadedPipeline(Generic[InputT, OutputT, FlagsT]):
    """A pipeline with its resources loaded: runs batches."""

    def __init__(
        self, definition: Pipeline[InputT, OutputT, FlagsT], resources: dict[str, Any], version: str
    ) -> None:
        self.definition = definition
        self.resources = resources
        self.version = version

    @property
    def name(self) -> str:
        """The pipeline's name."""
        return self.definition.name

    def describe(self) -> PipelineInfo:
        """What the pipeline is and does, with this version."""
        return self.definition.describe(self.version)

    def run(
        self,
        inputs: Sequence[InputT | Mapping[str, Any]],
        flags: FlagsT | Mapping[str, Any] | None = None,
        debug: bool = False,
        on_step: Callable[[str, float], None] | None = None,
    ) -> RunResult[OutputT]:
        """Run one batch; with debug on, also a trace per input.

        `on_step(name, seconds)` is told each step's time (for metrics).
        """
        definition = self.definition
        batch, valid_flags = definition.validate_request(inputs, flags)
        size = len(batch)
        values: dict[str, Any] = {"inputs": batch, "flags": valid_flags, **self.resources}
        traces: list[list[StepTrace]] = [[] for _ in range(size)] if debug else []
        for planned in definition.plan(valid_flags):
            step = planned.chosen
            if step is None or not planned.needed:
                values[planned.name] = [None] * size
                if debug:
                    status = "off" if step is None else "not_needed"
                    for item in traces:
                        item.append(
                            StepTrace(
                                name=planned.name,
                                doc=_doc(definition, planned.name),
                                status=status,
                                batch_size=size,
                            )
                        )
                continue
            recorder = Recorder(size, enabled=True) if debug else DISABLED
            kwargs = {p: (recorder if p == "recorder" else values[p]) for p in step.params}
            start = time.perf_counter()
            produced = list(step.fn(**kwargs))
            seconds = time.perf_counter() - start
            if len(produced) != size:
                raise PipelineDefinitionError(
                    f"step {step.fn.__name__} returned {len(produced)} values for {size} inputs"
                )
            values[planned.name] = produced
            if on_step is not None:
                on_step(planned.name, seconds)
            if debug:
                for index, item in enumerate(traces):
                    item.append(
                        StepTrace(
                            name=planned.name,
                            doc=step.doc,
                            status="ran",
                            variant=step.variant,
                            time_ms=round(seconds * 1000, 3),
                            batch_size=size,
                            output=preview(produced[index]),
                            debug=preview(recorder.details[index]),
                        )
                    )
        outputs = [
            out if isinstance(out, definition.output_model) else definition.output_model.model_validate(out)
            for out in values[definition.step_names[-1]]
        ]
        return RunResult[OutputT](
            version=self.version,
            outputs=outputs,
            traces=[Trace(pipeline=self.name, version=self.version, steps=s) for s in traces]
            if debug
            else None,
        )


def cpu_threads() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _takes_nothing(fn: Any) -> bool:
    """Whether `fn` can be called with no arguments."""
    if not callable(fn):
        return False
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(fn).parameters.values()
    return all(p.kind in variadic or p.default is not p.empty for p in params)


def _doc(definition: Pipeline[Any, Any, Any], name: str) -> str:
    return next(s.doc for s in definition._steps if s.name == name)


def _validate(model: type[ModelT], value: Any, strict: bool) -> ModelT:
    """`value` as `model`; strict: as the JSON it came as (the JSON Schema's types, nothing converted)."""
    if strict:
        return model.model_validate_json(json.dumps(_integral(value)), strict=True)
    return model.model_validate(value)


def _integral(value: Any) -> Any:
    """JSON Schema's numbers: 9.0 is the integer 9 (pydantic's strict mode alone would refuse it)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _problems(error: ValidationError, prefix: tuple[str | int, ...]) -> list[Problem]:
    return [problem_at((*prefix, *item["loc"]), item["msg"]) for item in error.errors(include_url=False)]
