"""The model-size ladder: configs/model-scale.yaml plans here (per size: mode, GPUs, memory per
GPU with headroom, GPU-hours, API dollars, and the SLURM job of each size), every config's dry
run shows its local compute beside the dollars, and the grid summary's figure of held-out
success against model size."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from skillmix_utils.core.config import load_study_config
from skillmix_utils.present.model_scale import write_model_scale
from skillmix_utils.runner import grid_points, run_study

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def test_model_scale_dry_run_per_size(tmp_path, capsys):
    rc = run_study(ROOT / "configs" / "model-scale.yaml", dry_run=True, stages=["03", "04"],
                   executor="slurm", overrides={"output_dir": str(tmp_path / "ms")})
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    for size, mode, gpus, nodes in [("0.5b", "qlora", "1 GPU x", 1), ("7b", "qlora", "1 GPU x", 1),
                                    ("14b", "full, fsdp", "8 GPUs x", 1),
                                    ("32b", "full, fsdp", "16 GPUs x", 2),
                                    ("72b", "full, fsdp", "32 GPUs x", 4)]:
        run = f"size=qwen2.5-{size}-instruct"
        line = next(ln for ln in lines if ln.startswith(f"  {run}: train"))
        assert f"B, {mode})" in line and gpus in line, line
        assert "GiB headroom" in line and "GPU-hours" in line and "API $" in line, line
        job = lines[lines.index(f"  grid run {run}: notebooks 03 04") + 1]
        assert f"--nodes={nodes}" in job and "--gpus-per-node=" in job, job
    assert "dry run: local compute:" in out
    assert not (tmp_path / "ms").exists()


def test_every_dry_run_shows_training_and_local_model_compute(tmp_path, capsys):
    """The paper's config (full fine-tuning on 4 GPUs, a local 13B student) beside its dollars."""
    rc = run_study(ROOT / "configs" / "paper-llama2-13b.yaml", dry_run=True, stages=["03", "04"],
                   overrides={"output_dir": str(tmp_path / "p"), "grid": {}})
    out = capsys.readouterr().out
    assert rc == 0
    assert ("GPUs: train llama-2-13b-chat (13.02B, full, fsdp): 4 GPUs x 60.0 GiB of 80 "
            "(20.0 GiB headroom)") in out
    assert "GPUs: hf:llama-2-13b-chat (13.02B): 1 GPU x" in out
    assert "dry run: estimated API cost" in out and "dry run: local compute:" in out


def _metrics(runs) -> pd.DataFrame:
    rows = []
    for (label, _), base, tuned in zip(runs, (0.05, 0.10, 0.20), (0.20, 0.45, 0.70)):
        for student, adapter, value in (("base", None, base), ("tuned", "@train", tuned)):
            for k in (2, 3):
                rows.append({"run": label, "student": student, "adapter": adapter, "k": k,
                             "setting": "held_out", "grader": "gpt-4.1", "ratio_full_marks": value,
                             "ratio_full_marks_ci_low": value - 0.05,
                             "ratio_full_marks_ci_high": value + 0.05, "n_combinations": 100})
    return pd.DataFrame(rows)


def test_success_against_model_size(tmp_path):
    path = ROOT / "configs" / "model-scale.yaml"
    cfg = load_study_config(path)
    runs = [(label, load_study_config(path, {**point, "grid": {}}))
            for label, point in grid_points(cfg.grid)]
    picked = [runs[0], runs[3], runs[6]]                 # 0.5B, 7B, 72B
    paths = write_model_scale(tmp_path, picked, _metrics(picked))
    table = pd.read_csv(paths["model_scale_csv"])
    assert list(table["params_billion"].unique()) == [0.49, 7.62, 72.71]
    assert set(table["mode"]) == {"qlora", "full"} and set(table["k"]) == {3}
    tuned = table[table["student"] == "tuned"]["ratio_full_marks"].tolist()
    assert tuned == [0.20, 0.45, 0.70]
    png = tmp_path / "figures" / "model_scale.png"
    assert png.read_bytes().startswith(PNG) and png.stat().st_size > 5000
    # One base model standing in for every size (as the tests' embedded model does): no axis.
    same = [(label, load_study_config(path, {**point, "grid": {},
                                             "train.base_model": "smollm2-135m-instruct"}))
            for label, point in grid_points(cfg.grid)[:2]]
    assert write_model_scale(tmp_path / "same", same, _metrics(same)) == {}
