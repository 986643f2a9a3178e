"""A synthetic study output tree (metrics tables, records, loss curve, data card) for the
figure, table and report tests: they must not wait for the real stages."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from skillmix_utils.core.config import ScoringSpec
from skillmix_utils.core.records import Combination, Grading, RecordStore, TextRecord, Usage, record_id
from skillmix_utils.stages.current import IMPORTED
from skillmix_utils.stages.scoring import score

SETTINGS = ["train", "held_out"]
KS = [1, 2, 3]
GRADERS = ["gpt-4", "claude-3-opus"]
STUDENTS = [("llama-2-13b-chat", "hf:llama-2-13b-chat", None),
            ("llama-2-13b-chat-ft", "hf:llama-2-13b-chat", "outputs/x/train/run/adapter")]
SKILLS = ["metaphor", "red herring", "modus ponens", "spatial reasoning"]
CATEGORIES = {"metaphor": "literary", "red herring": "rhetorical", "modus ponens": "logical",
              "spatial reasoning": "logical"}
TOPICS = ["Beekeeping", "Sewing"]


def metrics_frame(students=STUDENTS, graders=GRADERS, study="synthetic") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for student, base, adapter in students:
        for setting in SETTINGS:
            for k in KS:
                for grader in graders:
                    level = (0.8 if adapter else 0.5) / k
                    row = {"study": study, "student": student, "base_model": base, "adapter": adapter,
                           "setting": setting, "k": k, "grader": grader, "grader_method": "table",
                           "n_combinations": 20}
                    for m in ("ratio_full_marks", "ratio_all_skills", "skills_fraction"):
                        v = float(np.clip(level + rng.normal(0, 0.05) + (0.1 if m != "ratio_full_marks" else 0), 0, 1))
                        sem = float(np.sqrt(v * (1 - v) / 20))
                        row.update({m: v, f"{m}_sem": sem, f"{m}_ci_low": max(0, v - 2 * sem),
                                    f"{m}_ci_high": min(1, v + 2 * sem)})
                    row.update(n_excluded_generations=0, n_excluded_combinations=0, n_parse_failures=1)
                    rows.append(row)
    return pd.DataFrame(rows)


def per_category_frame() -> pd.DataFrame:
    rows = []
    for student, _, adapter in STUDENTS:
        for setting in SETTINGS:
            for k in KS:
                for cat in sorted(set(CATEGORIES.values())):
                    rows.append({"student": student, "setting": setting, "k": k, "grader": "gpt-4",
                                 "category": cat, "n": 10,
                                 "n_skill_points": 10, "points_earned": 5, "fraction_earned": 0.3 + 0.1 * k + (0.2 if adapter else 0)})
    return pd.DataFrame(rows)


def agreement_frame() -> pd.DataFrame:
    rows = []
    for i, c in enumerate(["skill", "topic", "sense", "length", "full_marks"]):
        rows.append({"study": "synthetic", "student": "all", "setting": "all", "k": "all",
                     "grader_a": "gpt-4", "grader_b": "claude-3-opus", "criterion": c,
                     "kappa": 0.41 + 0.1 * i, "n_texts": 60,
                     "p_full_b_given_full_a": 0.8 if c == "full_marks" else None,
                     "p_full_a_given_full_b": 0.6 if c == "full_marks" else None,
                     "full_marks_a": 20 if c == "full_marks" else None,
                     "full_marks_b": 27 if c == "full_marks" else None})
    return pd.DataFrame(rows)


def eval_records(n_per_cell: int = 2) -> list[TextRecord]:
    out = []
    for student, base, adapter in STUDENTS:
        for setting in SETTINGS:
            for k in KS:
                for i in range(n_per_cell):
                    skills = tuple(SKILLS[(i + j) % len(SKILLS)] for j in range(k))
                    comb = Combination(skills=skills, topic=TOPICS[i % 2], k=k, setting=setting, index=i,
                                       categories=tuple(CATEGORIES[s] for s in skills))
                    # Text 0 earns full marks from both graders; text 1 names its skills
                    # verbatim (the explicit-name rule takes those points) and claude-3-opus
                    # says it makes no sense (the graders disagree); one grading cannot be read.
                    text = (f"{student} writes about {comb.topic} <b>bold</b>." if i == 0 else
                            f"{student} writes about {comb.topic} using {', '.join(skills)} <b>bold</b>.")
                    gradings = []
                    for g in GRADERS:
                        pts = [1.0] * (k + 3)
                        if i == 1 and g == "claude-3-opus":
                            pts[k + 1] = 0.0
                        bad = adapter and setting == "held_out" and k == 3 and i == 0 and g == "gpt-4"
                        gradings.append(Grading(grader=g, round=0, raw_reply=f"Here's the grading table ({g})",
                                                points=None if bad else pts,
                                                status="parse_failed" if bad else "ok",
                                                usage=Usage(cost_usd=0.001)))
                    out.append(TextRecord(id=record_id("eval", setting, k, i, 0, student=student),
                                          stage="eval", study="synthetic", model=base, adapter=adapter,
                                          student=student, combination=comb, answer=text,
                                          extraction_rule="answer_marker",
                                          conversation=[{"role": "user", "content": "Greetings!"},
                                                        {"role": "assistant", "content": "Answer: " + text}],
                                          usage=Usage(input_tokens=100, output_tokens=50, cost_usd=0.002),
                                          gradings=gradings))
                    out[-1].derived = score(out[-1], ScoringSpec())
    return out


def make_study(root: Path, name: str = "synthetic") -> Path:
    """Write a study output tree under root/name and return it."""
    out = Path(root) / name
    tables = out / "eval" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    metrics_frame(study=name).to_csv(tables / "metrics.csv", index=False)
    per_category_frame().to_csv(tables / "per_category.csv", index=False)
    agreement_frame().to_csv(tables / "agreement.csv", index=False)
    pd.DataFrame([{"student": "llama-2-13b-chat", "grader": "gpt-4", "n_parse_failures": 1}]).to_csv(
        tables / "parse_failures.csv", index=False)
    RecordStore(out / "eval" / "records.jsonl").append(eval_records())
    (out / "data").mkdir(exist_ok=True)
    (out / "data" / "data_card.json").write_text(json.dumps(
        {"counts": {"1": {"generated": 10, "kept": 6}, "2": {"generated": 10, "kept": 3}},
         "cost_usd": 0.12, "contamination_check": {"ok": True}}))
    run = out / "train" / "lora-k1-2-3"
    run.mkdir(parents=True, exist_ok=True)
    (run / "loss.json").write_text(json.dumps([{"step": s, "loss": 3.0 / s} for s in range(1, 11)]))
    (run / "train_summary.json").write_text(json.dumps({"steps": 10, "final_loss": 0.3}))
    # A config that validates; no config drew the made-up records (the adapter does not
    # exist), so they are marked as imported: all of them count (current_records).
    (out / "config.yaml").write_text(yaml.safe_dump({
        "name": name, "output_dir": str(out),
        "evaluation": {"students": [{"name": s, "model": {"spec": base}, "adapter": adapter}
                                    for s, base, adapter in STUDENTS],
                       "graders": [{"spec": "openai:gpt-4", "name": GRADERS[0]},
                                   {"spec": "anthropic:claude-3-opus-20240229", "name": GRADERS[1]}],
                       "settings": SETTINGS, "ks": KS, "n_combinations": 2,
                       "generation_rounds": 1}}))
    (out / "eval" / IMPORTED).write_text("{}")
    return out


# --- a paired study: base and tuned on the same combinations, as the demo made them ----------
PAIRED_STUDENTS = [("smol-base", None), ("smol-tuned", "outputs/x/train/run/adapter")]
JUDGE = "smollm2-yes-no"
FOUR_LINES = "Stars wheel over the harbour.\nThe tide obeys the moon.\nSailors read the sky.\nNight ends."
CUT = "Comet comet comet comet comet"     # the tuned student's one different text, cut off


def paired_records() -> list[TextRecord]:
    """Held-out k = 3, five combinations: three answers the same for both students, one empty
    for both, one where the tuned student wrote something else, cut off by max_tokens. The
    local judge says yes to everything but "makes sense", except on the cut-off text and on
    the empty ones (every point, as the demo's judge did)."""
    from skillmix_utils.core.catalog import load_catalog
    from skillmix_utils.core.sampling import sample_combinations

    combos = sample_combinations(load_catalog(), 3, 5, seed=0, skills="held_out",
                                 topics="held_out", purpose="eval")
    out = []
    for student, adapter in PAIRED_STUDENTS:
        for c in combos:
            same = {0: f"The {c.topic} club met at dawn.", 1: FOUR_LINES,
                    2: f"Nobody at the {c.topic} fair doubted the forecast.", 4: "  "}
            tuned_other = adapter and c.index == 3
            text = CUT if tuned_other else same.get(c.index, f"A quiet {c.topic} evening.")
            full = tuned_other or c.index == 4
            points = [1.0] * 6 if full else [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
            finish = ["stop", "length" if tuned_other else "stop"]
            out.append(TextRecord(
                id=record_id("eval", "held_out", 3, c.index, 0, student=student), stage="eval",
                study="paired", model="hf:smollm2-135m-instruct", adapter=adapter, student=student,
                combination=c, answer=text, extraction_rule="answer_marker",
                finish_reasons=finish,
                conversation=[{"role": "user", "content": f"Greetings! Write about {c.topic}."},
                              {"role": "assistant", "content": "Answer: a first draft"},
                              {"role": "user", "content": "Thanks very much. Could you please look over your answer and improve it?"},
                              {"role": "assistant", "content": "Answer: " + text}],
                gradings=[Grading(grader=JUDGE, method="yes_no_logprob", round=0,
                                  prompt=f"Does this text pertain to {c.topic}? Answer Yes or No.",
                                  raw_reply=json.dumps({"p_yes": points, "threshold": 0.5}),
                                  points=points)]))
    return out


def make_paired_study(root: Path, name: str = "paired") -> Path:
    """A study folder whose students are no paper model, graded by a local judge, with its
    metric tables made by the real path (`write_metric_tables`, which scores the records)."""
    from skillmix_utils.core.config import load_study_config
    from skillmix_utils.stages.tables import write_metric_tables

    out = Path(root) / name
    (out / "eval").mkdir(parents=True, exist_ok=True)
    RecordStore(out / "eval" / "records.jsonl").append(paired_records())
    (out / "eval" / IMPORTED).write_text("{}")
    (out / "config.yaml").write_text(yaml.safe_dump({
        "name": name, "output_dir": str(out),
        "evaluation": {"students": [{"name": s, "model": {"spec": "hf:smollm2-135m-instruct"},
                                     "adapter": a} for s, a in PAIRED_STUDENTS],
                       "graders": [{"spec": "hf:smollm2-135m-instruct", "name": JUDGE,
                                    "method": "yes_no_logprob", "rounds": 1}],
                       "settings": ["held_out"], "ks": [3], "n_combinations": 5,
                       "generation_rounds": 1}}))
    (out / "data").mkdir(exist_ok=True)
    (out / "data" / "data_card.md").write_text(
        "# Data card: D_SKILL-MIX for study `paired`\n\nKeep rule: full marks.\n\n"
        "| k | kept |\n|---|---|\n| 3 | 1 |\n")
    run = out / "train" / "lora-k1-2-3"
    run.mkdir(parents=True, exist_ok=True)
    (run / "train_summary.json").write_text(json.dumps(
        {"steps": 3, "final_loss": 2.524871, "settings": {"lora": {"r": 8}, "data_mix": [1, 2, 3]}}))
    write_metric_tables(load_study_config(out / "config.yaml"))
    return out
