"""The registered versions as people read them: the registry, each version, champion against challenger,
and the evidence of the last promotion (no Streamlit here).

Plain functions over the gateway's GET /v1/versions (`VersionList`, its `last_promotion` an `Evidence`).
Metric names, flags and output fields come from what the answer and the pipeline's schemas name, never
from the example's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import ValidationError

from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.versions.evidence import ACCURACY, CaseVerdict, Evidence, HeldOutScore, VersionRef
from onepipe.platform.versions.types import (
    CHALLENGER,
    CHAMPION,
    RegistryState,
    VersionInfo,
    VersionList,
    headline_metrics,
)
from ui_service import wording
from ui_service.views import output_titles

ALIAS_COLOURS: Final = {CHAMPION: "green", CHALLENGER: "blue"}  # any other alias (previous) is gray
CODE_DEFAULTS: Final = "the code's own"  # what a version without flag defaults of its own runs with
DOCS: Final = "docs/versions.md"
UNREGISTERED: Final = "unregistered"

Mood = Literal["ok", "down", "none"]
Judgement = Literal["better", "worse", "unclear"]


# -- the registry and each version ---------------------------------------------------------------


@dataclass(frozen=True)
class RegistryMessage:
    """Where versions come from, in one sentence, and how it stands."""

    mood: Mood
    text: str


def registry_message(state: RegistryState) -> RegistryMessage:
    """The registry in words: where it is, whether it answers (and why not), or that there is none."""
    if state.kind == "none":
        return RegistryMessage(
            "none",
            f"No registry: the model service serves one artifacts folder ({state.location}). Versions "
            f"side by side, promotion and rollback need a registry: set `MODEL_REGISTRY` (`{DOCS}`), then "
            "`just train` registers the first version.",
        )
    if state.status == "down":
        why = (state.error or "it gave no reason").rstrip(".")
        return RegistryMessage(
            "down",
            f"The MLflow registry at {state.location} does not answer: {why}. The model service keeps "
            "serving the versions it holds; what it lists below may be only those.",
        )
    return RegistryMessage(
        "ok", f"Versions come from the MLflow registry at {state.location}, which answers."
    )


def missing_text(alias: str) -> str:
    """What to do when no version holds an alias, with the command that registers one."""
    if alias == CHAMPION:
        return "No version holds it: `just train` registers the first version as champion."
    return f"No version holds it: `just train --alias {alias} [--flag name=value]` registers one."


def alias_colour(alias: str) -> str:
    """The badge colour of an alias: champion green, challenger blue, any other gray."""
    return ALIAS_COLOURS.get(alias, "gray")


def version_name(number: int | None) -> str:
    """How people name a version: v2, or "unregistered" (an artifacts folder served without a registry)."""
    return f"v{number}" if number is not None else UNREGISTERED


def metric_title(name: str) -> str:
    """A flattened metric name in words: "metrics.tfidf/kind.accuracy" -> "tfidf/kind accuracy"."""
    parts = name.split(".")
    if len(parts) > 1 and parts[0] == "metrics":  # the model card's own section: every name has it
        parts = parts[1:]
    return " ".join(parts).replace("_", " ")


def metric_text(name: str, value: float) -> str:
    """A metric's value: an accuracy as a percentage with one decimal ("78.4%"), any other rounded."""
    if name.endswith(ACCURACY) and 0 <= value <= 1:
        return f"{value * 100:.1f}%"
    return wording.number(value)


def moment(at: datetime | None) -> str:
    """A time as people read it, in UTC: "2026-12-06 19:23 UTC"; "unknown" when unset."""
    if at is None:
        return "unknown"
    return f"{(at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def flag_defaults_text(flag_defaults: Mapping[str, Any], flags_schema: Mapping[str, Any]) -> str:
    """A version's flag defaults in words ("Classifier: minilm"), or that it runs with the code's own."""
    if not flag_defaults:
        return CODE_DEFAULTS
    titles = wording.field_titles(flags_schema)
    return "; ".join(
        f"{titles.get(name) or wording.readable(name)}: {wording.value(value)}"
        for name, value in flag_defaults.items()
    )


@dataclass(frozen=True)
class VersionRow:
    """One registered version as the table shows it."""

    name: str
    version: str
    aliases: list[str]
    flag_defaults: str
    metrics: dict[str, str]  # metric title -> value in words, the table's headline metrics
    trained: str
    loaded: str


def version_rows(versions: Sequence[VersionInfo], flags_schema: Mapping[str, Any]) -> list[VersionRow]:
    """Each version, newest first: name, hash, aliases, flag defaults, headline metrics, trained, loaded.

    The metric columns are the same for every row: the headline of all the versions' metrics together.
    """
    names = headline_metrics(_all_metrics(versions))
    return [
        VersionRow(
            name=version_name(version.number),
            version=version.version,
            aliases=list(version.aliases),
            flag_defaults=flag_defaults_text(version.flag_defaults, flags_schema),
            metrics={
                metric_title(name): metric_text(name, version.metrics[name])
                if name in version.metrics
                else "-"
                for name in names
            },
            trained=moment(version.created_at),
            loaded=wording.YES if version.loaded else wording.NO,
        )
        for version in versions
    ]


def every_metric(versions: Sequence[VersionInfo]) -> list[dict[str, str]]:
    """Every metric any version has, a row each in headline order, a column per version ("-" where none)."""
    every = _all_metrics(versions)
    return [
        {
            "Metric": metric_title(name),
            **{
                version_name(version.number): metric_text(name, version.metrics[name])
                if name in version.metrics
                else "-"
                for version in versions
            },
        }
        for name in headline_metrics(every, len(every))
    ]


def _all_metrics(versions: Sequence[VersionInfo]) -> dict[str, float]:
    every: dict[str, float] = {}
    for version in versions:
        every.update(version.metrics)
    return every


def by_alias(versions: Sequence[VersionInfo], alias: str) -> VersionInfo | None:
    """The version an alias names, if any holds it."""
    return next((version for version in versions if alias in version.aliases), None)


def version_choices(versions: Sequence[VersionInfo], flags_schema: Mapping[str, Any]) -> dict[str, str]:
    """The registered versions a job can run with, champion first: "v2" -> "v2 · challenger · Classifier:
    minilm" (the reference the gateway takes -> its label)."""
    ranked = sorted(
        (version for version in versions if version.number is not None),
        key=lambda version: (
            CHAMPION not in version.aliases,
            CHALLENGER not in version.aliases,
            -(version.number or 0),
        ),
    )
    return {
        version_name(version.number): " · ".join(
            [
                version_name(version.number),
                *version.aliases,
                flag_defaults_text(version.flag_defaults, flags_schema)
                if version.flag_defaults
                else f"{CODE_DEFAULTS} flag defaults",
            ]
        )
        for version in ranked
    }


def no_second_version_text(listing: VersionList) -> str:
    """Why a job cannot compare two versions yet, and what to do about it."""
    if listing.registry.kind == "none":
        return registry_message(listing.registry).text
    return (
        "Only one version is registered: "
        "`just train --alias challenger [--flag name=value]` registers another."
    )


def metric_lines(version: VersionInfo) -> list[tuple[str, str]]:
    """A version's headline metrics as (title, value in words)."""
    return [
        (metric_title(name), metric_text(name, version.metrics[name]))
        for name in headline_metrics(version.metrics)
    ]


def differences(champion: VersionInfo, challenger: VersionInfo, flags_schema: Mapping[str, Any]) -> list[str]:
    """What sets the challenger apart, in words: each flag whose default differs, the code, the metrics.

    A flag a version does not set runs with the code's default (the flags schema's `default`).
    """
    titles = wording.field_titles(flags_schema)
    code_defaults = {
        name: prop.get("default")
        for name, prop in flags_schema.get("properties", {}).items()
        if isinstance(prop, Mapping)
    }
    found = []
    for name in dict.fromkeys([*champion.flag_defaults, *challenger.flag_defaults]):
        first = champion.flag_defaults.get(name, code_defaults.get(name))
        second = challenger.flag_defaults.get(name, code_defaults.get(name))
        if first != second:
            title = titles.get(name) or wording.readable(name)
            found.append(f"{title}: {wording.value(first)} → {wording.value(second)}")
    if champion.code and challenger.code and champion.code != challenger.code:
        found.append(f"trained by different pipeline code ({champion.code} → {challenger.code})")
    for name in headline_metrics({**champion.metrics, **challenger.metrics}):
        first_value, second_value = champion.metrics.get(name), challenger.metrics.get(name)
        if first_value is not None and second_value is not None and first_value != second_value:
            shown = metric_text(name, first_value), metric_text(name, second_value)
            found.append(f"{metric_title(name)}: {shown[0]} → {shown[1]}")
    return found


# -- the last promotion -----------------------------------------------------------------------------


def named(ref: VersionRef) -> str:
    """One side of a promotion: "v2 (4f1c0a9e2b7d)"."""
    return f"v{ref.number} ({ref.version})" if ref.number is not None else ref.version


def no_promotion_text(state: RegistryState) -> str:
    """Why no last promotion shows: none recorded yet, or the registry that keeps it does not answer."""
    if state.status == "down":
        return "The last promotion's evidence shows again once the registry answers."
    return "No promotion recorded yet: `just promote` gathers the evidence and records it here."


def read_evidence(record: Mapping[str, Any]) -> Evidence | str:
    """The last promotion's recorded evidence, or why it cannot be read, in one sentence."""
    try:
        return Evidence.model_validate(record)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'the record'}: {e['msg']}" for e in error.errors()[:3]
        )
        return (
            f"The last promotion's record cannot be read ({problems}); "
            "another version of onepipe may have written it."
        )


@dataclass(frozen=True)
class PromotionVerdict:
    """How the last promotion went: promoted, forced, or refused; one sentence, and when."""

    kind: Literal["promoted", "forced", "refused"]
    text: str
    when: str


def promotion_verdict(evidence: Evidence) -> PromotionVerdict:
    """The verdict in words: promoted on the evidence, forced by whom and why, or refused and why."""
    moved = f"{named(evidence.challenger)} became champion in place of {named(evidence.champion)}"
    when = moment(evidence.gathered_at)
    if not evidence.may_promote:
        refusal = (evidence.refusal or "the evidence refused it").rstrip(".")
        return PromotionVerdict(
            "refused", f"Refused: {refusal}. {named(evidence.champion)} stayed champion.", when
        )
    if evidence.forced:
        by = evidence.forced_by or "an unnamed caller"
        reason = (evidence.reason or "no reason recorded").rstrip(".")
        although = f", although {wording.sentence_start(evidence.refusal)}" if evidence.refusal else ""
        return PromotionVerdict("forced", f"Forced by {by} because “{reason}”: {moved}{although}.", when)
    return PromotionVerdict("promoted", f"Promoted: {moved}. No must-pass case broke.", when)


def since_then(evidence: Evidence, versions: Sequence[VersionInfo]) -> str | None:
    """What changed after the last promotion (a rollback, another promotion), or None when nothing did."""
    champion = by_alias(versions, CHAMPION)
    if champion is None or champion.number is None or champion.number == evidence.challenger.number:
        return None
    now = version_name(champion.number)
    if champion.number == evidence.champion.number:
        return f"Rolled back since: {now} is champion again (`just rollback`)."
    return f"The champion changed since: {now} is champion now."


@dataclass(frozen=True)
class Count:
    """One figure as a metric tile (case counts, the shadow record's): its label, value, what it means."""

    label: str
    value: int | str
    help: str


def case_counts(evidence: Evidence) -> list[Count]:
    """The replayed cases by what promoting does to them, in the order a person decides by."""
    counts = evidence.cases
    return [
        Count("Fixed", counts.fixed, "Wrong on the champion, right on the challenger."),
        Count("Broken", counts.broken, "Right on the champion, wrong on the challenger."),
        Count("Must-pass broken", counts.must_pass_broken, "Broken cases marked must-pass: any refuses."),
        Count("Still wrong", counts.still_wrong, "Wrong on both versions."),
        Count("Still right", counts.still_right, "Right on both versions."),
    ]


@dataclass(frozen=True)
class CaseRow:
    """One case the promotion changes, with what a person expects and both versions' answers."""

    case: str
    must_pass: bool
    note: str
    expected: str
    champion: str
    challenger: str


def case_rows(verdicts: Sequence[CaseVerdict], output_schema: Mapping[str, Any]) -> list[CaseRow]:
    """Cases as table rows, must-pass ones first; the fields titled as the output schema names them."""
    titles = output_titles(Outputs.from_schema(output_schema))

    def fields(values: Mapping[str, Any], error: str | None = None) -> str:
        if error:
            return f"no answer ({error})"
        return "; ".join(
            f"{titles.get(name) or wording.readable(name)}: {wording.value(value)}"
            for name, value in values.items()
        )

    ordered = sorted(verdicts, key=lambda verdict: not verdict.must_pass)
    return [
        CaseRow(
            case=verdict.id,
            must_pass=verdict.must_pass,
            note=verdict.note,
            expected=fields(verdict.expected),
            champion=fields(verdict.champion, verdict.champion_error),
            challenger=fields(verdict.challenger, verdict.challenger_error),
        )
        for verdict in ordered
    ]


# -- the held-out scores -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldOutRow:
    """One output field scored on the held-out rows by both versions, in words and in the chart's unit."""

    field: str
    metric: str
    champion: str
    challenger: str
    difference: str  # "-2.4 points (-3.9 to -0.7)"
    judgement: Judgement
    reads: str  # the judgement in words
    rows: str
    unit: str  # what the chart's axis counts: "points" for accuracy, the field's own unit otherwise
    values: tuple[float, float, float]  # the difference, its interval's low and high ends, in `unit`


def signed_points(value: float) -> str:
    """A difference in percentage points with one decimal and its sign: "+1.2", "-0.7", "0.0"."""
    text = f"{value:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def judgement(score: HeldOutScore) -> Judgement:
    """Better or worse when the whole 95% interval lies on one side of no change, else unclear.

    Accuracy is better higher, mean absolute error lower.
    """
    higher_is_better = score.metric == ACCURACY
    if score.low > 0:
        return "better" if higher_is_better else "worse"
    if score.high < 0:
        return "worse" if higher_is_better else "better"
    return "unclear"


def reading(score: HeldOutScore) -> str:
    """The judgement in words, with the side of zero the interval lies on."""
    found = judgement(score)
    if found == "unclear":
        return "no clear difference: the interval includes zero"
    return f"{found}: the whole interval is {'above' if score.low > 0 else 'below'} zero"


def held_out_rows(scores: Sequence[HeldOutScore], output_schema: Mapping[str, Any]) -> list[HeldOutRow]:
    """Each scored field: both scores, the difference with its 95% interval stated plainly, the reading."""
    titles = output_titles(Outputs.from_schema(output_schema))
    found = []
    for score in scores:
        if score.metric == ACCURACY:
            values = (score.difference * 100, score.low * 100, score.high * 100)
            first, second = f"{score.champion * 100:.1f}%", f"{score.challenger * 100:.1f}%"
            low, high = signed_points(values[1]), signed_points(values[2])
            difference = f"{signed_points(values[0])} points ({low} to {high})"
            unit = "points"
        else:
            values = (score.difference, score.low, score.high)
            first, second = wording.distinct(score.champion, score.challenger)
            low, high = wording.signed(score.low), wording.signed(score.high)
            difference = f"{wording.signed(score.difference)} ({low} to {high})"
            unit = score.metric
        verdict = judgement(score)
        found.append(
            HeldOutRow(
                field=titles.get(score.field) or wording.readable(score.field),
                metric=score.metric,
                champion=first,
                challenger=second,
                difference=difference,
                judgement=verdict,
                reads=reading(score),
                rows=f"{score.rows:,}",
                unit=unit,
                values=values,
            )
        )
    return found


def interval_points(rows: Sequence[HeldOutRow]) -> dict[str, list[dict[str, Any]]]:
    """The rows to draw as intervals (charts.intervals), one chart per unit: points apart from MAEs."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        difference, low, high = row.values
        found.setdefault(row.unit, []).append(
            {
                "name": row.field,
                "difference": difference,
                "low": low,
                "high": high,
                "text": row.difference,
                "judgement": row.judgement,
            }
        )
    return found
