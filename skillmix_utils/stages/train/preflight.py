"""Before the trainer starts: is there anything to train on? An empty training mix (the graders
kept no text of the mix's k, as a 135M judge often does) is said as what it is, with the counts
from the data card and what to change, instead of a trainer error about max_length after the
model has loaded. Called by `run_training` and by notebook 03's launcher (runner/training.py)."""
from __future__ import annotations

import json

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.train.formatting import find_mix, load_rows, mix_name


def check_mix(cfg: StudyConfig) -> int:
    """The number of rows in cfg.train's mix; raises SkillmixError when there are none."""
    t = cfg.train
    path = find_mix(cfg.out, t.data_mix, t.subsample)
    rows = load_rows(path)
    if rows:
        return len(rows)
    ks = sorted(set(t.data_mix))
    counts = ""
    try:
        card = json.loads((cfg.out / "data" / "data_card.json").read_text())
        per_k = card.get("per_k", {})
        parts = [f"k = {k}: {per_k[str(k)]['kept']} of {per_k[str(k)]['graded']}"
                 for k in ks if str(k) in per_k]
        graded = sum(per_k[str(k)]["graded"] for k in ks if str(k) in per_k)
        counts = (f"the graders kept 0 of the {graded} texts of k = {', '.join(map(str, ks))}"
                  f" ({'; '.join(parts)}; {cfg.out / 'data' / 'data_card.md'})")
    except (OSError, ValueError, KeyError, TypeError):
        counts = "no text of its k was kept"
    raise SkillmixError(
        f"the training mix {mix_name(t.data_mix, t.subsample)} is empty: {counts}. Nothing to "
        "train on: raise data.counts (a small judge keeps few texts: the embedded one about 1 "
        "k = 3 text in 8 and fewer of k = 1, 2), use a stronger teacher or grader, or set "
        "train.enabled: false", file=str(path), field="train.subsample" if t.subsample else "train.data_mix")
