"""Grids: one study config, several runs (`grid:` in the config; see runner.py for how they run).

    grid:
      train.data_mix: [[1], [1, 2], [1, 2, 3]]            # one run per value
      "train.data_mix,train.subsample":                   # several fields, zipped per run
        - [[1, 2, 3], null]
        - [[1, 2, 3], sub8000]

Keys are dotted config fields; the runs are the cross product over keys. A run's label is
`field=value` joined by "_" (last part of each field name), and its outputs go to
`outputs/<study>/grid/<label>/`, and its budget ledger is the study's (`link_study_ledger`), so
`budget_usd` caps the whole grid, not each run. `summarize_grid` stacks the runs' metric tables into
`outputs/<study>/grid/metrics.csv` (with `run`, `train_data`, `n_train_texts`) and writes the
cross-run paper tables (Tables 2-4) and Figure 2 at the study's top level.
"""
from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

from .config import StudyConfig
from .errors import SkillmixError
from .llm.cost import BudgetLedger


def _value_label(value) -> str:
    if isinstance(value, dict) and value.get("name"):     # e.g. a catalog.partition
        return _value_label(value["name"])
    if isinstance(value, (list, tuple)):
        return "-".join(_value_label(v) for v in value)
    if value is None:
        return "none"
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(value)).strip("-") or "x"


def grid_points(grid: dict) -> list[tuple[str, dict]]:
    """Every run of a grid as (label, overrides).

    >>> [l for l, _ in grid_points({"train.data_mix": [[1], [1, 2]], "train.mode": ["lora"]})]
    ['data_mix=1_mode=lora', 'data_mix=1-2_mode=lora']
    >>> grid_points({"train.data_mix,train.subsample": [[[1, 2, 3], "sub8000"]]})[0]
    ('data_mix=1-2-3_subsample=sub8000', {'train.data_mix': [1, 2, 3], 'train.subsample': 'sub8000'})
    """
    axes = []
    for key, values in grid.items():
        fields = [f.strip() for f in key.split(",")]
        options = []
        for value in values:
            if len(fields) > 1:
                if not isinstance(value, (list, tuple)) or len(value) != len(fields):
                    raise SkillmixError(f"each value must be a list of {len(fields)} (one per field), got {value!r}",
                                        field=f"grid.{key}")
                options.append(dict(zip(fields, value)))
            else:
                options.append({fields[0]: value})
        axes.append(options)
    points = []
    for combo in itertools.product(*axes):
        over = {k: v for part in combo for k, v in part.items()}
        label = "_".join(f"{k.split('.')[-1]}={_value_label(v)}" for k, v in over.items())
        points.append((label, over))
    labels = [p[0] for p in points]
    if len(set(labels)) != len(labels):
        raise SkillmixError("two grid runs get the same label; give distinct values", field="grid")
    return points


def _train_data_label(cfg: StudyConfig) -> str:
    if cfg.train is None:
        return ""
    if cfg.train.subsample:
        return cfg.train.subsample
    return "D(" + ",".join(str(k) for k in cfg.train.data_mix) + ")"


def summarize_grid(out: Path, runs: list[tuple[str, StudyConfig]]) -> dict[str, Path]:
    """Stack the grid runs' metrics into `<out>/grid/metrics.csv` and write the cross-run tables
    (`<out>/tables/`) and figures (`<out>/figures/`)."""
    import pandas as pd

    from . import figures, paper_tables

    frames = []
    for label, cfg in runs:
        path = cfg.out / "eval" / "tables" / "metrics.csv"
        if path.exists():
            df = pd.read_csv(path)
            df.insert(0, "run", label)
            df["train_data"] = _train_data_label(cfg)
            card = cfg.out / "train"
            n = None
            for summary in card.glob("*/train_summary.json"):
                data = json.loads(summary.read_text())
                n = data.get("skillmix_examples") or data.get("rows") or data.get("n_examples")
            df["n_train_texts"] = n if isinstance(n, (int, float)) else None
            frames.append(df)
    if not frames:
        return {}
    metrics = pd.concat(frames, ignore_index=True)
    paths = {"grid_metrics": out / "grid" / "metrics.csv"}
    paths["grid_metrics"].parent.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(paths["grid_metrics"], index=False)
    paths.update(paper_tables.write_paper_tables(metrics, out / "tables"))
    for p in figures.figure2_full_marks(metrics, out / "figures", name="grid_figure2_full_marks"):
        paths[p.name] = p
    paths.update(beyond_paper_grid(out, runs, metrics))
    return paths


def beyond_paper_grid(out: Path, runs: list[tuple[str, StudyConfig]], metrics) -> dict[str, Path]:
    """The cross-run outputs of grids over partitions (partitions.py) and of scaling grids
    (scaling.py); each writes nothing when the grid is not of its kind."""
    from . import partitions, scaling

    paths = partitions.write_partition_gain(out, runs)
    paths.update(scaling.write_scaling(out, metrics))
    return paths


def link_shared_data(shared_out: Path, run_out: Path) -> None:
    """Make `run_out/data` a relative link to the shared `shared_out/data` (grid runs share it)."""
    run_out.mkdir(parents=True, exist_ok=True)
    link = run_out / "data"
    if link.is_symlink() or not link.exists():
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(shared_out / "data", run_out), target_is_directory=True)


def link_study_ledger(study_out: Path, run_out: Path) -> None:
    """Make `run_out`'s budget ledger a relative link to the study's at `study_out`: a grid's
    runs spend from one budget. A run's own ledger from before (a regular file) is added to the
    study's first, so nothing paid is forgotten."""
    run_out.mkdir(parents=True, exist_ok=True)
    link, target = run_out / BudgetLedger.NAME, study_out / BudgetLedger.NAME
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        paid = link.read_bytes()
        if paid.strip():
            study_out.mkdir(parents=True, exist_ok=True)
            with open(target, "ab") as fh:
                fh.write(paid if paid.endswith(b"\n") else paid + b"\n")
        link.unlink()
    link.symlink_to(os.path.relpath(target, run_out))
