"""The grading page in headless Chromium: a scripted rater grades with the keyboard, reloads,
resumes, and the saved file holds exactly what was given."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.present.human import GradeStore, human_items
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
def server(study_config):
    from werkzeug.serving import make_server

    from skillmix_utils.present.human.server import create_app

    cfg = load_study_config(study_config)
    srv = make_server("127.0.0.1", 0, create_app(cfg, rater="alice"), threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield cfg, f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()


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
    cfg, url = server
    items = {it.text: it for it in human_items(cfg)}
    driver.get(url + "/")                                  # --rater alice: straight to her page
    assert driver.current_url.endswith("/rate/alice")
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
