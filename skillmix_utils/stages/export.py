"""The training sets D(1), D(1,2), D(1,2,3) and sub-samples, and the data card.

Each mix or sub-sample is written twice: `data/mixes/<name>.jsonl` (one chat-message row per
kept text, both turns, the row format of docs/architecture.md) and `data/mixes/<name>/` (the
same rows as a `datasets` folder, `save_to_disk`). Names: `k1`, `k1-2`, `k1-2-3`, or the
sub-sample's name. A sub-sample (`data.subsamples`) takes `per_k[k]` texts of each listed k and
fills the rest of `size` uniformly from the kept texts of the other k, seeded; when too few texts
were kept it takes what there is and the data card says how many were missing. `size: null`
takes every kept text of the other k (the paper's D(1,2,3) + ~1,000 k = 4 texts: `per_k: {4: 1000}`).

The data card (data/data_card.json and .md) gives counts per k, keep rates, skills and topics
used, extraction rules, cost, the contamination check (every kept text's skills and topic
must lie in the pools its k was drawn from, `data.pools`; held-out skills/topics found where
the pool does not allow them are listed as violations) and the evaluation overlap: per
evaluation setting and k, how many evaluation combinations are also training combinations
(must be 0) and how many draws the exclusion rejected.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from pathlib import Path

from skillmix_utils.core.errors import writing
from skillmix_utils.core.metrics import wilson_interval
from skillmix_utils.core.numbers import format_estimate, judge_phrase, plural
from skillmix_utils.core.records import TextRecord
from skillmix_utils.stages.draws import overlap_report


def mix_name(ks, subsample: str | None = None) -> str:
    """The one name of a training mix, whatever the order of `ks` (the data stage writes it,
    the training stage reads it): `[3, 2, 1]` -> "k1-2-3"; a sub-sample is named by its name.

    >>> mix_name([1]), mix_name([2, 1]), mix_name([3, 2, 1, 1]), mix_name([1, 2, 3], "sub8k")
    ('k1', 'k1-2', 'k1-2-3', 'sub8k')
    """
    if subsample:
        return subsample
    return "k" + "-".join(str(k) for k in sorted(set(int(k) for k in ks)))


def row(rec: TextRecord) -> dict:
    """One training row: id, k, skills, topic and the four messages of the conversation."""
    return {"id": rec.id, "k": rec.combination.k, "skills": list(rec.combination.skills),
            "topic": rec.combination.topic,
            "messages": [{"role": m["role"], "content": m["content"]} for m in rec.conversation]}


def subsample(kept: list[TextRecord], size: int | None, per_k: dict[int, int], seed: int
              ) -> tuple[list[TextRecord], dict]:
    """Seeded sub-sample: `per_k[k]` of each listed k, the rest from the other k.

    >>> from skillmix_utils.core.records import Combination
    >>> recs = [TextRecord(id=f"r{i}", stage="datagen", model="m",
    ...         combination=Combination(skills=("a",) * k, topic="t", k=k)) for i, k in
    ...         enumerate([1, 1, 1, 2, 2, 3, 3, 3])]
    >>> picked, info = subsample(recs, 5, {3: 2}, seed=0)
    >>> sorted(Counter(r.combination.k for r in picked).items()), info["missing"]
    ([(1, 2), (2, 1), (3, 2)], 0)
    >>> picked, info = subsample(recs, None, {3: 1}, seed=0)     # every k = 1, 2 text + one k = 3
    >>> sorted(Counter(r.combination.k for r in picked).items())
    [(1, 3), (2, 2), (3, 1)]
    """
    rng = random.Random(seed)
    picked: list[TextRecord] = []
    missing = 0
    for k in sorted(per_k):
        pool = sorted((r for r in kept if r.combination.k == k), key=lambda r: r.id)
        take = min(per_k[k], len(pool))
        missing += per_k[k] - take
        picked.extend(rng.sample(pool, take))
    rest = sorted((r for r in kept if r.combination.k not in per_k), key=lambda r: r.id)
    rest_n = len(rest) if size is None else max(0, size - sum(per_k.values()))
    take = min(rest_n, len(rest))
    missing += rest_n - take
    picked.extend(rng.sample(rest, take))
    picked.sort(key=lambda r: (r.combination.k, r.combination.index, r.id))
    return picked, {"requested": size, "per_k_requested": {str(k): v for k, v in per_k.items()},
                    "rows": len(picked), "missing": missing,
                    "per_k": {str(k): n for k, n in sorted(Counter(
                        r.combination.k for r in picked).items())}}


def _atomic_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    try:
        with writing(path), open(tmp, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    except BaseException:
        tmp.unlink(missing_ok=True)       # the old file stays whole; no half-written tmp
        raise
    os.replace(tmp, path)


def write_mix(folder: Path, name: str, records: list[TextRecord]) -> tuple[Path, Path]:
    """Write one mix as JSONL and as a `datasets` folder; returns both paths."""
    from datasets import Dataset, Features, Sequence, Value

    rows = [row(r) for r in records]
    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / f"{name}.jsonl"
    _atomic_jsonl(jsonl, rows)
    features = Features({"id": Value("string"), "k": Value("int64"),
                         "skills": Sequence(Value("string")), "topic": Value("string"),
                         "messages": [{"role": Value("string"), "content": Value("string")}]})
    # from_list([]) would drop the columns; an empty mix must still load with its schema.
    ds = (Dataset.from_list(rows, features=features) if rows
          else Dataset.from_dict({name: [] for name in features}, features=features))
    target, tmp = folder / name, folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with writing(target):
            ds.save_to_disk(str(tmp))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return jsonl, target


def contamination(cfg, records: list[TextRecord], catalog) -> dict:
    """Check that every kept text's skills and topic lie in the pools of its k."""
    violations = []
    held_out_skills = {s.name for s in catalog.skills_in("held_out")}
    held_out_topics = {t.name for t in catalog.topics_in("held_out")}
    seen_held_out: dict[str, dict] = {}
    for rec in records:
        k = rec.combination.k
        pool = cfg.data.pools[k]
        ok_skills = {s.name for s in catalog.skills_in(pool.skills)}
        ok_topics = {t.name for t in catalog.topics_in(pool.topics)}
        bad = [s for s in rec.combination.skills if s not in ok_skills]
        if rec.combination.topic not in ok_topics:
            bad.append(f"topic: {rec.combination.topic}")
        if bad:
            violations.append({"id": rec.id, "k": k, "outside_pool": bad})
        h = seen_held_out.setdefault(str(k), {"skills": set(), "topics": set()})
        h["skills"].update(s for s in rec.combination.skills if s in held_out_skills)
        if rec.combination.topic in held_out_topics:
            h["topics"].add(rec.combination.topic)
    return {
        "rule": "each kept text's skills and topic must be in data.pools[k] of the catalog",
        "passed": not violations, "n_violations": len(violations), "violations": violations[:50],
        "pools": {str(k): {"skills": p.skills, "topics": p.topics}
                  for k, p in sorted(cfg.data.pools.items()) if k in cfg.data.counts},
        "held_out_used_per_k": {k: {"skills": sorted(v["skills"]), "topics": sorted(v["topics"]),
                                    "allowed": cfg.data.pools[int(k)].skills == "all"
                                    or cfg.data.pools[int(k)].topics == "all"}
                                for k, v in sorted(seen_held_out.items())},
    }


def data_card(cfg, records: list[TextRecord], catalog, mixes: dict, subsamples: dict,
              planned: int, stopped: str | None) -> dict:
    """The data card as a dict (written as JSON and Markdown by `export_data`)."""
    kept = [r for r in records if r.kept]
    per_k = {}
    for k in sorted(cfg.data.counts):
        rs = [r for r in records if r.combination.k == k]
        graded = [r for r in rs if r.kept is not None]
        n_kept = sum(1 for r in rs if r.kept)
        per_k[str(k)] = {
            "planned": cfg.data.counts[k], "written": sum(r.status == "ok" for r in rs),
            "generation_errors": sum(r.status == "error" for r in rs), "graded": len(graded),
            "kept": n_kept, "keep_rate": round(n_kept / len(graded), 4) if graded else None,
            "skills_used": len({s for r in rs if r.kept for s in r.combination.skills}),
            "topics_used": len({r.combination.topic for r in rs if r.kept})}
    cost_gen = sum(r.usage.cost_usd for r in records)
    cost_grade: dict[str, float] = {}
    for r in records:
        for g in r.gradings:
            cost_grade[g.grader] = cost_grade.get(g.grader, 0.0) + g.usage.cost_usd
    graded = [r for r in records if r.kept is not None]
    return {
        "study": cfg.name,
        "teacher": cfg.data.teacher.model_dump(mode="json"),
        "graders": [{"label": g.label, "spec": g.spec, "method": g.method,
                     "rounds": g.rounds} for g in cfg.data.graders],
        "keep_rule": "full marks (all k + 3 points) in the majority vote of every grader, after "
                     "the deterministic length count"
                     + (" and the explicit-name rule" if cfg.scoring.explicit_name_rule else ""),
        "scoring": cfg.scoring.model_dump(mode="json"),
        "catalog": {"source": catalog.source, "partition": getattr(catalog, "partition", ""),
                    "skill_split": catalog.skill_split, "topic_split": catalog.topic_split},
        "complete": stopped is None and sum(v["graded"] for v in per_k.values()) == planned,
        "stopped": stopped,
        "per_k": per_k,
        "total": {"planned": planned, "graded": len(graded), "kept": len(kept),
                  "keep_rate": round(len(kept) / len(graded), 4) if graded else None},
        "skills_used": sorted({s for r in kept for s in r.combination.skills}),
        "topics_used": sorted({r.combination.topic for r in kept}),
        "extraction_rules": dict(Counter(r.extraction_rule for r in records if r.status == "ok")),
        "cost_usd": {"teacher": round(cost_gen, 6),
                     "graders": {k: round(v, 6) for k, v in cost_grade.items()},
                     "total": round(cost_gen + sum(cost_grade.values()), 6),
                     "note": "cost of the requests behind the records (cached replies count "
                             "what they cost when first made)"},
        "contamination_check": contamination(cfg, kept, catalog),
        "evaluation_overlap": _evaluation_overlap(cfg, catalog),
        "mixes": mixes, "subsamples": subsamples,
    }


def _evaluation_overlap(cfg, catalog) -> dict:
    """Per evaluation setting and k: combinations drawn, how many are training combinations
    (must be 0) and how many draws the exclusion rejected (`draws.overlap_report`)."""
    if cfg.evaluation is None:
        return {}

    return overlap_report(cfg, catalog)


def card_markdown(card: dict) -> str:
    """A short human-readable rendering of the data card."""
    c = card["contamination_check"]
    lines = [f"# Data card: D_SKILL-MIX for study `{card['study']}`", "",
             f"Teacher: `{card['teacher']['spec']}` (temperature {card['teacher']['temperature']}, "
             f"max_tokens {card['teacher']['max_tokens']}). Texts "
             + "; ".join(judge_phrase(f"`{g['label']}`", g.get("spec"), g["method"], g["rounds"])
                         for g in card["graders"]) + ".", "",
             f"Keep rule: {card['keep_rule']}.", "",
             f"Catalog: {card['catalog']['source']}"
             + (f", partition `{card['catalog']['partition']}`" if card["catalog"]["partition"] else "")
             + f". Skills: {card['catalog']['skill_split']}. Topics: {card['catalog']['topic_split']}.", "",
             "| k | planned | written | graded | kept | keep rate | skills | topics |",
             "|---|---|---|---|---|---|---|---|"]
    for k, v in card["per_k"].items():
        # A keep rate is a proportion of the graded texts: its n and Wilson interval go with it.
        rate = "-" if v["keep_rate"] is None else format_estimate(
            v["keep_rate"], *wilson_interval(v["kept"], v["graded"]), n=v["graded"], digits=3)
        lines.append(f"| {k} | {v['planned']} | {v['written']} | {v['graded']} | {v['kept']} | "
                     f"{rate} | {v['skills_used']} | {v['topics_used']} |")
    t = card["total"]
    lines += ["", f"Total kept: {t['kept']} of {t['graded']} graded ({t['planned']} planned)."
              + ("" if card["complete"] else " **Incomplete run**: re-run to finish"
                 + (f" ({card['stopped']})" if card["stopped"] else "") + "."), "",
              "## Mixes", ""]
    for name, m in {**card["mixes"], **card["subsamples"]}.items():
        lines.append(f"- `{name}`: {plural(m['rows'], 'row')}, per k {m['per_k']}"
                     + (f", {m['missing']} short of the requested size" if m.get("missing") else ""))
    lines += ["", "## Contamination check", "",
              f"{'PASSED' if c['passed'] else 'FAILED'}: {c['rule']}; {c['n_violations']} "
              "violations.", ""]
    for k, h in c["held_out_used_per_k"].items():
        lines.append(f"- k={k}: held-out skills used {len(h['skills'])}, held-out topics used "
                     f"{len(h['topics'])} ({'allowed by the pool' if h['allowed'] else 'none allowed'})")
    overlap = card.get("evaluation_overlap") or {}
    if overlap:
        total = sum(v["overlap"] for per_k in overlap.values() for v in per_k.values())
        lines += ["", "## Evaluation overlap", "",
                  f"{'PASSED' if total == 0 else 'FAILED'}: evaluation combinations that are also "
                  "training combinations (same skill set and topic): must be 0. Training "
                  "combinations are excluded from every evaluation draw.", "",
                  "| setting | k | combinations | overlap | excluded draws |", "|---|---|---|---|---|"]
        for setting, per_k in overlap.items():
            for k, v in per_k.items():
                lines.append(f"| {setting} | {k} | {v['n_combinations']} | {v['overlap']} | "
                             f"{v['excluded_draws']} |")
    lines += ["", f"Cost: ${card['cost_usd']['total']:.4f} in total.", ""]
    return "\n".join(lines)


def export_data(cfg, records: list[TextRecord], catalog, planned: int,
                stopped: str | None = None) -> dict[str, Path]:
    """Write the mixes, sub-samples and data card for `records`; returns the paths."""
    folder = cfg.out / "data" / "mixes"
    kept = sorted((r for r in records if r.kept),
                  key=lambda r: (r.combination.k, r.combination.index, r.id))
    paths: dict[str, Path] = {}
    mixes, subs = {}, {}
    for mix in cfg.data.mixes:
        name = mix_name(mix)
        chosen = [r for r in kept if r.combination.k in mix]
        jsonl, ds = write_mix(folder, name, chosen)
        paths[f"mix:{name}"], paths[f"mix:{name}:dataset"] = jsonl, ds
        mixes[name] = {"ks": sorted(mix), "rows": len(chosen), "path": str(jsonl),
                       "per_k": {str(k): n for k, n in sorted(Counter(
                           r.combination.k for r in chosen).items())}}
    for sub in cfg.data.subsamples:
        chosen, info = subsample(kept, sub.size, sub.per_k, sub.seed)
        jsonl, ds = write_mix(folder, sub.name, chosen)
        paths[f"mix:{sub.name}"], paths[f"mix:{sub.name}:dataset"] = jsonl, ds
        subs[sub.name] = {**info, "seed": sub.seed, "path": str(jsonl)}
    card = data_card(cfg, records, catalog, mixes, subs, planned, stopped)
    jpath, mpath = cfg.out / "data" / "data_card.json", cfg.out / "data" / "data_card.md"
    with writing(jpath):
        jpath.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    with writing(mpath):
        mpath.write_text(card_markdown(card))
    paths["data_card"], paths["data_card_md"] = jpath, mpath
    return paths
