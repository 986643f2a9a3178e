"""What a notebook's first cell calls: its parameters (`config_path`, `overrides`, `output_dir`) as
a validated config, with library noise sent to the study's log instead of the notebook."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from skillmix_utils.core.config import StudyConfig, load_study_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.runner.markers import NOTEBOOKS_DIR
from skillmix_utils.stages.progress import in_kernel


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
    """Inside a Jupyter kernel (JupyterLab's as well as papermill's): every library's warnings and
    log lines, and skillmix's own info lines ("writing 20 texts"), go to `log_path`, and the
    libraries' own progress bars (weights loading, dataset saving, GGUF conversion) are off, so
    a notebook shows one compact progress display per stage (progress.py), its tables and plots,
    and nothing on stderr. Outside a kernel (the command line, tests) nothing changes.

    The file handler sits on the root logger, so a library nobody listed (bitsandbytes' "Failed
    to load CPU gemm_4bit_forward ... kernels" at import) lands in the log too; the libraries
    that print through a handler of their own (transformers, datasets) lose it. Calling it
    again (a re-run cell, another study) moves the log to the new path."""
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
    handler._skillmix_notebook_log = True
    logging.captureWarnings(True)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_skillmix_notebook_log", False):
            root.removeHandler(h)
            h.close()
        elif isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            root.removeHandler(h)
    root.addHandler(handler)
    # Loggers that print through a stream handler of their own and do not propagate.
    for name in ("py.warnings", "transformers", "datasets", "peft", "accelerate", "bitsandbytes"):
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                logger.removeHandler(h)
        logger.propagate = True
    logging.getLogger("skillmix").setLevel(logging.INFO)   # StageRun.say's lines
