"""A real headless Chromium (Debian's, with its chromedriver) for the tests, and what they do with it on
the UI's Streamlit pages: wait for a run to end, click, pick an option, save a whole-page screenshot."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from onepipe_harness.processes import OUTPUT

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not look for drivers online: Debian's are here
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTH = 1400
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
    "--hide-scrollbars",
    f"--window-size={WIDTH},1000",
]


@contextmanager
def chromium(needed_by: str) -> Iterator[webdriver.Chrome]:
    """A headless Chromium that keeps its console log; fails (never skips) when the browser is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:  # a machine without a browser must not look like one that passed
        pytest.fail(
            f"{needed_by} needs Chromium and its chromedriver ({' and '.join(missing)} missing): "
            "install them (Debian: apt-get install chromium chromium-driver) and run it again.",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, policy refusals too
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    """A wait of up to 90 s: a loaded machine renders slowly."""
    return WebDriverWait(browser, 90)


def click(browser: webdriver.Chrome, xpath: str) -> None:
    """Click the element at `xpath` once it can be clicked."""
    wait_for(browser).until(expected_conditions.element_to_be_clickable((By.XPATH, xpath))).click()


def button(text: str) -> str:
    """The XPath of a Streamlit button by its text."""
    return f"//button[.//p[normalize-space()='{text}']]"


def settled(browser: webdriver.Chrome) -> None:
    """Wait until the app has stopped running (no "Running..." status) and its charts are drawn."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")
        try:
            if not any(element.is_displayed() for element in running):
                break
        except StaleElementReferenceException:  # the widget went between finding and asking: look again
            pass
        time.sleep(0.2)
    time.sleep(1.5)


def shows(browser: webdriver.Chrome, text: str) -> None:
    """Wait until the page shows `text` and the run that shows it has ended."""
    wait_for(browser).until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), text))
    settled(browser)


def body_text(browser: webdriver.Chrome) -> str:
    """The text the page shows."""
    return str(browser.find_element(By.TAG_NAME, "body").text)


def open_page(browser: webdriver.Chrome, name: str) -> None:
    """Pick a page in the UI's sidebar and wait for its heading."""
    click(browser, f"//*[@data-testid='stSidebar']//label[.//p[normalize-space()='{name}']]")
    heading = f"//*[@data-testid='stMain']//h2[contains(normalize-space(), '{name}')]"
    wait_for(browser).until(expected_conditions.presence_of_element_located((By.XPATH, heading)))
    settled(browser)


def choose(browser: webdriver.Chrome, box: WebElement, option: str) -> None:
    """Pick an option of a Streamlit select box, as a person would: open it, click the option."""
    box.find_element(By.CSS_SELECTOR, "[role='combobox']").click()
    click(browser, f"//*[@role='option'][starts-with(normalize-space(), '{option}')]")


def selectbox(browser: webdriver.Chrome, label: str, index: int = 0) -> WebElement:
    """The `index`th select box whose label starts with `label`."""
    xpath = f"//div[@data-testid='stSelectbox'][.//label//p[starts-with(normalize-space(), '{label}')]]"
    wait_for(browser).until(lambda driver: len(driver.find_elements(By.XPATH, xpath)) > index)
    return browser.find_elements(By.XPATH, xpath)[index]


def screenshot(browser: webdriver.Chrome, name: str) -> Path:
    """The whole page, top to bottom, with no tooltip over it, saved as test-output/<name>."""
    settled(browser)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    browser.execute_script(  # from the top of the page, whatever was clicked last
        "window.scrollTo(0, 0); const main = document.querySelector('[data-testid=stMain]');"
        "if (main) { main.scrollTop = 0; }"
    )
    resting = browser.find_element(By.CSS_SELECTOR, "[data-testid='stSidebar'] h1")
    webdriver.ActionChains(browser).move_to_element(resting).perform()  # no tooltip over the page
    height = browser.execute_script(
        "const main = document.querySelector('[data-testid=stMain]');"
        "return Math.max(document.body.scrollHeight, main ? main.scrollHeight : 0);"
    )
    browser.set_window_size(WIDTH, min(max(int(height) + 60, 1000), 7000))
    settled(browser)
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    browser.save_screenshot(str(path))
    browser.set_window_size(WIDTH, 1000)
    assert path.stat().st_size > 10_000
    return path
