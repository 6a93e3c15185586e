"""What the worker sends the model service: rows it can send, packed into calls that fit its body limit.

A row too long for the pipeline's input, or too large to send at all, fails alone with its reason;
the other rows of its chunk go on. Two checks, before anything is sent:

- over a maximum length of the input schema (`maxLength`, `maxItems`, `maxProperties`): refused
  here, in the model service's words ("text: String should have at most 5000 characters"), so a
  20 MB text is never sent only to be refused. Only the length limits are checked: the model
  service stays the judge of everything else (strict types, its own validators), and says it in
  its own words;
- the body: each call's JSON body (inputs, flags, envelope), measured as the client encodes it,
  stays within the body limit; a row over it alone fails naming its size and the limit, as the
  model service's 413 would.

And what its refusals mean (`rejection`): rows refused by index go on without them, a call too
large is split, a version it does not serve (422 on `version`) pauses the job, anything else fails it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from onepipe.platform.http.client import ServiceRejectedError
from onepipe.platform.http.envelopes import PredictRequest

# the schema's keywords for a length limit, the only ones checked here (see the module's docstring)
LENGTH_KEYWORDS = frozenset({"maxLength", "maxItems", "maxProperties"})
# how a row's reason starts when it cannot be sent, whether the worker or the model service found it
TOO_LARGE = "too large to send to the model service: "


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _message(error: ValidationError) -> str:
    """A length error as pydantic (the model service) words it."""
    limit = int(error.validator_value)
    if error.validator == "maxLength":
        return f"String should have at most {_plural(limit, 'character')}"
    if error.validator == "maxItems":
        return (
            f"List should have at most {_plural(limit, 'item')} after validation, not {len(error.instance)}"
        )
    # pydantic stops counting a dict's items at the limit, so it says "not more"
    return f"Dictionary should have at most {_plural(limit, 'item')} after validation, not more"


def _where(error: ValidationError) -> str:
    """The field's path as the model service writes it, without the input's index: `text`, `tags[2]`."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return path or "input"


def _length_errors(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    # an anyOf (a nullable field) holds the length error among its branches' errors
    for error in errors:
        if error.validator in LENGTH_KEYWORDS:
            yield error
        yield from _length_errors(iter(error.context or ()))


class InputLimits:
    """The length limits of a pipeline's input schema (JSON Schema 2020-12, as pydantic writes it)."""

    def __init__(self, input_schema: Mapping[str, Any]) -> None:
        self._validator = Draft202012Validator(dict(input_schema))

    def refusal(self, value: Mapping[str, Any]) -> str | None:
        """Why the input is over a length limit of its schema ("text: String should ..."), or None."""
        found = dict.fromkeys(
            f"{_where(error)}: {_message(error)}"
            for error in _length_errors(self._validator.iter_errors(dict(value)))
        )
        return "; ".join(found) or None


def json_size(value: Any) -> int:
    """Bytes of `value` as JSON, encoded as the model-service client (httpx) encodes a body."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return len(text.encode("utf-8", "surrogatepass"))


def envelope_size(flags: Mapping[str, Any], version: str | None = None) -> int:
    """Bytes of a predict body with no inputs: what every call carries besides its inputs (the flags,
    and the version asked for, as the client sends it: left out when None)."""
    request = PredictRequest(inputs=[], flags=dict(flags), debug=False, version=version)
    return json_size(request.model_dump(exclude_none=True))


def body_size(sizes: Sequence[int], envelope: int) -> int:
    """Bytes of a predict body holding inputs of these sizes (a comma between two)."""
    return envelope + sum(sizes) + max(len(sizes) - 1, 0)


def too_large(size: int, limit: int) -> str:
    """A row's reason when it cannot be sent, worded as the model service's 413."""
    return f"{TOO_LARGE}the request body is {size} bytes; the limit is {limit} bytes"


@dataclass
class Packing:
    """Inputs (by index) in calls, in order, each call's body within the limit; and those too large alone."""

    calls: list[list[int]] = field(default_factory=list)
    too_large: dict[int, int] = field(default_factory=dict)  # index -> its body size, alone


def pack(sizes: Mapping[int, int], envelope: int, limit: int) -> Packing:
    """Inputs in calls of consecutive indexes, each as full as the body limit lets it be.

    `sizes`: each input's JSON size by index; `envelope`: the body's size with no inputs.
    """
    packing = Packing()
    call: list[int] = []
    body = envelope
    for index, size in sizes.items():
        alone = envelope + size
        if alone > limit:
            packing.too_large[index] = alone
            continue
        added = size + (1 if call else 0)
        if call and body + added > limit:
            packing.calls.append(call)
            call, body, added = [], envelope, size
        call.append(index)
        body += added
    if call:
        packing.calls.append(call)
    return packing


class RejectedError(Exception):
    """Rows the pipeline refused, by their index in the call, with the reasons."""

    def __init__(self, reasons: dict[int, str]) -> None:
        super().__init__(reasons)
        self.reasons = reasons


class TooLargeError(Exception):
    """The model service refused a call as too large (413): its body, or its number of inputs."""


class VersionRefusedError(Exception):
    """The model service refused the version asked for (422 on `version`): it does not serve it now."""


class CallRefusedError(Exception):
    """The model service refused the job's requests for another reason: the job cannot go on."""


def rejection(error: ServiceRejectedError) -> Exception:
    """A 4xx from the model service: bad rows (by index) go on, a call too large is split, a version it
    does not serve pauses the job; anything else stops it."""
    detail = str(error.problem.get("detail") or error)
    if error.status == 413:
        return TooLargeError(str(error.problem.get("detail") or "the request is over its limit"))
    problems = [p for p in error.problem.get("errors") or [] if isinstance(p, dict)]
    if error.status == 422 and any(p.get("loc") == "version" for p in problems):
        return VersionRefusedError(detail)
    reasons: dict[int, list[str]] = {}
    for problem in problems:
        index = problem.get("input")  # which input of the call, as data (onepipe.errors.Problem)
        if isinstance(index, int) and not isinstance(index, bool):
            field_name = problem.get("field") or "input"
            reasons.setdefault(index, []).append(f"{field_name}: {problem.get('message', 'invalid')}")
    if error.status == 422 and reasons:
        return RejectedError({index: "; ".join(why) for index, why in reasons.items()})
    return CallRefusedError(f"the model service refused the job's requests: {detail}")
