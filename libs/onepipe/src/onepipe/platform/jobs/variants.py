"""What a reader calls the two sides of a comparison: by what differs between them, never "flags".

Two flag sets are named by the shortest description of their difference, read from the pipeline's
flags schema (defaults filled in) and steps: `classifier=minilm` against `classifier=tfidf`, or, when
one flag differs and each of its values picks a named step variant (`kind__minilm` under
`@when(classifier="minilm")`), the variants' own names: `minilm` against `tfidf`. Two versions are
named by what was asked and the hash that answered: `champion 1a2b3c4d5e6f`. Every face (the
reports, the job comparison, the UI) names sides through `variant_names`, `job_variants` or
`jobs_variants`, so a side reads the same everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from onepipe.contract import PipelineInfo
from onepipe.platform.jobs.types import JobMeta

CHAMPION: Final = "champion"  # what a job that asked for no version was answered by
DEFAULTS: Final = "default flags"


@dataclass(frozen=True)
class VariantNames:
    """The two sides of a comparison as a reader names them, and what kind of thing differs."""

    first: str
    second: str
    kind: str = "flag set"  # flag set, version, or job (two jobs differing in both or neither)


def flag_text(value: Any) -> str:
    """A flag's value as it is written on a command line: text bare, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def flags_line(flags: Mapping[str, Any]) -> str:
    """Flags as given, in one line: "classifier=minilm, neighbours=5", or "default flags"."""
    return ", ".join(f"{name}={flag_text(value)}" for name, value in flags.items()) or DEFAULTS


def effective_flags(flags: Mapping[str, Any], flags_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The flags as they run: the schema's defaults, then the flags given."""
    properties = flags_schema.get("properties", {})
    defaults = {name: prop["default"] for name, prop in properties.items() if "default" in prop}
    return defaults | dict(flags)


def _variant_name(info: PipelineInfo, flag: str, value: Any) -> str | None:
    """The name of the step variant that this flag alone picks with this value; None when there is none,
    or when steps name their variants for it differently."""
    names = {
        variant
        for step in info.steps
        for variant, when in step.variants.items()
        if variant != step.name and dict(when) == {flag: value}
    }
    return names.pop() if len(names) == 1 else None


def flag_set_names(
    first: Mapping[str, Any], second: Mapping[str, Any], info: PipelineInfo
) -> tuple[str, str]:
    """Two flag sets named by what differs: the variants' names, else `flag=value` pairs; ("", "") when
    they run alike."""
    a, b = effective_flags(first, info.flags_schema), effective_flags(second, info.flags_schema)
    differing = [name for name in dict.fromkeys([*a, *b]) if a.get(name) != b.get(name)]
    if len(differing) == 1:
        (flag,) = differing
        named = _variant_name(info, flag, a.get(flag)), _variant_name(info, flag, b.get(flag))
        if named[0] and named[1] and named[0] != named[1]:
            return named[0], named[1]
    if not differing:
        return "", ""
    # a flag one side leaves unset (and the schema gives no default) is left out of that side's name
    return (
        ", ".join(f"{name}={flag_text(a[name])}" for name in differing if name in a) or DEFAULTS,
        ", ".join(f"{name}={flag_text(b[name])}" for name in differing if name in b) or DEFAULTS,
    )


def version_name(asked: str | None, answered: str | None) -> str:
    """A version as asked and as it answered: "champion 1a2b3c4d5e6f" (the hash alone when asked by it)."""
    asked = asked or CHAMPION
    return asked if answered is None or answered == asked else f"{asked} {answered}"


def variant_names(
    flags: tuple[Mapping[str, Any], Mapping[str, Any]],
    versions: tuple[str, str],
    info: PipelineInfo,
    alike: tuple[str, str],
) -> VariantNames:
    """Two sides named by what differs between them: the versions, the flags, or both (`alike`: the names
    of two sides that differ in neither)."""
    flag_names = flag_set_names(*flags, info)
    by_version = versions[0] != versions[1]
    if by_version and flag_names[0]:
        return VariantNames(f"{versions[0]}, {flag_names[0]}", f"{versions[1]}, {flag_names[1]}", "job")
    if by_version:
        return VariantNames(*versions, kind="version")
    if flag_names[0]:
        return VariantNames(*flag_names)
    return VariantNames(*alike, kind="job" if alike[0].startswith("job") else "flag set")


def job_variants(meta: JobMeta, info: PipelineInfo) -> VariantNames:
    """The two answers of a job run twice: under two flag sets, or by two versions (with its flags)."""
    spec = meta.spec
    first = version_name(spec.version, meta.pipeline_version)
    if spec.compare_version is not None:
        second = version_name(spec.compare_version, meta.compare_pipeline_version)
        versions = (first, second if second != first else f"{second} (compared)")
        return variant_names((spec.flags, spec.flags), versions, info, versions)
    given = flags_line(spec.flags)
    alike = (f"{given} (first run)", f"{given} (second run)")
    return variant_names((spec.flags, spec.compare_flags or {}), (first, first), info, alike)


def jobs_variants(first: JobMeta, second: JobMeta, info: PipelineInfo) -> VariantNames:
    """Two jobs on one file named by what differs: their versions (as asked, and the hash), their flags."""
    versions = (
        version_name(first.spec.version, first.pipeline_version),
        version_name(second.spec.version, second.pipeline_version),
    )
    if first.pipeline_version == second.pipeline_version:
        versions = (versions[0], versions[0])  # one version, asked for by other names
    return variant_names((first.spec.flags, second.spec.flags), versions, info, ("job A", "job B"))
