"""The batch runner on a tiny two-notebook fixture: done markers, --stages, failures, bad
parameters, dry runs and grids (the real notebooks are tested in test_e2e_notebooks.py)."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from skillmix_utils import runner
from skillmix_utils.core.errors import SkillmixError

pytestmark = pytest.mark.timeout(600)

PARAMS = 'config_path = "config.yaml"\noutput_dir = ""\noverrides = ""\n'
SETUP = ("from pathlib import Path\nfrom skillmix_utils.runner import notebook_config\n"
         "cfg = notebook_config(config_path, overrides, output_dir)\nout = Path(cfg.out)\n"
         "out.mkdir(parents=True, exist_ok=True)\n")


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# fixture"),
                nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(SETUP),
                nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture()
def study(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "07_first.ipynb",
              "with open(out / 'count07.txt', 'a') as fh:\n    fh.write('x')\nprint('first ran')")
    _notebook(nbs / "08_second.ipynb",
              "if cfg.description == 'fail':\n    raise ValueError('boom in the second notebook')\n"
              "with open(out / 'count08.txt', 'a') as fh:\n    fh.write(cfg.scoring.sentence_counter[0])")
    config = tmp_path / "tiny.yaml"
    config.write_text(f"name: tiny\noutput_dir: {tmp_path / 'out'}\n")
    return {"config": config, "nbs": nbs, "out": tmp_path / "out"}


def _count(out: Path, stage: str) -> str:
    p = out / f"count{stage}.txt"
    return p.read_text() if p.exists() else ""


def test_runs_in_order_keeps_executed_copies_and_skips_done(study, capsys):
    run = lambda **kw: runner.run_study(study["config"], notebooks_dir=study["nbs"], **kw)
    assert run() == 0
    out = study["out"]
    assert _count(out, "07") == "x" and _count(out, "08") == "r"
    for name in ("07_first", "08_second"):
        executed = out / "notebooks" / f"{name}.ipynb"
        assert executed.exists()
        assert json.loads((out / ".runner" / f"{name}.done.json").read_text())["fingerprint"]
    nb = nbformat.read(out / "notebooks" / "07_first.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert (out / "config.yaml").exists()

    assert run() == 0                                   # everything up to date
    assert _count(out, "07") == "x" and _count(out, "08") == "r"
    assert "up to date, skipped" in capsys.readouterr().out

    assert run(stages=["08"], force=True) == 0          # --stages with --force
    assert _count(out, "07") == "x" and _count(out, "08") == "rr"

    # A changed config re-runs what depends on it; here both notebooks read everything.
    assert run(overrides={"scoring.sentence_counter": "improved"}) == 0
    assert _count(out, "07") == "xx" and _count(out, "08") == "rri"


def test_removed_output_or_marker_reruns(study):
    run = lambda **kw: runner.run_study(study["config"], notebooks_dir=study["nbs"], **kw)
    assert run() == 0
    (study["out"] / ".runner" / "08_second.done.json").unlink()   # as after a crash
    assert run() == 0
    assert _count(study["out"], "07") == "x" and _count(study["out"], "08") == "rr"


def test_failure_keeps_executed_copy_and_names_cell(study, capsys):
    rc = runner.run_study(study["config"], notebooks_dir=study["nbs"], overrides={"description": "fail"})
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "08_second.ipynb failed in cell" in err[0]
    assert "ValueError: boom in the second notebook" in err[0]
    executed = study["out"] / "notebooks" / "08_second.ipynb"
    nb = nbformat.read(executed, as_version=4)
    assert any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert not (study["out"] / ".runner" / "08_second.done.json").exists()
    assert (study["out"] / ".runner" / "07_first.done.json").exists()
    # Fixed, the run resumes with the failed notebook only.
    assert runner.run_study(study["config"], notebooks_dir=study["nbs"]) == 0
    assert _count(study["out"], "07") == "x"


def test_bad_parameter_is_a_clear_error(study, capsys):
    with pytest.raises(SkillmixError, match="concurrency"):
        runner.run_study(study["config"], notebooks_dir=study["nbs"], overrides={"concurrency": 0})
    with pytest.raises(SkillmixError, match="no notebook numbered 09"):
        runner.run_study(study["config"], notebooks_dir=study["nbs"], stages=["09"])
    from skillmix_utils.cli import main

    rc = main(["run", str(study["config"]), "--set", "evaluaton.ks=[1]"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "evaluaton" in err and "unknown field" in err


def test_bad_parameter_in_a_direct_papermill_run(study, tmp_path):
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        pm.execute_notebook(str(study["nbs"] / "07_first.ipynb"), str(tmp_path / "x.ipynb"),
                            parameters={"config_path": str(study["config"]),
                                        "overrides": '{"concurrency": 0}'},
                            kernel_name="python3", progress_bar=False)
    assert info.value.ename == "SkillmixError"
    assert "concurrency" in info.value.evalue


def test_dry_run_executes_nothing(study, capsys):
    assert runner.run_study(study["config"], notebooks_dir=study["nbs"], dry_run=True) == 0
    assert "would run (not run yet)" in capsys.readouterr().out
    assert not (study["out"] / "notebooks").exists()


def test_grid_runs_each_point(study):
    cfg = study["config"]
    cfg.write_text(cfg.read_text() + "grid:\n  scoring.sentence_counter: [reference, improved]\n")
    assert runner.run_study(cfg, notebooks_dir=study["nbs"]) == 0
    grid = study["out"] / "grid"
    assert sorted(p.name for p in grid.iterdir() if p.is_dir()) == [
        "sentence_counter=improved", "sentence_counter=reference"]
    assert _count(grid / "sentence_counter=improved", "08") == "i"
    assert _count(grid / "sentence_counter=reference", "08") == "r"
    assert (grid / "sentence_counter=improved" / "notebooks" / "08_second.ipynb").exists()
    assert runner.run_study(cfg, notebooks_dir=study["nbs"]) == 0      # all done: skipped
    assert _count(grid / "sentence_counter=improved", "08") == "i"


def test_grid_points_and_bad_grid():
    pts = runner.grid_points({"train.data_mix": [[1], [1, 2, 3]], "train.mode": ["lora", "qlora"]})
    assert len(pts) == 4 and pts[-1][1] == {"train.data_mix": [1, 2, 3], "train.mode": "qlora"}
    with pytest.raises(SkillmixError, match="one per field"):
        runner.grid_points({"train.data_mix,train.subsample": [[[1]]]})


def test_fingerprints_follow_dependencies(repo_root):
    from skillmix_utils.core.config import load_study_config

    stages = runner.discover(repo_root / "notebooks")
    base = load_study_config(repo_root / "configs" / "demo.yaml")
    fp = runner.fingerprints(base, stages)
    fp_eval = runner.fingerprints(base.model_copy(update={"evaluation": base.evaluation.model_copy(
        update={"n_combinations": base.evaluation.n_combinations + 1})}), stages)
    assert fp_eval["02"] == fp["02"] and fp_eval["03"] == fp["03"]
    assert fp_eval["04"] != fp["04"] and fp_eval["05"] != fp["05"]
    fp_train = runner.fingerprints(base.model_copy(update={"train": base.train.model_copy(
        update={"steps": base.train.steps + 1})}), stages)
    assert fp_train["02"] == fp["02"] and fp_train["03"] != fp["03"] and fp_train["04"] != fp["04"]


def test_papermill_cli_with_a_bad_parameter_fails_clearly(repo_root, tmp_path):
    """The real notebook 01 through the papermill command line, with a bad override."""
    import subprocess
    import sys

    out = tmp_path / "01.ipynb"
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(repo_root / "notebooks" / "01_skills_and_topics.ipynb"),
         str(out), "-k", "python3", "--no-progress-bar",
         "-p", "config_path", str(repo_root / "configs" / "ci.yaml"),
         "-p", "output_dir", str(tmp_path / "study"),
         "-p", "overrides", '{"evaluation.n_combinations": 0}'],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "SkillmixError" in proc.stderr
    assert "evaluation.n_combinations" in proc.stderr and "greater than or equal to 1" in proc.stderr
    assert out.exists()                     # the executed copy, with the error in it
