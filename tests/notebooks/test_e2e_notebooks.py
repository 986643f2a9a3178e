"""All five notebooks through papermill on configs/ci.yaml (the embedded model, offline, CPU),
and what each one produced. A few minutes on two cores."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from skillmix_utils import runner
from skillmix_utils.core.config import load_study_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "ci.yaml"
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def study(tmp_path_factory, embedded_model):
    # SKILLMIX_E2E_OUTPUT=DIR reuses (and resumes) an earlier run's outputs while debugging.
    out = Path(os.environ.get("SKILLMIX_E2E_OUTPUT") or tmp_path_factory.mktemp("e2e") / "ci")
    rc = runner.run_study(CONFIG, overrides={"output_dir": str(out)})
    return rc, out


def _png(path: Path) -> bool:
    return path.exists() and path.read_bytes().startswith(PNG) and path.stat().st_size > 2000


def test_every_notebook_ran_and_kept_its_executed_copy(study):
    rc, out = study
    assert rc == 0, f"see the executed notebooks in {out / 'notebooks'}"
    for nb_path in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        executed = out / "notebooks" / nb_path.name
        nb = nbformat.read(executed, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, (nb_path.name, errors)
        # Library warnings and a stage's info lines go to the log, not onto the page as
        # stderr boxes (bitsandbytes' import warning and "writing 4 texts" did).
        stderr = [o.get("text") for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("name") == "stderr"]
        assert not stderr, (nb_path.name, stderr)
        assert (out / ".runner" / f"{nb_path.stem}.done.json").exists()
    log = (out / "logs" / "notebooks.log").read_text()
    assert "writing" in log and "grading" in log, log


def test_01_catalog(study):
    assert _png(study[1] / "figures" / "catalog_counts.png")


def test_02_data(study):
    out = study[1]
    cfg = load_study_config(CONFIG)
    card = json.loads((out / "data" / "data_card.json").read_text())
    assert set(card["per_k"]) == {str(k) for k in cfg.data.counts}
    assert card["total"]["graded"] == sum(cfg.data.counts.values())
    assert card["contamination_check"]["passed"]
    for mix in ("k1", "k1-2"):
        assert (out / "data" / "mixes" / f"{mix}.jsonl").exists()


def test_03_training(study):
    runs = list((study[1] / "train").glob("*/train_summary.json"))
    assert len(runs) == 1
    root = runs[0].parent
    assert (root / "adapter" / "adapter_config.json").exists()
    loss = json.loads((root / "loss.json").read_text())
    assert len(loss) == load_study_config(CONFIG).train.steps
    assert _png(study[1] / "figures" / "loss_curve.png")


def test_04_evaluation(study):
    out = study[1]
    cfg = load_study_config(CONFIG)
    metrics = pd.read_csv(out / "eval" / "tables" / "metrics.csv")
    ev = cfg.evaluation
    assert len(metrics) == len(ev.students) * len(ev.settings) * len(ev.ks) * len(ev.graders)
    assert set(metrics["student"]) == {"base", "tuned"}
    assert metrics["ratio_full_marks"].between(0, 1).all()
    assert metrics.loc[metrics.student == "tuned", "adapter"].notna().all()


def test_05_figures_tables_report(study):
    out = study[1]
    cfg = load_study_config(CONFIG)
    md = (out / "tables" / "table2_full_marks.md").read_text()
    rows = [l for l in md.splitlines() if l.startswith("| base") or l.startswith("| tuned")]
    assert len(rows) == len(cfg.evaluation.students) * len(cfg.evaluation.settings)
    assert (out / "tables" / "table3_skills_fraction.tex").exists()
    for name in ("figure2_full_marks", "category_heatmap"):
        assert _png(out / "figures" / f"{name}.png"), name
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and '"stage": "eval"' in html
    # What a reader needs on a real run: base and tuned side by side with the count of identical
    # answers, the rubric defined where it is used, each reply's finish reason (the browser test
    # tests/notebooks/test_report_cannot_mislead.py checks how they read).
    assert "tuned answers are byte-identical to the base answer" in html
    assert "k + 3 points" in html
    assert re.search(r'"finish": \[\s*"(stop|length)"', html), "no finish reason in the samples"


def test_05_beyond_the_paper_section(study):
    out = study[1]
    nb = nbformat.read(out / "notebooks" / "05_figures_and_tables.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "human sample:" in printed and "no human grades yet: skillmix human" in printed
    assert "partition of this study: the catalog file" in printed
    assert _png(out / "figures" / "scaling_success_vs_k.png")
    assert '<section id="beyond">' in (out / "report.html").read_text()


def test_a_second_run_skips_every_stage(study, capsys):
    rc, out = study
    assert runner.run_study(CONFIG, overrides={"output_dir": str(out)}) == 0
    printed = capsys.readouterr().out
    assert printed.count("up to date, skipped") == 5
