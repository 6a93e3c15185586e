"""`docker compose up`, for real: every image built, the stack started, used, broken and healed.

Run by `just test-compose` (not by `just test`): it needs a Docker Engine and takes about
20 minutes on 2 cores. The tests run in file order on one stack; figures (image sizes, time
to healthy, job times under each fault) go to test-output/compose-figures.json.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from onepipe_harness.processes import OUTPUT, ROOT, free_port
from review_triage.data import load_snippets
from tests.browsing import CHROMEDRIVER, CHROMIUM, FLAGS
from tests.callers import Load
from tests.compose.stack import ComposeStack, Gateway, base_images, record
from tests.stack.test_deploy_static import ML_LIBRARIES
from ui_service.wording import readable

# the first test also builds every image (about 8 minutes on 2 cores from a cold cache)
pytestmark = pytest.mark.timeout(1800)

PROJECT = "onepipe-compose-test"
SERVICES = ["model", "gateway", "worker", "ui", "redis", "mlflow"]
BUILT = ["model", "gateway", "worker", "ui", "mlflow"]
ROWS = 2000
COMPARE = {"classifier": "minilm"}
# short task runs and leases, so faults and hand-overs happen within a 2,000-row job
WORKER_ENV = {
    "WORKER_CHUNK_SIZE": "100",
    "WORKER_TASK_BUDGET": "5",
    "WORKER_LEASE_SECONDS": "10",
    # well above a task run: on S3 a run's start (reading back the chunks written) takes seconds
    "WORKER_VISIBILITY_TIMEOUT": "40",
    # the beat sends a check of the versions against the case library every 10 s, not every hour
    "WORKER_CHECK_INTERVAL": "10",
}

# what `pip list` shows, read without pip (uv's venvs have none)
LIST_DISTRIBUTIONS = "import importlib.metadata as m; print(*(d.metadata['Name'] for d in m.distributions()))"


@dataclass
class Deployed:
    compose: ComposeStack
    gateway: Gateway
    ui_url: str
    mlflow_port: int


def _new_key(name: str, *scopes: str) -> tuple[str, str]:
    """A key made as a user makes one: the key, and its entry of the GATEWAY_API_KEYS list for .env."""
    made = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "gateway", "new-key", "--name", name]
        + [option for scope in scopes for option in ("--scope", scope)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key = re.search(r"^key \(shown once\): (\S+)$", made, re.MULTILINE)
    entry = re.search(r"^GATEWAY_API_KEYS='\[(.+)\]'$", made, re.MULTILINE)
    assert key and entry, made
    return key.group(1), entry.group(1)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    # the application's key (with `versions`: the test promotes), and the UI's with only the scopes it
    # uses (docs/deploy.md)
    key, app_entry = _new_key("compose-test", "predict", "jobs", "debug", "feedback", "versions")
    ui_key, ui_entry = _new_key("ui", "jobs", "feedback")
    keys = f"[{app_entry}, {ui_entry}]"
    gateway_port, ui_port, mlflow_port = free_port(), free_port(), free_port()
    env_file = tmp_path_factory.mktemp("compose") / "compose.env"
    variables = {
        **base_images(),
        "GATEWAY_API_KEYS": f"'{keys}'",
        "UI_API_KEY": ui_key,
        "GATEWAY_PORT": str(gateway_port),
        "STREAMLIT_SERVER_PORT": str(ui_port),
        "MLFLOW_PORT": str(mlflow_port),
        "GATEWAY_RATE_LIMIT": "100000/minute",  # the test polls jobs often
        **WORKER_ENV,
    }
    env_file.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    compose = ComposeStack(PROJECT, env_file)
    compose.run("down", "-v", "--remove-orphans", check=False)  # a crashed earlier run's leftovers

    started = time.monotonic()
    compose.run("build", timeout=2400)
    record("build seconds", round(time.monotonic() - started))
    try:
        record("up --wait to healthy seconds", round(compose.up_wait(), 1))
        yield Deployed(
            compose,
            Gateway(f"http://127.0.0.1:{gateway_port}", key),
            f"http://127.0.0.1:{ui_port}",
            mlflow_port,
        )
    finally:
        compose.down()  # again, when a test stopped before the last one


@pytest.fixture(scope="module")
def texts() -> list[str]:
    # distinct, and within the input's limits: every row must come back with outputs
    found = list(dict.fromkeys(s.text for s in load_snippets() if s.text.strip() and len(s.text) <= 4000))
    assert len(found) >= ROWS
    return found


def _dataset(texts: list[str], start: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text"])
    writer.writerows([f"r{start + i}", text] for i, text in enumerate(texts[start : start + ROWS]))
    return out.getvalue().encode()


def _submit(deployed: Deployed, texts: list[str], name: str, start: int = 0) -> dict[str, Any]:
    return deployed.gateway.submit(f"{name}.csv", _dataset(texts, start), flags={}, compare_flags=COMPARE)


def _check_job(deployed: Deployed, job: dict[str, Any], texts: list[str], name: str, start: int = 0) -> None:
    """The job succeeded with every row exactly once, in order, both variants filled in."""
    try:
        done = deployed.gateway.wait(job)
    except TimeoutError as error:  # what the workers and the gateway said, to tell why from CI's log
        logs = deployed.compose.logs("worker")[-8000:] + deployed.compose.logs("gateway")[-3000:]
        raise AssertionError(f"{error}\n{logs}") from None
    assert done["state"] == "succeeded", (done, deployed.compose.logs("worker")[-5000:])
    assert (done["rows_total"], done["rows_done"], done["rows_failed"]) == (ROWS, ROWS, 0)
    lines = deployed.gateway.report_rows(done)
    assert [line["row"] for line in lines] == list(range(1, ROWS + 1))
    assert [line["id"] for line in lines] == [f"r{start + i}" for i in range(ROWS)]
    assert [line["text"] for line in lines] == texts[start : start + ROWS]
    assert all(line["output.label"] and line["compare.label"] for line in lines)
    html = httpx.get(done["reports"]["html"], headers=deployed.gateway.headers, timeout=60).text
    assert f"{name}.csv" in html and done["pipeline_version"] in html and "<svg" in html
    seconds = datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(done["created_at"])
    record(f"job seconds: {name}", round(seconds.total_seconds(), 1))


def test_images_are_built_and_only_the_model_carries_ml_libraries(deployed: Deployed) -> None:
    sizes = {}
    for service in BUILT:
        image = f"{PROJECT}-{service}"
        inspected = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Size}}", image],
            capture_output=True,
            text=True,
            check=True,
        )
        sizes[service] = round(int(inspected.stdout) / 1e6)
        listed = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--entrypoint",
                "python",
                image,
                "-c",
                LIST_DISTRIBUTIONS,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        installed = {name.strip().lower().replace("_", "-") for name in listed.split()}
        if service == "mlflow":
            # MLflow's server, none of ours; the full mlflow depends on scikit-learn and scipy itself
            assert "mlflow" in installed and not {"onepipe", "review-triage"} & installed, installed
            continue
        assert service in {"model"} or not installed & ML_LIBRARIES, (service, installed & ML_LIBRARIES)
        if service == "model":
            assert {"scikit-learn", "onnxruntime", "review-triage"} <= installed
            # MLflow's client alone: the server and its UI are the mlflow image's
            assert "mlflow-skinny" in installed and "mlflow" not in installed
    record("image sizes MB", sizes)
    assert sizes["model"] > max(sizes[s] for s in ("gateway", "worker", "ui"))


def test_the_example_env_is_refused_until_the_secrets_are_set(deployed: Deployed) -> None:
    refused = ComposeStack(PROJECT, ROOT / ".env.example").run("config", "-q", check=False)
    assert refused.returncode != 0
    # Compose reports whichever required secret it interpolates first; the order is not fixed.
    named = re.search(r"required variable (\w+) is missing a value", refused.stderr)
    assert named is not None, refused.stderr
    assert named.group(1) in {"GATEWAY_API_KEYS", "UI_API_KEY"}
    assert "gateway new-key" in refused.stderr


def test_a_malformed_key_list_stops_the_gateway_with_one_line(deployed: Deployed) -> None:
    _, pasted_without_brackets = _new_key("app", "predict")
    stopped = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-e",
            f"GATEWAY_API_KEYS={pasted_without_brackets}",
            f"{PROJECT}-gateway",
            "gateway",
            "serve",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stopped.returncode == 1
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and "GATEWAY_API_KEYS" in lines[0], stopped.stderr


def test_predict_through_the_published_gateway_port(deployed: Deployed) -> None:
    info = deployed.gateway.get("/v1/pipeline").json()
    example = next(iter(info["examples"].values()))
    answer = deployed.gateway.post("/v1/predict", json={"inputs": example})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == info["version"] and len(body["outputs"]) == 1
    debugged = deployed.gateway.post("/v1/predict", json={"inputs": example, "debug": True}).json()
    assert [step["name"] for step in debugged["traces"][0]["steps"]][: len(info["steps"])]
    unauthorised = httpx.post(deployed.gateway.url + "/v1/predict", json={"inputs": example}, timeout=30)
    assert unauthorised.status_code == 401
    assert unauthorised.headers["content-type"].startswith("application/problem+json")


def test_the_mlflow_ui_answers_on_the_published_loopback_port(deployed: Deployed) -> None:
    published = deployed.compose.run("port", "mlflow", "5000").stdout.split()
    assert published == [f"127.0.0.1:{deployed.mlflow_port}"], published  # loopback only
    url = f"http://127.0.0.1:{deployed.mlflow_port}"
    page = httpx.get(url + "/", timeout=30)
    assert page.status_code == 200 and "<title>MLflow</title>" in page.text, page.text[:500]
    info = deployed.gateway.get("/v1/pipeline").json()
    # the model service registered the artifacts baked into its image as the first champion
    model = httpx.get(
        url + "/api/2.0/mlflow/registered-models/get", params={"name": info["name"]}, timeout=30
    ).json()["registered_model"]
    assert {alias["alias"]: alias["version"] for alias in model["aliases"]} == {"champion": "1"}


def _wait_until_served(deployed: Deployed, example: dict[str, Any], version: str) -> None:
    """Until several predicts in a row answer with `version` as the challenger (both model processes
    follow the aliases within a poll; one not there yet answers 503 while it loads)."""
    deadline, in_a_row = time.monotonic() + 120, 0
    while in_a_row < 10:
        assert time.monotonic() < deadline, f"the challenger {version} is not served after 2 minutes"
        answer = deployed.gateway.post("/v1/predict", json={"inputs": example, "version": "challenger"})
        in_a_row = in_a_row + 1 if answer.status_code == 200 and answer.json()["version"] == version else 0
        time.sleep(0.2)


def test_a_challenger_is_registered_promoted_and_rolled_back_under_load(deployed: Deployed) -> None:
    gateway = deployed.gateway
    info = gateway.get("/v1/pipeline").json()
    example = next(iter(info["examples"].values()))
    champion = info["version"]
    # registered as the engineer does, in the model container (its artifacts, another flag default)
    trained = deployed.compose.run(
        "exec",
        "-T",
        "model",
        "model-service",
        "train",
        "--if-needed",
        "--alias",
        "challenger",
        "--flag",
        "classifier=minilm",
        timeout=600,
    ).stdout
    assert "up to date" in trained and "registered as v2" in trained, trained
    listed = gateway.get("/v1/versions").json()
    assert listed["registry"] == {
        "kind": "mlflow",
        "location": "http://mlflow:5000",
        "status": "ok",
        "error": None,
    }, listed["registry"]
    assert [(v["number"], v["aliases"]) for v in listed["versions"]] == [
        (2, ["challenger"]),
        (1, ["champion"]),
    ]
    assert listed["versions"][1]["version"] == champion
    challenger = listed["versions"][0]["version"]
    assert challenger != champion and listed["versions"][0]["flag_defaults"] == {"classifier": "minilm"}
    _wait_until_served(deployed, example, challenger)

    settle = 5.0  # the other model process follows within MODEL_REGISTRY_POLL_SECONDS (2)
    with Load(gateway.url + "/v1/predict", gateway.headers, [{"inputs": example}]) as load:
        time.sleep(3)
        promoting = time.monotonic()
        # MiniLM breaks a must-pass case of the library: forced, with the reason on the record
        body = {"force": True, "reason": "compose test: promotion under load", "held_out_rows": 50}
        promoted = httpx.post(
            gateway.url + "/v1/versions/promote", json=body, headers=gateway.headers, timeout=900
        )
        assert promoted.status_code == 200, promoted.text
        assert (promoted.json()["champion"], promoted.json()["previous"]) == (2, 1)
        swapped = time.monotonic() + settle
        time.sleep(settle + 3)
        rolling_back = time.monotonic()
        back = httpx.post(gateway.url + "/v1/versions/rollback", headers=gateway.headers, timeout=300)
        assert back.status_code == 200, back.text
        assert [(v["number"], v["aliases"]) for v in back.json()["versions"]] == [
            (2, ["challenger"]),
            (1, ["champion"]),
        ]
        rolled_back = time.monotonic() + settle
        time.sleep(settle + 3)
    failed = [answer for answer in load.answers if answer[1] != 200]
    assert not failed, failed[:5]
    record("predicts under promotion and rollback (c=8)", len(load.answers))
    record("promotion through the gateway under load seconds", round(swapped - settle - promoting, 1))
    assert len(load.answers) > 100
    assert load.between(0, promoting) == {champion}
    assert load.between(swapped, rolling_back) == {challenger}
    assert load.between(rolled_back) == {champion}
    assert gateway.get("/v1/versions").json()["last_promotion"]["reason"] == body["reason"]


def test_the_beat_checks_champion_and_challenger_against_the_case_library(deployed: Deployed) -> None:
    """After the rollback the registry holds a champion and a challenger: the beat's next check replays
    the library the model image holds on both, through the live model service."""
    gateway = deployed.gateway
    library = (ROOT / "cases" / "review-triage.jsonl").read_text().splitlines()
    deadline = time.monotonic() + 120
    while True:
        latest = gateway.get("/v1/versions/checks").json()["latest"]
        labels = [version["label"] for version in (latest or {}).get("versions", [])]
        if latest and latest["ok"] and labels == ["champion", "challenger"]:
            break
        assert time.monotonic() < deadline, latest
        time.sleep(2)
    assert latest["cases"] == len(library)
    for version in latest["versions"]:
        assert version["passed"] + version["failed"] == len(library), version
    metrics = gateway.get("/metrics").text
    assert "onepipe_check_last_run_ok 1.0" in metrics
    assert 'onepipe_check_cases{outcome="passed",version="challenger"}' in metrics


def test_the_ui_runs_an_example_in_chromium(deployed: Deployed) -> None:
    info = deployed.gateway.get("/v1/pipeline").json()
    example = next(iter(info["examples"].values()))
    text = next(value for value in example.values() if isinstance(value, str))
    last_step = f"{len(info['steps'])}. {readable(info['steps'][-1]['name'])}"  # as the page names it
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        browser.get(deployed.ui_url)
        wait = WebDriverWait(browser, 90)
        box = wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "textarea")))
        box.send_keys(text)
        box.send_keys(Keys.CONTROL, Keys.ENTER)  # commit the value, as leaving the field would
        run = (By.XPATH, "//button[.//p[text()='Run']]")
        wait.until(expected_conditions.element_to_be_clickable(run)).click()
        steps = (By.XPATH, "//div[@role='tab'][.//p[normalize-space()='Steps']]")
        wait.until(expected_conditions.element_to_be_clickable(steps)).click()
        # the UI asked the model service in its container for every step
        wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), last_step))
        OUTPUT.mkdir(exist_ok=True)
        browser.save_screenshot(str(OUTPUT / "compose-ui.png"))
        body = browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.quit()
    assert info["name"] in body and "Traceback" not in body and "Deploy" not in body
    assert (OUTPUT / "compose-ui.png").stat().st_size > 10_000


def _address_on(container: str, network: str) -> str:
    template = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
    inspected = subprocess.run(
        ["docker", "inspect", "-f", template, container], capture_output=True, text=True, check=True
    )
    return inspected.stdout.strip()


def _host_routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """The host's IPv4 routes as (network, interface), from /proc/net/route."""
    routes = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        interface, destination, _, _, _, _, _, mask = line.split()[:8]
        to_address = ipaddress.IPv4Address(bytes.fromhex(destination)[::-1])
        netmask = ipaddress.IPv4Address(bytes.fromhex(mask)[::-1])
        routes.append((ipaddress.IPv4Network(f"{to_address}/{netmask}"), interface))
    return routes


# Run in a container on the public network: which targets it can open. Names only: an
# address it has no route to would send the packet off this machine.
PROBE = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        print(target, "open")
    except OSError as error:
        print(target, "closed", type(error).__name__)
"""


def test_model_and_redis_are_unreachable_from_the_host_and_the_public_network(deployed: Deployed) -> None:
    compose = deployed.compose
    inside = {"model": 8001, "redis": 6379}
    routes = _host_routes()
    for service, port in inside.items():
        assert compose.run("port", service, str(port), check=False).stdout.strip() in ("", ":0"), service
        address = ipaddress.IPv4Address(_address_on(compose.containers(service)[0], f"{PROJECT}_internal"))
        # no route of the host's own leads there: only the default one, which leaves the machine
        own = [(network, device) for network, device in routes if network.prefixlen and address in network]
        assert own == [], (service, address, own)
    # a container on the public network only: it reaches the gateway (the control) and nothing inside,
    # nor the mlflow service (on internal and a network of its own)
    targets = [f"{service}:{port}" for service, port in {**inside, "mlflow": 5000}.items()]
    probe = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            f"{PROJECT}_public",
            base_images()["PYTHON_IMAGE"],
            "python3",
            "-c",
            PROBE,
            "gateway:8000",
            *targets,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert probe[0] == "gateway:8000 open", probe
    assert all(" closed " in line for line in probe[1:]) and len(probe) == len(targets) + 1, probe


def test_every_service_runs_as_a_non_root_user(deployed: Deployed) -> None:
    for service in SERVICES:
        uid = deployed.compose.run("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid.isdigit() and uid != "0", (service, uid)


def test_a_2000_row_job_with_a_compared_variant(deployed: Deployed, texts: list[str]) -> None:
    _check_job(deployed, _submit(deployed, texts, "plain"), texts, "plain")


def test_a_worker_killed_mid_job_then_started_loses_nothing(deployed: Deployed, texts: list[str]) -> None:
    job = _submit(deployed, texts, "worker-killed", start=1)
    deployed.gateway.wait_rows(job, 300)
    deployed.compose.run("kill", "-s", "SIGKILL", "worker")
    deployed.compose.run("start", "worker")
    _check_job(deployed, job, texts, "worker-killed", start=1)


def test_redis_restarted_mid_job_loses_nothing(deployed: Deployed, texts: list[str]) -> None:
    job = _submit(deployed, texts, "redis-restarted", start=2)
    deployed.gateway.wait_rows(job, 300)
    deployed.compose.run("restart", "redis")
    _check_job(deployed, job, texts, "redis-restarted", start=2)


def test_three_workers_share_a_job(deployed: Deployed, texts: list[str]) -> None:
    deployed.compose.up_wait("--scale", "worker=3")
    assert len(deployed.compose.containers("worker")) == 3
    job = _submit(deployed, texts, "three-workers", start=3)
    _check_job(deployed, job, texts, "three-workers", start=3)
    logs = deployed.compose.logs("worker")
    writers = {
        line.split("|", 1)[0].strip() for line in logs.splitlines() if f"job {job['id']}: chunk" in line
    }
    assert len(writers) > 1, writers


def test_the_model_stopped_gives_503_and_the_gateway_recovers(deployed: Deployed) -> None:
    info = deployed.gateway.get("/v1/pipeline").json()
    example = next(iter(info["examples"].values()))
    deployed.compose.run("stop", "model")
    answer = deployed.gateway.post("/v1/predict", json={"inputs": example})
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert int(answer.headers["retry-after"]) > 0
    assert "model service" in answer.json()["detail"]
    began = time.monotonic()
    deployed.compose.run("start", "model")
    while time.monotonic() - began < 180:
        if deployed.gateway.post("/v1/predict", json={"inputs": example}).status_code == 200:
            break
        time.sleep(1)
    else:
        raise AssertionError("the gateway did not recover within 3 minutes of the model's start")
    record("model start to gateway answering seconds", round(time.monotonic() - began, 1))


def test_scale_out_with_storage_on_s3(deployed: Deployed, texts: list[str]) -> None:
    deployed.compose.overrides.append(Path(__file__).parent / "compose.s3.yaml")
    deployed.compose.run("build", "s3", timeout=900)
    deployed.compose.up_wait("--scale", "worker=3")
    env = deployed.compose.run("exec", "-T", "worker", "printenv", "STORAGE_URL").stdout.strip()
    assert env == "s3://onepipe-jobs/jobs"
    job = _submit(deployed, texts, "s3-three-workers", start=4)
    _check_job(deployed, job, texts, "s3-three-workers", start=4)
    listed = deployed.compose.run(
        "exec",
        "-T",
        "s3",
        "python",
        "-c",
        "import urllib.request as r; print(r.urlopen('http://127.0.0.1:5000/onepipe-jobs?prefix=jobs/').read().decode())",
    ).stdout
    assert f"jobs/jobs/{job['id']}/report.jsonl" in listed, listed[:2000]


def test_down_v_leaves_no_container_network_or_volume(deployed: Deployed) -> None:
    deployed.compose.down()
    assert deployed.compose.leftovers() == {"container": [], "network": [], "volume": []}
