"""`skillmix import-reference` on a small folder in the Skill-Mix reference code's layout, built
here (k*_s*_v*_r*/<student>/records.csv, conv/*.json, graded/by_<grader>_on_text_*/records.csv)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reference_shapes import (count_sentences, grading_prompt, reference_metrics,
                              reference_skills)   # tests/ is on sys.path

COMBOS = [("metaphor", "red herring", "Beekeeping"), ("modus ponens", "spatial reasoning", "Sewing"),
          ("metaphor", "modus ponens", "Knots")]
TEXTS = ["The hive is a humming factory, and who cares about the rain anyway?",
         "If the thread is waxed it glides, and it is waxed, so it glides through the left loop.",
         "The knot is a promise, and if it holds, the boat stays."]
# per generation round, per row: the k + 3 points the grader's table gives (None: unreadable)
TABLES = {1: [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 0, 1]],
          2: [[1, 1, 0, 1, 1], [1, 1, 1, 1, 1], None]}


def _table(skills, topic, pts) -> str:
    crit = [f"Correctly illustrates {s}" for s in skills] + [f"Pertains to {topic}", "Text makes sense",
                                                             "At most one sentence"]
    rows = "\n".join(f"| {c} | {p} |" for c, p in zip(crit, pts))
    return (f"Here's the grading table:\n| Criteria | Points Earned |\n|---|---|\n{rows}\n"
            f"| Total Points Earned | {sum(pts)} |\nExplanation: fine.")


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def build_reference(root: Path, student: str = "llama2-7b-chat", swap_round2: bool = False) -> Path:
    for rnd in (1, 2):
        sdir = root / f"k2_s10_vdefault_r{rnd}" / student
        rows, graded, graded_t0 = [], [], []
        combos = list(reversed(COMBOS)) if (swap_round2 and rnd == 2) else COMBOS
        for (s1, s2, topic), text, pts in zip(combos, TEXTS, TABLES[rnd]):
            rows.append({"k": 2, "skills": f"{s1}, \n{s2}", "topic": topic, "system prompt": "",
                         "[INST]_0": f"Greetings! ... {topic} ...", "[/INST]_0": f" Answer: draft\nExplanation: x",
                         "model_input_0": "[INST] ...", "text_0": "draft",
                         "[INST]_1": "Thanks very much. ... one sentence. ",
                         "[/INST]_1": f" Answer: {text}\n\nExplanation: it shows both.",
                         "model_input_1": "[INST] ...", "text_1": text})
            reply = _table((s1, s2), topic, pts) if pts else "I cannot grade this."
            graded.append({"k": 2, "skills": f"{s1},  \n{s2}", "topic": topic, "system prompt": "",
                           "user_0": f"Greetings! I was wondering ... {text}", "assistant_0": reply,
                           "model_input_0": "[...]", "score_0": float(sum(pts or [0])),
                           "score_extracted_0": 0.0, "points_0": "" if pts is None else ",".join(map(str, pts)),
                           "num_sentences_manual_in_student_answer_0": 1, "true_sentence_lim_pt_0": 1.0,
                           "num_sentences_extracted_eq_num_sentences_model_0": True})
            graded_t0.append({**graded[-1], "assistant_0": _table((s1, s2), topic, [0] * 5)})
            conv = sdir / "conv" / f"k_2-topic_{topic}-skills_{s1}_{s2}.json".replace(" ", "_")
            conv.parent.mkdir(parents=True, exist_ok=True)
            conv.write_text(json.dumps({"skills": [s1, s2], "topic": topic, "conv": []}))
        _write(sdir / "records.csv", rows)
        _write(sdir / "graded" / "by_gpt-4_on_text_1_1_gpt" / "records.csv", graded)
        _write(sdir / "graded" / "by_gpt-4_on_text_0_1_gpt" / "records.csv", graded_t0)
    return root


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "skillmix_utils.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_import_reference_writes_records_and_metric_tables(tmp_path):
    from skillmix_utils.core.records import RecordStore

    ref = build_reference(tmp_path / "test")
    out = tmp_path / "imported"
    res = _cli("import-reference", ref, out, "--scoring", "improved")
    assert res.returncode == 0, res.stderr
    assert "1 graded folder of text_0 skipped" not in res.stdout   # skipped per round: 2
    assert "6 texts of 1 student, 6 gradings by 1 grader; 2 graded folders of text_0 skipped" in res.stdout
    assert "0.667 [0.208, 0.939]" in res.stdout      # 2 of 3 with its Wilson interval

    recs = RecordStore(out / "eval" / "records.jsonl").load()
    assert len(recs) == 6
    first = recs["eval/llama2-7b-chat/all/k2/c0/g0"]
    assert first.answer == TEXTS[0] and first.combination.skills == ("metaphor", "red herring")
    assert [m["role"] for m in first.conversation] == ["user", "assistant", "user", "assistant"]
    assert first.conversation[3]["content"].startswith(" Answer: The hive")
    assert first.gradings[0].grader == "gpt-4" and first.gradings[0].points == [1, 1, 1, 1, 1]
    failed = recs["eval/llama2-7b-chat/all/k2/c2/g1"].gradings[0]
    assert failed.status == "parse_failed" and failed.points is None    # never scored 0

    m = pd.read_csv(out / "eval" / "tables" / "metrics.csv").iloc[0]
    # combination 0: full in round 1; 1: full in round 2; 2: sense 0 in round 1, unreadable in 2
    assert m["ratio_full_marks"] == pytest.approx(2 / 3)
    assert m["n_combinations"] == 3 and m["n_excluded_generations"] == 1
    assert m["n_parse_failures"] == 1 and m["student"] == "llama2-7b-chat" and m["grader"] == "gpt-4"
    again = _cli("metrics", out / "config.yaml")                      # a normal skillmix study now
    assert again.returncode == 0, again.stderr
    assert pd.read_csv(out / "eval" / "tables" / "metrics.csv").iloc[0]["ratio_full_marks"] == pytest.approx(2 / 3)


def test_reference_points_are_the_fallback_for_unreadable_replies(tmp_path):
    from skillmix_utils.stages.reference_import import _points

    pts, status, _, parse = _points("no table here", "1.0,1.0,0.0,1.0,1.0", ("a", "b"), "Knots", 2)
    assert (pts, status) == ([1.0, 1.0, 0.0, 1.0, 1.0], "ok") and "points_0" in parse["notes"][-1]
    assert _points("no table here", "1.0,1.0", ("a", "b"), "Knots", 2)[1] == "parse_failed"


def test_rounds_with_other_combinations_stop_the_import(tmp_path):
    ref = build_reference(tmp_path / "test", swap_round2=True)
    res = _cli("import-reference", ref, tmp_path / "out")
    assert res.returncode == 2 and "same combinations" in res.stderr
    assert not (tmp_path / "out" / "eval" / "records.jsonl").exists()
    res = _cli("import-reference", tmp_path / "nothing-here", tmp_path / "out")
    assert res.returncode == 2 and "no such folder" in res.stderr


# --- the reference's published layout: its repository with results in test/ ---------------
# k = 3, seed 10: GPT-4 texts (generation rounds 2 and 3) graded with the rubric-table prompt,
# LLaMA-2-7B-Chat texts (rounds 1-3; round 3 graded on 2 rows only) and Mistral-7B texts (round
# 1, 1 row graded) graded with the "Point earned" prompt, all in folders named ..._gpt, the three
# grading rounds copies of one grading, as the reference wrote them.

CQ = "complex question (loaded question with implicit assumption )"
PUBLISHED = [(("spatial reasoning", CQ, "modus ponens"), "Sewing"),
             ((CQ, "red herring", "metaphor"), "Beekeeping"),
             (("accident (fallacy)", CQ, "emotional self regulation"), "Gardening"),
             (("self serving bias", "red herring", "emotional self regulation"), "Dueling"),
             (("modus ponens", "metaphor", "emotional self regulation"), "Urbanism")]
GPT_POINTS = {2: ["110111", "111111", "011111", "111111", "101111"],
              3: ["011111", "101111", "111111", "110111", "101111"]}
# LLaMA-2: "Point earned" items for the skills only (None: a reply with none; "full": all six)
LLAMA_POINTS = {1: [None, "00", "0.510", "00", "10"], 2: ["100", "full", "001", None, "00"],
                3: ["110", "100"]}
MISTRAL_POINTS = {1: ["010"]}


def _points(code: str | None, k: int = 3) -> list[float]:
    if code is None:
        return []
    if code == "full":
        return [1.0] * (k + 3)
    return [0.5 if c == "5" else float(c) for c in code.replace("0.5", "5")]


def _point_earned_reply(skills, topic, pts) -> str:
    if not pts:
        return ("There's no text provided for the student's response, therefore, it's impossible "
                "to evaluate it.\n\nGrade: 0")
    labels = [s.split(" (")[0].title() for s in skills] + [f"Pertains to {topic}",
                                                           "Text makes sense", "At most two sentences"]
    items = [f"**{label}**: the student's answer is judged here. Point earned: {p:g}"
             for label, p in zip(labels, pts)]
    return "Upon reviewing the student's response, the grading is as follows:\n\n" + "\n\n".join(items) \
        + f"\n\nGrade: {sum(pts):g}"


def _table_reply(skills, topic, pts) -> str:
    # GPT-4 shortened the long name in its tables ("Correctly illustrates complex question")
    labels = [f"Correctly illustrates {'complex question' if s == CQ else s}" for s in skills]
    labels += [f"Pertains to {topic}", "Text makes sense", "At most two sentences"]
    rows = "\n".join(f"| {label:<60} | {p:g}             |" for label, p in zip(labels, pts))
    return (f"Here's the grading table:\n\n| Criteria | Points Earned |\n|---|---|\n{rows}\n"
            f"| Total Points Earned | {sum(pts):g} |\n\nExplanation: The student's text ...")


def build_published_like(repo: Path) -> dict:
    """Write the layout into `repo`/test; return {student: {generation round: [[(points_0,
    true_sentence_lim_pt_0) per row] per grading round]}} as the reference recorded them."""
    skills_dict = reference_skills()
    (repo / "README.md").parent.mkdir(parents=True, exist_ok=True)
    (repo / "README.md").write_text("# SKILL-MIX\n")
    (repo / "skills.csv").write_text("category,skill,definition,example,comments,status,added by\n")
    recorded: dict = {}
    for student, plan, roles in (("gpt-4", GPT_POINTS, ("user", "assistant")),
                                 ("llama2-7b-chat", LLAMA_POINTS, ("[INST]", "[/INST]")),
                                 ("mistral-7b-chat", MISTRAL_POINTS, ("user", "assistant"))):
        for rnd, codes in plan.items():
            sdir = repo / "test" / f"k3_s10_vdefault_r{rnd}" / student
            rows, graded = [], []
            for i, (skills, topic) in enumerate(PUBLISHED):
                text = (f'"Isn\'t it true that in {topic.lower()} the best ideas arrive by themselves?"'
                        if student == "gpt-4" else
                        f"In {topic.lower()}, the hive is a factory. Ask the Dr? Yes, it hums [{rnd}{i}].")
                u, a = roles
                rows.append({"k": 3, "skills": ", \n".join(skills), "topic": topic,
                             "system prompt": "You are a helpful assistant." if student == "gpt-4" else "",
                             f"{u}_0": "Greetings! ...", f"{a}_0": "Answer: a draft.\nExplanation: x",
                             "model_input_0": "...", "text_0": "a draft.",
                             f"{u}_1": "Thanks very much. ...",
                             f"{a}_1": f" Of course!\n\nAnswer: {text}\n\nExplanation: it shows them.",
                             "model_input_1": "...", "text_1": text})
                if i >= len(codes):
                    continue
                code = codes[i]
                pts = [float(c) for c in code] if student == "gpt-4" else _points(code)
                version = "gpt" if student == "gpt-4" else "llama"
                reply = (_table_reply if version == "gpt" else _point_earned_reply)(skills, topic, pts)
                true_pt = float(count_sentences(text) <= 2)
                graded.append({"k": 3, "skills": ",  \n".join(skills), "topic": topic,
                               "system prompt": "You are a helpful assistant.",
                               "user_0": grading_prompt(skills_dict, skills, topic, text, version),
                               "assistant_0": reply, "model_input_0": "[...]",
                               "score_0": sum(pts), "score_extracted_0": sum(pts),
                               "points_0": ",".join(str(p) for p in pts),
                               "num_sentences_manual_in_student_answer_0": count_sentences(text),
                               "true_sentence_lim_pt_0": true_pt,
                               "num_sentences_extracted_eq_num_sentences_model_0": False})
            _write(sdir / "records.csv", rows)
            for g in (1, 2, 3):        # the reference wrote one grading into all three rounds
                _write(sdir / "graded" / f"by_gpt-4_on_text_1_{g}_gpt" / "records.csv", graded)
            recorded.setdefault(student, {})[rnd] = [
                [(r["points_0"], r["true_sentence_lim_pt_0"]) for r in graded]] * 3
    return recorded


def _metrics(out: Path) -> dict:
    df = pd.read_csv(out / "eval" / "tables" / "metrics.csv")
    return {r.student: r for r in df.itertuples()}


def test_import_reference_from_the_repository_gives_the_reference_numbers(tmp_path):
    """The repository root is enough; gradings are labelled by the prompt they used; with the
    default `reference` scoring every student gets the numbers the reference's own rules give
    (its zero-fill of partial "Point earned" lists, its sentence counter), and the table is
    printed."""
    recorded = build_published_like(tmp_path / "skill-mix")
    out = tmp_path / "imported"
    res = _cli("import-reference", tmp_path / "skill-mix", out)
    assert res.returncode == 0, res.stderr
    got = _metrics(out)
    for student, graded in recorded.items():
        full, all_skills, fraction, n = reference_metrics(graded, 3)
        row = got[student]
        assert (row.n_combinations, row.ratio_full_marks, row.ratio_all_skills) == (n, full, all_skills)
        assert row.skills_fraction == pytest.approx(fraction)
    assert (got["gpt-4"].ratio_full_marks, round(got["gpt-4"].skills_fraction, 3)) == (0.6, 0.867)
    assert got["llama2-7b-chat"].ratio_full_marks == pytest.approx(0.2)
    assert got["mistral-7b-chat"].n_combinations == 1
    assert (got["gpt-4"].grader_method, got["llama2-7b-chat"].grader_method) == ("table", "point_earned")
    # the metric table is printed, one line per student
    table = res.stdout.split("metrics.csv:")[1]
    assert "llama2-7b-chat" in table and "0.867" in table and "point_earned" in table

    from skillmix_utils.core.records import RecordStore
    recs = RecordStore(out / "eval" / "records.jsonl").load()
    partial = recs["eval/llama2-7b-chat/all/k3/c1/g0"].gradings[0]
    assert partial.method == "point_earned" and partial.status == "parse_failed"
    assert partial.points == [0.0, 0.0, None, None, None, None]
    assert partial.parse["missing"] == ["Contains metaphor", "Pertains to Beekeeping",
                                        "Text makes sense", "At most two sentences"]
    assert recs["eval/gpt-4/all/k3/c0/g0"].answer.startswith('"Isn\'t it true')   # as graded


def test_import_reference_with_improved_scoring_and_a_later_rescore(tmp_path):
    build_published_like(tmp_path / "skill-mix")
    out = tmp_path / "imported"
    res = _cli("import-reference", tmp_path / "skill-mix" / "test", out, "--scoring", "improved")
    assert res.returncode == 0, res.stderr
    llama = _metrics(out)["llama2-7b-chat"]
    # only the text whose reply lists every criterion counts: the others lack topic and sense
    assert (llama.n_combinations, llama.ratio_full_marks) == (1, 1.0)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["scoring"] == {"preset": "improved"}
    cfg["scoring"] = "reference"                         # `skillmix metrics` honours an edit
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    again = _cli("metrics", out / "config.yaml")
    assert again.returncode == 0, again.stderr
    llama = _metrics(out)["llama2-7b-chat"]
    assert (llama.n_combinations, llama.ratio_full_marks) == (5, pytest.approx(0.2))
