"""`protocol: reference` on the wire: what a loopback server receives during `skillmix
generate-data` and `skillmix evaluate` with a catalog in the reference's formats is, message for
message, what the Skill-Mix reference code sends (tests/reference_shapes.py rebuilds it): the
system message first to OpenAI models, catalog definitions as written (two spaces where a
definition ends with one), "Contains {skill}" in the open-weight rubric, and the text graded as
the reference extracts it (a quoted answer keeps its quotes)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading

import yaml

from reference_shapes import (SKILLS_CSV, SYSTEM, TOPICS_TXT, generation_turns, grading_prompt,
                              reference_skills, text_of)   # tests/ is on sys.path

from .scripted_server import ScriptedServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _respond(bodies: list, lock: threading.Lock):
    def respond(api: str, body: dict) -> str:
        with lock:
            bodies.append(body)
        msgs = [m for m in body["messages"] if m["role"] != "system"]
        first = msgs[0]["content"]
        if "help me generate" in first:
            topic = re.search(r"in the context of (.*?) that illustrates", first).group(1)
            if len(msgs) == 1:
                return "Answer: A draft.\nExplanation: none yet."
            return (f'Answer: "Everyone in {topic} knows the hive hums like a city, don\'t they?"'
                    "\n\nExplanation: it shows the skills.")
        found = re.search(r"The criteria are: (.*?)\. The table", first)
        if found:
            rows = "\n".join(f"| {c} | 1 |" for c in found.group(1).split(", "))
            return (f"Here's the grading table:\n\n| Criteria | Points Earned |\n|---|---|\n{rows}\n"
                    "| Total Points Earned | 9 |\n\nExplanation: fine.")
        crit = re.search(r"following criteria: (.*?)\. For each", first).group(1).split(", ")
        return "\n".join(f"{i}. {c}: met. Point earned: 1" for i, c in enumerate(crit, 1)) + "\nGrade: 9"
    return respond


def _config(tmp_path, server) -> str:
    url = server.openai_url
    graders = [{"spec": "openai:gpt-4-0613", "name": "gpt-4", "base_url": url, "rounds": 2},
               {"spec": "openai:gpt-4-0613", "name": "open-weight", "base_url": url,
                "method": "point_earned", "rounds": 1}]
    cfg = {"name": "refwire", "output_dir": str(tmp_path / "out"),
           "protocol": "reference", "scoring": "reference",
           "catalog": {"skills": str(SKILLS_CSV), "topics": str(TOPICS_TXT)},
           "data": {"teacher": {"spec": "openai:gpt-4-0613", "base_url": url, "temperature": 1.0},
                    "graders": graders, "counts": {2: 2}, "pools": {2: {"skills": "train", "topics": "train"}},
                    "mixes": [[2]]},
           "evaluation": {"students": [{"name": "gpt-4", "model": {"spec": "openai:gpt-4-0613", "base_url": url}}],
                          "settings": ["held_out"], "ks": [3], "n_combinations": 2,
                          "generation_rounds": 1, "graders": graders}}
    path = tmp_path / "refwire.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def _expected(records_path, skills) -> tuple[list, list]:
    """(generation requests, grading requests) the reference sends for these records."""
    gen, grade = [], []
    last = {}                     # the store appends a record again with its gradings
    for line in open(records_path, encoding="utf-8"):
        rec = json.loads(line)
        last[rec["id"]] = rec
    for rec in last.values():
        names, topic = rec["combination"]["skills"], rec["combination"]["topic"]
        t1, t2 = generation_turns(skills, names, topic)
        reply1, reply2 = rec["conversation"][1]["content"], rec["conversation"][3]["content"]
        gen.append([SYSTEM, {"role": "user", "content": t1}])
        gen.append([SYSTEM, {"role": "user", "content": t1}, {"role": "assistant", "content": reply1},
                    {"role": "user", "content": t2}])
        answer = text_of(reply2)
        grade += [[SYSTEM, {"role": "user", "content": grading_prompt(skills, names, topic, answer)}]] * 2
        grade.append([SYSTEM, {"role": "user", "content": grading_prompt(skills, names, topic, answer, "llama")}])
    return gen, grade


def _run(*args, env):
    res = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", *args], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    return res


def _key(messages) -> str:
    return json.dumps(messages, sort_keys=True)


def test_reference_protocol_sends_what_the_reference_sends(api_env, tmp_path):
    bodies, lock = [], threading.Lock()
    server = ScriptedServer(_respond(bodies, lock)).start()
    try:
        env = {**os.environ, "PYTHONPATH": ROOT}
        config = _config(tmp_path, server)
        skills = reference_skills()
        sent_all = []
        for command, records in (("generate-data", "data"), ("evaluate", "eval")):
            with lock:
                bodies.clear()
            _run(command, config, env=env)
            gen, grade = _expected(tmp_path / "out" / records / "records.jsonl", skills)
            sent = sorted(_key(b["messages"]) for b in bodies)
            assert sent == sorted(_key(m) for m in gen + grade), command
            sent_all += sent
    finally:
        server.stop()
    # Among them (the seeded draw is the same on every machine): "accident (fallacy)", whose
    # definition ends with a space, renders two spaces before "For example" as the reference does;
    # and a quoted answer is graded with its quotes.
    everything = "".join(sent_all)
    assert "exception to it.  For example, Birds fly." in everything
    assert 'The student\'s answer was: \\"\\"Everyone in' in everything


def test_reference_preset_leaves_local_models_without_a_system_message():
    from skillmix_utils.core.config import StudyConfig

    cfg = StudyConfig.model_validate({
        "name": "x", "protocol": "reference",
        "evaluation": {"students": [{"name": "local", "model": {"spec": "hf:smollm2-135m-instruct"}},
                                    {"name": "vllm", "model": {"spec": "vllm:some/model"}},
                                    {"name": "api", "model": {"spec": "anthropic:claude-3-opus-20240229"}}],
                       "graders": [{"spec": "hf:smollm2-135m-instruct", "method": "yes_no_logprob"}]}})
    local, vllm, api = (s.model for s in cfg.evaluation.students)
    assert local.system_message is None and vllm.system_message is None   # as the reference
    assert api.system_message == SYSTEM["content"]
    assert local.answer_rule == api.answer_rule == "reference"
    assert cfg.evaluation.graders[0].system_message is None
