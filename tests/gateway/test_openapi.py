"""The published contract is exact: the gateway's and the model service's OpenAPI documents say what they do.

Both services run as processes, as `just up` starts them; tests/stack/test_fuzz.py then checks the same
documents against thousands of generated requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import BaseModel
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway.auth import hash_key
from gateway.jobs import REPORT_MEDIA_TYPES
from onepipe.platform.jobs.types import REPORT_FORMATS
from onepipe_harness.processes import ServiceProcess, free_port, gateway
from tests.browsing import chromium

PROBLEM = "application/problem+json"
KEY = "openapi-test-key"
PROBLEM_CONTENT = {PROBLEM: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}


@pytest.fixture(scope="module")
def front(
    example_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    keys = [{"name": "doc", "sha256": hash_key(KEY), "scopes": ["predict", "debug", "jobs", "feedback"]}]
    env = {
        "GATEWAY_API_KEYS": json.dumps(keys),
        "GATEWAY_MAX_INPUTS": "4",
        "REDIS_URL": "memory://",  # rate-limit counters and the queue in the process: nothing to run
        "STORAGE_URL": str(tmp_path_factory.mktemp("openapi") / "storage"),
    }
    with gateway(free_port(), example_service.url, **env) as process:
        yield process


@pytest.fixture(scope="module")
def documents(front: ServiceProcess, example_service: ServiceProcess) -> dict[str, dict[str, Any]]:
    return {
        "gateway": httpx.get(front.url + "/openapi.json").json(),
        "model": httpx.get(example_service.url + "/openapi.json").json(),
    }


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_the_documents_are_valid_openapi(documents: dict[str, dict[str, Any]], service: str) -> None:
    validate(documents[service])


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_every_error_is_problem_json_with_its_schema_and_nothing_else(
    documents: dict[str, dict[str, Any]], service: str
) -> None:
    errors = 0
    for name, operation in _operations(documents[service]):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert response["content"] == PROBLEM_CONTENT, (name, status, response["content"])
    assert errors >= 5


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_validation_errors_are_problems_not_fastapis_schemas(
    documents: dict[str, dict[str, Any]], service: str
) -> None:
    document = documents[service]
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])
    assert not [ref for ref in _refs(document) if "ValidationError" in ref]
    invalid = dict(document["paths"]["/v1/predict"]["post"]["responses"]["422"])
    assert "`errors`" in invalid["description"]


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_problem_errors_are_typed(documents: dict[str, dict[str, Any]], service: str) -> None:
    schemas = documents[service]["components"]["schemas"]
    errors = schemas["ProblemDetail"]["properties"]["errors"]
    listed = next(option for option in errors["anyOf"] if option.get("type") == "array")
    assert listed["items"] == {"$ref": "#/components/schemas/Problem"}
    problem = schemas["Problem"]
    assert problem["properties"]["loc"]["type"] == problem["properties"]["message"]["type"] == "string"
    assert set(problem["required"]) == {"loc", "message"}


def test_429_and_503_document_retry_after(documents: dict[str, dict[str, Any]]) -> None:
    seen = set()
    for service, document in documents.items():
        for name, operation in _operations(document):
            for status in ("429", "503", "504"):
                if status in operation["responses"]:
                    header = operation["responses"][status]["headers"]["Retry-After"]
                    assert header["schema"] == {"type": "integer", "minimum": 0}, (service, name)
                    assert header["required"] is (status == "429"), (service, name, status)
                    seen.add((service, status))
    assert seen == {("gateway", "429"), ("gateway", "503"), ("gateway", "504"), ("model", "503")}


def test_the_operations_that_ask_for_a_key_are_those_that_refuse_a_call_without_one(
    documents: dict[str, dict[str, Any]], front: ServiceProcess
) -> None:
    document = documents["gateway"]
    assert document["components"]["securitySchemes"] == {
        "APIKeyHeader": {
            "type": "apiKey",
            "description": "Your API key.",
            "in": "header",
            "name": "X-API-Key",
        },
        "HTTPBearer": {"type": "http", "description": "Your API key as a bearer token.", "scheme": "bearer"},
    }
    marked = set()
    for name, operation in _operations(document):
        method, path = name.split(" ", 1)
        # any value for a path's parameters: the key is checked before the route reads them
        url = front.url + re.sub(r"\{[^}]+\}", "x", path)
        answer = httpx.request(method, url, timeout=30)
        if "security" in operation:
            assert operation["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}], name
            assert answer.status_code == 401, name
            marked.add(name)
        else:
            assert answer.status_code != 401, name
    # as the document's description says: every /v1 route, and no other
    assert marked == {name for name, _ in _operations(document) if " /v1/" in name}


def test_job_submission_answers_with_the_job_view(
    documents: dict[str, dict[str, Any]], front: ServiceProcess
) -> None:
    document = documents["gateway"]
    accepted = document["paths"]["/v1/jobs"]["post"]["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobView"}
    assert "Location" in accepted["headers"]
    answer = httpx.post(
        front.url + "/v1/jobs",
        files={"file": ("reviews.csv", b"text\nA sharp, funny film.\n")},
        headers={"X-API-Key": KEY},
    )
    assert answer.status_code == 202, answer.text
    schemas = document["components"]["schemas"]
    job_view = {**schemas["JobView"], "$defs": schemas}
    Draft202012Validator(
        json.loads(json.dumps(job_view).replace("#/components/schemas/", "#/$defs/"))
    ).validate(answer.json())
    assert answer.headers["Location"] == answer.json()["url"]


def test_report_formats_are_an_enum_with_their_real_media_types(documents: dict[str, dict[str, Any]]) -> None:
    report = documents["gateway"]["paths"]["/v1/jobs/{job_id}/report.{file_format}"]["get"]
    file_format = next(p for p in report["parameters"] if p["name"] == "file_format")
    assert file_format["schema"]["enum"] == list(REPORT_FORMATS)
    media_types = {REPORT_MEDIA_TYPES[fmt].split(";")[0] for fmt in REPORT_FORMATS}
    assert set(report["responses"]["200"]["content"]) == media_types  # and no application/json


def test_job_form_fields_are_json_objects_typed_by_the_pipeline(documents: dict[str, dict[str, Any]]) -> None:
    document = documents["gateway"]
    upload = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["encoding"] == {
        name: {"contentType": "application/json"} for name in ("mapping", "flags", "compare_flags", "truth")
    }
    form = document["components"]["schemas"][upload["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert form["mapping"]["type"] == "object" and form["mapping"]["additionalProperties"] == {
        "type": "string"
    }
    assert form["mapping"]["propertyNames"] == {"enum": ["text"]}
    # the output fields that can be scored against a column: scalars, not the lists and objects
    assert form["truth"]["additionalProperties"] == {"type": "string"}
    assert form["truth"]["propertyNames"] == {
        "enum": [
            "label",
            "confidence",
            "kind",
            "kind_confidence",
            "sentiment",
            "sentiment_confidence",
            "needs_review",
        ]
    }
    for name in ("flags", "compare_flags"):
        assert form[name]["allOf"] == [{"$ref": "#/components/schemas/PipelineFlags"}]


def test_the_model_services_document_is_typed_by_its_pipeline(documents: dict[str, dict[str, Any]]) -> None:
    schemas = documents["model"]["components"]["schemas"]
    request = schemas["PredictRequest"]["properties"]
    assert request["inputs"]["items"] == {"$ref": "#/components/schemas/PipelineInput"}
    assert (request["inputs"]["minItems"], request["inputs"]["maxItems"]) == (1, 256)  # MODEL_MAX_INPUTS
    assert request["flags"]["allOf"] == [{"$ref": "#/components/schemas/PipelineFlags"}]
    assert schemas["PredictResponse"]["properties"]["outputs"]["items"] == {
        "$ref": "#/components/schemas/PipelineOutput"
    }
    assert set(schemas["PipelineInput"]["properties"]) == {"text"}
    predict = documents["model"]["paths"]["/v1/predict"]["post"]
    assert "plot summary" in predict["requestBody"]["content"]["application/json"]["examples"]


# -- the servers do what the documents say ------------------------------------------------------------


@pytest.mark.parametrize("service", ["gateway", "model"])
@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"debug": 0}, "debug"),
        ({"debug": "yes"}, "debug"),
        ({"flags": {"neighbours": False}}, "flags.neighbours"),
        ({"flags": {"neighbours": "3"}}, "flags.neighbours"),
        ({"flags": {"check_duplicates": 1}}, "flags.check_duplicates"),
    ],
)
def test_a_value_of_another_json_type_is_refused_not_converted(
    front: ServiceProcess, example_service: ServiceProcess, service: str, extra: dict[str, Any], loc: str
) -> None:
    url = front.url if service == "gateway" else example_service.url
    answer = httpx.post(
        url + "/v1/predict", json={"inputs": [{"text": "A fine film."}], **extra}, headers={"X-API-Key": KEY}
    )
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, answer.text
    assert [e["loc"] for e in answer.json()["errors"]] == [loc]


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_an_integral_number_is_an_integer_as_in_json_schema(
    front: ServiceProcess, example_service: ServiceProcess, service: str
) -> None:
    url = front.url if service == "gateway" else example_service.url
    body = {"inputs": [{"text": "A fine film."}], "flags": {"neighbours": 2.0, "review_below": 1}}
    answer = httpx.post(url + "/v1/predict", json=body, headers={"X-API-Key": KEY})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["outputs"][0]["similar"]) == 2


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_a_body_that_cannot_be_read_is_a_422_problem_naming_it(
    front: ServiceProcess, example_service: ServiceProcess, service: str
) -> None:
    url = front.url if service == "gateway" else example_service.url
    answer = httpx.post(
        url + "/v1/predict",
        content=b'{"inputs": "\xff"}',  # not UTF-8
        headers={"content-type": "application/json", "X-API-Key": KEY},
    )
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["errors"][0]["loc"] == "body"


def test_a_broken_upload_is_a_422_problem(front: ServiceProcess) -> None:
    answer = httpx.post(
        front.url + "/v1/jobs",
        content=b"--b\r\n--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b", "X-API-Key": KEY},
    )
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM


def test_405_allows_every_method_of_the_path(
    front: ServiceProcess, documents: dict[str, dict[str, Any]]
) -> None:
    for path, methods in [("/v1/jobs/some-id", {"GET", "DELETE"}), ("/v1/jobs", {"GET", "POST"})]:
        answer = httpx.request("PUT", front.url + path, headers={"X-API-Key": KEY})
        assert answer.status_code == 405 and answer.headers["content-type"] == PROBLEM
        assert set(answer.headers["Allow"].split(", ")) - {"HEAD"} == methods
    assert set(documents["gateway"]["paths"]["/v1/jobs/{job_id}"]) == {"get", "delete"}


def test_unknown_report_format_is_refused_by_the_enum(front: ServiceProcess) -> None:
    answer = httpx.get(front.url + "/v1/jobs/some-id/report.xml", headers={"X-API-Key": KEY})
    assert answer.status_code == 422 and answer.json()["errors"][0]["loc"] == "path.file_format"


# -- /docs works offline ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_docs_page_loads_swagger_ui_from_the_service(
    front: ServiceProcess, example_service: ServiceProcess, service: str
) -> None:
    url = front.url if service == "gateway" else example_service.url
    page = httpx.get(url + "/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert not re.findall(r"(?:src|href)=\"https?://", page.text), "an asset from another host"
    assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", page.text)
    assert {"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/favicon.png"} <= set(assets)
    for asset in assets:
        answer = httpx.get(url + asset)
        assert answer.status_code == 200 and len(answer.content) > 500, asset
    bundle = httpx.get(url + "/docs/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript") and "SwaggerUIBundle" in bundle.text
    assert httpx.get(url + "/docs/nothing.js").status_code == 404


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium("The /docs browser test") as driver:
        yield driver


@pytest.mark.parametrize("service", ["gateway", "model"])
def test_docs_render_every_operation_in_a_browser_with_no_network(
    browser: webdriver.Chrome, front: ServiceProcess, example_service: ServiceProcess, service: str
) -> None:
    url = front.url if service == "gateway" else example_service.url
    operations = len(list(_operations(httpx.get(url + "/openapi.json").json())))
    browser.get(url + "/docs")
    WebDriverWait(browser, 30).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) >= operations
    )
    assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")  # no "unable to render"


class _Address(BaseModel):
    """Where, as the input gives it."""

    street: str


class _Trace(BaseModel):
    """A name the gateway's own document uses."""

    hops: int


def _nested_pipeline_info() -> Any:
    from pydantic import create_model

    from onepipe.contract import PipelineInfo

    out_address = create_model("Address", city=(str, ...), __doc__="Where, as the output says it.")
    problem = create_model("ProblemDetail", note=(str, ...), __doc__="Not the service's problem.")
    job_view = create_model("JobView", seen=(bool, ...), __doc__="Not the gateway's job view.")
    inputs = create_model("In", address=(_Address, ...), trace=(_Trace, ...))
    outputs = create_model(
        "Out", address=(out_address, ...), trace=(_Trace, ...), problem=(problem, ...), job=(job_view, ...)
    )
    return PipelineInfo(
        name="nested",
        version="1",
        steps=[],
        input_schema=inputs.model_json_schema(),
        output_schema=outputs.model_json_schema(),
        flags_schema={"type": "object", "properties": {}},
        examples={},
    )


def test_nested_models_never_take_another_schemas_name() -> None:
    from onepipe.platform.http.apidocs import typed_by

    own = {"ProblemDetail": {"title": "ProblemDetail", "type": "object"}, "JobView": {"title": "JobView"}}
    document = {"components": {"schemas": json.loads(json.dumps(own))}}
    typed, input_ref, output_ref, _ = typed_by(document, _nested_pipeline_info())
    schemas = typed["components"]["schemas"]
    assert {k: schemas[k] for k in own} == own  # the service's own schemas are untouched

    def target(ref: str) -> dict[str, Any]:
        return dict(schemas[ref.removeprefix("#/components/schemas/")])

    inputs, outputs = target(input_ref["$ref"]), target(output_ref["$ref"])
    shown = {
        field: target(prop["$ref"])["title"] + ":" + ",".join(target(prop["$ref"])["properties"])
        for field, prop in {
            **inputs["properties"],
            **{"o." + k: v for k, v in outputs["properties"].items()},
        }.items()
    }
    assert shown == {
        "address": "_Address:street",
        "trace": "_Trace:hops",
        "o.address": "Address:city",
        "o.trace": "_Trace:hops",
        "o.problem": "ProblemDetail:note",
        "o.job": "JobView:seen",
    }
    assert outputs["properties"]["trace"] == inputs["properties"]["trace"]  # one model, one component
    names = {ref.removeprefix("#/components/schemas/") for ref in _refs(typed)}
    assert names <= set(schemas) and all(n.startswith(("Pipeline", "In", "Out")) or n in own for n in names)


def test_each_variant_is_described_by_its_own_docstring(tiny: Any) -> None:
    from onepipe.platform.http.apidocs import steps_markdown

    described = steps_markdown(tiny.describe())
    assert "`combined`, by variant:" in described
    assert "`sum` (when method=sum): The values combined by summing, plus the trained offset." in described
    assert (
        "`mean` (when method=mean): The values combined by averaging, plus the trained offset." in described
    )
