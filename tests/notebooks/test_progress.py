"""Watching a run: a stage's progress reaches the terminal of `skillmix run` (here not a TTY, so
one line every SKILLMIX_PROGRESS_EVERY seconds) and the executed notebook holds one compact
display of it, not a scroll of bars."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from skillmix_utils.stages.progress import StageProgress, phase_line, read_state

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)

BODY = """
import time
from skillmix_utils.stages.progress import StageProgress
import logging, warnings
warnings.warn("a library's FutureWarning", FutureWarning)
# A library nobody listed, warning at import (bitsandbytes on a CPU does exactly this).
logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Failed to load CPU gemm_4bit_forward")
import sys, types
from skillmix_utils.stages.context import StageRun
StageRun.say(types.SimpleNamespace(log=sys.stderr), "teacher fixture: writing 4 texts")  # a stage's info line
p = StageProgress("07", out)
i = p.phase("teacher fixture: write", 4)
for _ in range(4):
    time.sleep(0.6)
    p.advance(1, failed=0, usd=0.25)
p.close()
print("stage finished")
"""


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell('config_path = "config.yaml"\noutput_dir = ""\noverrides = ""\n',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from pathlib import Path\nfrom skillmix_utils.runner import notebook_config\n"
                                          "cfg = notebook_config(config_path, overrides, output_dir)\nout = Path(cfg.out)\n"),
                nbformat.v4.new_code_cell(BODY)]
    nbformat.write(nb, path)


def test_non_tty_run_log_shows_counts_cost_and_eta(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "07_stage.ipynb")
    (tmp_path / "config.yaml").write_text("name: watched\n")
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    code = ("import sys; from skillmix_utils.runner import run_study; "
            f"sys.exit(run_study({str(tmp_path / 'config.yaml')!r}, overrides={{'output_dir': {str(out)!r}}}, "
            f"notebooks_dir={str(nbs)!r}))")
    env = {**os.environ, "SKILLMIX_PROGRESS_EVERY": "0.5", "PYTHONPATH": str(ROOT)}
    with open(log, "w") as fh:          # a file, not a TTY: lines, not bars
        rc = subprocess.run([sys.executable, "-c", code], stdout=fh, stderr=subprocess.STDOUT,
                            env=env, cwd=tmp_path, timeout=240).returncode
    text = log.read_text()
    assert rc == 0, text
    lines = [l for l in text.splitlines() if "teacher fixture: write" in l]
    assert len(lines) >= 2, text                       # periodic lines while it ran, not only the end
    assert "\r" not in text and "\x1b[" not in text     # no bar redraws in a log
    assert lines[-1].startswith("skillmix: 07 teacher fixture: write: 4/4 texts") and "done in" in lines[-1]
    assert "$1.0000" in lines[-1]
    assert any("ETA" in l for l in lines[:-1])
    assert "[1/1] 07_stage: done in" in text and "API cost $1.0000" in text

    nb = nbformat.read(out / "notebooks" / "07_stage.ipynb", as_version=4)
    outputs = nb.cells[-1].outputs
    displays = [o for o in outputs if o.output_type == "display_data"]
    assert len(displays) == 1 and "4/4 texts" in displays[0].data["text/plain"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"], outputs
    notebook_log = (out / "logs" / "notebooks.log").read_text()
    assert "FutureWarning" in notebook_log
    assert "Failed to load CPU gemm_4bit_forward" in notebook_log
    assert "teacher fixture: writing 4 texts" in notebook_log


def test_progress_file_and_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKILLMIX_PROGRESS_EVERY", "1000")
    p = StageProgress("04", tmp_path, stream=sys.stderr)
    i = p.phase("grader g: grade", 3, unit="gradings")
    p.advance(2, failed=1, usd=0.5, index=i)
    p.advance(1, index=i)                   # the phase ends: the file is written at once
    state = read_state(tmp_path / ".runner" / "progress.json")
    assert state["phases"][0]["done"] == 3 and state["phases"][0]["failed"] == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2                    # the opening line and the finished one, nothing between
    assert "3/3 gradings · 1 failed · $0.5000" in err[-1] and "done in" in err[-1]


def test_phase_line_without_progress_yet():
    line = phase_line({"name": "x", "done": 0, "total": 10, "unit": "texts", "failed": 0,
                       "usd": 0.0, "started": 0.0, "updated": 5.0}, now=5.0)
    assert line == "x: 0/10 texts · 0.0 texts/min · ETA ?"
