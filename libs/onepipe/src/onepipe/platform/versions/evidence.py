"""The evidence a promotion shows before it moves the aliases: cases replayed, held-out scores, a verdict.

The champion and the challenger answer the same questions. The edge-case library: each case right
or wrong on each, counted as fixed (wrong on the champion, right on the challenger), broken (the
other way), still wrong and still right. The pipeline's held-out rows (`Pipeline.held_out`): per
scored output field both scores and a paired bootstrap 95% interval of their difference. A
must-pass case the challenger breaks refuses the promotion; `forced` overrides that and records
who did and why.

How a version runs is the caller's: a `Candidate`'s `run` is in-process (`candidate_of`) or over
HTTP, so the evidence is the same whichever face gathers it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from pydantic import BaseModel, Field

from onepipe.contract import LoadedPipeline, Pipeline
from onepipe.platform.cases import Case, matches, wrong_fields
from onepipe.platform.schema.values import as_number
from onepipe.platform.versions.types import CaseCounts as CaseCounts  # promotions and checks count alike
from onepipe.platform.versions.types import ShadowSummary

if TYPE_CHECKING:  # numpy is imported where the scores are computed: the gateway replays cases without it
    import numpy as np
    from numpy.typing import NDArray

BATCH: Final = 64  # inputs per call of a candidate's run: a body any face takes, a batch the model likes
RESAMPLES: Final = 1000  # bootstrap resamples for each interval
BOOTSTRAP_CELLS: Final = 4_000_000  # row draws held at once while resampling: bounded memory at any size
ACCURACY: Final = "accuracy"
MAE: Final = "mean absolute error"

Outcome = Literal["fixed", "broken", "still wrong", "still right"]
Run = Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]
HeldOutRows = Sequence[tuple[Mapping[str, Any] | BaseModel, Mapping[str, Any]]]
RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Candidate:
    """A version to compare: its role, pipeline, hash, registry number, and how to run it."""

    label: str  # the alias it holds or is up for: champion, challenger
    pipeline: str
    version: str
    number: int | None  # the registry's version number; None when not registered
    # (inputs, flags) -> one output dict per input, the flags over the version's own defaults;
    # called with at most BATCH inputs at a time
    run: Run


class VersionRef(BaseModel):
    """One side of the comparison, as the evidence names it."""

    label: str = Field(description="The alias it holds or is up for: champion or challenger.")
    version: str = Field(description="The version's hash.")
    number: int | None = Field(None, description="The registry's version number; null when not registered.")


class CaseVerdict(BaseModel):
    """One case on both versions: right or wrong on each, and what promoting would do to it."""

    id: str
    note: str
    must_pass: bool
    expected: dict[str, Any] = Field(description="The output fields a person expects, and their values.")
    champion: dict[str, Any] = Field(description="The champion's answer for the expected fields.")
    challenger: dict[str, Any] = Field(description="The challenger's answer for the expected fields.")
    champion_right: bool
    challenger_right: bool
    champion_error: str | None = Field(None, description="Why the champion gave no answer, if it did not.")
    challenger_error: str | None = Field(
        None, description="Why the challenger gave no answer, if it did not."
    )
    outcome: Outcome


class HeldOutScore(BaseModel):
    """One output field scored on the held-out rows by both versions, with the difference's interval."""

    field: str
    metric: str = Field(description="accuracy (higher is better) or mean absolute error (lower is better).")
    champion: float
    challenger: float
    difference: float = Field(description="The challenger's score minus the champion's.")
    low: float = Field(description="The difference's 95% paired bootstrap interval, lower end.")
    high: float = Field(description="The difference's 95% paired bootstrap interval, upper end.")
    rows: int = Field(description="Held-out rows scored for this field by both versions.")


class Evidence(BaseModel):
    """What a promotion gathered, and whether it may go ahead."""

    pipeline: str
    champion: VersionRef
    challenger: VersionRef
    cases: CaseCounts
    fixed: list[CaseVerdict] = Field(description="The cases the challenger fixes.")
    broken: list[CaseVerdict] = Field(description="The cases the challenger breaks, must-pass ones first.")
    held_out: list[HeldOutScore]
    held_out_note: str = Field(description="One sentence: which held-out rows were scored, or why none.")
    may_promote: bool
    refusal: str | None = Field(None, description="Why the promotion is refused, in one sentence.")
    forced: bool = Field(False, description="The verdict was overridden; `refusal` says what it overrode.")
    forced_by: str | None = Field(None, description="Who forced it.")
    reason: str | None = Field(None, description="Why it was forced.")
    seed: int = Field(description="The seed of the held-out sample and of the bootstrap.")
    resamples: int
    gathered_at: datetime
    shadow: ShadowSummary | None = Field(
        None, description="Live traffic shadowed to this challenger, when a record of it was read."
    )


def with_shadow(evidence: Evidence, shadow: ShadowSummary | None) -> Evidence:
    """The evidence with the shadow record's summary, when it is of these two versions (else unchanged)."""
    if shadow is None or (shadow.champion, shadow.challenger) != (
        evidence.champion.version,
        evidence.challenger.version,
    ):
        return evidence
    return evidence.model_copy(update={"shadow": shadow})


def candidate_of(
    label: str,
    loaded: LoadedPipeline[Any, Any, Any],
    number: int | None,
    flag_defaults: Mapping[str, Any],
    *,
    version: str | None = None,
) -> Candidate:
    """A version run in-process: the loaded pipeline with the version's flag defaults under each call's flags.

    `version` defaults to the loaded pipeline's hash; a registry that counts flag defaults in
    its versions passes its own.
    """

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[dict[str, Any]]:
        outputs = loaded.run(inputs, {**flag_defaults, **flags}).outputs
        return [output.model_dump(mode="json") for output in outputs]

    return Candidate(label, loaded.name, version or loaded.version, number, run)


def held_out_of(definition: Pipeline[Any, Any, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]] | None:
    """The pipeline's held-out rows as (input, expected) dicts; None when it declares none."""
    if definition.held_out is None:
        return None
    return [(_as_dict(item), dict(expected)) for item, expected in definition.held_out()]


def gather_evidence(
    champion: Candidate,
    challenger: Candidate,
    cases: Sequence[Case],
    held_out: HeldOutRows | None,
    *,
    held_out_rows: int | None = None,
    seed: int = 0,
) -> Evidence:
    """The cases replayed and the held-out rows scored on both versions, and the verdict.

    `held_out_rows`: score a random sample of that many held-out rows (seed `seed`); None: all of them.
    All 3,472 of the example take 23 s (TF-IDF against MiniLM, 2 cores; a minute on a busy machine): a
    sample is for larger sets, as its interval is honest but wider (1,000 rows missed a 2.4-point drop
    that all the rows showed)."""
    if champion.pipeline != challenger.pipeline:
        raise ValueError(f"{champion.pipeline} and {challenger.pipeline} are different pipelines")
    verdicts = replay_cases(champion, challenger, cases)
    rows = None if held_out is None else sampled(held_out, held_out_rows, seed)
    refusal = refusal_of(verdicts)
    return Evidence(
        pipeline=champion.pipeline,
        champion=_ref(champion),
        challenger=_ref(challenger),
        cases=case_counts(verdicts),
        fixed=[v for v in verdicts if v.outcome == "fixed"],
        broken=sorted((v for v in verdicts if v.outcome == "broken"), key=lambda v: not v.must_pass),
        held_out=[] if not rows else score_held_out(champion, challenger, rows, seed=seed),
        held_out_note=held_out_note(None if held_out is None else len(held_out), rows, seed),
        may_promote=refusal is None,
        refusal=refusal,
        seed=seed,
        resamples=RESAMPLES,
        gathered_at=datetime.now(UTC),
    )


def forced(evidence: Evidence, reason: str, by: str | None = None) -> Evidence:
    """The evidence with its verdict overridden: it may promote, and who forced it and why are recorded."""
    if not reason.strip():
        raise ValueError("forcing a promotion needs a reason")
    update = {"may_promote": True, "forced": True, "forced_by": by, "reason": reason.strip()}
    return evidence.model_copy(update=update)


# -- the cases ---------------------------------------------------------------------------


Answer = tuple[dict[str, Any] | None, str | None]  # the output, or None and why not


def replay_cases(champion: Candidate, challenger: Candidate, cases: Sequence[Case]) -> list[CaseVerdict]:
    """Every case on both versions, in the library's order; one run per version and flag set."""
    first, second = answer_cases(champion, cases), answer_cases(challenger, cases)
    return [case_verdict(*judged) for judged in zip(cases, first, second, strict=True)]


def answer_cases(candidate: Candidate, cases: Sequence[Case]) -> list[Answer]:
    """Each case's answer from one version, in the library's order; one run per flag set."""
    groups: dict[str, list[int]] = {}
    for index, case in enumerate(cases):
        groups.setdefault(json.dumps(case.flags, sort_keys=True), []).append(index)
    found: dict[int, Answer] = {}
    for indexes in groups.values():
        inputs, flags = [dict(cases[i].input) for i in indexes], dict(cases[indexes[0]].flags)
        found.update(zip(indexes, _answers(candidate, inputs, flags), strict=True))
    return [found[index] for index in range(len(cases))]


def case_verdict(case: Case, champion: Answer, challenger: Answer) -> CaseVerdict:
    """One case judged on both answers."""
    first, second = is_right(case, champion), is_right(case, challenger)
    outcomes: dict[tuple[bool, bool], Outcome] = {
        (True, True): "still right",
        (False, True): "fixed",
        (True, False): "broken",
        (False, False): "still wrong",
    }
    return CaseVerdict(
        id=case.id,
        note=case.note,
        must_pass=case.must_pass,
        expected=case.expected,
        champion=shown(case, champion[0]),
        challenger=shown(case, challenger[0]),
        champion_right=first,
        challenger_right=second,
        champion_error=champion[1],
        challenger_error=challenger[1],
        outcome=outcomes[(first, second)],
    )


def case_counts(verdicts: Sequence[CaseVerdict]) -> CaseCounts:
    """How many cases each outcome holds."""
    count = {outcome: sum(v.outcome == outcome for v in verdicts) for outcome in ("fixed", "broken")}
    return CaseCounts(
        total=len(verdicts),
        fixed=count["fixed"],
        broken=count["broken"],
        must_pass_broken=sum(v.outcome == "broken" and v.must_pass for v in verdicts),
        still_wrong=sum(v.outcome == "still wrong" for v in verdicts),
        still_right=sum(v.outcome == "still right" for v in verdicts),
    )


def refusal_of(verdicts: Sequence[CaseVerdict]) -> str | None:
    """Why the promotion is refused (must-pass cases it breaks, named), or None."""
    broken = [v.id for v in verdicts if v.outcome == "broken" and v.must_pass]
    if not broken:
        return None
    cases = "case" if len(broken) == 1 else "cases"
    return f"The challenger breaks {len(broken)} must-pass {cases}: {', '.join(broken)}."


def is_right(case: Case, answer: Answer) -> bool:
    """The version answered, and every expected field as expected."""
    output, error = answer
    return error is None and output is not None and not wrong_fields(case, output)


def shown(case: Case, output: Mapping[str, Any] | None) -> dict[str, Any]:
    """The answer's expected fields: what a person compares with the expectation."""
    return {} if output is None else {name: output.get(name) for name in case.expected}


def _answers(candidate: Candidate, inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[Answer]:
    """Each input's output; a batch that fails is asked again one input at a time."""
    answers: list[Answer] = []
    for chunk in _chunks(inputs):
        try:
            answers.extend((output, None) for output in _run(candidate, chunk, flags))
        except Exception:
            # one case the version refuses (a flag or field it lacks) must not hide the others' answers
            answers.extend(_one_by_one(candidate, chunk, flags))
    return answers


def _one_by_one(
    candidate: Candidate, inputs: list[dict[str, Any]], flags: dict[str, Any]
) -> Iterator[Answer]:
    for item in inputs:
        try:
            (output,) = _run(candidate, [item], flags)
        except Exception as error:  # what any face raises: in-process, or an HTTP client's typed errors
            yield None, f"{type(error).__name__}: {error}"
        else:
            yield output, None


# -- the held-out rows ----------------------------------------------------------------------


def sampled(rows: Sequence[RowT], size: int | None, seed: int) -> Sequence[RowT]:
    """All the rows, or a random sample of `size` of them (without replacement, in their order)."""
    if size is None or size >= len(rows):
        return rows
    import numpy as np

    picks = np.random.default_rng(seed).choice(len(rows), size=size, replace=False)
    return [rows[int(index)] for index in sorted(picks)]


def held_out_note(declared: int | None, rows: HeldOutRows | None, seed: int) -> str:
    """One sentence saying which held-out rows were scored, or why none were."""
    if declared is None or rows is None:
        return "The pipeline declares no held-out set: no scores to compare."
    if not declared:
        return "The pipeline's held-out set is empty: no scores to compare."
    if len(rows) == declared:
        return f"All {declared:,} held-out rows, scored by both versions."
    return (
        f"A random sample of {len(rows):,} of the {declared:,} held-out rows (seed {seed}); "
        "the intervals are the sample's, wider than all the rows would give."
    )


def score_held_out(
    champion: Candidate, challenger: Candidate, rows: HeldOutRows, *, seed: int = 0
) -> list[HeldOutScore]:
    """Per expected output field, both versions' scores on the rows and the difference's interval.

    A field whose expected values are all numbers is scored by mean absolute error, any other by
    accuracy (the value equals the expected one, as a case is judged). A version failing on a
    held-out row (its own pipeline's input) is an error, not a wrong answer.
    """
    inputs = [_as_dict(item) for item, _ in rows]
    first = [output for chunk in _chunks(inputs) for output in _run(champion, chunk, {})]
    second = [output for chunk in _chunks(inputs) for output in _run(challenger, chunk, {})]
    names = list(dict.fromkeys(name for _, expected in rows for name in expected))
    scores = [_field_score(name, [e for _, e in rows], first, second, seed) for name in names]
    return [score for score in scores if score is not None]


def _field_score(
    name: str,
    expected: Sequence[Mapping[str, Any]],
    first: Sequence[Mapping[str, Any]],
    second: Sequence[Mapping[str, Any]],
    seed: int,
) -> HeldOutScore | None:
    asked = [(index, row[name]) for index, row in enumerate(expected) if name in row]
    numeric = bool(asked) and all(as_number(value) is not None for _, value in asked)
    pairs: list[tuple[float, float]] = []
    for index, value in asked:
        got = first[index].get(name), second[index].get(name)
        if not numeric:
            pairs.append((float(matches(value, got[0])), float(matches(value, got[1]))))
            continue
        truth, one, other = as_number(value), as_number(got[0]), as_number(got[1])
        if truth is not None and one is not None and other is not None:  # scored by both versions or neither
            pairs.append((abs(one - truth), abs(other - truth)))
    if not pairs:
        return None
    import numpy as np

    values = np.array(pairs, dtype=np.float64)
    low, high = paired_interval(values[:, 0], values[:, 1], seed=seed)
    champion, challenger = float(values[:, 0].mean()), float(values[:, 1].mean())
    return HeldOutScore(
        field=name,
        metric=MAE if numeric else ACCURACY,
        champion=champion,
        challenger=challenger,
        difference=challenger - champion,
        low=low,
        high=high,
        rows=len(pairs),
    )


def paired_interval(
    champion: NDArray[np.float64], challenger: NDArray[np.float64], *, seed: int, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """The 95% percentile interval of the mean difference (challenger - champion), rows resampled.

    Paired: a resample draws rows, each with both versions' values, so what the two share (the
    rows' difficulty) cancels and only their disagreement varies.
    """
    import numpy as np

    differences = challenger - champion
    rows = len(differences)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    block = max(1, BOOTSTRAP_CELLS // rows)
    for start in range(0, resamples, block):
        picks = rng.integers(0, rows, size=(min(block, resamples - start), rows))
        means[start : start + len(picks)] = differences[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


# -- shared ---------------------------------------------------------------------------------------


def _chunks(inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(inputs), BATCH):
        yield inputs[start : start + BATCH]


def _run(candidate: Candidate, inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[dict[str, Any]]:
    outputs = candidate.run(inputs, flags)
    if len(outputs) != len(inputs):
        raise ValueError(f"{candidate.label} answered {len(outputs)} outputs for {len(inputs)} inputs")
    return outputs


def _as_dict(item: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else dict(item)


def _ref(candidate: Candidate) -> VersionRef:
    return VersionRef(label=candidate.label, version=candidate.version, number=candidate.number)
