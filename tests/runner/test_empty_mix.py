"""An empty training mix (the graders kept no text of its k) is said as what it is, with the
data card's counts and what to change, before a model loads: through `skillmix train` and
through notebook 03's launcher."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.runner import launch_training

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "data" / "train_small.yaml"      # trains on the mix k1-2


def _empty_study(out: Path) -> None:
    mixes = out / "data" / "mixes"
    mixes.mkdir(parents=True)
    (mixes / "k1-2.jsonl").write_text("")
    card = {"per_k": {"1": {"planned": 6, "graded": 6, "kept": 0},
                      "2": {"planned": 6, "graded": 5, "kept": 0}}}
    (out / "data" / "data_card.json").write_text(json.dumps(card))


def test_skillmix_train_says_the_mix_is_empty(tmp_path):
    out = tmp_path / "study"
    _empty_study(out)
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "train", str(CONFIG),
                           "--set", f"output_dir={out}"], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 2, done.stderr
    err = done.stderr
    assert "the training mix k1-2 is empty: the graders kept 0 of the 11 texts of k = 1, 2" in err
    assert "k = 1: 0 of 6; k = 2: 0 of 5" in err and "raise data.counts" in err
    assert "max_length" not in err and "Loading weights" not in err     # no model was loaded


def test_notebook_03_launcher_says_it_before_starting_training(tmp_path):
    out = tmp_path / "study"
    _empty_study(out)
    cfg = load_study_config(CONFIG, {"output_dir": str(out)})
    with pytest.raises(SkillmixError, match="the training mix k1-2 is empty"):
        launch_training(cfg)
    assert not (out / "train" / "train.log").exists()          # no training process started
