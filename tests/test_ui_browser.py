"""The UI in a real headless Chromium (Debian's, with its chromedriver), served by `streamlit run`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from review_triage.pipeline import pipeline as example
from tests.processes import OUTPUT, ServiceProcess, free_port

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not look for drivers online: Debian's are here
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# flags a root, offline machine needs (no sandbox for root; no calls home, which this network refuses)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,2600",
]


@pytest.fixture(scope="module")
def ui(example_service: ServiceProcess) -> Iterator[ServiceProcess]:
    port = free_port()
    process = ServiceProcess(
        "ui",
        ["uv", "run", "--frozen", "--no-sync", "streamlit", "run", "services/ui/src/ui_service/app.py"],
        {
            "MODEL_URL": example_service.url,
            "STREAMLIT_SERVER_PORT": str(port),
            "STREAMLIT_SERVER_HEADLESS": "true",
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        },
        port,
    )
    process.start()
    process.wait_ready("/_stcore/health")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:  # fail, not skip: a machine without a browser must not look like one that passed
        pytest.fail(
            f"The UI's browser test needs Chromium and its chromedriver ({' and '.join(missing)} missing): "
            "install them (Debian: apt-get install chromium chromium-driver) and run it again.",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


# the browser is asked for first: a missing Chromium fails before the UI and model service start
def test_explore_in_a_browser_shows_the_output_and_every_step(
    browser: webdriver.Chrome, ui: ServiceProcess
) -> None:
    browser.get(ui.url)
    wait = WebDriverWait(browser, 90)
    text_box = wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "textarea")))
    text_box.send_keys(example.examples["rotten review"].text)
    text_box.send_keys(Keys.CONTROL, Keys.ENTER)  # commit the value, as a person leaving the field would
    run = wait.until(expected_conditions.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Run']]")))
    run.click()
    steps = example.describe("").steps
    last = f"{len(steps)}. {steps[-1].name}"
    wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), last))
    body = browser.find_element(By.TAG_NAME, "body").text
    OUTPUT.mkdir(exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "ui-explore.png"))
    assert "Output" in body and "rotten" in body
    for number, step in enumerate(steps, start=1):
        assert f"{number}. {step.name}" in body, step.name
    assert (OUTPUT / "ui-explore.png").stat().st_size > 10_000
