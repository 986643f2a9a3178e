"""Every number is the one the config asked for (issue 9): evaluation never asks a training
combination, a changed config never reuses a text or grading made otherwise, and an unchanged
re-run makes no request. Run through the `skillmix` command line against the scripted loopback
server (real openai SDK)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from skillmix_utils.core.catalog import load_catalog
from skillmix_utils.core.config import load_study_config
from skillmix_utils.core.grading import rubric_items
from skillmix_utils.core.records import RecordStore

from .scripted_server import ScriptedServer


def _key(c):
    return frozenset(c.skills), c.topic


def test_paper_config_evaluation_never_asks_a_training_combination():
    """configs/paper-llama2-13b.yaml with 150 data texts at k = 2 and 3: before the fix every
    one of the 200 SKILL-MIX_train(2, 3) combinations was a training combination."""
    from skillmix_utils.stages import datagen, evaluate

    cfg = load_study_config("configs/paper-llama2-13b.yaml", overrides={
        "data.counts": {2: 150, 3: 150}, "data.mixes": [[2, 3]], "data.subsamples": [],
        "evaluation.ks": [2, 3]})
    catalog = load_catalog()
    train = {_key(p.combination) for p in datagen.planned_items(cfg, catalog)}
    student = cfg.evaluation.students[0]
    ev = evaluate.planned_items(cfg, catalog, student)
    combos = {(p.combination.setting, p.combination.k, p.combination.index): p.combination
              for p in ev}
    assert len(combos) == 3 * 2 * 100
    overlap = [c for c in combos.values() if _key(c) in train]
    assert overlap == []
    # Nothing else moved: the train setting still draws training skills and topics.
    tr = [c for (s, _, _), c in combos.items() if s == "train"]
    assert all(catalog.skill(x).split == "train" for c in tr for x in c.skills)


def _tag(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _respond(api, body):
    msgs = body["messages"]
    first = msgs[0]["content"]
    if "help me generate an example" in first:
        if len(msgs) == 1:
            return "Answer: A draft.\nExplanation: none."
        # The text depends on the request (temperature included), as a real model's would.
        return f"Answer: The hive hums [{_tag(json.dumps(body, sort_keys=True))}].\nExplanation: x."
    skills = re.search(r"following skills: (.*?)\.\"", first).group(1).split(", ")
    topic = re.search(r"in the context of (.*?)\. This single", first).group(1)
    rows = "\n".join(f"| {c} | 1 |" for c in rubric_items(skills, topic))
    return f"| Criteria | Points Earned |\n|---|---|\n{rows}\n| Total Points Earned | {len(skills) + 3} |"


@pytest.fixture
def server():
    s = ScriptedServer(_respond).start()
    yield s
    s.stop()


def _tree(server, out) -> dict:
    model = {"spec": "openai:gpt-4o-mini", "base_url": server.openai_url, "max_tokens": 64}
    grader = {"name": "gpt", "spec": "openai:gpt-4o", "base_url": server.openai_url,
              "rounds": 1, "max_tokens": 200}
    return {"name": "rn", "output_dir": str(out), "concurrency": 2,
            "data": {"teacher": dict(model), "graders": [dict(grader)], "counts": {2: 4},
                     "pools": {2: {"skills": "train", "topics": "train"}}, "mixes": [[2]]},
            "evaluation": {"students": [{"name": "stud", "model": dict(model, temperature=0.7)}],
                           "settings": ["train"], "ks": [2], "n_combinations": 3,
                           "generation_rounds": 1, "graders": [dict(grader)]}}


def _cli(tmp_path, tree, *args):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tree))
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", *args, str(path)],
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_cli_evaluation_excludes_training_data_and_reruns_only_what_changed(api_env, server,
                                                                            tmp_path):
    out = tmp_path / "out"
    tree = _tree(server, out)
    _cli(tmp_path, tree, "generate-data")
    _cli(tmp_path, tree, "evaluate")
    data = RecordStore(out / "data" / "records.jsonl").records()
    evals = RecordStore(out / "eval" / "records.jsonl").records()
    assert len(data) == 4 and len(evals) == 3
    assert not {_key(r.combination) for r in evals} & {_key(r.combination) for r in data}
    card = json.loads((out / "data" / "data_card.json").read_text())
    assert card["evaluation_overlap"]["train"]["2"]["overlap"] == 0
    assert "Evaluation overlap" in (out / "data" / "data_card.md").read_text()
    metrics = pd.read_csv(out / "eval" / "tables" / "metrics.csv")
    assert metrics.n_train_overlap.tolist() == [0]
    assert metrics.n_combinations.tolist() == [3]

    calls = sum(server.calls.values())
    lines = [len((out / d / "records.jsonl").read_text().splitlines()) for d in ("data", "eval")]
    _cli(tmp_path, tree, "evaluate")                          # unchanged: no request at all
    _cli(tmp_path, tree, "generate-data")
    assert sum(server.calls.values()) == calls
    # ... and nothing rewritten: the stored points were already the current ones.
    assert [len((out / d / "records.jsonl").read_text().splitlines())
            for d in ("data", "eval")] == lines

    # A student's temperature changes its texts: all 3 are written and graded again.
    tree["evaluation"]["students"][0]["model"]["temperature"] = 1.0
    _cli(tmp_path, tree, "evaluate")
    assert sum(server.calls.values()) == calls + 3 * 2 + 3
    new = {r.id: r for r in RecordStore(out / "eval" / "records.jsonl").records()}
    assert all(r.sampling["temperature"] == 1.0 for r in new.values())
    assert all(len(r.gradings) == 1 for r in new.values())
    calls = sum(server.calls.values())

    # A grader's temperature changes only the gradings.
    tree["evaluation"]["graders"][0]["temperature"] = 0.5
    _cli(tmp_path, tree, "evaluate")
    assert sum(server.calls.values()) == calls + 3
    calls = sum(server.calls.values())

    # A catalog entry shown in the prompt changes the texts that show it.
    from importlib import resources
    builtin = resources.files("skillmix_utils").joinpath("data", "catalog")
    doc = yaml.safe_load(builtin.joinpath("skills.yaml").read_text())
    skill = new["eval/stud/train/k2/c0/g0"].combination.skills[0]
    for entry in doc["skills"]:
        if entry["name"] == skill:
            entry["definition"] += " (reworded)"
    catalog_file = tmp_path / "skills.yaml"
    catalog_file.write_text(yaml.safe_dump(doc))
    tree["catalog"] = {"skills": str(catalog_file), "topics": str(builtin.joinpath("topics.yaml"))}
    _cli(tmp_path, tree, "evaluate")
    redone = sum(1 for r in new.values() if skill in r.combination.skills)
    assert sum(server.calls.values()) == calls + 3 * redone
    calls = sum(server.calls.values())

    # Fewer combinations: the dropped one never reaches a table.
    tree["evaluation"]["n_combinations"] = 2
    _cli(tmp_path, tree, "evaluate")
    assert sum(server.calls.values()) == calls
    metrics = pd.read_csv(out / "eval" / "tables" / "metrics.csv")
    assert metrics.n_combinations.tolist() == [2]
    # ... nor the store that the report and notebooks read: it was moved aside, not deleted.
    ids = {r.id for r in RecordStore(out / "eval" / "records.jsonl").records()}
    assert ids == {"eval/stud/train/k2/c0/g0", "eval/stud/train/k2/c1/g0"}
    aside = RecordStore(out / "eval" / "records.superseded.jsonl").records()
    assert [r.id for r in aside] == ["eval/stud/train/k2/c2/g0"]

    # Asked for again, made the same way: it comes back, and nothing is paid twice.
    tree["evaluation"]["n_combinations"] = 3
    _cli(tmp_path, tree, "evaluate")
    assert sum(server.calls.values()) == calls
    assert pd.read_csv(out / "eval" / "tables" / "metrics.csv").n_combinations.tolist() == [3]
    assert not RecordStore(out / "eval" / "records.superseded.jsonl").records()
