"""A grid's cross-run outputs: the runs' metric tables stacked into `outputs/<study>/grid/metrics.csv`
(with `run`, `train_data`, `n_train_texts`), the cross-run paper tables (Tables 2-4), Figure 2,
and the partition-gain, scaling and model-size outputs where the grid is of that kind."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.present import figures, model_scale, paper_tables, partitions, scaling


def _train_data_label(cfg: StudyConfig) -> str:
    if cfg.train is None:
        return ""
    if cfg.train.subsample:
        return cfg.train.subsample
    return "D(" + ",".join(str(k) for k in cfg.train.data_mix) + ")"


def summarize_grid(out: Path, runs: list[tuple[str, StudyConfig]]) -> dict[str, Path]:
    """Stack the grid runs' metrics into `<out>/grid/metrics.csv` and write the cross-run tables
    (`<out>/tables/`) and figures (`<out>/figures/`)."""
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
    """The cross-run outputs of grids over partitions (partitions.py), of scaling grids
    (scaling.py) and of model sizes (model_scale.py); each writes nothing when the grid is not
    of its kind."""

    paths = partitions.write_partition_gain(out, runs)
    paths.update(scaling.write_scaling(out, metrics))
    paths.update(model_scale.write_model_scale(out, runs, metrics))
    return paths
