"""Headless Chromium opens the report page and the live dashboard: they render, with no JavaScript errors.

Needs Debian's ``chromium`` and ``chromium-driver``; skips cleanly without them. Screenshots go to the test's
tmp dir, or to ``$TUNE_SCREENSHOT_DIR`` when set (CI can keep them as artifacts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers import free_port, make_study, start_dashboard, stop, write_ensemble

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
CHROMEDRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).exists()),
                    None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2000"]


@pytest.fixture
def browser(tmp_path_factory):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless chromium not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("TUNE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def severe_errors(driver) -> list[str]:
    """SEVERE browser-log entries, minus missing favicons."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def wait_for(driver, script: str, timeout: float = 90.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: d.execute_script(script))


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a blank page compresses far smaller


def test_report_renders_offline_without_js_errors(browser, tmp_path):
    storage = f"sqlite:///{tmp_path / 'toy.db'}"
    study = make_study(storage, n_trials=14)
    write_ensemble(tmp_path / "ensemble")
    from yieldtune.report.page import build_report

    page = build_report(study, tmp_path / "report", tmp_path / "ensemble")
    browser.get(page.as_uri())
    n_plots = wait_for(browser, "const n = document.querySelectorAll('.js-plotly-plot').length;"
                                "return n >= 12 ? n : false;")
    assert n_plots == 12  # 8 study figures, 4 of the ensemble (applicability of the test set included)
    # every plot drew SVG, and the page fetched nothing over the network
    assert browser.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length") >= 12
    remote = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('file:'))")
    assert remote == []
    assert browser.execute_script("return typeof Plotly") == "object"
    assert severe_errors(browser) == []
    shot = screenshot_path(tmp_path, "report.png")
    browser.save_screenshot(str(shot))
    check_png(shot)


def test_dashboard_renders_study_without_js_errors(browser, tmp_path):
    storage = f"sqlite:///{tmp_path / 'dash.db'}"
    study = make_study(storage, n_trials=8)
    port = free_port()
    proc = start_dashboard(["toy", "--storage", storage, "--artifacts", str(tmp_path / "artifacts")], port)
    try:
        browser.get(f"http://127.0.0.1:{port}/dashboard")
        # the single-page app fills #dashboard with the study list, naming our study
        wait_for(browser, "const r = document.getElementById('dashboard');"
                          "return r && r.innerText.includes('toy');")
        shot = screenshot_path(tmp_path, "dashboard-studies.png")
        browser.save_screenshot(str(shot))
        check_png(shot)
        # the study page draws its plots (plotly) from the API
        browser.get(f"http://127.0.0.1:{port}/dashboard/studies/{study._study_id}")
        wait_for(browser, "return document.querySelectorAll('.js-plotly-plot, .main-svg').length > 0")
        wait_for(browser, "return document.getElementById('dashboard').innerText.includes('toy')")
        shot = screenshot_path(tmp_path, "dashboard-study.png")
        browser.save_screenshot(str(shot))
        check_png(shot)
        assert severe_errors(browser) == []
    finally:
        stop(proc)
