"""The HTML report in headless Chromium: tables and the sample browser render, filters filter."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from synthetic import make_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver "
                              "(apt-get install -y chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    from skillmix_utils.figures import write_figures
    from skillmix_utils.report import build_report

    out = make_study(tmp_path_factory.mktemp("study"))
    write_figures(out / "eval" / "tables", out / "figures")
    return build_report(out)


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _visible_cards(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#samples .sample")


def test_report_renders_and_filters(driver, report_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(report_path.resolve().as_uri())
    assert "skillmix report" in driver.title
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"] \
        if hasattr(driver, "get_log") else []
    assert not errors, errors

    tables = driver.find_elements(By.CSS_SELECTOR, "table.metrics")
    assert len(tables) >= 3
    first_rows = tables[0].find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(first_rows) == 4                      # 2 students x 2 settings
    assert "±" in first_rows[0].text
    images = driver.find_elements(By.CSS_SELECTOR, "#figures img")
    assert images and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)

    total = len(_visible_cards(driver))
    assert total == 24                               # 2 students x 2 settings x 3 k x 2 texts
    count = driver.find_element(By.ID, "sample-count").text
    assert count.startswith("24 of 24")

    Select(driver.find_element(By.ID, "filter-k")).select_by_value("3")
    cards = _visible_cards(driver)
    assert len(cards) == 8
    assert all("k=3" in c.find_element(By.CSS_SELECTOR, ".head").text for c in cards)

    Select(driver.find_element(By.ID, "filter-setting")).select_by_value("held_out")
    Select(driver.find_element(By.ID, "filter-student")).select_by_value("llama-2-13b-chat-ft")
    cards = _visible_cards(driver)
    assert len(cards) == 2
    Select(driver.find_element(By.ID, "filter-skill")).select_by_value("metaphor")
    cards = _visible_cards(driver)
    assert 0 < len(cards) <= 2
    assert all("metaphor" in c.text for c in cards)

    # A grader's reply and points open from the card; user text is shown as text, not HTML.
    card = cards[0]
    summary = card.find_element(By.CSS_SELECTOR, "details summary")
    summary.click()
    assert "Here's the grading table" in card.find_element(By.CSS_SELECTOR, "details pre").text
    assert "<b>bold</b>" in card.find_element(By.CSS_SELECTOR, ".answer").text

    Select(driver.find_element(By.ID, "filter-k")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-setting")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-student")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-skill")).select_by_value("")
    assert len(_visible_cards(driver)) == total
