"""Grids: one study config, several runs (`grid:` in the config; see runner.py for how they run).

    grid:
      train.data_mix: [[1], [1, 2], [1, 2, 3]]            # one run per value
      "train.data_mix,train.subsample":                   # several fields, zipped per run
        - [[1, 2, 3], null]
        - [[1, 2, 3], sub8000]

      "size: train.base_model,train.mode":               # a named axis: runs labelled
        - [qwen2.5-0.5b-instruct, qlora]                  # size=<first field's value>
        - [qwen2.5-72b-instruct, full]

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
from dataclasses import dataclass
from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.llm.cost import BudgetLedger
from skillmix_utils.runner.markers import SHARED_PREFIXES, Stage
from skillmix_utils.runner.notebook_config import notebook_config

# The parts of a study that run one after another here, or as one SLURM job each: the whole
# study (no grid), the notebooks a grid's runs share, and each grid run (by its label).
STUDY, SHARED = "study", "shared"
SHARED_STAGES = ("01", "02")


def _value_label(value) -> str:
    if isinstance(value, dict) and value.get("name"):     # e.g. a catalog.partition
        return _value_label(value["name"])
    if isinstance(value, (list, tuple)):
        return "-".join(_value_label(v) for v in value)
    if value is None:
        return "none"
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(value)).strip("-") or "x"


def grid_fields(key: str) -> tuple[str | None, list[str]]:
    """A grid key's axis name (None unless written "name: field,field") and its fields.

    >>> grid_fields("size: train.base_model, train.mode"), grid_fields("train.mode")
    (('size', ['train.base_model', 'train.mode']), (None, ['train.mode']))
    """
    name, sep, rest = key.partition(":")
    if sep:
        return name.strip(), [f.strip() for f in rest.split(",")]
    return None, [f.strip() for f in key.split(",")]


def _named_axis_field(field: str, grid: dict) -> bool:
    """Whether `field` belongs to a named axis (whose label its first field's value gives)."""
    return any(axis and field in fields for axis, fields in map(grid_fields, grid))


def grid_points(grid: dict) -> list[tuple[str, dict]]:
    """Every run of a grid as (label, overrides).

    >>> [l for l, _ in grid_points({"train.data_mix": [[1], [1, 2]], "train.mode": ["lora"]})]
    ['data_mix=1_mode=lora', 'data_mix=1-2_mode=lora']
    >>> grid_points({"train.data_mix,train.subsample": [[[1, 2, 3], "sub8000"]]})[0]
    ('data_mix=1-2-3_subsample=sub8000', {'train.data_mix': [1, 2, 3], 'train.subsample': 'sub8000'})
    >>> grid_points({"size: train.base_model,train.mode": [["m-7b", "qlora"]]})[0][0]
    'size=m-7b'
    """
    axes = []
    names = {}
    for key, values in grid.items():
        axis, fields = grid_fields(key)
        if axis:
            names[fields[0]] = axis
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
        label = "_".join(f"{names.get(k, k.split('.')[-1])}={_value_label(v)}"
                         for k, v in over.items() if k in names or not _named_axis_field(k, grid))
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


@dataclass
class GridRun:
    """One run of a grid: its label, its overrides (output_dir included) and its config."""
    label: str
    overrides: dict
    cfg: StudyConfig


@dataclass
class StudyLayout:
    """What a study runs: its config, its grid runs (none without a grid) and whether they share
    notebooks 01-02 (no grid field touches data generation)."""
    config_path: Path
    overrides: dict
    cfg: StudyConfig
    runs: list[GridRun]
    shared: bool

    @property
    def base_overrides(self) -> dict:
        return {**self.overrides, "grid": {}}

    def parts(self) -> list[str]:
        """The parts in the order they run: `study`; or `shared` (when shared) and each label."""
        if not self.runs:
            return [STUDY]
        return ([SHARED] if self.shared else []) + [r.label for r in self.runs]

    def run(self, label: str) -> GridRun:
        for r in self.runs:
            if r.label == label:
                return r
        raise SkillmixError(f"no grid run {label!r} (runs: {', '.join(r.label for r in self.runs)})",
                            field="grid")

    def shared_cfg(self) -> StudyConfig:
        """The config of the shared notebooks: the study's, in the study's folder, no grid."""
        return notebook_config(str(self.config_path), {**self.base_overrides,
                                                       "output_dir": str(self.cfg.out)})

    def split(self, stages: list[Stage]) -> tuple[list[Stage], list[Stage]]:
        """(the shared notebooks, the rest): the first empty when the runs share nothing."""
        front = [s for s in stages if s.id in SHARED_STAGES] if self.runs and self.shared else []
        return front, [s for s in stages if s not in front]

    def part_config(self, part: str) -> tuple[StudyConfig, dict]:
        """The config and overrides a part runs with."""
        if part == SHARED:
            return self.shared_cfg(), {**self.base_overrides, "output_dir": str(self.cfg.out)}
        if part == STUDY:
            return self.cfg, self.overrides
        run = self.run(part)
        return run.cfg, run.overrides

    def part_stages(self, part: str, stages: list[Stage], wanted: set[str] | None
                    ) -> tuple[list[Stage], set[str] | None]:
        """The notebooks of one part and the ids of those it runs (None: all). A grid run's
        list starts with the shared notebooks, whose fingerprints feed its later ones (so that
        new data re-runs them), but it runs only its own."""
        front, rest = self.split(stages)
        if part == SHARED:
            return front, wanted
        if part == STUDY:
            return stages, wanted
        own = {s.id for s in rest}
        return front + rest, {s for s in (wanted if wanted is not None else own) if s in own}


def study_layout(config_path, overrides: dict | None = None) -> StudyLayout:
    """A study's layout from its config file and overrides; a grid run whose config does not
    validate raises SkillmixError naming the run."""
    config_path = Path(config_path).resolve()
    overrides = dict(overrides or {})
    cfg = notebook_config(str(config_path), overrides)
    runs = []
    for label, point in grid_points(cfg.grid) if cfg.grid else []:
        run_over = {**overrides, "grid": {}, **point, "output_dir": str(cfg.out / "grid" / label)}
        try:
            runs.append(GridRun(label, run_over, notebook_config(str(config_path), run_over)))
        except SkillmixError as exc:
            raise SkillmixError(f"grid run {label}: {exc}", field="grid") from None
    shared = not any(k.startswith(SHARED_PREFIXES) for key in cfg.grid for k in grid_fields(key)[1])
    return StudyLayout(config_path, overrides, cfg, runs, shared)


def write_grid_summary(layout: StudyLayout) -> None:
    """The grid's cross-run tables and figures (present/grid_summary.py), once every run finished."""
    # heavy: the summary draws figures (matplotlib, seaborn, scipy), only at a grid's end
    from skillmix_utils.present.grid_summary import summarize_grid

    out = layout.cfg.out
    written = summarize_grid(out, [(r.label, r.cfg) for r in layout.runs])
    if written:
        print(f"grid summary: {out / 'grid' / 'metrics.csv'}, tables in {out / 'tables'}", flush=True)
