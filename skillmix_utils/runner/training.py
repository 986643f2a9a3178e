"""Notebook 03's training: the launcher run as a subprocess, its step lines turned into live progress."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from skillmix_utils.core.config import StudyConfig, write_resolved_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.progress import StageProgress, in_kernel
from skillmix_utils.stages.train.preflight import check_mix

_STEP_LINE = re.compile(r"\[train\] step (\d+)/(\d+) loss ([0-9.naninf]+)")


def launch_training(cfg: StudyConfig, restart: bool = False, echo: bool | None = None) -> int:
    """Run `skillmix train` on `cfg` in a subprocess (never inside a notebook kernel); its whole
    output goes to `train/train.log`. Shows one progress line (step, loss, ETA) and the run's
    "[train]" notes; `echo=True` (default outside a notebook) streams every line as well.
    Raises SkillmixError naming the log, with its last lines, when it fails. Returns 0."""

    if cfg.train.enabled:
        check_mix(cfg)     # an empty mix is said here, not by a trainer after loading a model
    config = write_resolved_config(cfg)
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
