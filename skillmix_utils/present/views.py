"""What the notebooks and the report show: records, catalog and combinations as tables, the
metric and study definitions, figure captions in words, the local-judge banner, the data card's
counts."""
from __future__ import annotations

import pandas as pd

from skillmix_utils.core.numbers import is_local_judge

METRIC_DEFINITIONS = {
    "Ratio of Full Marks": "share of combinations whose best generation earned all k + 3 points "
                           "(every skill, the topic, makes sense, the length limit)",
    "Ratio of All Skills": "share of combinations whose best generation earned all k skill points "
                           "and at least 2 of the other 3",
    "Skills Fraction": "mean fraction of the k skill points earned, counting a generation only when "
                       "it earned all 3 other points (else 0)",
    "± (SEM)": "one standard error of the mean over the n combinations of the cell; n is in parentheses",
    "[low, high]": "95% interval: Wilson's score interval where each combination scores 0 or 1 (honest at 0 of n, where the SEM is 0), else a bootstrap over combinations",
    "point": "the majority vote of a grader's rounds per criterion; the length point is always the "
             "deterministic sentence count, naming a skill verbatim loses that skill's point, and an "
             "empty answer earns neither the makes-sense nor the length point",
}
METRIC_DEFINITIONS_MD = "\n".join(f"* **{k}**: {v}" for k, v in METRIC_DEFINITIONS.items())
# The study's own words (docs/protocol.md §1, §4, §8), shown where the report uses them.
STUDY_DEFINITIONS = {
    "k": "how many skills one text must show at once; a combination is k skills and one topic, "
         "drawn at random from the setting's pools",
    "train (setting)": "SKILL-MIX(train): training skills and training topics, the pools the "
                       "fine-tuning texts were drawn from (in the paper: the 53 literary and "
                       "rhetorical skills, half of the topics)",
    "held_out (setting)": "SKILL-MIX(held-out): held-out skills and held-out topics, never seen "
                          "in the fine-tuning texts (in the paper: the 48 skills of every other "
                          "category, the other half of the topics); the paper's main test of "
                          "whether composing skills generalises",
    "all (setting)": "SKILL-MIX(all): every skill and every topic",
    "rubric": "a text can earn k + 3 points, one per criterion: each of the k skills correctly "
              "illustrated, on the topic, the text makes sense, and at most max(1, k − 1) "
              "sentences; a grader grades each text, rounds are majority-voted per point",
    "base / tuned": "the same model before and after fine-tuning on the teacher's full-mark "
                    "texts (the tuned student has an adapter); compared on the same combinations",
}
# What each figure file shows, in words (the report's captions; a name not here is shown as is).
FIGURE_CAPTIONS = {
    "figure2_full_marks": "Figure 2: Ratio of Full Marks (share of combinations whose best text "
                          "earned all k + 3 points) against k, base students dashed, fine-tuned "
                          "solid, one panel per setting; black marks are the paper's numbers for "
                          "the same setting and k",
    "figure2_skills_fraction": "Figure 2, Skills Fraction: the mean share of skill points earned "
                               "(0 unless the topic, sense and length points are all earned) "
                               "against k, base dashed, fine-tuned solid",
    "category_heatmap": "Share of skill points earned per skill category (rows) for each student "
                        "and k (columns)",
    "loss_curve": "Training loss on the answer tokens against the optimiser step, one line per "
                  "training run",
    "catalog_counts": "How many skills each category holds, coloured by split (training skills "
                      "vs held-out skills)",
    "keep_rate": "Share of the teacher's graded texts kept for training (full marks) per k, with "
                 "the kept / graded counts and a 95% Wilson interval",
    "partition_gain": "Held-out gain (tuned minus base) per partition of skills and topics, 95% "
                      "paired bootstrap interval",
    "scaling_success_vs_k": "Ratio of Full Marks on held-out skills and topics against k, one "
                            "line per training mix",
    "scaling_data_efficiency": "Ratio of Full Marks against the number of training texts",
    "uncommon_skills": "Uncommon skills at k = 5 against the stochastic-parrot line",
}


def figure_caption(name: str) -> str:
    """The words under a figure file `name` (its stem) in the report.

    >>> figure_caption("loss_curve").split(" on ")[0], figure_caption("my_plot")
    ('Training loss', 'my plot')
    """
    for stem, words in FIGURE_CAPTIONS.items():
        if name == stem or name.endswith("_" + stem):     # grid_figure2_full_marks too
            return words
    return name.replace("_", " ")


SENTENCE_NOTE = ("sentences: the reference counter's count (docs/protocol.md §4), which splits "
                 "only at . ! or ? followed by one space and a capital letter: it does not split "
                 "on line breaks, so a text of several lines can count as 1 sentence")


def records_frame(records, limit: int | None = None) -> pd.DataFrame:
    """Records as a table for a notebook: id, student, setting, k, skills, topic, answer, kept,
    why each reply ended ("finish": "stop", "length" when max_tokens cut it off, "unknown" for
    a record from before skillmix kept it), and each grader's voted points."""
    rows = []
    for rec in list(records)[:limit]:
        c = rec.combination
        row = {"id": rec.id, "student": rec.student or rec.model, "setting": c.setting, "k": c.k,
               "skills": ", ".join(c.skills), "topic": c.topic, "answer": rec.answer,
               "status": rec.status, "kept": rec.kept, "sentences": rec.derived.sentence_count,
               "finish": ", ".join(f or "unknown" for f in rec.finish_reasons) or "unknown"}
        for grader, points in rec.derived.voted_points.items():
            row[f"points: {grader}"] = " ".join("?" if p is None else f"{p:g}" for p in points)
        rows.append(row)
    return pd.DataFrame(rows)


def catalog_frame(catalog) -> pd.DataFrame:
    """The catalog's skills as a table: name, category, split, definition, example."""
    return pd.DataFrame([{"name": s.name, "category": s.category, "split": s.split,
                          "definition": s.definition, "example": s.example} for s in catalog.skills])


def combinations_frame(combinations) -> pd.DataFrame:
    """Sampled combinations as a table: setting, k, index, skills, categories, topic."""
    return pd.DataFrame([{"setting": c.setting, "k": c.k, "index": c.index, "skills": ", ".join(c.skills),
                          "categories": ", ".join(c.categories), "topic": c.topic} for c in combinations])


def local_judges(cfg) -> list[str]:
    """Labels of the config's graders that are local models (hf:) rather than a GPT-4-class API."""
    out = []
    for section in (cfg.data, cfg.evaluation):
        for g in (section.graders if section is not None else []):
            if is_local_judge(g.spec, g.method) and g.label not in out:
                out.append(g.label)
    return out


def judge_banner(cfg_or_labels) -> str | None:
    """A Markdown warning when the study is graded by a local model, not the paper's GPT-4; None
    when every grader is an API model. Notebooks and the report show it at the top.

    >>> judge_banner(["smollm2-yes-no"]).splitlines()[0]
    '> **Not GPT-4.** This study is graded by `smollm2-yes-no`, a small local model asked yes/no'
    """
    labels = cfg_or_labels if isinstance(cfg_or_labels, (list, tuple)) else local_judges(cfg_or_labels)
    if not labels:
        return None
    return (f"> **Not GPT-4.** This study is graded by {', '.join(f'`{x}`' for x in labels)}, a small local model asked yes/no\n"
            "> per rubric criterion (see the method column). Its grades show that the pipeline runs end to end and\n"
            "> how the numbers are computed; they are not the paper's GPT-4 grades, and a difference between\n"
            "> students here says what this judge prefers, not whether a model composes skills.")


def count_frame(per_k: dict) -> pd.DataFrame:
    """The data card's per-k counts as a table with integer counts and the keep rate in percent."""
    df = pd.DataFrame(per_k).T.rename_axis("k")
    for c in df.columns:
        if c == "keep_rate":
            df[c] = df[c].map(lambda v: "" if v is None or pd.isna(v) else f"{float(v):.1%}")
        elif pd.api.types.is_numeric_dtype(df[c]) or df[c].map(lambda v: isinstance(v, (int, float))).all():
            df[c] = df[c].astype("Int64")
    return df


def texts_view(df: pd.DataFrame):
    """A records table for a notebook with answers shown as written (line breaks kept)."""
    if df.empty or "answer" not in df.columns:
        return df
    return (df.style.hide(axis="index")
            .set_properties(subset=["answer"], **{"white-space": "pre-wrap", "text-align": "left",
                                                  "min-width": "28em"}))
