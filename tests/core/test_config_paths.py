"""One rule for where a study writes, whoever loads its config: the CLI, the runner, the
notebooks and the public API all anchor a relative output_dir at the config's project."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import skillmix_utils as sm
from skillmix_utils.runner import notebook_config

CONFIG = """name: where
description: a study with no model stages, to see where it writes
"""


def _project(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    path = project / "configs" / "where.yaml"
    path.write_text(CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return path, elsewhere


def test_every_loader_agrees_on_the_output_folder(tmp_path, monkeypatch):
    path, elsewhere = _project(tmp_path)
    monkeypatch.chdir(elsewhere)          # the user stands somewhere else
    want = path.parents[1] / "outputs" / "where"
    assert sm.load_config(path).out == want
    assert notebook_config(str(path)).out == want
    assert sm.load_config(path, {"output_dir": "runs/x"}).out == path.parents[1] / "runs" / "x"
    assert sm.load_config(path, {"output_dir": str(tmp_path / "abs")}).out == tmp_path / "abs"


def test_the_cli_writes_where_the_api_says(tmp_path):
    path, elsewhere = _project(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "metrics", str(path)],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    # No records yet: the CLI says so, naming the folder it reads (and would write).
    assert run.returncode != 0
    assert str(path.parents[1] / "outputs" / "where" / "eval" / "records.jsonl") in run.stderr, run.stderr
    assert not (elsewhere / "outputs").exists()
