"""The report's "Beyond the paper" section (template data/templates/beyond_paper.html.j2):
human agreement, held-out gain per partition, scaling, the parrot line, imported reference
results. Each part appears only when its table exists under the study's folder; the figures
(partition_gain, scaling_*, uncommon_skills) are embedded with the report's other figures."""
from __future__ import annotations

from pathlib import Path


def beyond_sections(out_dir) -> list[dict]:
    """[{title, note, table (HTML)}] for what `out_dir` holds, in the order of issue 13."""
    import pandas as pd
    import yaml

    from .human.agreement import summary_frame
    from .paper_tables import read_table
    from .report import _html_table

    out = Path(out_dir)
    parts = []
    human = read_table(out / "human" / "agreement.csv")
    if not human.empty:
        parts.append({"title": "Human grading: agreement with the LLM graders and between raters",
                      "note": "Blind grades from `skillmix human`; Cohen's kappa with a 95% bootstrap "
                              "interval over texts, raw agreement and the confusion counts (a's label "
                              "first). LLM points are the metric tables' (vote, length by the sentence "
                              "counter, explicit-name rule).",
                      "table": _html_table(summary_frame(human), "data metrics")})
    gain = read_table(out / "tables" / "partition_gain.csv")
    if not gain.empty:
        parts.append({"title": "Held-out gain per partition",
                      "note": "Tuned minus base on the same held-out combinations of each partition, "
                              "95% paired bootstrap interval.",
                      "table": _html_table(gain, "data metrics")})
    scaling = read_table(out / "tables" / "scaling.csv")
    if not scaling.empty:
        parts.append({"title": "Scaling: success by k and by training-set size",
                      "note": "Ratio of Full Marks on held-out skills and topics per training mix and k.",
                      "table": _html_table(scaling, "data metrics")})
    parrot = read_table(out / "tables" / "parrot_line.csv")
    if not parrot.empty:
        parts.append({"title": "Skill subset and the stochastic-parrot line",
                      "note": "P = min(1, D / (C(N, k) T)): the most a model that only repeats "
                              "combinations seen in D training texts can score (uncommon.py).",
                      "table": _html_table(parrot, "data metrics")})
    cfg_path = out / "config.yaml"
    if cfg_path.exists():
        try:
            desc = (yaml.safe_load(cfg_path.read_text()) or {}).get("description") or ""
        except yaml.YAMLError:
            desc = ""
        if desc.startswith("imported from the Skill-Mix reference results"):
            parts.append({"title": "Imported reference results", "note": desc + ": texts, "
                          "gradings and metrics read by `skillmix import-reference`.",
                          "table": _html_table(pd.DataFrame(), "data")})
    return parts
