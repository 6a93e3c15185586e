"""The gateway's OpenAPI document, typed with the pipeline's own input, output and flags schemas.

The gateway never imports the pipeline: the schemas come from the model service's
/v1/pipeline, so a new input field shows up here with no gateway change.
"""

from __future__ import annotations

import copy
from typing import Any

from onepipe import PipelineInfo

INPUT, OUTPUT, FLAGS = "PipelineInput", "PipelineOutput", "PipelineFlags"
REQUEST, RESPONSE = "PublicPredictRequest", "PredictResponse"


def _hoist(schema: dict[str, Any], name: str, components: dict[str, Any]) -> dict[str, str]:
    """Put a pydantic JSON Schema (and its $defs) under components; returns a $ref to it."""
    schema = copy.deepcopy(schema)
    for def_name, definition in schema.pop("$defs", {}).items():
        components.setdefault(def_name, definition)
    components[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                v.replace("#/$defs/", "#/components/schemas/")
                if k == "$ref" and isinstance(v, str)
                else _rewrite_refs(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def with_pipeline(document: dict[str, Any], info: PipelineInfo | None, max_inputs: int) -> dict[str, Any]:
    """The document with predict typed by the pipeline's models and its named examples."""
    document = copy.deepcopy(document)
    if info is None:
        document["info"]["description"] += (
            "\n\nThe pipeline's schemas are missing from this copy: the model service did not answer."
        )
        return document
    components = document.setdefault("components", {}).setdefault("schemas", {})
    input_ref = _hoist(info.input_schema, INPUT, components)
    output_ref = _hoist(info.output_schema, OUTPUT, components)
    flags_ref = _hoist(info.flags_schema, FLAGS, components)
    request = components[REQUEST]["properties"]
    request["inputs"] = {
        "description": f"One input, or a list of 1 to {max_inputs} inputs.",
        "oneOf": [input_ref, {"type": "array", "items": input_ref, "minItems": 1, "maxItems": max_inputs}],
    }
    request["flags"] = {"allOf": [flags_ref], "description": "Flags; unset flags take their default."}
    components[RESPONSE]["properties"]["outputs"] = {"type": "array", "items": output_ref}
    document["components"]["schemas"] = _rewrite_refs(components)

    predict = document["paths"]["/v1/predict"]["post"]
    predict["requestBody"]["content"]["application/json"]["examples"] = {
        name: {"summary": name, "value": {"inputs": example}} for name, example in info.examples.items()
    }
    steps = "\n".join(f"{n}. `{s.name}`: {s.doc}" for n, s in enumerate(info.steps, start=1))
    document["info"]["description"] += (
        f"\n\nPipeline **{info.name}**, version `{info.version}`. Steps:\n\n{steps}"
    )
    return document
