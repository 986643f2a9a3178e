"""Evaluation on a subset of skills (the paper's "uncommon skills" analysis) and the
"stochastic parrot" line drawn beside it.

`evaluation.skill_subset` in a study config (configs/uncommon-skills.yaml):

    skill_subset:
      name: uncommon
      frequency_file: my_frequencies.csv    # CSV: skill,frequency (share of corpus texts, 0..1)
      max_frequency: 0.05                   # keep skills below 5% (the paper's threshold)
      parrot_corpus_texts: 1.0e+9           # optional: D for the parrot line (see below)
    # or: names: [metaphor, red herring, ...]

Combinations of each setting are then drawn from the setting's skills inside the subset (and
all of its topics); their records carry the setting `<setting>:<name>` (e.g.
`held_out:uncommon`), so they never mix with a full evaluation's texts. The format of the
frequency file, and a tiny example, is `data/skill_frequencies_example.csv`; the project ships
no corpus counts. Skills of the catalog missing from the file are left out (and counted);
rows naming skills the catalog lacks are ignored, so one file can serve several catalogs.

**The stochastic-parrot line** (`parrot_probability`). A model that can only reproduce
combinations it has seen succeeds on a (k-skill set, topic) combination only if some text of
its training corpus showed exactly that combination. There are C(N, k) * T such combinations
(N skills in the pool, T topics), drawn uniformly; a corpus of D texts shows at most D of them
(counting each text as one combination of the pool, the parrot's best case). So the parrot's
expected success rate is at most

    P_parrot(k, N, T, D) = min(1, D / (C(N, k) * T)).

This is an upper bound (it assumes every corpus text shows a distinct combination of the
pool's skills); restricting to uncommon skills only makes it looser for the parrot, since such
skills appear in few texts. D is the user's estimate of the number of texts in the corpus;
without `parrot_corpus_texts` no line is drawn. Success above the line is evidence of
composing combinations not seen in training.
"""
from __future__ import annotations

import math
from pathlib import Path

from skillmix_utils.core.catalog import restrict_catalog
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.present.figures import save_figure
from skillmix_utils.present.paper_tables import main_grader, read_table
from skillmix_utils.present.scaling import errorbar


def parrot_probability(k: int, n_skills: int, n_topics: int, corpus_texts: float) -> float:
    """min(1, D / (C(N, k) * T)): the most a model that only repeats seen combinations can score.

    >>> round(parrot_probability(5, 101, 100, 1e9), 4)     # C(101, 5) * 100 = 7.9e9
    0.1262
    >>> parrot_probability(1, 10, 10, 1e9)
    1.0
    """
    if k > n_skills:
        raise SkillmixError(f"k={k} is larger than the {n_skills} skills of the pool", field="k")
    return min(1.0, corpus_texts / (math.comb(n_skills, k) * n_topics))


def parrot_rows(cfg) -> list[dict]:
    """One row per setting and k: the pool sizes and the parrot probability (needs
    `evaluation.skill_subset.parrot_corpus_texts`)."""
    ev = cfg.evaluation
    if ev is None or ev.skill_subset is None or ev.skill_subset.parrot_corpus_texts is None:
        return []
    catalog = restrict_catalog(cfg.catalog.load(), ev.skill_subset)
    rows = []
    for setting in ev.settings:
        n, t = len(catalog.skills_in(setting)), len(catalog.topics_in(setting))
        for k in ev.ks:
            if k <= n:
                rows.append({"setting": f"{setting}:{ev.skill_subset.name}", "k": k, "n_skills": n,
                             "n_topics": t, "corpus_texts": ev.skill_subset.parrot_corpus_texts,
                             "parrot_probability": parrot_probability(
                                 k, n, t, ev.skill_subset.parrot_corpus_texts)})
    return rows


def write_uncommon(cfg) -> dict[str, Path]:
    """For a study with a skill subset: tables/parrot_line.csv and
    figures/uncommon_skills.png (success vs k on the subset, the parrot line per k)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd


    ev = cfg.evaluation
    if ev is None or ev.skill_subset is None:
        return {}
    metrics = read_table(cfg.out / "eval" / "tables" / "metrics.csv")
    parrot = pd.DataFrame(parrot_rows(cfg))
    paths = {}
    if not parrot.empty:
        (cfg.out / "tables").mkdir(parents=True, exist_ok=True)
        paths["parrot_line"] = cfg.out / "tables" / "parrot_line.csv"
        parrot.to_csv(paths["parrot_line"], index=False)
    if metrics.empty:
        return paths
    g = main_grader(metrics)
    m = metrics[(metrics["grader"] == g) & metrics["setting"].str.contains(":", regex=False)]
    if m.empty:
        return paths
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (student, setting), sub in m.groupby(["student", "setting"], sort=False):
        sub = sub.sort_values("k")
        errorbar(ax, sub["k"], sub, "ratio_full_marks", label=f"{student} ({setting})")
    if not parrot.empty:
        for setting, sub in parrot.groupby("setting"):
            ax.plot(sub["k"], sub["parrot_probability"], ls=":", color="crimson", marker="_",
                    label=f"stochastic parrot bound ({setting})")
    ax.set_xlabel("k (skills per text)")
    ax.set_ylabel("ratio full marks")
    ax.set_xticks(sorted(m["k"].unique()))
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Skill subset '{ev.skill_subset.name}', grader {g}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.update({p.name: p for p in save_figure(fig, cfg.out / "figures", "uncommon_skills")})
    return paths
