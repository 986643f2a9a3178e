"""JupyterLab as the notebooks' home: `make lab`'s command serves them, a notebook runs in the
browser with its outputs on screen and no library noise, and saving it leaves the checkout
clean (the committed notebooks stay output-free, the .py pair unchanged; an .ipynb edited alone
opens from its .py, the source of truth, with no "more recent" dialog, and is derived again on save).

Drives headless Chromium through notebook 01 (seconds of work); about a minute on 2 cores.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
NOTEBOOK = "notebooks/01_skills_and_topics.ipynb"
STRAY = "\n\nAn edit made to the .ipynb alone."
SHOTS = os.environ.get("SKILLMIX_SCREENSHOTS")   # a folder: save what the browser showed


def _has_jupyterlab() -> bool:
    import importlib.util

    return importlib.util.find_spec("jupyterlab") is not None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver "
                              "(apt-get install -y chromium chromium-driver)"),
    pytest.mark.skipif(not _has_jupyterlab(), reason="needs jupyterlab (make setup installs it)"),
    pytest.mark.skipif(not (ROOT / ".git").exists(),
                       reason="needs a git checkout: the test checks that saving keeps it clean"),
]


def _git_status() -> str:
    # The notebooks only: what a save can touch (under `make test`'s workers, other tests may
    # write ignored or temporary files elsewhere in the checkout meanwhile).
    return subprocess.run(["git", "status", "--porcelain", "--", "notebooks"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def _replace(path: Path, data: bytes) -> None:
    """Write a committed notebook whole or not at all: other tests (other xdist workers) may be
    reading it to run it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    """`make lab`'s command (skillmix_utils.lab.lab_command) on a free port, without a token,
    with throw-away JupyterLab settings and workspaces (no state from another session)."""
    from skillmix_utils.lab import lab_command

    tmp = tmp_path_factory.mktemp("lab")
    # No "get notified about Jupyter news?" prompt over the notebook (and no fetch attempt).
    settings = tmp / "settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false"}')
    port = _free_port()
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "PYTHONPATH": str(ROOT)}
    cmd = lab_command(port, ["--no-browser", "--allow-root", "--ServerApp.token=",
                             "--ServerApp.password=", "--ServerApp.ip=127.0.0.1",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"])
    assert cmd[0] == sys.executable and "--ContentsManager.pre_save_hook=skillmix_utils.lab.clean_notebook" in cmd
    assert "$(BIN)/python -m skillmix_utils.lab" in (ROOT / "Makefile").read_text()   # make lab's entry
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/api/status", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, (tmp / "server.log").read_text()
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _kernel_idle(url: str, path: str) -> bool:
    import json

    sessions = json.load(urllib.request.urlopen(url + "/api/sessions", timeout=5))
    return any(s.get("path") == path and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions)


def _shot(driver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def _menu(driver, menu: str, command: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    item = wait.until(ec.element_to_be_clickable(
        (By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][normalize-space()='{menu}']")))
    item.click()
    wait.until(ec.element_to_be_clickable(
        (By.CSS_SELECTOR, f"li.lm-Menu-item[data-command='{command}']"))).click()


def test_notebook_runs_and_saves_clean_in_jupyterlab(lab_url, headless_chromium, notebooks_lock):
    before = _git_status()
    pair = {p: p.read_bytes() for p in (ROOT / NOTEBOOK, (ROOT / NOTEBOOK).with_suffix(".py"))}
    try:
        _run_and_save(lab_url, headless_chromium)
        after = _git_status()
        assert after == before, "saving in JupyterLab changed the checkout:\n" + subprocess.run(
            ["git", "diff", "--stat"], cwd=ROOT, capture_output=True, text=True).stdout
    finally:
        for path, data in pair.items():   # a failed run leaves the checkout as it found it
            if path.read_bytes() != data:
                _replace(path, data)


def _run_and_save(lab_url, headless_chromium) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # The .ipynb edited alone, and newer than its .py: the .py is the source of truth, so
    # JupyterLab opens the notebook from it, without jupytext's "more recent than" refusal.
    ipynb = ROOT / NOTEBOOK
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    source = nb["cells"][0]["source"]
    nb["cells"][0]["source"] = source + [STRAY] if isinstance(source, list) else source + STRAY
    _replace(ipynb, (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    later = ipynb.with_suffix(".py").stat().st_mtime + 60
    os.utime(ipynb, (later, later))
    try:   # what the page will ask: jupytext answers 400 "... is more recent than ..." if it refuses
        urllib.request.urlopen(f"{lab_url}/api/contents/{NOTEBOOK}?type=notebook&content=1", timeout=60)
    except urllib.error.HTTPError as exc:
        pytest.fail(f"JupyterLab refuses the notebook: {exc.read().decode()[:800]}")

    with headless_chromium() as driver:
        driver.set_window_size(1400, 1000)
        driver.get(f"{lab_url}/lab/tree/{NOTEBOOK}")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell, .jp-Dialog"))
        dialogs = driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
        if dialogs:
            _shot(driver, "21c-lab-dialog")
        assert not dialogs, dialogs[0].text[:1000]
        # The notebook's kernel is up (the server says so): Run All clicked before that runs nothing.
        wait.until(lambda d: _kernel_idle(lab_url, NOTEBOOK))
        time.sleep(2)
        dialogs = driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
        assert not dialogs, dialogs[0].text
        assert STRAY.strip() not in driver.find_element(
            By.CSS_SELECTOR, ".jp-Notebook").get_attribute("textContent")
        _menu(driver, "Run", "runmenu:run-all")

        def finished(d):   # every code cell has its execution count: "[7]:", not "[*]:"
            prompts = d.execute_script(
                "return Array.from(document.querySelectorAll("
                "'.jp-CodeCell .jp-InputArea-prompt')).map(e => e.textContent.trim())")
            return prompts and all(p[1:-2].isdigit() for p in prompts)

        WebDriverWait(driver, 150, poll_frequency=1).until(finished)
        _shot(driver, "21c-lab-ran")

        errors = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type="
                                                       "'application/vnd.jupyter.error']")
        assert not errors, errors[0].text[:2000]
        stderr = [e.get_attribute("textContent") for e in driver.find_elements(
            By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr']")]
        assert not stderr, f"library noise on the notebook instead of its log: {stderr}"
        text = driver.find_element(By.CSS_SELECTOR, ".jp-Notebook").get_attribute("textContent")
        assert "study 'demo', outputs in" in text       # the first code cell's line
        images = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
        assert images, "the notebook's figure is not on screen"
        driver.execute_script("arguments[0].scrollIntoView()", images[0])
        _shot(driver, "21c-lab-figure")
        assert driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output table")

        _menu(driver, "File", "docmanager:save")
        WebDriverWait(driver, 30).until(lambda d: not d.find_elements(
            By.CSS_SELECTOR, ".jp-mod-current.jp-mod-dirty, .lm-TabBar-tab.jp-mod-dirty"))
        time.sleep(1)   # the save request has returned; let the files settle
        dialogs = driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
        assert not dialogs, dialogs[0].text
        # The outputs are still on screen after the save.
        assert driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
        _shot(driver, "21c-lab-saved")
