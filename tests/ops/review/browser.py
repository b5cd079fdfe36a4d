"""Headless Chromium for the console's browser tests and the docs' screenshots.

Debian's ``chromium`` driven through Debian's ``chromedriver`` (same build, so their versions
always match) with Selenium; nothing is downloaded at run time (``scripts/install-system-tools.sh``
installs both).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["chromium", "sign_in", "wait_for_text"]


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chromium session, closed on exit."""
    binary = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert binary, "chromium is missing: run `make system-tools` (Debian package chromium)"
    assert driver_path, "chromedriver is missing: run `make system-tools` (chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the suite runs as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver: WebDriver, text: str, timeout: float = 20.0) -> None:
    """Wait until the page's visible text contains ``text``."""
    WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    ).until(
        lambda d: text in (_body_text(d) or ""),
        message=f"{text!r} never showed on {driver.current_url}",
    )


def _body_text(driver: WebDriver) -> str | None:
    """The page's visible text; None while the page is being replaced (a POST's redirect).

    The old body then goes stale: selenium raises StaleElementReferenceException, or Chrome
    answers "Node with given id does not belong to the document" as a plain WebDriverException
    (seen once in CI). Either means: look again.
    """
    try:
        return str(driver.find_element(By.TAG_NAME, "body").text)
    except WebDriverException as exc:
        if isinstance(
            exc, StaleElementReferenceException
        ) or "does not belong to the document" in str(exc):
            return None
        raise


def sign_in(driver: WebDriver, base_url: str, name: str, password: str) -> None:
    """Open the queue; sign in on the page it redirects to; land on the queue."""
    driver.get(f"{base_url}/queue")
    if "/login" not in driver.current_url:
        return  # this browser is signed in already
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
    WebDriverWait(driver, 20, poll_frequency=0.05).until(
        lambda d: d.current_url.endswith("/queue"), message="sign-in did not reach the queue"
    )
