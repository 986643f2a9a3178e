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
    res = _cli("import-reference", ref, out)
    assert res.returncode == 0, res.stderr
    assert "1 graded folder(s) of text_0 skipped" not in res.stdout   # skipped per round: 2
    assert "6 texts of 1 student(s), 6 gradings by 1 grader(s); 2 graded folder(s) of text_0 skipped" in res.stdout

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

    pts, status, _ = _points("no table here", "1.0,1.0,0.0,1.0,1.0", ("a", "b"), "Knots", 2)
    assert (pts, status) == ([1.0, 1.0, 0.0, 1.0, 1.0], "ok")
    assert _points("no table here", "1.0,1.0", ("a", "b"), "Knots", 2)[1] == "parse_failed"


def test_rounds_with_other_combinations_stop_the_import(tmp_path):
    ref = build_reference(tmp_path / "test", swap_round2=True)
    res = _cli("import-reference", ref, tmp_path / "out")
    assert res.returncode == 2 and "same combinations" in res.stderr
    assert not (tmp_path / "out" / "eval" / "records.jsonl").exists()
    res = _cli("import-reference", tmp_path / "nothing-here", tmp_path / "out")
    assert res.returncode == 2 and "no such folder" in res.stderr
