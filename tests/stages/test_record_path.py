"""How many of the package's modules one evaluation record passes through, from its sampled
combination to the report (issue 18: at most 20). A module counts when one of its functions is
called with, or returns, the record or its combination (alone or in a list, dict or store)."""
from __future__ import annotations

import sys
from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.records import Combination, TextRecord
from skillmix_utils.present.report import build_report
from skillmix_utils.stages.evaluate import run_evaluation

from .scripted import study_tree

PKG = str(Path(__file__).resolve().parents[2] / "skillmix_utils")
RECORD_TYPES = (TextRecord, Combination)


def _carries(value, depth=0) -> bool:
    if isinstance(value, RECORD_TYPES):
        return True
    if depth > 1:
        return False
    if isinstance(value, (list, tuple)) and value:
        return _carries(value[0], depth + 1) or _carries(value[-1], depth + 1)
    if isinstance(value, dict) and value:
        v = next(iter(value.values()))
        return _carries(v, depth + 1)
    return False


def _module(filename: str) -> str:
    rel = Path(filename).resolve().relative_to(Path(PKG).parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def test_one_record_passes_through_at_most_20_modules(api_env, scripted_server):
    cfg = StudyConfig.model_validate(study_tree(scripted_server, api_env / "out"))
    seen: set[str] = set()

    def profile(frame, event, arg):
        name = frame.f_code.co_filename
        if not name.startswith(PKG):
            return
        if event == "call" and any(_carries(v) for v in frame.f_locals.values()):
            seen.add(_module(name))
        elif event == "return" and _carries(arg):
            seen.add(_module(name))

    sys.setprofile(profile)
    try:
        run_evaluation(cfg)
        build_report(cfg.out)
    finally:
        sys.setprofile(None)
    assert "skillmix_utils.core.sampling" in seen and "skillmix_utils.present.report" in seen, seen
    print(f"\nan evaluation record passes through {len(seen)} modules:\n  " + "\n  ".join(sorted(seen)))
    assert len(seen) <= 20, sorted(seen)
