"""How human raters agree with the LLM graders and with each other.

    skillmix human-agreement configs/demo.yaml     # -> outputs/<study>/human/agreement.csv, .md

For every pair (human rater vs each LLM grader, and human vs human) and every criterion group —
`skills` (all skill points pooled), `topic`, `sense`, `length`, and `full_marks` (all k + 3
points) — over the texts both graded: `n` (labels compared: texts, or skill points for
`skills`), `n_texts`, Cohen's kappa (`metrics.cohen_kappa`) with a seeded percentile bootstrap
interval over texts (a text's skill points are resampled together), raw agreement, and the
confusion counts `yes_yes`, `yes_no`, `no_yes`, `no_no` (a's label first).

Kappa is undefined (NaN, with a `note`) when both gave one and the same label to every text:
there was no chance to disagree, and 100% agreement says nothing of the raters. Resamples
where that happens are left out of the interval (they would pull it towards 1).

What is compared: the human's own yes/no, and the LLM grader's points **as the metric tables
use them** (majority vote over rounds, the length point replaced by the sentence counter, the
explicit-name rule applied; `stages/tables.voted_by_text`). So `length` against an LLM grader
is really human vs the deterministic counter. Half-graded texts count for the criteria given.
Byte-identical texts for one rubric are one item (`sample.py`), compared once, as the item's
first sampled record.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from skillmix_utils.core.metrics import cohen_kappa, constant_labels
from skillmix_utils.present.human.access import human_dir
from skillmix_utils.present.human.sample import grades_dir, human_items, source_records
from skillmix_utils.present.human.store import GradeStore, raters
from skillmix_utils.present.paper_tables import to_markdown
from skillmix_utils.stages.tables import grader_labels, voted_by_text

CRITERIA = ("skills", "topic", "sense", "length", "full_marks")
COLUMNS = ["pair", "a", "b", "criterion", "n", "n_texts", "kappa", "kappa_ci_low",
           "kappa_ci_high", "agreement", "yes_yes", "yes_no", "no_yes", "no_no", "rate_a",
           "rate_b", "note"]


def _labels(points: np.ndarray, k: int, criterion: str) -> np.ndarray:
    """The labels of one text for one criterion group (NaN where not graded)."""
    if criterion == "skills":
        return points[:k]
    if criterion == "full_marks":
        return np.array([np.nan if np.isnan(points).any() else float((points == 1).all())])
    return points[[k + ("topic", "sense", "length").index(criterion)]]


def _label(value) -> str:
    return "yes" if value == 1 else "no" if value == 0 else f"{value:g}"


def pair_rows(a: dict[str, np.ndarray], b: dict[str, np.ndarray], ks: dict[str, int],
              n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Agreement of two raters on their common texts, one row per criterion group.

    `a`, `b`: record id -> k + 3 points (NaN = not graded); `ks`: record id -> k.

    >>> import numpy as np
    >>> a = {"t1": np.array([1., 1, 1, 1]), "t2": np.array([0., 1, 1, 1])}
    >>> b = {"t1": np.array([1., 1, 1, 1]), "t2": np.array([1., 1, 1, 1])}
    >>> r = {row["criterion"]: row for row in pair_rows(a, b, {"t1": 1, "t2": 1}, n_boot=0)}
    >>> r["full_marks"]["agreement"], r["full_marks"]["yes_no"], r["full_marks"]["no_yes"]
    (0.5, 0, 1)
    """

    common = [t for t in a if t in b]
    rng = np.random.default_rng(seed)
    rows = []
    for crit in CRITERIA:
        per_text = []
        for t in common:
            la, lb = _labels(a[t], ks[t], crit), _labels(b[t], ks[t], crit)
            keep = ~(np.isnan(la) | np.isnan(lb))
            if keep.any():
                per_text.append((la[keep], lb[keep]))
        row = {"criterion": crit, "n_texts": len(per_text)}
        if per_text:
            x = np.concatenate([p[0] for p in per_text])
            y = np.concatenate([p[1] for p in per_text])
            kappas = []
            for _ in range(n_boot):
                idx = rng.integers(0, len(per_text), len(per_text))
                kappas.append(cohen_kappa(np.concatenate([per_text[i][0] for i in idx]),
                                          np.concatenate([per_text[i][1] for i in idx])))
            kappas = np.array([v for v in kappas if not np.isnan(v)])   # undefined resamples out
            kappa = cohen_kappa(x, y)
            if np.isnan(kappa):       # one constant label: no interval for an undefined kappa
                kappas = np.array([])
            row.update(n=len(x), kappa=kappa,
                       note=(f"kappa undefined: both gave every text {_label(x[0])}"
                             if constant_labels(x, y) else ""),
                       kappa_ci_low=float(np.quantile(kappas, 0.025)) if len(kappas) else np.nan,
                       kappa_ci_high=float(np.quantile(kappas, 0.975)) if len(kappas) else np.nan,
                       agreement=float((x == y).mean()),
                       yes_yes=int(((x == 1) & (y == 1)).sum()), yes_no=int(((x == 1) & (y == 0)).sum()),
                       no_yes=int(((x == 0) & (y == 1)).sum()), no_no=int(((x == 0) & (y == 0)).sum()),
                       rate_a=float((x == 1).mean()), rate_b=float((y == 1).mean()))
        else:
            row.update(n=0, kappa=np.nan, kappa_ci_low=np.nan, kappa_ci_high=np.nan,
                       agreement=np.nan, yes_yes=0, yes_no=0, no_yes=0, no_no=0,
                       rate_a=np.nan, rate_b=np.nan, note="no text graded by both")
        rows.append(row)
    return rows


def human_points(cfg, items) -> dict[str, dict[str, np.ndarray]]:
    """rater -> record id -> k + 3 points (NaN where that rater gave no grade yet)."""

    out = {}
    for rater in raters(grades_dir(cfg)):
        given = GradeStore(grades_dir(cfg), rater).current(items)
        pts = {}
        for it in items:
            if it.key in given:
                p = np.full(len(it.criteria), np.nan)
                for c, v in given[it.key].items():
                    if 0 <= c < len(p):
                        p[c] = v
                pts[it.record_id] = p
        if pts:
            out[rater] = pts
    return out


def llm_points(cfg, records, items) -> dict[str, dict[str, np.ndarray]]:
    """LLM grader label -> record id -> voted, corrected k + 3 points, for the sampled texts."""

    wanted = {it.record_id for it in items}
    recs = [r for r in records if r.id in wanted]
    out = {}
    for label in grader_labels(cfg, recs):
        votes = voted_by_text(recs, label, cfg)
        votes = {rid: v for rid, v in votes.items() if not np.isnan(v).all()}
        if votes:
            out[label] = votes
    return out


def agreement_table(cfg, n_boot: int = 1000, records=None):
    """The agreement table of a study's human grades (empty when nobody has graded yet);
    `records` defaults to the study's stored records (with the points the tables stored)."""
    import pandas as pd


    records = source_records(cfg) if records is None else records
    items = human_items(cfg, records)
    ks = {it.record_id: it.k for it in items}
    humans = human_points(cfg, items)
    llms = llm_points(cfg, records, items)
    rows = []
    names = sorted(humans)
    for i, h in enumerate(names):
        for g, pts in llms.items():
            rows += [{"pair": "human-llm", "a": h, "b": g, **r}
                     for r in pair_rows(humans[h], pts, ks, n_boot, cfg.human.seed)]
        for h2 in names[i + 1:]:
            rows += [{"pair": "human-human", "a": h, "b": h2, **r}
                     for r in pair_rows(humans[h], humans[h2], ks, n_boot, cfg.human.seed)]
    return pd.DataFrame(rows, columns=COLUMNS)


def write_agreement(cfg, n_boot: int = 1000, records=None) -> dict[str, Path]:
    """Write outputs/<study>/human/agreement.csv and agreement.md; returns the paths."""

    df = agreement_table(cfg, n_boot, records)
    folder = human_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    csv, md = folder / "agreement.csv", folder / "agreement.md"
    df.to_csv(csv, index=False)
    md.write_text(to_markdown(summary_frame(df)) + "\n")
    return {"human_agreement": csv, "human_agreement_md": md}


def summary_frame(df):
    """The agreement table for reading: kappa [interval], agreement, confusion, n."""
    import pandas as pd

    if df.empty:
        return pd.DataFrame()

    def fmt(r):
        if pd.isna(r["kappa"]):
            note = r.get("note")
            return "undefined (one label throughout)" if isinstance(note, str) and \
                note.startswith("kappa undefined") else "-"
        lo, hi = r["kappa_ci_low"], r["kappa_ci_high"]
        ci = "" if pd.isna(lo) else f" [{lo:.2f}, {hi:.2f}]"
        return f"{r['kappa']:.2f}{ci}"

    return pd.DataFrame({
        "a": df["a"], "b": df["b"], "criterion": df["criterion"], "kappa [95% CI]": df.apply(fmt, axis=1),
        "agreement": df["agreement"].map(lambda v: "-" if pd.isna(v) else f"{v:.0%}"),
        "yes/yes, yes/no, no/yes, no/no": df.apply(
            lambda r: f"{r['yes_yes']}, {r['yes_no']}, {r['no_yes']}, {r['no_no']}", axis=1),
        "n": df["n"], "texts": df["n_texts"],
        "note": df["note"].fillna("") if "note" in df.columns else ""})
