"""The report as a person sees it: opened in headless Chromium, every figure drawn, the trials table sortable.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium`` package (the ``test``
extra); skips otherwise. Set ``AUTODNN_SCREENSHOT_DIR`` to keep the full-page screenshot.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_report import make_study

from autodnn.report import write_report

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH = 1400


def _missing() -> str | None:
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install 'autodnn[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install chromium)"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} is absent (apt-get install chromium-driver)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium, with its console log kept."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", f"--window-size={WIDTH},1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _column(driver: Any, header: str) -> list[str]:
    return driver.execute_script(
        """const table = document.querySelector('table.trials');
           const col = Array.from(table.tHead.rows[0].cells).findIndex(th => th.textContent.trim() === arguments[0]);
           return Array.from(table.tBodies[0].rows, r => r.cells[col].getAttribute('data-v'));""", header)


def _click(driver: Any, element: Any) -> None:
    # The page scrolls smoothly; a click during the animation would land on whatever passes under it.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def _screenshot(driver: Any, path: Path) -> None:
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": size["height"], "scale": 1},
    })
    path.write_bytes(base64.b64decode(shot["data"]))


def test_report_draws_every_figure_and_sorts_the_trials(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    study = make_study("cifar-demo", storage=url, dataset="cifar10", n_search=9)
    page = write_report(["cifar-demo"], storage=url, output=tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    figures = json.loads(html.split('id="autodnn-figures">', 1)[1].split("</script>", 1)[0])
    assert len(figures) == 6  # learning curves, LR finder, history, importances, parallel, intermediate

    browser.get(page.as_uri())
    WebDriverWait(browser, 120).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-figures-drawn') === 'true'"))
    divs = browser.find_elements(By.CSS_SELECTOR, "[data-figure]")
    drawn = browser.find_elements(By.CSS_SELECTOR, "[data-figure] .plot-container svg.main-svg:first-child")
    assert len(divs) == len(figures) == len(drawn)
    traces = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-figure]'), d => (d.data || []).length)")
    assert all(n > 0 for n in traces), traces

    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe

    header = browser.find_element(By.XPATH, "//table[contains(@class,'trials')]//th[normalize-space()='value']")
    _click(browser, header)
    values = _column(browser, "value")
    assert len(values) == len(study.trials)
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and values[len(numbers):] == [""] * (len(values) - len(numbers))
    assert header.get_attribute("aria-sort") == "ascending"
    _click(browser, header)
    numbers = [float(v) for v in _column(browser, "value") if v]
    assert numbers == sorted(numbers, reverse=True)
    _click(browser, browser.find_element(By.XPATH, "//table[contains(@class,'trials')]//th[normalize-space()='#']"))
    assert [int(v) for v in _column(browser, "#")] == sorted(t.number for t in study.trials)

    browser.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")  # the sticky nav follows the scroll
    shot = tmp_path / "report.png"
    _screenshot(browser, shot)
    assert shot.stat().st_size > 50_000
    if os.environ.get("AUTODNN_SCREENSHOT_DIR"):
        target = Path(os.environ["AUTODNN_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "report.png")
