"""Data generation against the scripted loopback server: two graders, the keep rule, the mixes
(JSONL + datasets folder), a sub-sample, the data card, the dry run and the budget stop."""
from __future__ import annotations

import hashlib
import json
import re

import pytest

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.grading import rubric_items
from skillmix_utils.core.records import RecordStore
from skillmix_utils.stages.datagen import run_datagen

from .scripted_server import ScriptedServer


def _tag(skills_str: str) -> int:
    return int(hashlib.sha256(skills_str.encode()).hexdigest()[:6], 16)


def _respond(api, body):
    msgs = body["messages"]
    first = msgs[0]["content"] if isinstance(msgs[0]["content"], str) else msgs[0]["content"][0]["text"]
    if "help me generate an example" in first:
        skills = re.search(r"following skills: (.*?)\. Please keep", first).group(1)
        if len(msgs) == 1:
            return "Answer: draft.\nExplanation: none."
        return f"**Answer:** The hive hums at dawn [{_tag(skills)}].\n\n**Explanation:** scripted."
    skills = re.search(r"following skills: (.*?)\.\"", first).group(1).split(", ")
    topic = re.search(r"in the context of (.*?)\. This single", first).group(1)
    tag = int(re.search(r"\[(\d+)\]", first).group(1))
    pts = [1] * (len(skills) + 3)
    if api == "anthropic" and tag % 2:   # claude takes the topic point of odd tags
        pts[len(skills)] = 0
    rows = "\n".join(f"| {c} | {p} |" for c, p in zip(rubric_items(skills, topic), pts))
    return f"| Criteria | Points Earned |\n|---|---|\n{rows}\n| Total Points Earned | {sum(pts)} |"


@pytest.fixture
def server():
    s = ScriptedServer(_respond).start()
    yield s
    s.stop()


def _cfg(server, out, **extra):
    tree = {"name": "dg", "output_dir": str(out), "concurrency": 2, "data": {
        "teacher": {"spec": "openai:gpt-4o-mini", "base_url": server.openai_url, "max_tokens": 64},
        "graders": [{"name": "gpt", "spec": "openai:gpt-4o", "base_url": server.openai_url,
                     "rounds": 1, "max_tokens": 200},
                    {"name": "claude", "spec": "anthropic:claude-3-opus-20240229",
                     "base_url": server.anthropic_url, "rounds": 1, "max_tokens": 200}],
        "counts": {1: 6, 2: 6, 3: 4},
        "subsamples": [{"name": "small", "size": 5, "per_k": {3: 1}, "seed": 0}]}}
    tree.update(extra)
    return StudyConfig.model_validate(tree)


def test_datagen_keeps_full_marks_by_every_grader(api_env, server):
    cfg = _cfg(server, api_env / "out")
    paths = run_datagen(cfg)
    recs = RecordStore(paths["records"]).records()
    assert len(recs) == 16 and all(r.status == "ok" for r in recs)
    assert all(r.extraction_rule == "bold_answer_marker" for r in recs)
    # the server said why each reply ended: both turns, and every grading, in the record
    assert all(r.finish_reasons == ["stop", "stop"] for r in recs)
    assert all(g.finish_reason == "stop" for r in recs for g in r.gradings)
    expected_kept = {r.id for r in recs if _tag(", ".join(r.combination.skills)) % 2 == 0}
    assert {r.id for r in recs if r.kept} == expected_kept
    assert all(r.kept is False for r in recs if r.id not in expected_kept)

    rows = [json.loads(x) for x in paths["mix:k1-2-3"].read_text().splitlines()]
    assert {r["id"] for r in rows} == expected_kept
    row = rows[0]
    assert set(row) == {"id", "k", "skills", "topic", "messages"}
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant"]
    assert row["messages"][2]["content"].startswith("Thanks very much. Could you please look over")
    k1 = [json.loads(x) for x in paths["mix:k1"].read_text().splitlines()]
    assert all(r["k"] == 1 for r in k1)

    from datasets import load_from_disk
    ds = load_from_disk(str(paths["mix:k1-2"] .parent / "k1-2"))
    assert len(ds) == sum(1 for r in rows if r["k"] <= 2)
    assert ds[0]["messages"][1]["role"] == "assistant"

    card = json.loads(paths["data_card"].read_text())
    assert card["total"]["kept"] == len(expected_kept) and card["total"]["graded"] == 16
    assert card["per_k"]["3"]["planned"] == 4
    assert card["contamination_check"]["passed"] is True
    assert card["contamination_check"]["held_out_used_per_k"]["2"]["topics"] == []
    assert card["subsamples"]["small"]["rows"] <= 5
    assert card["cost_usd"]["total"] > 0
    assert "Contamination check" in paths["data_card_md"].read_text()
    assert (api_env / "out" / "config.yaml").exists()

    calls = sum(server.calls.values())
    again = run_datagen(cfg)              # resumes: nothing left to do, nothing asked again
    assert sum(server.calls.values()) == calls
    assert again["mix:k1-2-3"].read_text() == paths["mix:k1-2-3"].read_text()


def test_dry_run_prints_the_plan_and_writes_nothing(api_env, server, capsys):
    cfg = _cfg(server, api_env / "out")
    assert run_datagen(cfg, dry_run=True) == {}
    out = capsys.readouterr().out
    assert "openai:gpt-4o-mini" in out and "anthropic:claude-3-opus-20240229" in out
    assert re.search(r"teacher: write \(2 turns\)\s+32\b", out)
    assert "estimated total: $" in out
    assert not (api_env / "out").exists()
    assert sum(server.calls.values()) == 0


def test_budget_stops_the_stage_cleanly(api_env, server):
    from skillmix_utils.core.errors import BudgetSpent

    cfg = _cfg(server, api_env / "out", budget_usd=0.0)
    with pytest.raises(BudgetSpent):      # exit status 3; what is done is saved and exported
        run_datagen(cfg)
    recs = RecordStore(api_env / "out" / "data" / "records.jsonl").records()
    assert recs and all(r.status == "error" and "budget_exceeded" in r.error for r in recs)
    card = json.loads((api_env / "out" / "data" / "data_card.json").read_text())
    assert card["complete"] is False and "budget" in card["stopped"]
    assert sum(server.calls.values()) == 0
