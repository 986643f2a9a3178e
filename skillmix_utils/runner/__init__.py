"""`skillmix run CONFIG`: the numbered notebooks, in order, through papermill.

    skillmix run configs/demo.yaml                      # all of notebooks/0N_*.ipynb
    skillmix run configs/demo.yaml --stages 04 05       # only these
    skillmix run configs/paper-llama2-13b.yaml --dry-run   # what would run, estimated API cost
    skillmix run configs/demo.yaml --set evaluation.n_combinations=2 --force

Every notebook takes the same parameters (`config_path`, `output_dir`, `overrides` as a JSON
string) and is executed into `outputs/<study>/notebooks/`, where the executed copy stays, also
when it fails (the error is in it; the command exits 1 naming the notebook and the cell).

**Done markers.** A notebook that finishes writes `outputs/<study>/.runner/<notebook>.done.json`
holding a fingerprint of what it depends on: the config sections it reads (02: catalog, scoring,
data; 03: train; 04: scoring, evaluation; 01 and 05: everything), the notebook's own cells, and
the fingerprints of the stages it consumes (03 <- 02, 04 <- 03, 05 <- 02, 03, 04). A later run
skips a notebook whose marker matches and whose outputs exist (`STAGE_OUTPUTS`), so a changed
config re-runs what it affects and what follows; `--force` re-runs regardless. A crash leaves no
marker; the re-run executes the notebook again and the stages inside resume from their records.

**Grids** (`runner/grid.py`). `grid:` maps dotted fields to lists of values; every combination is one run in
`outputs/<study>/grid/<label>/` (label like `data_mix=1-2-3_subsample=sub8000`). A key naming
several fields, comma-separated, takes one list of values per run (zipped, not crossed):
`"train.data_mix,train.subsample": [[[1], null], [[1, 2, 3], sub8000]]`. A key written
`"size: train.base_model,train.mode"` names its axis: runs are labelled `size=<first value>`. When no grid field
touches data generation (`data.`, `catalog.`, `scoring.`), notebooks 01 and 02 run once in
`outputs/<study>/` and every grid run links to that `data/`. Every grid run's budget ledger is a
link to the study's, so `budget_usd` caps the whole grid. After the runs the per-run metric
tables are stacked into `outputs/<study>/grid/metrics.csv` (columns `run`, `train_data`) and
the cross-run tables and figures go to `outputs/<study>/tables/` and `figures/`.

**On SLURM** (`--executor slurm`, or `cluster: {executor: slurm}`): each part of the study (the
study, or the shared notebooks and each grid run) is one job submitted through submitit and
watched from here; Ctrl-C detaches, the same command re-attaches (runner/slurm/, README
"On a cluster").

The parts: `runner/notebook_config.py` (what a notebook's first cell calls), `markers.py`
(stages and done-markers), `study.py` (running them), `dry_run.py`, `training.py` (notebook 03's
launcher), `grid.py` (a grid's runs and the parts of a study), `slurm/` (jobs).
"""
from __future__ import annotations

from skillmix_utils.runner.grid import grid_points
from skillmix_utils.runner.markers import discover, fingerprints
from skillmix_utils.runner.notebook_config import notebook_config, parse_overrides
from skillmix_utils.runner.study import run_study
from skillmix_utils.runner.training import launch_training

__all__ = ["discover", "fingerprints", "grid_points", "launch_training", "notebook_config",
           "parse_overrides", "run_study"]
