"""Issue 21, a demo that cannot mislead: the report of a study like the demo's (students that
are no paper model, a local judge, most tuned answers identical to the base ones, one text cut
off by max_tokens) read in headless Chromium at 1280 px."""
from __future__ import annotations


import pytest
from synthetic import CUT, FOUR_LINES, make_paired_study

pytestmark = pytest.mark.browser      # headless_chromium skips, saying why, without Chromium


@pytest.fixture(scope="module")
def page(tmp_path_factory, headless_chromium):
    from skillmix_utils.present.figures import write_figures
    from skillmix_utils.present.report import build_report

    out = make_paired_study(tmp_path_factory.mktemp("study"))
    write_figures(out / "eval" / "tables", out / "figures")
    path = build_report(out)
    with headless_chromium() as drv:
        drv.set_window_size(1280, 1000)
        drv.get(path.resolve().as_uri())
        yield drv


def _text(drv, css: str) -> str:
    from selenium.webdriver.common.by import By

    return drv.find_element(By.CSS_SELECTOR, css).text


def test_base_and_tuned_side_by_side_with_identical_count_gain_interval_and_caveat(page):
    from selenium.webdriver.common.by import By

    assert page.execute_script("return document.documentElement.scrollWidth") <= 1280
    summary = page.find_element(By.CSS_SELECTOR, "#paired .paired-summary")
    assert _text(page, "#paired .paired-summary .identical") == "4 of 5"
    assert _text(page, "#paired .paired-summary .gain") == "+0.200"
    low, high = _text(page, "#paired .paired-summary .interval").strip("[]").split(", ")
    assert float(low) <= 0.0 < 0.2 < float(high)        # one text of five: 0 is not excluded
    assert summary.is_displayed()
    says = _text(page, "#paired .says")
    assert "4 of 5 tuned answers are byte-identical" in says
    assert "cannot tell no gain" in says and "not the paper's GPT-4" in says
    assert "In 1 of 5 pairs max_tokens cut a text off" in says
    rows = page.find_elements(By.CSS_SELECTOR, "#paired table.pairs tr.differ")
    assert len(rows) == 1 and CUT in rows[0].text and "cut off by max_tokens" in rows[0].text


def test_the_papers_numbers_for_the_same_setting_and_k_whatever_the_student(page):
    marks = _text(page, "#paired .paper")
    assert "paper (LLaMA-2-13B-Chat): 0.04 base → 0.37" in marks
    assert "paper (Mistral-7B-Instruct-v0.2): 0.08 base → 0.49" in marks


def test_terms_are_defined_where_they_are_used_and_figures_captioned_in_words(page):
    from selenium.webdriver.common.by import By

    paired_terms = _text(page, "#paired-definitions")
    assert "held_out (setting)" in paired_terms and "never seen in the fine-tuning texts" in paired_terms
    assert "k + 3 points" in paired_terms
    terms = _text(page, "#definitions")
    assert all(t in terms for t in ("train (setting)", "all (setting)", "Ratio of Full Marks",
                                    "Skills Fraction", "Ratio of All Skills"))
    captions = [c.text for c in page.find_elements(By.CSS_SELECTOR, "#figures figcaption")]
    fig2 = next(c for c in captions if c.startswith("Figure 2: Ratio of Full Marks"))
    assert "paper's numbers" in fig2 and "Wilson interval where the SEM is 0" in fig2
    assert _text(page, ".data-card table")          # the data card is read, not JSON
    assert "settings › lora › r" in _text(page, ".train-summary")
    assert "{" not in _text(page, "#costs") + _text(page, "#training")


def test_each_text_shows_its_transcript_finish_reasons_and_grader_prompt(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert "1 text cut off by max_tokens" in _text(page, "#sample-notes")
    assert "does not split on line breaks" in _text(page, "#sample-notes")
    Select(page.find_element(By.ID, "filter-student")).select_by_value("smol-tuned")
    Select(page.find_element(By.ID, "sort")).select_by_value("score-desc")
    cards = page.find_elements(By.CSS_SELECTOR, "#samples .sample")
    cut = next(c for c in cards if CUT in c.find_element(By.CSS_SELECTOR, ".answer").text)
    assert "cut off by max_tokens" in cut.find_element(By.CSS_SELECTOR, ".head").text
    assert "finish: turn 1 stop, turn 2 length" in cut.text
    cut.find_element(By.CSS_SELECTOR, "details.transcript summary").click()
    transcript = cut.find_element(By.CSS_SELECTOR, "details.transcript").text
    assert "Greetings! Write about" in transcript and "Could you please look over" in transcript
    assert "assistant (reply 2, finish: length) cut off by max_tokens" in transcript
    cut.find_element(By.CSS_SELECTOR, "details.grading summary").click()
    assert "Does this text pertain to" in _text(cut, "pre.grader-prompt")
    assert "p_yes" in _text(cut, "pre.grader-reply")
    lines = next(c for c in cards if FOUR_LINES.split("\n")[0] in c.text)
    assert "sentences: 1 (the reference counter does not split on line breaks)" in lines.text
    page.save_screenshot("/tmp/21a-browser-cards.png")


def test_an_empty_answer_is_shown_losing_sense_and_length_by_rule(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(page.find_element(By.ID, "filter-student")).select_by_value("")
    Select(page.find_element(By.ID, "sort")).select_by_value("")
    empty = [c for c in page.find_elements(By.CSS_SELECTOR, "#samples .sample")
             if not c.find_element(By.CSS_SELECTOR, ".answer").text.strip()]
    assert len(empty) == 2
    vote = empty[0].find_element(By.CSS_SELECTOR, ".vote").text
    assert vote.count("rule: empty text") == 2 and "score 0.67" in vote
