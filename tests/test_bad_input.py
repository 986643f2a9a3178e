"""Bad input through the real command line: one line naming the file and field, exit status 2,
no traceback, and nothing written (no output folder, no cache) - for every case a user met."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
URL = "http://127.0.0.1:9/v1"          # never reached: every case stops before a request


def study() -> dict:
    api = {"spec": "openai:gpt-4o-mini", "base_url": URL}
    return {"name": "probe", "output_dir": "out", "concurrency": 2,
            "data": {"teacher": dict(api), "graders": [{**api, "rounds": 1}],
                     "counts": {1: 2}, "pools": {1: {"skills": "all", "topics": "train"}},
                     "mixes": [[1]]},
            "evaluation": {"students": [{"name": "s", "model": dict(api)}],
                           "graders": [{**api, "rounds": 1}], "ks": [1], "settings": ["train"],
                           "n_combinations": 1, "generation_rounds": 1}}


def one_topic(d, t):
    (d / "topics.txt").write_text("Knots\n")
    t["catalog"] = {"topics": "topics.txt"}


def big_k(d, t):
    t["data"]["counts"][150] = 1
    t["data"]["pools"][150] = {"skills": "train", "topics": "train"}


def nested(*keys, value):
    def setup(d, t):
        node = t
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return setup


def raw(text):
    def setup(d, t):
        t.clear()
        t["__raw__"] = text
    return setup


def out_is_file(d, t):
    (d / "out").write_text("x")


def cache_is_file(d, t):
    (d / "cachefile").write_text("x")
    t["__env__"] = {"SKILLMIX_CACHE": str(d / "cachefile")}


def no_key(d, t):
    t["__env__"] = {"OPENAI_API_KEY": None}


def adapter(d, t):
    t["evaluation"]["students"][0] = {"name": "s", "model": {"spec": "hf:smollm2-135m-instruct"},
                                      "adapter": "missing/adapter"}


def untrained(d, t):
    t["train"] = {"base_model": "smollm2-135m-instruct", "steps": 1}
    t["evaluation"]["students"][0] = {"name": "tuned", "model": {"spec": "hf:smollm2-135m-instruct"},
                                      "adapter": "@train"}


CASES = {  # id: (setup, command and arguments, what the one line must name)
    "one-topic topics file": (one_topic, ["generate-data"], "data.counts.1: the train topic pool"),
    "k larger than the pool": (big_k, ["generate-data"], "data.counts.150: k=150 needs 150"),
    "negative count": (nested("data", "counts", 1, value=-3), ["generate-data"], "data.counts.1:"),
    "--set name.sub=1": (None, ["generate-data", "--set", "name.sub=1"], "--set name.sub: name is a value"),
    "--set past a list": (None, ["generate-data", "--set", "data.graders.5.rounds=2"],
                          "--set data.graders.5.rounds: data.graders has 1 entry"),
    "--set bad YAML value": (None, ["generate-data", "--set", "data.counts={1: [}"],
                             "--set data.counts: the value"),
    "invalid YAML": (raw("name: x\ndata: [\n  teacher: {\n"), ["generate-data"],
                     "study.yaml: not valid YAML at line 4"),
    "output folder is a file": (out_is_file, ["generate-data"], "/out is a file, not a folder"),
    "cache path is a file": (cache_is_file, ["generate-data"], "SKILLMIX_CACHE:"),
    "missing adapter folder": (adapter, ["evaluate"], "evaluation.students.0.adapter: no adapter folder"),
    "@train before training": (untrained, ["evaluate"],
                               "evaluation.students[tuned].adapter: no trained model"),
    "openai: with no model": (nested("data", "teacher", "spec", value="openai:"), ["generate-data"],
                              "data.teacher.spec: 'openai:' names no model"),
    "missing API key": (no_key, ["generate-data"], "data.teacher.spec: openai:gpt-4o-mini needs the environment variable OPENAI_API_KEY"),
    "missing API key, run": (no_key, ["run"], "OPENAI_API_KEY"),
    "run with an invalid override": (None, ["run", "--set", "data.counts.1=-1"], "data.counts.1:"),
    "unknown field": (nested("data", "teachr", value={}), ["generate-data"], "data.teachr: unknown field"),
    "key in default_headers": (nested("data", "teacher", "options",
                                      value={"default_headers": {"X-Custom": "Bearer abcdefghijklmnop"}}),
                               ["generate-data"], "data.teacher.options.default_headers.X-Custom: looks like"),
    "Authorization header": (nested("data", "teacher", "options",
                                    value={"default_headers": {"Authorization": "whatever"}}),
                             ["evaluate"], "default_headers.Authorization: a credential field"),
    "user:password in base_url": (nested("data", "teacher", "base_url",
                                         value="http://me:pa55word@127.0.0.1:9/v1"),
                                  ["generate-data"], "data.teacher.base_url: looks like a password"),
    "key in description": (nested("description", value="made with sk-proj-0123456789abcdefghij"),
                           ["run"], "description: looks like a provider API key"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path):
    setup, args, expected = CASES[case]
    tree = study()
    if setup:
        setup(tmp_path, tree)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKILLMIX_CACHE": str(tmp_path / "cache"),
           "OPENAI_API_KEY": "sk-test-0123456789abcdef"}
    env.pop("OPENAI_BASE_URL", None)
    for k, v in tree.pop("__env__", {}).items():
        env.pop(k, None) if v is None else env.__setitem__(k, v)
    cfg = tmp_path / "study.yaml"
    cfg.write_text(tree["__raw__"] if "__raw__" in tree else yaml.safe_dump(tree))
    before = sorted(tmp_path.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", args[0], "study.yaml",
                           *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skillmix: error: "), proc.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert "0123456789abcdef" not in lines[0] and "pa55word" not in lines[0]   # no secret echoed
    assert sorted(tmp_path.rglob("*")) == before      # no output folder, no cache, no lock
