"""Which notebooks a study has, what each depends on, and its done-marker: a fingerprint of the
config sections it reads, its own cells and the stages it consumes (see runner/__init__.py)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.provenance import CHECKOUT

NOTEBOOKS_DIR = CHECKOUT / "notebooks"


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
                     "grid", "cluster"}


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


def wanted_stages(stages, all_stages: list[Stage]) -> set[str] | None:
    """The notebook ids `--stages` asks for (None: all); an unknown one raises SkillmixError."""
    if not stages:
        return None
    wanted = {str(s).zfill(2)[:2] for s in stages}
    unknown = wanted - {s.id for s in all_stages}
    if unknown:
        known = ", ".join(s.id for s in all_stages)
        raise SkillmixError(f"no notebook numbered {', '.join(sorted(unknown))} (have {known})",
                            field="--stages")
    return wanted


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


def marker_path(out: Path, st: Stage) -> Path:
    return out / ".runner" / f"{st.name}.done.json"


def status(cfg: StudyConfig, st: Stage, fingerprint: str) -> str | None:
    """None when the stage is complete for this fingerprint, else the reason to run it."""
    marker = marker_path(cfg.out, st)
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
