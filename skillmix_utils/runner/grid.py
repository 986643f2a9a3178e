"""Grids: one study config, several runs (`grid:` in the config; see runner.py for how they run).

    grid:
      train.data_mix: [[1], [1, 2], [1, 2, 3]]            # one run per value
      "train.data_mix,train.subsample":                   # several fields, zipped per run
        - [[1, 2, 3], null]
        - [[1, 2, 3], sub8000]

Keys are dotted config fields; the runs are the cross product over keys. A run's label is
`field=value` joined by "_" (last part of each field name), and its outputs go to
`outputs/<study>/grid/<label>/`, and its budget ledger is the study's (`link_study_ledger`), so
`budget_usd` caps the whole grid, not each run. `present.grid_summary` stacks the runs'
metric tables and writes the cross-run tables and figures.
"""
from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.llm.cost import BudgetLedger


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
