"""Every shipped grid config runs end to end on the embedded model, through `skillmix run`: its
data stage, each grid run trained (on a mix that is not empty) and evaluated, and the grid's
cross-run outputs written.

To stay within a 2-core CI the configs are cut further with --set: the data keeps the k = 1
texts (24; the embedded judge keeps about 1 in 8, and fewer of the longer k) and one or two of
each other k; evaluation asks one combination at one or two k; training takes two steps; only
the notebooks that make the numbers run (02-04; notebook 05's per-run report is tested on
configs/ci.yaml): what the grid summary draws comes from the runs' metric tables.
uncommon-skills is one study whose figure comes from notebook 05, so it runs 05.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.runner import grid_points

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.long, pytest.mark.timeout(3000)]

SMALL = ["train.steps=2", "train.checkpoint_every=2", "evaluation.n_combinations=1",
         "evaluation.settings=[held_out]"]
CASES = {
    "k4-addition": (["data.counts={1: 24, 2: 1, 3: 1, 4: 2}", "evaluation.ks=[3, 4]"],
                    ["02", "03", "04"],
                    ["tables/table2_full_marks.md", "figures/grid_figure2_full_marks.png"]),
    "partitions": (["data.counts={1: 24, 2: 1, 3: 1}", "evaluation.ks=[2]"], ["02", "03", "04"],
                   ["tables/partition_gain.csv"]),
    "scaling": (["data.counts={1: 24, 2: 1, 3: 2}", "evaluation.ks=[2, 3]"], ["02", "03", "04"],
                ["tables/scaling.csv"]),
    "uncommon-skills": (["data.counts={1: 24, 2: 1, 3: 1}", "evaluation.ks=[2, 3]"],
                        ["02", "03", "04", "05"],
                        ["figures/uncommon_skills.png", "tables/parrot_line.csv"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_config_runs_end_to_end(name, tmp_path, embedded_model):
    more, stages, outputs = CASES[name]
    out = tmp_path / name
    sets = [f"output_dir={out}", *SMALL, *more]
    cmd = [sys.executable, "-m", "skillmix_utils.cli", "run", str(ROOT / "configs" / f"{name}.yaml"),
           "--stages", *stages] + [a for s in sets for a in ("--set", s)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=2900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    cfg = load_study_config(ROOT / "configs" / f"{name}.yaml", {"output_dir": str(out)})
    runs = [out / "grid" / label for label, _ in grid_points(cfg.grid)] if cfg.grid else [out]
    for run in runs:
        summaries = list(run.glob("train/*/train_summary.json"))
        assert summaries, f"{run.name}: no training"
        assert json.loads(summaries[0].read_text())["skillmix_examples"] > 0, run.name
        tuned = pd.read_csv(run / "eval" / "tables" / "metrics.csv")
        assert set(tuned["student"]) == {"base", "tuned"}, run.name
    if cfg.grid:
        stacked = pd.read_csv(out / "grid" / "metrics.csv")
        assert set(stacked["run"]) == {r.name for r in runs}
    for path in outputs:
        assert (out / path).exists(), path
