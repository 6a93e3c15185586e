"""The UI in a real headless Chromium (Debian's, with its chromedriver), served by `streamlit run`.

Every page is loaded and used as a person would, and saved as a screenshot under test-output/
(ui-explore.png, ui-steps.png, ui-compare.png, ui-batch-jobs.png, ui-cases.png, ui-cases-wrong.png) to
look at.
The UI runs with only its port set: its viewer settings come from the config.toml it ships.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from batch_worker.reports.html import POLICY as REPORT_POLICY
from onepipe_harness.processes import OUTPUT, RedisServer, ServiceProcess, free_port
from review_triage.pipeline import pipeline as example
from tests.browsing import (
    body_text,
    button,
    choose,
    chromium,
    click,
    open_page,
    screenshot,
    selectbox,
    settled,
    shows,
    wait_for,
)
from tests.stacks import KEYS, Stack, as_key, stack
from ui_service import wording

STEPS = example.describe("").steps


@pytest.fixture(scope="module")
def browser_stack(
    example_service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack(
        example_service.url, tmp_path_factory.mktemp("ui-browser"), redis=redis_server.url(9)
    ) as started:
        yield started


@pytest.fixture(scope="module")
def ui(browser_stack: Stack) -> Iterator[ServiceProcess]:
    port = free_port()
    process = ServiceProcess(
        "ui",
        ["uv", "run", "--frozen", "--no-sync", "streamlit", "run", "services/ui/src/ui_service/app.py"],
        {
            "MODEL_URL": browser_stack.model_url,
            "GATEWAY_URL": browser_stack.gateway.url,
            "UI_API_KEY": KEYS["reviewer"],
            "STREAMLIT_SERVER_PORT": str(port),
        },
        port,
    )
    process.start()
    process.wait_ready("/_stcore/health")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium("The UI's browser test") as driver:
        yield driver


def _progress_text(browser: webdriver.Chrome) -> str:
    bars = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stProgress']")
    return str(bars[0].text) if bars else ""


def _no_trouble(browser: webdriver.Chrome) -> None:
    """For a viewer: no Deploy button or developer menu, no traceback, no exception box."""
    body = body_text(browser)
    assert "Deploy" not in body and not browser.find_elements(
        By.CSS_SELECTOR, "[data-testid='stAppDeployButton']"
    )
    assert "Traceback" not in body and not browser.find_elements(
        By.CSS_SELECTOR, "[data-testid='stException']"
    )


# the browser is asked for first: a missing Chromium fails before the UI and its services start
def test_explore_in_a_browser_shows_the_verdict_then_every_step(
    browser: webdriver.Chrome, ui: ServiceProcess
) -> None:
    browser.get(ui.url)
    wait_for(browser).until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "textarea")))
    _no_trouble(browser)
    click(browser, button("rotten review"))  # an example card: fills the form and runs it
    shows(browser, "Details")
    body = body_text(browser)
    assert "Label\nrotten" in body and "no review needed" in body
    assert "Kind confidence" in body and "kind_confidence" not in body  # names in words
    _no_trouble(browser)
    screenshot(browser, "ui-explore.png")
    click(browser, "//div[@role='tab'][.//p[normalize-space()='Steps']]")
    last = f"{len(STEPS)}. {wording.readable(STEPS[-1].name)}"
    shows(browser, last)
    body = body_text(browser)
    for number, step in enumerate(STEPS, start=1):
        assert f"{number}. {wording.readable(step.name)}" in body, step.name
    assert "not needed with these flags" in body and "ms from the start" in body
    screenshot(browser, "ui-steps.png")


def test_compare_in_a_browser_shows_the_two_flag_sets_then_the_summary(
    browser: webdriver.Chrome, ui: ServiceProcess
) -> None:
    browser.get(ui.url)
    open_page(browser, "Compare")
    choose(browser, selectbox(browser, "Classifier", index=1), "minilm")
    shows(browser, "B differs from A in: Classifier minilm")
    click(browser, button("rotten review"))
    shows(browser, "Both answers in full")
    body = body_text(browser)
    assert "Verdict " in body and "Confidence (B)" in body and "4. Kind: differs" in body
    # top to bottom: the flag sets, the button, the summary, what differs
    assert body.index("Flag set B") < body.index("Verdict ") < body.index("4. Kind: differs")
    _no_trouble(browser)
    screenshot(browser, "ui-compare.png")


def _labelled_file() -> bytes:
    rows = [
        {"review": item.text, "category": "plot" if name.startswith("plot") else name.split()[0]}
        for name, item in example.examples.items()
    ] * 5
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["review", "category"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_batch_jobs_in_a_browser_follow_a_job_and_reopen_its_report(
    browser: webdriver.Chrome, ui: ServiceProcess, browser_stack: Stack
) -> None:
    content = _labelled_file()
    first = browser_stack.submit(
        "labelled.csv", content, mapping={"text": "review"}, truth={"label": "category"}
    ).json()
    second = browser_stack.submit(
        "labelled.csv",
        content,
        mapping={"text": "review"},
        truth={"label": "category"},
        flags={"classifier": "minilm"},
    ).json()
    for job in (first, second):
        assert browser_stack.wait(job["id"])["state"] == "succeeded"
    # a long job, followed live (its progress refreshes on its own), then cancelled from the page
    rows = "".join(f"A film numbered {n} and a long enough review of it.\n" for n in range(30000))
    long = browser_stack.submit("long.csv", ("text\n" + rows).encode()).json()
    browser.get(ui.url)
    open_page(browser, "Batch jobs")
    shows(browser, "Compare two jobs")
    choose(browser, selectbox(browser, "Open a job"), long["id"])
    readings = []
    for _ in range(3):
        wait_for(browser).until(lambda driver: "rows/s" in _progress_text(driver))
        readings.append(_progress_text(browser))
        time.sleep(2)
    assert len(set(readings)) > 1, readings  # no click between them: the page refreshed itself
    click(browser, button("Cancel"))
    shows(browser, f"Job {long['id']} was cancelled by reviewer after ")
    assert "Resume" in body_text(browser)
    choose(browser, selectbox(browser, "Open a job"), first["id"])
    shows(browser, f"Job {first['id']} succeeded")
    click(browser, button("Compare"))
    shows(browser, "Rows changed")
    body = body_text(browser)
    assert "Download .csv" in body and "label: accuracy under minilm" in body
    _no_trouble(browser)
    screenshot(browser, "ui-batch-jobs.png")


def test_cases_in_a_browser_show_the_library_on_the_champion_then_what_people_reported(
    browser: webdriver.Chrome, ui: ServiceProcess, browser_stack: Stack
) -> None:
    case = {
        "input": {"text": "Not bad at all."},
        "flags": {},
        "expected": {"label": "fresh"},
        "note": "a double negative reads as praise",
    }
    kept = httpx.post(
        f"{browser_stack.gateway.url}/v1/cases", json=case, headers=as_key("reviewer"), timeout=60
    )
    assert kept.status_code == 201, kept.text
    browser.get(ui.url)
    open_page(browser, "Cases")
    shows(browser, "Reported cases waiting")
    body = body_text(browser)
    assert "The champion (" in body and "of 53 cases right" in body and "Showing 53 of 53 cases" in body
    _no_trouble(browser)
    screenshot(browser, "ui-cases.png")
    click(browser, "//label[.//p[starts-with(normalize-space(), 'Wrong (')]]")  # the wrong cases alone
    wait_for(browser).until(lambda driver: "Showing 53 of 53" not in body_text(driver))
    settled(browser)
    shown = re.search(r"Showing (\d+) of 53 cases", body_text(browser))
    assert shown and 0 < int(shown[1]) < 53 and f"Wrong ({shown[1]})" in body_text(browser)
    _no_trouble(browser)
    screenshot(browser, "ui-cases-wrong.png")


def _console_trouble(browser: webdriver.Chrome) -> list[str]:
    """What the page's console said of refused content (a policy violation) or errors."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")  # type: ignore[no-untyped-call]
        if "Content Security Policy" in entry["message"] or entry["level"] == "SEVERE"
    ]


def test_a_report_and_a_comparison_run_under_their_own_policy_in_a_browser(
    browser: webdriver.Chrome, browser_stack: Stack
) -> None:
    """Served by the gateway as a reviewer opens them: the report's own filter runs under its policy,
    nothing is refused, and nothing else could run."""
    content = _labelled_file()
    first = browser_stack.submit("policy.csv", content, mapping={"text": "review"}).json()
    second = browser_stack.submit(
        "policy.csv", content, mapping={"text": "review"}, flags={"classifier": "minilm"}
    ).json()
    done = [browser_stack.wait(job["id"]) for job in (first, second)]
    assert [job["state"] for job in done] == ["succeeded", "succeeded"]
    report_url = done[0]["reports"]["html"]
    compare_url = f"{browser_stack.gateway.url}/v1/jobs/{first['id']}/compare/{second['id']}.html"
    for url in (report_url, compare_url):
        answer = httpx.get(url, headers=as_key("reviewer"), timeout=60)
        policy = answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "'sha256-" in policy, policy
        if url == report_url:  # the policy the worker wrote the report for, recorded with the job
            assert policy == f"{REPORT_POLICY}; frame-ancestors 'none'"
    # the browser sends the key as the UI's link would not: set on every request for this test
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": as_key("reviewer")})
    try:
        _console_trouble(browser)  # read, so what earlier pages said is not this page's
        browser.get(report_url)
        form = wait_for(browser).until(
            expected_conditions.visibility_of_element_located((By.ID, "review-filter"))
        )
        count = browser.find_element(By.ID, "review-count").text
        shown, total = int(count.split()[0]), int(count.split()[2])
        assert shown == total > 0, count  # the script ran: it shows the form and counts the rows
        form.find_element(By.ID, "review-text").send_keys("no such words anywhere")
        wait_for(browser).until(
            lambda driver: driver.find_element(By.ID, "review-count").text.startswith(f"0 of {total}")
        )
        assert _console_trouble(browser) == []
        OUTPUT.mkdir(exist_ok=True)
        browser.save_screenshot(str(OUTPUT / "report-under-policy.png"))
        browser.get(compare_url)
        wait_for(browser).until(expected_conditions.presence_of_element_located((By.TAG_NAME, "table")))
        # its own style applied: not the browser's default serif
        font = browser.execute_script("return getComputedStyle(document.body).fontFamily")
        assert "system-ui" in font, font
        assert _console_trouble(browser) == []
        browser.save_screenshot(str(OUTPUT / "comparison-under-policy.png"))
        # the comparison page leads with the decisions, each job named by what differs
        headline = browser.find_element(By.CLASS_NAME, "headline").text
        assert headline.startswith(("Label changed on", "Label the same on all", "No decision changed")), (
            headline
        )
        assert "What changed from tfidf to minilm" in body_text(browser)
        browser.find_element(By.TAG_NAME, "body").screenshot(str(OUTPUT / "compare-jobs-page.png"))
        # a job compared under a second flag set: its report's comparison section, named the same way
        compared = browser_stack.submit(
            "policy.csv",
            content,
            mapping={"text": "review"},
            truth={"label": "category"},
            compare_flags={"classifier": "minilm"},
        ).json()
        browser.get(browser_stack.wait(compared["id"])["reports"]["html"])
        section = wait_for(browser).until(
            expected_conditions.presence_of_element_located((By.ID, "comparison"))
        )
        assert section.text.startswith("Comparison: tfidf against minilm"), section.text[:80]
        assert _console_trouble(browser) == []
        section.screenshot(str(OUTPUT / "report-comparison.png"))
        browser.find_element(By.ID, "scores").screenshot(str(OUTPUT / "report-scores-compared.png"))
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
