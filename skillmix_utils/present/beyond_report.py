"""The report's "Beyond the paper" section (template data/templates/beyond_paper.html.j2):
human agreement, held-out gain per partition, scaling, the parrot line, imported reference
results. Each part appears only when its table exists under the study's folder; the figures
(partition_gain, scaling_*, uncommon_skills) are embedded with the report's other figures."""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.present.html import html_table
from skillmix_utils.present.human.agreement import summary_frame
from skillmix_utils.present.paper_tables import read_table


def _human_summary(table):

    return summary_frame(table)


# (table under the study folder, section title, note, how to shape the table or None), in the
# order of issue 13.
TABLE_PARTS = [
    ("human/agreement.csv", "Human grading: agreement with the LLM graders and between raters",
     "Blind grades from `skillmix human`; Cohen's kappa with a 95% bootstrap interval over texts, "
     "raw agreement and the confusion counts (a's label first). LLM points are the metric "
     "tables' (vote, length by the sentence counter, explicit-name rule).", _human_summary),
    ("tables/partition_gain.csv", "Held-out gain per partition",
     "Tuned minus base on the same held-out combinations of each partition, 95% paired "
     "bootstrap interval.", None),
    ("tables/scaling.csv", "Scaling: success by k and by training-set size",
     "Ratio of Full Marks on held-out skills and topics per training mix and k.", None),
    ("tables/parrot_line.csv", "Skill subset and the stochastic-parrot line",
     "P = min(1, D / (C(N, k) T)): the most a model that only repeats combinations seen in D "
     "training texts can score (uncommon.py).", None),
]


def beyond_sections(out_dir) -> list[dict]:
    """[{title, note, table (HTML)}] for what `out_dir` holds, in the order of issue 13."""
    import pandas as pd
    import yaml


    out = Path(out_dir)
    parts = []
    for rel, title, note, shape in TABLE_PARTS:
        table = read_table(out / rel)
        if not table.empty:
            parts.append({"title": title, "note": note,
                          "table": html_table(shape(table) if shape else table, "data metrics")})
    cfg_path = out / "config.yaml"
    if cfg_path.exists():
        try:
            desc = (yaml.safe_load(cfg_path.read_text()) or {}).get("description") or ""
        except yaml.YAMLError:
            desc = ""
        if desc.startswith("imported from the Skill-Mix reference results"):
            parts.append({"title": "Imported reference results", "note": desc + ": texts, "
                          "gradings and metrics read by `skillmix import-reference`.",
                          "table": html_table(pd.DataFrame(), "data")})
    return parts
