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

**Grids** (`grid.py`). `grid:` maps dotted fields to lists of values; every combination is one run in
`outputs/<study>/grid/<label>/` (label like `data_mix=1-2-3_subsample=sub8000`). A key naming
several fields, comma-separated, takes one list of values per run (zipped, not crossed):
`"train.data_mix,train.subsample": [[[1], null], [[1, 2, 3], sub8000]]`. When no grid field
touches data generation (`data.`, `catalog.`, `scoring.`), notebooks 01 and 02 run once in
`outputs/<study>/` and every grid run links to that `data/`. Every grid run's budget ledger is a
link to the study's, so `budget_usd` caps the whole grid. After the runs the per-run metric
tables are stacked into `outputs/<study>/grid/metrics.csv` (columns `run`, `train_data`) and
the cross-run tables and figures go to `outputs/<study>/tables/` and `figures/`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from skillmix_utils.core.config import StudyConfig, load_study_config
from skillmix_utils.core.errors import SkillmixError, exit_status_of
from skillmix_utils.core.folder_lock import output_lock
from skillmix_utils.grid import grid_points, link_shared_data, link_study_ledger  # noqa: F401  (grid_points: public)
from skillmix_utils.llm.cost import format_usd
from skillmix_utils.stages import datagen, evaluate
from skillmix_utils.stages.preflight import check_study
from skillmix_utils.stages.progress import StageProgress, in_kernel, watch_file

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "python3"

# What each numbered notebook reads from the config, which stages it consumes, which
# config section switches it off, and the outputs that show it finished. Notebooks with other
# numbers (a user's 06_*.ipynb) read everything and follow every earlier stage.
STAGE_FIELDS = {"01": None, "02": ["catalog", "scoring", "data"], "03": ["train"],
                "04": ["scoring", "evaluation"], "05": None}
STAGE_DEPENDS = {"01": [], "02": [], "03": ["02"], "04": ["03"], "05": ["02", "03", "04"]}
STAGE_SECTION = {"02": "data", "03": "train", "04": "evaluation"}
STAGE_OUTPUTS = {"02": ["data/data_card.json"], "03": ["train/*/train_summary.json"],
                 "04": ["eval/tables/metrics.csv"], "05": ["report.html"]}
SHARED_PREFIXES = ("data.", "catalog.", "scoring.")
# Config fields that change neither what a stage makes nor where: left out of fingerprints.
NOT_FINGERPRINTED = {"description", "concurrency", "budget_usd", "run_budget_usd", "output_dir",
                     "grid"}


# --- what notebooks call ----------------------------------------------------------------------

def parse_overrides(overrides) -> dict:
    """The `overrides` notebook parameter (a JSON/YAML mapping as a string, or a dict) as a dict.

    >>> parse_overrides('{"evaluation.n_combinations": 2}')
    {'evaluation.n_combinations': 2}
    >>> parse_overrides("")
    {}
    """
    if isinstance(overrides, dict):
        return dict(overrides)
    if overrides is None or not str(overrides).strip():
        return {}
    try:
        value = yaml.safe_load(str(overrides))
    except yaml.YAMLError as exc:
        raise SkillmixError(f"not a JSON/YAML mapping ({exc.__class__.__name__})", field="overrides")
    if not isinstance(value, dict):
        raise SkillmixError('must be a mapping of dotted fields to values, e.g. {"evaluation.ks": [1, 2]}',
                            field="overrides")
    return value


def notebook_config(config_path: str, overrides="", output_dir: str = "") -> StudyConfig:
    """Load and validate the study config a notebook was given (its `parameters` cell).

    The config path may be given from the project root or from `notebooks/`; where the study
    writes follows `load_study_config`'s one rule, as for the CLI.
    Example: ``cfg = notebook_config("../configs/demo.yaml", '{"evaluation.ks": [1, 2]}')``.
    """
    config_path = Path(config_path).expanduser()
    if not config_path.is_absolute() and not config_path.exists():
        # "../configs/demo.yaml" from notebooks/ and "configs/demo.yaml" from the root both work.
        for base in (NOTEBOOKS_DIR, NOTEBOOKS_DIR.parent):
            if (base / config_path).exists():
                config_path = base / config_path
                break
    over = parse_overrides(overrides)
    if output_dir:
        over["output_dir"] = output_dir
    cfg = load_study_config(config_path, overrides=over)
    quiet_notebook(cfg.out / "logs" / "notebooks.log")
    return cfg


def quiet_notebook(log_path: Path) -> None:
    """Inside a Jupyter kernel: library warnings and logs go to `log_path`, and the libraries'
    own progress bars (weights loading, dataset saving, GGUF conversion) are off, so a notebook
    shows one compact progress display per stage (progress.py) and nothing else on stderr.
    Outside a kernel (the command line, tests) nothing changes."""
    import logging


    if not in_kernel():
        return
    for var in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ[var] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logging.captureWarnings(True)
    for name in ("py.warnings", "transformers", "datasets", "peft", "accelerate", "skillmix"):
        logger = logging.getLogger(name)
        if not any(getattr(h, "baseFilename", None) == str(log_path) for h in logger.handlers):
            for h in list(logger.handlers):
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                    logger.removeHandler(h)
            logger.addHandler(handler)
        logger.propagate = False


def save_resolved_config(cfg: StudyConfig) -> Path:
    """Write `cfg` (defaults filled in, output_dir absolute) to `<out>/config.yaml`; returns it."""
    path = cfg.out / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    return path


_STEP_LINE = re.compile(r"\[train\] step (\d+)/(\d+) loss ([0-9.naninf]+)")


def launch_training(cfg: StudyConfig, restart: bool = False, echo: bool | None = None) -> int:
    """Run `skillmix train` on `cfg` in a subprocess (never inside a notebook kernel); its whole
    output goes to `train/train.log`. Shows one progress line (step, loss, ETA) and the run's
    "[train]" notes; `echo=True` (default outside a notebook) streams every line as well.
    Raises SkillmixError naming the log, with its last lines, when it fails. Returns 0."""

    config = save_resolved_config(cfg)
    log = cfg.out / "train" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    echo = (not in_kernel()) if echo is None else echo
    cmd = [sys.executable, "-m", "skillmix_utils.cli", "train", str(config)] + (["--restart"] if restart else [])
    print("$", " ".join(cmd), f"  (output: {log})", flush=True)
    progress = StageProgress("03", cfg.out, stream=sys.stdout)
    phase, tail = None, []
    with open(log, "a", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in proc.stdout:
            fh.write(line)
            tail = (tail + [line.rstrip()])[-15:]
            step = _STEP_LINE.search(line)
            if echo:
                print(line, end="", flush=True)
            elif step is None and line.startswith("[train]"):
                print(line, end="", flush=True)
            if step:
                done, total = int(step.group(1)), int(step.group(2))
                if phase is None:
                    phase = progress.phase(f"train {cfg.train.mode}: step (loss {step.group(3)})",
                                           total, unit="steps")
                    progress.phases[phase]["done"] = done - 1
                progress.phases[phase]["name"] = f"train {cfg.train.mode} (loss {step.group(3)})"
                progress.advance(done - progress.phases[phase]["done"], index=phase)
        rc = proc.wait()
    progress.close()
    if rc != 0:
        last = "\n".join(tail)
        raise SkillmixError(f"training failed with exit status {rc}; see {log}; last lines:\n{last}",
                            field="train")
    return 0


# --- stages and their markers -------------------------------------------------------------------

@dataclass
class Stage:
    id: str          # "02"
    path: Path       # notebooks/02_data_generation.ipynb

    @property
    def name(self) -> str:
        return self.path.stem


def discover(notebooks_dir: Path | None = None) -> list[Stage]:
    """The numbered notebooks `NN_*.ipynb` of a folder, in order."""
    folder = Path(notebooks_dir or NOTEBOOKS_DIR)
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("."))
    if not paths:
        raise SkillmixError("no numbered notebooks (NN_*.ipynb) found", file=str(folder))
    return [Stage(p.name[:2], p) for p in paths]


def _notebook_hash(path: Path) -> str:
    nb = json.loads(path.read_text())
    cells = [(c.get("cell_type"), "".join(c.get("source", ""))) for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def fingerprints(cfg: StudyConfig, stages: list[Stage]) -> dict[str, str]:
    """A fingerprint per stage: its config fields, its notebook, and its inputs' fingerprints."""
    tree = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in NOT_FINGERPRINTED}
    out: dict[str, str] = {}
    for i, st in enumerate(stages):
        fields = STAGE_FIELDS.get(st.id)
        part = tree if fields is None else {f: tree.get(f) for f in fields}
        deps = STAGE_DEPENDS.get(st.id, [s.id for s in stages[:i]])
        blob = json.dumps({"config": part, "notebook": _notebook_hash(st.path),
                           "inputs": {d: out.get(d) for d in deps}}, sort_keys=True, default=str)
        out[st.id] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def _marker(out: Path, st: Stage) -> Path:
    return out / ".runner" / f"{st.name}.done.json"


def status(cfg: StudyConfig, st: Stage, fingerprint: str) -> str | None:
    """None when the stage is complete for this fingerprint, else the reason to run it."""
    marker = _marker(cfg.out, st)
    if not marker.exists():
        return "not run yet"
    try:
        done = json.loads(marker.read_text())
    except ValueError:
        return "unreadable done marker"
    if done.get("fingerprint") != fingerprint:
        return "config, notebook or an input stage changed"
    missing = [g for g in STAGE_OUTPUTS.get(st.id, []) if not list(cfg.out.glob(g))]
    if missing:
        return f"outputs missing ({', '.join(missing)})"
    return None


def disabled(cfg: StudyConfig, st: Stage) -> str | None:
    """Why the config switches this stage off, or None."""
    section = STAGE_SECTION.get(st.id)
    if section is None:
        return None
    spec = getattr(cfg, section)
    if spec is None:
        return f"no {section} section in the config"
    if not spec.enabled:
        return f"{section}.enabled is false"
    return None


def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text or "")).strip()
    return text.splitlines()[0] if text else ""


class StageFailure(str):
    """A notebook's one-line error, with the exit status of the skillmix error it raised
    (errors.py: 1 failed items, 3 budget, 4 refused key, ...; 1 for any other error)."""

    def __new__(cls, text: str, status: int | None = None):
        obj = super().__new__(cls, text)
        obj.status = status or 1
        return obj


def execute(st: Stage, cfg: StudyConfig, config_path: Path, overrides: dict, fingerprint: str,
            progress: str, estimate_usd: float | None = None) -> str | None:
    """Run one notebook into `<out>/notebooks/`; writes the done marker on success.
    Returns None on success, else a one-line error."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    target = cfg.out / "notebooks" / st.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    marker = _marker(cfg.out, st)
    marker.unlink(missing_ok=True)
    params = {"config_path": str(config_path), "output_dir": str(cfg.out),
              "overrides": json.dumps({k: v for k, v in overrides.items() if k != "output_dir"})}
    start = time.time()

    try:
        # The stage inside the notebook writes .runner/progress.json; it is drawn here as it
        # moves (bars on a TTY, a line every SKILLMIX_PROGRESS_EVERY seconds otherwise).
        with watch_file(cfg.out / ".runner" / "progress.json", st.id) as watch:
            pm.execute_notebook(str(st.path), str(target), parameters=params, kernel_name=KERNEL,
                                cwd=str(Path.cwd()), progress_bar=False, log_output=False,
                                # The kernel's own start-up chatter (a TCP warning) is noise here.
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as err:
        return StageFailure(
            f"notebook {st.path.name} failed in cell {err.exec_count or err.cell_index}: "
            f"{err.ename}: {_first_line(err.evalue)} (executed copy with the error: {target})",
            exit_status_of(err.ename))
    except Exception as err:  # kernel died, could not start, ...
        return f"notebook {st.path.name} failed: {err.__class__.__name__}: {_first_line(str(err))} ({target})"
    seconds = time.time() - start
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"stage": st.id, "notebook": st.path.name, "fingerprint": fingerprint,
                                  "seconds": round(seconds, 1), "executed": str(target),
                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))
    spent = (f"; API cost ${watch.spent_usd:.4f}" + (f" (estimated at most ${estimate_usd:.2f})"
                                                     if estimate_usd else "")) \
        if (watch.spent_usd or estimate_usd) else ""
    print(f"{progress} {st.name}: done in {_duration(seconds)}{spent}", flush=True)
    return None


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


# --- the command --------------------------------------------------------------------------------

@dataclass
class DryRunTotal:
    """What a dry run adds up over its stages: estimated dollars, whether some model has no
    price, and the reuse keys of the requests counted (`plan.Plan.seen`), shared by a grid's
    runs so that a request the response cache would answer is counted once."""
    usd: float = 0.0
    unpriced: bool = False
    seen: set = field(default_factory=set)


def stage_plan(cfg: StudyConfig, st: Stage, seen: set | None = None):
    """The dry-run plan (`plan.Plan`) of a stage that calls models (02, 04), else None."""
    if st.id == "02":
        return datagen.dry_run_plan(cfg, seen)
    if st.id == "04":
        return evaluate.dry_run_plan(cfg, seen=seen)
    return None


def _dry_run_costs(cfg: StudyConfig, st: Stage, total: DryRunTotal) -> None:
    """Print a stage's own dry-run plan and add it to `total`."""
    try:
        plan = stage_plan(cfg, st, total.seen)
    except (ImportError, SkillmixError) as exc:
        print(f"    (no cost estimate: {exc})")
        return
    if plan is not None:
        print(plan.render())
        usd, unpriced = plan.total()
        total.usd += usd
        total.unpriced |= unpriced


def _quiet_estimate(cfg: StudyConfig, st: Stage) -> float:
    """The stage's dry-run estimate in USD, computed without printing its plan (0 if none)."""
    try:
        plan = stage_plan(cfg, st)
    except Exception:  # noqa: BLE001 - an estimate is a courtesy; the stage itself reports
        return 0.0
    return plan.total()[0] if plan is not None else 0.0


def _run_list(label: str, cfg: StudyConfig, config_path: Path, overrides: dict, stages: list[Stage],
              wanted: set[str] | None, dry_run: bool, force: bool, counter: list[int], total: int,
              costs: DryRunTotal) -> int:
    fps = fingerprints(cfg, stages)
    for st in stages:
        if wanted is not None and st.id not in wanted:
            continue
        counter[0] += 1
        progress = f"[{counter[0]}/{total}]{' ' + label if label else ''}"
        off = disabled(cfg, st)
        if off:
            print(f"{progress} {st.name}: skipped ({off})", flush=True)
            continue
        reason = "forced" if force else status(cfg, st, fps[st.id])
        if reason is None:
            print(f"{progress} {st.name}: up to date, skipped (--force re-runs it)", flush=True)
            continue
        if dry_run:
            print(f"{progress} {st.name}: would run ({reason}) -> {cfg.out / 'notebooks' / st.path.name}")
            _dry_run_costs(cfg, st, costs)
            continue
        estimate = _quiet_estimate(cfg, st)
        note = f"; estimated API cost at most ${estimate:,.2f}" if estimate else ""
        print(f"{progress} {st.name}: running ({reason}{note}) ...", flush=True)
        error = execute(st, cfg, config_path, overrides, fps[st.id], progress, estimate)
        if error:
            print(f"skillmix: error: {error}", file=sys.stderr, flush=True)
            return getattr(error, "status", 1)
    return 0


def _print_total(total: DryRunTotal, grid: bool = False) -> None:
    note = ("; a request repeated by a later grid run (the same model asked the same thing, as "
            "for the base students) is counted once: the response cache answers it" if grid else "")
    print(f"dry run: estimated API cost of what would run: {format_usd(total.usd)}"
          f"{' + unpriced models' if total.unpriced else ''} (an upper bound: output at "
          f"max_tokens, cache not consulted{note})")


STAGE_SECTIONS = {"02": "data", "03": "train", "04": "evaluation"}


def run_study(config_path, stages=None, dry_run: bool = False, overrides: dict | None = None,
              force: bool = False, notebooks_dir=None) -> int:
    """Execute the numbered notebooks for a study config; returns the exit status (0 ok, else
    the status of the first notebook's error: errors.py). Bad config, overrides, paths, pools,
    keys or adapters raise SkillmixError before anything runs or is written; a folder in use by
    another run raises FolderInUse (status 5).

    Example: ``run_study("configs/demo.yaml", stages=["04", "05"])``.
    """

    cfg = notebook_config(str(Path(config_path).resolve()), dict(overrides or {}))
    wanted = {str(s).zfill(2)[:2] for s in stages} if stages else set(STAGE_SECTIONS)
    sections = [STAGE_SECTIONS[s] for s in sorted(wanted) if s in STAGE_SECTIONS]
    runs = [cfg]
    for label, point in grid_points(cfg.grid) if cfg.grid else []:
        try:
            runs.append(notebook_config(str(Path(config_path).resolve()),
                                        {**(overrides or {}), "grid": {}, **point}))
        except SkillmixError as exc:
            raise SkillmixError(f"grid run {label}: {exc}", field="grid") from None
    for c in runs:
        enabled = [s for s in sections if getattr(c, s) is not None and getattr(c, s).enabled]
        check_study(c, config_path, enabled, keys=not dry_run)
    if dry_run:
        return _run_study(config_path, stages, dry_run, overrides, force, notebooks_dir)
    with output_lock(cfg.out, command=f"skillmix run {config_path}"):
        return _run_study(config_path, stages, dry_run, overrides, force, notebooks_dir)


def _run_study(config_path, stages=None, dry_run: bool = False, overrides: dict | None = None,
               force: bool = False, notebooks_dir=None) -> int:
    """run_study's work, once its checks passed and its lock is held."""
    config_path = Path(config_path).resolve()
    overrides = dict(overrides or {})
    cfg = notebook_config(str(config_path), overrides)          # validates; raises SkillmixError
    all_stages = discover(notebooks_dir)
    wanted = None
    if stages:
        wanted = {str(s).zfill(2)[:2] for s in stages}
        unknown = wanted - {s.id for s in all_stages}
        if unknown:
            known = ", ".join(s.id for s in all_stages)
            raise SkillmixError(f"no notebook numbered {', '.join(sorted(unknown))} (have {known})",
                                field="--stages")
    out = cfg.out
    print(f"skillmix run: study {cfg.name!r} -> {out}{' (dry run)' if dry_run else ''}", flush=True)

    if not cfg.grid:
        if not dry_run:
            save_resolved_config(cfg)
        total = len([s for s in all_stages if wanted is None or s.id in wanted])
        costs = DryRunTotal()
        rc = _run_list("", cfg, config_path, overrides, all_stages, wanted, dry_run, force, [0], total, costs)
        if dry_run:
            _print_total(costs)
        return rc

    points = grid_points(cfg.grid)
    shared = not any(k.strip().startswith(SHARED_PREFIXES) for key in cfg.grid for k in key.split(","))
    base_over = {**overrides, "grid": {}}
    runs = []
    for label, point in points:
        run_over = {**base_over, **point, "output_dir": str(out / "grid" / label)}
        try:
            runs.append((label, run_over, notebook_config(str(config_path), run_over)))
        except SkillmixError as exc:
            raise SkillmixError(f"grid run {label}: {exc}", field="grid") from None
    front = [s for s in all_stages if s.id in ("01", "02")] if shared else []
    rest = [s for s in all_stages if s not in front]
    count = lambda sts: len([s for s in sts if wanted is None or s.id in wanted])
    total = count(front) + count(rest) * len(runs)
    print(f"grid: {len(runs)} runs ({', '.join(l for l, _, _ in runs)})"
          f"{'; notebooks 01-02 shared' if front else ''}", flush=True)
    counter, costs = [0], DryRunTotal()
    if front:
        top = notebook_config(str(config_path), {**base_over, "output_dir": str(out)})
        if not dry_run:
            save_resolved_config(top)
        rc = _run_list("shared", top, config_path, {**base_over, "output_dir": str(out)}, front,
                       wanted, dry_run, force, counter, total, costs)
        if rc:
            return rc
    for label, run_over, run_cfg in runs:
        if not dry_run:
            if front:
                link_shared_data(out, run_cfg.out)
            link_study_ledger(out, run_cfg.out)     # budget_usd caps the grid, not each run
            save_resolved_config(run_cfg)
        # The shared stages' fingerprints feed the later ones, so that new data re-runs them.
        stages_here = front + rest if front else rest
        fps_wanted = wanted if wanted is not None else {s.id for s in rest}
        rc = _run_list(label, run_cfg, config_path, run_over, stages_here,
                       {s for s in fps_wanted if s in {r.id for r in rest}}, dry_run, force, counter, total,
                       costs)
        if rc:
            return rc
    if dry_run:
        _print_total(costs, grid=True)
    else:
        # heavy: the summary draws figures (matplotlib, seaborn, scipy), only at a grid's end
        from skillmix_utils.present.grid_summary import summarize_grid

        written = summarize_grid(out, [(label, c) for label, _, c in runs])
        if written:
            print(f"grid summary: {out / 'grid' / 'metrics.csv'}, tables in {out / 'tables'}", flush=True)
    return 0
