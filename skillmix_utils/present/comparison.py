"""Base and tuned students on the same combinations: the report's paired comparison.

A difference of means can mislead at a demo's size: tuned 0.08 against base 0.00 on 12
combinations was one nonsense text that a small judge gave full marks, with ten of the twelve
tuned answers byte-identical to the base ones. So, per setting and k, this puts the two texts
written for each combination (same skills, same topic, same generation round) side by side,
counts the identical ones, gives the paired gain with its 95% interval (`partitions.gain_rows`,
the numbers notebook 05 shows), the paper's numbers for the same setting and k, and one plain
paragraph on what the numbers can and cannot say at this n and with this grader.

    from skillmix_utils.present.comparison import paired_comparison
    parts = paired_comparison(cfg, records, grader="gpt-4")
"""
from __future__ import annotations

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.numbers import is_local_judge, judge_phrase
from skillmix_utils.core.records import TextRecord, truncated
from skillmix_utils.present.paper_tables import paper_numbers
from skillmix_utils.present.partitions import base_and_tuned, gain_rows
from skillmix_utils.stages.scoring import study_graders

PAIR_LIMIT = 60     # pairs shown per setting and k (the records hold them all)


def _key(rec: TextRecord) -> tuple:
    c = rec.combination
    return c.setting, c.k, tuple(c.skills), c.topic, rec.generation_round


def _full(rec: TextRecord, grader: str | None) -> bool | None:
    """Full marks in `grader`'s vote (default: the record's first grader); None when unscored."""
    votes = rec.derived.voted_points
    v = votes.get(grader) if grader else next(iter(votes.values()), None)
    if not v or any(p is None for p in v):
        return None
    return all(p == 1 for p in v)


def text_pairs(records, base: str, tuned: str, grader: str | None = None) -> list[dict]:
    """The base and the tuned student's texts written for the same combination (setting, k,
    skills, topic) and generation round, side by side, with whether the answers are
    byte-identical, each one's full marks in `grader`'s vote and whether max_tokens cut it off."""
    by_key = {_key(r): r for r in records if r.student == base}
    out = []
    for t in records:
        b = by_key.get(_key(t)) if t.student == tuned else None
        if b is None:
            continue
        c = t.combination
        out.append({"setting": c.setting, "k": c.k, "skills": list(c.skills), "topic": c.topic,
                    "round": t.generation_round, "base": b.answer, "tuned": t.answer,
                    "identical": b.answer is not None and b.answer == t.answer,
                    "base_full": _full(b, grader), "tuned_full": _full(t, grader),
                    "base_cut": truncated(b), "tuned_cut": truncated(t)})
    return out


def paper_marks(setting: str, k: int) -> list[str]:
    """The paper's quoted Ratio of Full Marks for this setting and k, whatever the students.

    >>> paper_marks("held_out", 3)
    ['paper (LLaMA-2-13B-Chat): 0.04 base → 0.37 fine-tuned on D(1,2,3)', 'paper (Mistral-7B-Instruct-v0.2): 0.08 base → 0.49 fine-tuned on D(1,2,3)']
    """
    ref = paper_numbers()
    here = ref[(ref["setting"] == setting) & (ref["k"] == k)]
    return [f"paper ({r.label}): {r.base:.2f} base → {r.tuned:.2f} fine-tuned on D({r.data_mix})"
            for r in here.itertuples()]


def what_it_says(n: int, gain: dict | None, pairs: list[dict], judge: str | None = None,
                 local: bool = False) -> str:
    """A plain paragraph: what the paired numbers can and cannot say at this n and with this
    grader (the interval, the identical answers, how much one text moves a ratio, cut-off texts,
    and `judge`, the grader as `numbers.judge_phrase` writes it; `local`: not a GPT-4-class API).

    >>> pairs = [{"identical": True, "base_full": False, "tuned_full": False}] * 10 + [
    ...     {"identical": False, "base_full": False, "tuned_full": True},
    ...     {"identical": False, "base_full": False, "tuned_full": False}]
    >>> print(what_it_says(12, {"gain": 0.083, "gain_ci_low": 0.0, "gain_ci_high": 0.25}, pairs,
    ...                    judge_phrase("judge", "hf:smollm2-135m-instruct"), local=True))
    ... # doctest: +NORMALIZE_WHITESPACE
    On 12 combinations one text moves a ratio by 1/12 = 0.08. The paired gain is +0.08 with a
    95% interval from +0.00 to +0.25: it cannot tell no gain from a gain of +0.25. 10 of 12
    tuned answers are byte-identical to the base answer on the same combination, so every
    difference rests on the other 2; full marks differ on 1 of them. The points were graded by
    judge (hf:smollm2-135m-instruct): a local model, not the paper's GPT-4; they show how the
    numbers are computed, not whether a model composes skills.
    """
    out = []
    if n:
        out.append(f"On {n} combinations one text moves a ratio by 1/{n} = {1 / n:.2f}.")
    if gain:
        g, lo, hi = gain["gain"], gain["gain_ci_low"], gain["gain_ci_high"]
        head = f"The paired gain is {g:+.2f} with a 95% interval from {lo:+.2f} to {hi:+.2f}: "
        if lo <= 0 <= hi:
            far = hi if abs(hi) >= abs(lo) else lo
            out.append(head + f"it cannot tell no gain from a gain of {far:+.2f}.")
        elif lo > 0:
            out.append(head + "above 0, so with this grader the tuned student does better on "
                              "these combinations (a statement about this sample and grader).")
        else:
            out.append(head + "below 0, so with this grader the tuned student does worse on "
                              "these combinations.")
    if pairs:
        same = sum(p["identical"] for p in pairs)
        differ = sum(p["base_full"] != p["tuned_full"] for p in pairs
                     if p["base_full"] is not None and p["tuned_full"] is not None)
        rest = len(pairs) - same
        line = (f"{same} of {len(pairs)} tuned answers are byte-identical to the base answer on "
                "the same combination")
        if same == len(pairs):
            line += (": the two students wrote the same texts, so any gap comes from the grader, "
                     "not from the student.")
        elif same:
            line += (f", so every difference rests on the other {rest}; full marks differ on "
                     f"{differ} of them.")
        else:
            line += f"; full marks differ on {differ} of {len(pairs)}."
        out.append(line)
        cut = sum(p.get("base_cut", False) or p.get("tuned_cut", False) for p in pairs)
        if cut:
            out.append(f"In {cut} of {len(pairs)} pairs max_tokens cut a text off (finish reason "
                       "\"length\"): those texts may be unfinished, and so graded as unfinished.")
    if judge and local:
        out.append(f"The points were {judge}; they show how the numbers are computed, not "
                   "whether a model composes skills.")
    elif judge:
        out.append(f"The points were {judge}; the paper's numbers were graded by GPT-4.")
    return " ".join(out)


def paired_comparison(cfg, records, grader: str | None = None,
                      pair_limit: int = PAIR_LIMIT) -> list[dict]:
    """Per setting and k where the base and the tuned student both wrote (`grader`'s points;
    a local grader is said to be one, `numbers.judge_phrase`): {setting, k, base,
    tuned (student names), base_mean, tuned_mean, gain, gain_ci_low, gain_ci_high, n (paired
    combinations), identical, n_pairs, paper (marks), says (the paragraph), pairs (at most
    `pair_limit`)}; [] without a base and a tuned student."""
    try:
        base, tuned = base_and_tuned(cfg)
    except SkillmixError:
        return []
    records = list(records)
    pairs = text_pairs(records, base, tuned, grader)
    spec = next((g for g in study_graders(cfg, "eval") if g.label == grader), None)
    judge = judge_phrase(grader, spec.spec, spec.method) if spec else grader and f"graded by {grader}"
    local = spec is not None and is_local_judge(spec.spec, spec.method)
    out = []
    for setting in dict.fromkeys(p["setting"] for p in pairs):
        gains = {r["k"]: r for r in gain_rows(cfg, setting=setting, base=base, tuned=tuned,
                                              records=records)
                 if grader is None or r["grader"] == grader}
        for k in sorted({p["k"] for p in pairs if p["setting"] == setting}):
            here = [p for p in pairs if p["setting"] == setting and p["k"] == k]
            g = gains.get(k)
            n = g["n_combinations"] if g else len({(tuple(p["skills"]), p["topic"]) for p in here})
            out.append({"setting": setting, "k": k, "base": base, "tuned": tuned,
                        "base_mean": g["base"] if g else None, "tuned_mean": g["tuned"] if g else None,
                        "gain": g["gain"] if g else None,
                        "gain_ci_low": g["gain_ci_low"] if g else None,
                        "gain_ci_high": g["gain_ci_high"] if g else None,
                        "n": n, "identical": sum(p["identical"] for p in here), "n_pairs": len(here),
                        "paper": paper_marks(setting, k),
                        "says": what_it_says(n, g, here, judge, local),
                        "pairs": here[:pair_limit]})
    return out
