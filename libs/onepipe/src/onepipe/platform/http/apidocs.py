"""The published contract: OpenAPI documents that say exactly what a service answers, and offline docs.

FastAPI's own document is close, not exact: an error's schema sits under `application/json` (never
sent; errors are `application/problem+json`), validation errors are described as FastAPI's
`HTTPValidationError` (here they are problems too), and `/docs` loads Swagger UI from a CDN, a blank
page offline. `problems` declares error responses, `exact` fixes the rest of the document, `typed_by`
puts a pipeline's own schemas in it, and `install_docs` serves Swagger UI from an installed package
(fastapi-offline: a dependency of each service that serves `/docs`, not of this library).
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from onepipe.contract import PipelineInfo
from onepipe.platform.http.envelopes import ProblemDetail
from onepipe.platform.http.server import PROBLEM_JSON, ProblemError

COMPONENTS = "#/components/schemas/"
PROBLEM_REF = {"$ref": COMPONENTS + "ProblemDetail"}
INPUT, OUTPUT, FLAGS = "PipelineInput", "PipelineOutput", "PipelineFlags"
# what each error means here; the status phrase for any other
MEANINGS = {
    401: "No API key, or one that is not valid (with `WWW-Authenticate`).",
    403: "The key lacks the scope this route needs (the problem names it).",
    404: "Not found (or not this key's).",
    409: "The job's state does not allow this.",
    413: "The body or upload is over its limit, or too many inputs (the limit is in the problem).",
    422: "Invalid request: each invalid field is named in `errors` (`loc`, `message`).",
    429: "The key is over its rate limit; retry after `Retry-After` seconds.",
    502: "The model service failed on this request.",
    503: "Unavailable (starting, loading or a dependency down); retry after `Retry-After` seconds.",
    504: "The model service did not answer in time; retry after `Retry-After` seconds.",
}
RETRY_AFTER = "Retry-After"


def retry_after(required: bool) -> dict[str, Any]:
    """The Retry-After response header, in seconds."""
    return {
        "description": "Seconds to wait before retrying.",
        "required": required,
        "schema": {"type": "integer", "minimum": 0},
    }


def problems(*codes: int, retry: Collection[int] = (429, 503, 504)) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses` for problem+json errors (`exact` leaves the schema under problem+json only).

    `retry`: the codes sent with `Retry-After` (always with 429, when known with the others).
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        response: dict[str, Any] = {
            "model": ProblemDetail,
            "description": MEANINGS.get(code, HTTPStatus(code).phrase),
            "content": {PROBLEM_JSON: {}},
        }
        if code in retry:
            response["headers"] = {RETRY_AFTER: retry_after(required=code == 429)}
        responses[code] = response
    return responses


def exact(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document saying what the service sends: every error a problem, no HTTPValidationError."""
    document = copy.deepcopy(document)
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if status != "default" and int(status[0]) < 4:
                    continue
                response["content"] = {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}
                if status == "422":
                    response["description"] = MEANINGS[422]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if "ProblemDetail" not in schemas:
        hoist(ProblemDetail.model_json_schema(ref_template=COMPONENTS + "{model}"), "ProblemDetail", schemas)
    return document


def hoist(schema: dict[str, Any], name: str, components: dict[str, Any]) -> dict[str, str]:
    """Put a pydantic JSON Schema (and its $defs) under components; returns a $ref to it."""
    schema = copy.deepcopy(schema)
    for def_name, definition in schema.pop("$defs", {}).items():
        components.setdefault(def_name, definition)
    components[name] = schema
    return {"$ref": COMPONENTS + name}


def rewrite_refs(node: Any) -> Any:
    """`#/$defs/X` references as `#/components/schemas/X`, everywhere in `node`."""
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", COMPONENTS) if k == "$ref" and isinstance(v, str) else rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [rewrite_refs(v) for v in node]
    return node


def typed_by(
    document: dict[str, Any], info: PipelineInfo
) -> tuple[dict[str, Any], dict[str, str], dict[str, str], dict[str, str]]:
    """A copy of the document with the pipeline's input, output and flags schemas as components.

    Returns the copy and $refs to `PipelineInput`, `PipelineOutput` and `PipelineFlags`; the caller
    points its own request and response schemas at them, then calls `finish_refs`. The pipeline's
    nested models get readable names of their own (`PipelineAddress`, or `PipelineOutputAddress`
    when input and output each have a different `Address`), so none takes the place of a service's
    schema (`ProblemDetail`, `JobView`, ...) or of another nested model.
    """
    document = copy.deepcopy(document)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    refs = []
    hoisted: dict[str, Any] = {}  # component name -> the pipeline's definition put there
    for role, schema in (
        (INPUT, info.input_schema),
        (OUTPUT, info.output_schema),
        (FLAGS, info.flags_schema),
    ):
        schema = copy.deepcopy(schema)
        definitions = schema.pop("$defs", {})
        names = {name: _unique_name(name, role, d, components, hoisted) for name, d in definitions.items()}
        for name, definition in definitions.items():
            hoisted[names[name]] = definition
            components[names[name]] = _renamed_refs(definition, names)
        components[role] = _renamed_refs(schema, names)
        refs.append({"$ref": COMPONENTS + role})
    return document, refs[0], refs[1], refs[2]


def _unique_name(
    name: str, role: str, definition: Any, components: dict[str, Any], hoisted: dict[str, Any]
) -> str:
    """`Pipeline<name>`; `<role><name>` when that is another schema's; then numbered.

    A model used by both input and output (the same definition) is one component.
    """
    for candidate in (f"Pipeline{name}", f"{role}{name}"):
        free = candidate not in components or hoisted.get(candidate) == definition
        if free and candidate not in (INPUT, OUTPUT, FLAGS):
            return candidate
    number = 2
    while f"{role}{name}{number}" in components:
        number += 1
    return f"{role}{name}{number}"


def _renamed_refs(node: Any, names: dict[str, str]) -> Any:
    """`#/$defs/X` references as references to X's component under its new name."""
    if isinstance(node, dict):
        return {
            k: (
                COMPONENTS + names.get(v.removeprefix("#/$defs/"), v.removeprefix("#/$defs/"))
                if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/")
                else _renamed_refs(v, names)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_renamed_refs(v, names) for v in node]
    return node


def steps_markdown(info: PipelineInfo) -> str:
    """The pipeline's steps as a numbered Markdown list, each variant with its own docstring."""
    lines = []
    for number, step in enumerate(info.steps, start=1):
        if not step.variant_docs:
            lines.append(f"{number}. `{step.name}`: {step.doc}")
            continue
        lines.append(f"{number}. `{step.name}`, by variant:")
        for variant, doc in step.variant_docs.items():
            when = ", ".join(f"{flag}={value}" for flag, value in step.variants.get(variant, {}).items())
            lines.append(f"    - `{variant}` (when {when}): {doc}")
    return "\n".join(lines)


def finish_refs(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the hoisted pipeline schemas' references pointing at components."""
    document["components"]["schemas"] = rewrite_refs(document["components"]["schemas"])
    return document


def examples(info: PipelineInfo, wrap: Any) -> dict[str, dict[str, Any]]:
    """The pipeline's named examples as OpenAPI request examples; `wrap(example)` is the body."""
    return {name: {"summary": name, "value": wrap(example)} for name, example in info.examples.items()}


SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}


def swagger_assets() -> Path:
    """The folder of the installed Swagger UI files (from the fastapi-offline package)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """`/docs`: Swagger UI over `openapi_url`, its script, style and icon served by the app (no CDN)."""
    folder = swagger_assets()

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        """Swagger UI."""
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title}: API docs",
            swagger_js_url=f"{root}/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/favicon.png",
        )

    @app.get("/docs/{asset}", include_in_schema=False)
    async def docs_asset(asset: str) -> FileResponse:
        """One of Swagger UI's files."""
        if asset not in SWAGGER_ASSETS:
            raise ProblemError(404, "Not Found", f"the docs have no file {asset!r}")
        return FileResponse(folder / asset, media_type=SWAGGER_ASSETS[asset])
