"""JSON request bodies read strictly, so that every malformed one gets a problem naming what is wrong.

Both HTTP services install it (`app.router.route_class = JsonBodyRoute`, before their routes).

FastAPI would answer a body that is not UTF-8 or nests too deeply with a bare 400, fail with a 500 on
NaN or an unpaired surrogate (JSON cannot carry them on to the model service), and take any content
type as "not an object". `JsonBodyRoute` checks a JSON body before FastAPI parses it:

- 415 when the Content-Type is not JSON (`application/json` or `application/*+json`) or names a
  charset other than UTF-8;
- 422 naming `body` when it is not UTF-8, not JSON (NaN and Infinity are not JSON), or nests objects
  and arrays deeper than `MAX_JSON_DEPTH` levels;
- 422 naming the field when a string holds half of a surrogate pair alone (it is not text).
"""

from __future__ import annotations

import email.message
import functools
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, params
from fastapi.routing import APIRoute

from onepipe import Problem
from onepipe.platform.http.server import ProblemError
from onepipe.platform.jobs.datasets import MAX_JSON_DEPTH, RepeatedKeyError, parse_json, too_deep

CONTENT_TYPE = "header.content-type"  # where a problem with the Content-Type is, as FastAPI names it


def _invalid(loc: str, message: str) -> ProblemError:
    return ProblemError(
        422, "Invalid request", f"{loc}: {message}", errors=[Problem(loc=loc, message=message)]
    )


def _unsupported(message: str) -> ProblemError:
    return ProblemError(
        415,
        "Unsupported media type",
        f"{CONTENT_TYPE}: {message}",
        errors=[Problem(loc=CONTENT_TYPE, message=message)],
    )


def check_content_type(content_type: str | None) -> None:
    """A 415 unless the content type is JSON in UTF-8."""
    refusal = _content_type_refusal(content_type)
    if refusal is not None:
        raise _unsupported(refusal)


@functools.lru_cache(maxsize=64)  # a few values recur; parsing one is a tenth of the strict check
def _content_type_refusal(content_type: str | None) -> str | None:
    """Why a content type is refused, or None for JSON in UTF-8."""
    expected = "send the body as JSON, with Content-Type: application/json"
    if not content_type:
        return f"{expected}; this request has none"
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        return f"{expected}; this request's is {content_type}"
    charset = message.get_content_charset()
    if charset not in (None, "utf-8", "utf8"):
        return f"JSON is UTF-8; this request's says charset={charset}"
    return None


def check_json(body: bytes) -> Any:
    """The body's JSON value, or a 422 naming what makes it unreadable (or the field that is not text)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _invalid(
            "body", f"not UTF-8 (the byte 0x{body[error.start]:02x} at offset {error.start}); JSON is UTF-8"
        ) from None
    try:
        value = parse_json(text)
    except json.JSONDecodeError as error:
        raise _invalid(
            "body", f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RepeatedKeyError as error:
        raise _invalid("body", f"ambiguous: {error}") from None
    except ValueError as error:  # NaN, Infinity, a number out of range or with too many digits
        raise _invalid("body", f"not valid JSON: {error}") from None
    except RecursionError:
        raise _invalid("body", f"nested more than {MAX_JSON_DEPTH} levels deep (the limit)") from None
    # no deeper than its brackets, strings' included, can nest it: most bodies are not walked
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and too_deep(value):
        raise _invalid("body", f"nested more than {MAX_JSON_DEPTH} levels deep (the limit)")
    if "\\u" in text:
        where = _unpaired_surrogate(value, "")
        if where is not None:
            loc, code = where
            raise _invalid(
                loc or "body", f"not text: it holds \\u{code:04x}, half of a surrogate pair, alone"
            )
    return value


def _surrogate(text: str) -> int | None:
    return next((ord(char) for char in text if 0xD800 <= ord(char) <= 0xDFFF), None)


def _unpaired_surrogate(value: Any, loc: str) -> tuple[str, int] | None:
    """Where a string holds a lone surrogate (its path, as problems name fields), and which one."""
    if isinstance(value, str):
        code = _surrogate(value)
        return None if code is None else (loc, code)
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unpaired_surrogate(item, f"{loc}[{index}]")
            if found is not None:
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            code = _surrogate(key)
            if code is not None:  # the key itself: named by where it is
                return loc, code
            found = _unpaired_surrogate(item, f"{loc}.{key}" if loc else key)
            if found is not None:
                return found
    return None


class JsonBodyRoute(APIRoute):
    """A route whose JSON body (if it takes one) is checked before FastAPI reads it; forms pass as is.

    `before_body` runs first, before any of the body is read: a service that admits callers
    (the gateway's keys and scopes) refuses them there, so a caller who may not use the route
    learns nothing about what its body should be, and sends no upload for nothing.
    """

    async def before_body(self, request: Request) -> None:
        """What to check before the body is read (nothing, unless a service says otherwise)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        json_body = self.body_field is not None and not isinstance(self.body_field.field_info, params.Form)

        async def checked(request: Request) -> Response:
            await self.before_body(request)
            if json_body:
                body = await request.body()  # kept by the request: FastAPI reads it again from there
                if body:
                    check_content_type(request.headers.get("content-type"))
                    # the value FastAPI reads with `request.json()`, which keeps it there: parsed once
                    request._json = check_json(body)
            return await handler(request)

        return checked
