"""`dry_run = True` on a fresh study: notebooks 02 and 04 print their plan and stop cleanly
(they raised FileNotFoundError reading outputs that a dry run never writes)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("name", ["02_data_generation", "04_evaluation"])
def test_dry_run_on_a_fresh_study(tmp_path, name, embedded_model):
    import papermill as pm

    out = tmp_path / "fresh"
    target = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(target), kernel_name="python3",
                        parameters={"config_path": str(ROOT / "configs" / "demo.yaml"),
                                    "output_dir": str(out), "dry_run": True},
                        cwd=str(ROOT), progress_bar=False)
    nb = nbformat.read(target, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "dry run (nothing is written)" in text and "estimated total" in text
    assert "dry run: nothing written yet" in text
    assert not (out / "data" / "records.jsonl").exists() and not (out / "eval" / "records.jsonl").exists()
