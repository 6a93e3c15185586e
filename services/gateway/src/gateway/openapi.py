"""The gateway's OpenAPI document, typed with the pipeline's own input, output and flags schemas.

The gateway never imports the pipeline: the schemas come from the model service's
/v1/pipeline, so a new input field shows up here with no gateway change.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from gateway.auth import KEY_SCHEMES
from gateway.cases import library_schema
from gateway.deps import AdmittedRoute
from onepipe import PipelineInfo
from onepipe.platform.http.apidocs import COMPONENTS, exact, examples, finish_refs, steps_markdown, typed_by
from onepipe.platform.http.envelopes import VERSION_REF_PATTERN
from onepipe.platform.schema.schemas import scorable_fields

REQUEST, RESPONSE = "PublicPredictRequest", "PredictResponse"
CASE, REPORTED = "CaseReport", "ReportedCase"
JOBS = "/v1/jobs"
JSON_FIELDS = ("mapping", "flags", "compare_flags", "truth")
VERSION_FIELDS = ("version", "compare_version")


def base_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of the app, made exact, its upload's fields typed; built once, kept as the app's."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        app.openapi_schema = with_json_fields(with_key_schemes(exact(document), app.routes))
    return app.openapi_schema


def with_key_schemes(document: dict[str, Any], routes: list[BaseRoute]) -> dict[str, Any]:
    """Each operation that admits callers marked as needing an API key, sent either way `Access` reads it.

    Written here rather than declared as FastAPI security dependencies: those are solved on every
    request, for nothing, as `Access` reads the headers itself (docs/performance.md, finding 13).
    """
    document = copy.deepcopy(document)
    for route in iter_route_contexts(routes):
        admitted = isinstance(route.original_route, AdmittedRoute) and route.original_route.admissions
        if not admitted or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            operation["security"] = [{scheme.scheme_name: []} for scheme in KEY_SCHEMES]  # either one
    schemes = {
        scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for scheme in KEY_SCHEMES
    }
    document.setdefault("components", {})["securitySchemes"] = schemes
    return document


def with_json_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The job upload's form fields as what they are: JSON objects, each part sent as application/json,
    and the versions, strings of a version reference's form.

    FastAPI sees strings that may be null; the gateway refuses anything but a JSON object (422), and a
    multipart part is never null: an absent field takes its default.
    """
    document = copy.deepcopy(document)
    content = document["paths"][JOBS]["post"]["requestBody"]["content"]["multipart/form-data"]
    body = document["components"]["schemas"][content["schema"]["$ref"].removeprefix(COMPONENTS)]
    for name in JSON_FIELDS:
        body["properties"][name] = {
            "type": "object",
            "title": body["properties"][name].get("title", name),
            "description": body["properties"][name].get("description", ""),
        }
    for name in ("mapping", "truth"):
        body["properties"][name]["additionalProperties"] = {"type": "string"}
    for name in VERSION_FIELDS:  # a version reference, as the model service takes it
        body["properties"][name] = {
            "type": "string",
            "pattern": VERSION_REF_PATTERN,
            "title": body["properties"][name].get("title", name),
            "description": body["properties"][name].get("description", ""),
        }
    content["encoding"] = {name: {"contentType": "application/json"} for name in JSON_FIELDS}
    return document


def with_pipeline(document: dict[str, Any], info: PipelineInfo | None, max_inputs: int) -> dict[str, Any]:
    """The document with predict and job flags typed by the pipeline's models, and its named examples."""
    if info is None:
        document = copy.deepcopy(document)
        document["info"]["description"] += (
            "\n\nThe pipeline's schemas are missing from this copy: the model service did not answer."
        )
        return document
    document, input_ref, output_ref, flags_ref = typed_by(document, info)
    components = document["components"]["schemas"]
    request = components[REQUEST]["properties"]
    request["inputs"] = {
        "description": f"One input, or a list of 1 to {max_inputs} inputs.",
        "oneOf": [input_ref, {"type": "array", "items": input_ref, "minItems": 1, "maxItems": max_inputs}],
    }
    request["flags"] = {"allOf": [flags_ref], "description": "Flags; unset flags take their default."}
    components[RESPONSE]["properties"]["outputs"] = {"type": "array", "items": output_ref}
    case = components[CASE]["properties"]
    # the input schema, closed: a reported case with a field the pipeline lacks is refused (422), as the
    # field would change the case's id (predict ignores such a field)
    inputs = components[input_ref["$ref"].removeprefix(COMPONENTS)]
    case["input"] = {
        **{key: value for key, value in inputs.items() if key not in ("title", "description")},
        "additionalProperties": inputs.get("additionalProperties", False),
        "description": case["input"].get("description", ""),
    }
    case["flags"] = {"allOf": [flags_ref], "description": case["flags"].get("description", "")}
    # any subset of the output's fields, each as the output schema types it; no other field
    output = components[output_ref["$ref"].removeprefix(COMPONENTS)]
    case["expected"] = {
        **{key: value for key, value in output.items() if key not in ("required", "title", "description")},
        "additionalProperties": False,
        "minProperties": 1,
        "description": case["expected"].get("description", ""),
    }
    components[REPORTED]["properties"]["answer"] = {
        "anyOf": [output_ref, {"type": "null"}],
        "description": components[REPORTED]["properties"]["answer"].get("description", ""),
    }
    refs = {"input": input_ref, "output": output_ref, "flags": flags_ref}
    library_schema(components, refs, case["expected"])  # the library's cases, typed as a report is

    upload = document["paths"][JOBS]["post"]["requestBody"]["content"]["multipart/form-data"]
    form = components[upload["schema"]["$ref"].removeprefix(COMPONENTS)]["properties"]
    form["mapping"]["propertyNames"] = {"enum": list(info.input_schema.get("properties", {}))}
    scored = scorable_fields(info.output_schema)
    if scored:
        form["truth"]["propertyNames"] = {"enum": scored}
    else:  # nothing this pipeline outputs can be scored
        form["truth"]["maxProperties"] = 0
    for name in ("flags", "compare_flags"):
        form[name] = {"allOf": [flags_ref], "description": form[name].get("description", "")}
    finish_refs(document)

    predict = document["paths"]["/v1/predict"]["post"]
    predict["requestBody"]["content"]["application/json"]["examples"] = examples(
        info, lambda example: {"inputs": example}
    )
    document["info"]["description"] += (
        f"\n\nPipeline **{info.name}**, version `{info.version}`. Steps:\n\n{steps_markdown(info)}"
    )
    return document
