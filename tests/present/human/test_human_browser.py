"""The grading page in headless Chromium: a scripted rater grades with the keyboard, reloads,
resumes, and the saved file holds exactly what was given; a failed save stays shown until the
grade is given again; the rater reads the grader's own definitions and rules."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.present.human import GradeStore, human_items
from skillmix_utils.present.human.access import rater_tokens
from skillmix_utils.present.human.sample import grades_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser, pytest.mark.timeout(120),
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver "
                              "(apt-get install -y chromium chromium-driver)"),
]


@pytest.fixture()
def serving():
    """serve(cfg) -> alice's link (with her token) on a server of this process."""
    from werkzeug.serving import make_server

    from skillmix_utils.present.human.server import create_app

    servers = []

    def serve(cfg) -> str:
        srv = make_server("127.0.0.1", 0, create_app(cfg, "alice"), threaded=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_port}/rate/alice?token={rater_tokens(cfg)['alice']}"

    yield serve
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture()
def server(study_config, serving):
    cfg = load_study_config(study_config)
    return cfg, serving(cfg)


@pytest.fixture()
def driver(headless_chromium):
    with headless_chromium() as drv:
        yield drv


def _keys(driver, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    for key in keys:
        ActionChains(driver).send_keys(key).perform()


def _saved(driver) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(
        lambda d: d.find_element("id", "status").text == "All grades saved")


def _state(driver):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#rubric li")
    return (driver.find_element(By.ID, "text").text, driver.find_element(By.ID, "position").text,
            [("yes" if "yes" in r.get_attribute("class").split() else
              "no" if "no" in r.get_attribute("class").split() else "") for r in rows],
            [i for i, r in enumerate(rows) if "focus" in r.get_attribute("class").split()])


def test_keyboard_grading_reload_and_resume(server, driver):
    cfg, link = server
    items = {it.text: it for it in human_items(cfg)}
    driver.get(link)                                       # alice's link: her page
    assert "/rate/alice?token=" in driver.current_url
    source = driver.page_source
    for hidden in ("student-alpha", "student-omega", "held_out", "SECRET", "llm-judge", "eval/"):
        assert hidden not in source

    text1, pos, marks, focus = _state(driver)
    assert pos == "text 1 of 6" and focus == [0] and set(marks) == {""}
    item1 = items[text1]
    n1 = len(item1.criteria)
    answers1 = ("yn" * n1)[:n1]                            # yes, no, yes, ...
    _keys(driver, answers1)                                # last key moves on to text 2
    text2, pos, marks, focus = _state(driver)
    assert text2 != text1 and pos == "text 2 of 6" and focus == [0]
    _keys(driver, "1")                                     # 1 = yes on text 2, criterion 0
    _keys(driver, "j")                                     # skip criterion 1
    _keys(driver, "0")                                     # 0 = no on criterion 2
    _saved(driver)

    store = GradeStore(grades_dir(cfg), "alice")
    given = store.current(list(items.values()))
    assert given[item1.key] == {c: int(a == "y") for c, a in enumerate(answers1)}
    assert given[items[text2].key] == {0: 1, 2: 0}
    assert len(store.lines()) == n1 + 2                    # one line per grade, at once

    driver.refresh()                                       # resume: the first unfinished text
    text, pos, marks, focus = _state(driver)
    assert text == text2 and pos == "text 2 of 6"
    assert marks[:3] == ["yes", "", "no"] and focus == [1]  # first ungraded criterion
    _keys(driver, "h")                                     # back to text 1: its grades shown
    _, _, marks, _ = _state(driver)
    assert marks == ["yes" if a == "y" else "no" for a in answers1]
    _keys(driver, "y")                                     # change of mind: criterion 0 yes again
    _keys(driver, "l")
    n2 = len(items[text2].criteria)
    _keys(driver, "k" * 5 + "j")                           # to criterion 1 (clamped at 0 first)
    _keys(driver, "n" * (n2 - 1))                          # criteria 1.. all no: text 2 complete
    _saved(driver)
    assert driver.find_element("id", "progress").text == "2 complete"
    given = store.current(list(items.values()))
    assert len(given[items[text2].key]) == n2
    assert given[items[text2].key][0] == 1 and given[items[text2].key][2] == 0
    assert len(store.lines()) == n1 + 2 + 1 + (n2 - 1)

    driver.refresh()
    _, pos, _, _ = _state(driver)
    assert pos == "text 3 of 6"                            # two finished: resume at the third


def test_a_failed_save_stays_shown_until_the_grade_is_given_again(server, driver, monkeypatch):
    from selenium.webdriver.support.ui import WebDriverWait

    cfg, link = server
    real, calls = GradeStore.append, []

    def flaky(self, item, criterion, value):              # the disk says no, once
        calls.append(criterion)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(self, item, criterion, value)

    monkeypatch.setattr(GradeStore, "append", flaky)
    driver.get(link)
    text, _, _, focus = _state(driver)
    assert focus == [0]
    _keys(driver, "y")                                     # not saved
    WebDriverWait(driver, 10).until(lambda d: "NOT saved" in d.find_element("id", "status").text)
    assert driver.find_element("id", "status").text.startswith("1 grade(s) NOT saved")
    text_now, _, marks, focus = _state(driver)
    assert text_now == text and focus == [0] and marks[0] == ""     # focus back on it, no mark
    row = driver.find_elements("css selector", "#rubric li")[0]
    assert "unsaved" in row.get_attribute("class").split()
    _keys(driver, "y")                                     # given again: saved this time
    _saved(driver)                                         # the banner is gone
    _, _, marks, focus = _state(driver)
    assert marks[0] == "yes" and focus == [1]
    assert not driver.find_elements("css selector", "#rubric li.unsaved")
    store = GradeStore(grades_dir(cfg), "alice")
    assert [g["criterion"] for g in store.lines()] == [0] and calls == [0, 0]


def test_the_rater_reads_the_graders_definitions_and_rules(study_config, serving, driver):
    from selenium.webdriver.common.by import By

    cfg = load_study_config(study_config)
    catalog = cfg.catalog.load()
    driver.get(serving(cfg))                               # the GPT-4 table prompt: examples
    text = driver.find_element(By.ID, "text").text
    item = next(it for it in human_items(cfg) if it.text == text)
    skills = driver.find_element(By.ID, "skills").text
    assert all(f"For example, {catalog.skill(s['name']).example}" in skills for s in item.skills)
    assert not driver.find_elements(By.ID, "rules")
    judged = load_study_config(study_config, {"evaluation.graders.0.method": "yes_no_logprob",
                                              "scoring.explicit_name_rule": True})
    judged = judged.model_copy(update={"name": "<b>bold</b> study"})
    driver.get(serving(judged))                            # the yes/no judge: definitions only
    assert driver.title.startswith("skillmix human grading: <b>bold</b> study")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Blind grading: <b>bold</b> study"
    text = driver.find_element(By.ID, "text").text
    item = next(it for it in human_items(judged) if it.text == text)
    skills = driver.find_element(By.ID, "skills").text
    assert "For example" not in skills
    for s in item.skills:
        assert catalog.skill(s["name"]).definition in skills
        assert catalog.skill(s["name"]).example not in skills
    rules = driver.find_element(By.ID, "rules")
    assert rules.is_displayed() and "Explicit-name rule" in rules.text
