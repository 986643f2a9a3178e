"""The HTML report in headless Chromium: tables and the sample browser render, filters filter."""
from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import make_study

pytestmark = pytest.mark.browser      # headless_chromium skips, saying why, without Chromium


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    from skillmix_utils.present.figures import write_figures
    from skillmix_utils.present.report import build_report

    out = make_study(tmp_path_factory.mktemp("study"))
    write_figures(out / "eval" / "tables", out / "figures")
    return build_report(out)


@pytest.fixture(scope="module")
def driver(headless_chromium):
    with headless_chromium() as drv:
        yield drv


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
    summary = card.find_element(By.CSS_SELECTOR, "details.grading summary")
    summary.click()
    assert "Here's the grading table" in card.find_element(By.CSS_SELECTOR, "details.grading pre.grader-reply").text
    assert "<b>bold</b>" in card.find_element(By.CSS_SELECTOR, ".answer").text

    Select(driver.find_element(By.ID, "filter-k")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-setting")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-student")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-skill")).select_by_value("")
    assert len(_visible_cards(driver)) == total


def _select(driver, id_, value):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, id_)).select_by_value(value)


def test_report_explains_itself_and_filters_by_score_parse_and_disagreement(driver, report_path):
    from selenium.webdriver.common.by import By

    driver.get(report_path.resolve().as_uri())
    # Definitions beside the tables, n in every cell, SEM and n under Figure 2.
    defs = driver.find_element(By.ID, "definitions").text
    assert "Ratio of Full Marks" in defs and "standard error" in defs
    first = driver.find_elements(By.CSS_SELECTOR, "table.metrics")[0]
    assert "(n=20)" in first.find_elements(By.CSS_SELECTOR, "tbody tr")[0].text
    captions = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#figures figcaption")]
    assert any("±1 SEM" in c and "n = 20" in c for c in captions), captions
    assert "fails most" in driver.find_element(By.ID, "analysis").text
    assert "git commit" in driver.find_element(By.ID, "run").text
    assert "rule: names the skill" in driver.find_element(By.ID, "failures").text

    # Score: text 0 of each cell has full marks (12), text 1 does not (the names rule, 11 with
    # a readable vote), the held-out k = 3 text whose gpt-4 grading failed to parse has none.
    _select(driver, "filter-score", "full")
    assert len(_visible_cards(driver)) == 11
    _select(driver, "filter-score", "partial")
    cards = _visible_cards(driver)
    assert len(cards) == 12
    vote = cards[0].find_element(By.CSS_SELECTOR, ".vote").text
    assert "rule: names the skill" in vote and "rule: length" in vote and "grader" in vote
    _select(driver, "filter-score", "")

    _select(driver, "filter-parse", "parse_failed")
    cards = _visible_cards(driver)
    assert len(cards) == 1 and "k=3" in cards[0].text and "held_out" in cards[0].text
    _select(driver, "filter-parse", "")

    _select(driver, "filter-disagree", "yes")
    cards = _visible_cards(driver)
    assert len(cards) == 12 and all("disagree" in c.text for c in cards)
    _select(driver, "filter-disagree", "")

    # Sorting by score puts the lowest first.
    _select(driver, "sort", "score-asc")
    scores = driver.execute_script(
        "return Array.from(document.querySelectorAll('#samples .sample .vote div:first-child'))"
        ".map(function (d) { var m = d.textContent.match(/score ([0-9.]+)/); return m ? +m[1] : null; })"
        ".filter(function (x) { return x !== null; });")
    firsts = scores[::2]                      # each card shows a vote per grader; first grader's
    assert firsts == sorted(firsts) and firsts[0] < 1.0
    assert "Not GPT-4" not in driver.page_source   # API graders: no local-judge banner
