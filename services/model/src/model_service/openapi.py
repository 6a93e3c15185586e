"""The model service's OpenAPI document, typed with the pipeline it serves.

FastAPI sees `inputs` as a list of any objects and `flags` as any object; the service refuses
anything but the pipeline's inputs (1 to MODEL_MAX_INPUTS of them) and flags, so the document says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from onepipe import Pipeline, PipelineInfo
from onepipe.platform.http.apidocs import exact, examples, finish_refs, steps_markdown, typed_by

REQUEST, RESPONSE = "PredictRequest", "PredictResponse"


def typed_document(document: dict[str, Any], info: PipelineInfo, max_inputs: int) -> dict[str, Any]:
    """FastAPI's document made exact, with predict typed by the pipeline's models and its examples."""
    document, input_ref, output_ref, flags_ref = typed_by(exact(document), info)
    components = document["components"]["schemas"]
    request = components[REQUEST]["properties"]
    request["inputs"] = {
        "description": f"1 to {max_inputs} inputs, each of the pipeline's input model.",
        "type": "array",
        "items": input_ref,
        "minItems": 1,
        "maxItems": max_inputs,
    }
    request["flags"] = {"allOf": [flags_ref], "description": "Flags; unset flags take their default."}
    components[RESPONSE]["properties"]["outputs"] = {"type": "array", "items": output_ref}
    finish_refs(document)
    predict = document["paths"]["/v1/predict"]["post"]
    predict["requestBody"]["content"]["application/json"]["examples"] = examples(
        info, lambda example: {"inputs": [example]}
    )
    document["info"]["description"] += f"\n\nPipeline **{info.name}**. Steps:\n\n{steps_markdown(info)}"
    return document


def app_document(app: FastAPI, definition: Pipeline[Any, Any, Any], max_inputs: int) -> dict[str, Any]:
    """The app's document, typed by the pipeline it serves; built once, kept as the app's."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        app.openapi_schema = typed_document(document, definition.describe(""), max_inputs)
    return app.openapi_schema
