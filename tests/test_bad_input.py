"""Bad input through the real command line: one line naming the file and field, exit status 2,
no traceback, and nothing written (no output folder, no cache, no lock) - for every case a user
met (issue 22 added: missing sections, --records that is no records file, training data that is
missing or empty, names and output folders that would write elsewhere, duplicate keys, values a
provider refuses, URLs and ports, credentials in any form, records of another schema version)."""
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


def drop(*sections):
    def setup(d, t):
        for s in sections:
            t.pop(s, None)
    return setup


def records_file(content):
    def setup(d, t):
        if content is None:
            (d / "recs").mkdir()
        else:
            (d / "recs.jsonl").write_text(content)
    return setup


TRAIN = {"base_model": "smollm2-135m-instruct", "steps": 1}


def with_train(mix=None):
    def setup(d, t):
        t["train"] = dict(TRAIN)
        if mix is not None:
            (d / "out" / "data" / "mixes").mkdir(parents=True)
            (d / "out" / "data" / "mixes" / "k1-2-3.jsonl").write_text(mix)
    return setup


def beside_config_yaml(d, t):
    t["output_dir"] = "."
    t["__file__"] = "config.yaml"


def users_config_in_out(d, t):
    (d / "out").mkdir()
    (d / "out" / "config.yaml").write_text("# my notes\nname: mine\n")


def env_key_body(d, t):
    t["__env__"] = {"OPENAI_API_KEY": "sk-proj-Zq8Yx7Wv6Ut5Sr4Qp3On2Ml1"}
    t["description"] = "run with Zq8Yx7Wv6Ut5Sr4Qp3On2Ml1 0123456789abcdef"


def eval_records(*lines):
    def setup(d, t):
        (d / "out" / "eval").mkdir(parents=True)
        (d / "out" / "eval" / "records.jsonl").write_text("".join(x + "\n" for x in lines))
    return setup


NEWER = ('{"schema_version": 99, "id": "eval/s/train/k1/c0/g0", "stage": "eval", '
         '"model": "openai:gpt-4o-mini", "combination": {"skills": ["x"], "topic": "t", "k": 1}}')
SECRET_NAME = "sk-proj-0123456789abcdefghij"


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
    # -- issue 22: tracebacks, locks and model conversions before the checks
    "evaluate, no evaluation section": (drop("evaluation"), ["evaluate"],
                                        "evaluation: the config has no evaluation section"),
    "generate-data, no data section": (drop("data"), ["generate-data"],
                                       "data: the config has no data section"),
    "train, no train section": (None, ["train"], "train: the config has no train section"),
    "push, no train section": (None, ["push"], "train: the study has no train section"),
    "--records is a folder": (records_file(None), ["grade", "--records", "recs"],
                              "recs: --records: is a folder"),
    "--records missing": (None, ["grade", "--records", "nothing.jsonl"],
                          "nothing.jsonl: --records: no such records file"),
    "--records junk": (records_file("junk\n{\"id\": 1}\n"), ["grade", "--records", "recs.jsonl"],
                       "recs.jsonl: --records: holds no readable record"),
    "--grader unknown": (records_file(NEWER.replace("99", "1")),
                         ["grade", "--records", "recs.jsonl", "--grader", "nobody"],
                         "--grader: no grader 'nobody'"),
    "train, no data mix": (with_train(), ["train"], "train.data_mix: training mix not found"),
    "train, empty data mix": (with_train(""), ["train"], "train.data_mix: the training mix k1-2-3 is empty"),
    "train --device-gib -1": (with_train(), ["train", "--dry-run", "--device-gib", "-1"],
                              "--device-gib: must be more than 0"),
    "metrics, every record damaged": (eval_records("garbage", "{\"id\": 3}"), ["metrics"],
                                      "records.jsonl: no readable evaluation record"),
    "metrics, records of another schema version": (eval_records(NEWER), ["metrics"],
                                                   "records.jsonl: no readable evaluation record"),
    "cache info, SKILLMIX_CACHE a file": (cache_is_file, ["cache", "info"],
                                          "SKILLMIX_CACHE: "),
    "human --port 99999": (None, ["human", "--port", "99999"], "--port: a port is 1-65535"),
    # -- outputs stay in their folder
    "name ''": (nested("name", value=""), ["generate-data"], "name: must be one folder name"),
    "name a/b": (nested("name", value="a/b"), ["generate-data"], "name: must be one folder name"),
    "name ..": (nested("name", value=".."), ["run"], "name: must be one folder name"),
    "name ../../escape": (nested("name", value="../../escape"), ["evaluate"],
                          "name: must be one folder name"),
    "subsample name a/b": (nested("data", "subsamples", value=[{"name": "a/b", "size": 1}]),
                           ["generate-data"], "data.subsamples.0.name: must be one folder name"),
    "output_dir /": (nested("output_dir", value="/"), ["generate-data"], "output_dir: / holds"),
    "output_dir the home folder": (nested("output_dir", value=str(Path.home())), ["evaluate"],
                                   "output_dir: " + str(Path.home()) + " is the home folder"),
    "output_dir the skillmix checkout": (nested("output_dir", value=str(ROOT)), ["generate-data"],
                                         " is the skillmix checkout"),
    "output_dir . beside config.yaml": (beside_config_yaml, ["generate-data"],
                                        "is the study file's folder"),
    "output_dir holding the user's config.yaml": (users_config_in_out, ["generate-data"],
                                                  "config.yaml was not written by skillmix"),
    # -- validated as a provider would
    "a key twice": (raw("name: x\nconcurrency: 2\nname: y\n"), ["generate-data"],
                    "study.yaml: not valid YAML at line 3, column 1: the key 'name' is given twice"),
    "two data sections": (lambda d, t: t.update(__raw__=yaml.safe_dump(study()) + "data: {}\n"),
                          ["generate-data"], "the key 'data' is given twice"),
    "temperature -1": (nested("data", "teacher", "temperature", value=-1), ["generate-data"],
                       "data.teacher.temperature: -1 is outside what openai accepts (0 to 2)"),
    "anthropic temperature 1.5": (nested("evaluation", "graders", 0, value={
        "spec": "anthropic:claude-3-haiku-20240307", "temperature": 1.5}), ["evaluate"],
        "evaluation.graders.0.temperature: 1.5 is outside what anthropic accepts (0 to 1)"),
    "max_tokens 0": (nested("data", "teacher", "max_tokens", value=0), ["generate-data"],
                     "data.teacher.max_tokens: must be at least 1"),
    "options.timeout 0": (nested("data", "teacher", "options", value={"timeout": 0}),
                          ["generate-data"], "data.teacher.options: timeout must be more than 0"),
    "base_url with no scheme": (nested("data", "teacher", "base_url", value="localhost:8000/v1"),
                                ["generate-data"], "data.teacher.base_url: needs a scheme and a host"),
    "base_url port out of range": (nested("data", "graders", 0, "base_url",
                                          value="http://127.0.0.1:99999/v1"),
                                   ["generate-data"], "data.graders.0.base_url: is not a URL with a valid port"),
    # -- credentials in any form, never echoed
    "key as an option name": (nested("data", "teacher", "options", value={SECRET_NAME: 1}),
                              ["generate-data"], "data.teacher.options: a field name there looks like"),
    "key as a top-level field": (nested(SECRET_NAME, value=1), ["generate-data"],
                                 "(top level): a field name there looks like"),
    "env key without its prefix": (env_key_body, ["run"],
                                   "description: holds the value of an API key variable"),
    "api_key in base_url's query": (nested("data", "teacher", "base_url",
                                           value="http://127.0.0.1:9/v1?api_key=not-a-key-shape"),
                                    ["generate-data"], "data.teacher.base_url: a URL with a query "
                                    "parameter named like a credential ('api_key')"),
    "token in a URL in description": (nested("description", value="see https://h/x?access_token=zz"),
                                      ["run"], "description: a URL with a query parameter"),
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
    name = tree.pop("__file__", "study.yaml")
    cfg = tmp_path / name
    cfg.write_text(tree["__raw__"] if "__raw__" in tree else yaml.safe_dump(tree))
    before = sorted(tmp_path.rglob("*"))
    command = args if args[0] == "cache" else [args[0], name, *args[1:]]
    proc = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", *command], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skillmix: error: "), proc.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    for secret in ("0123456789abcdef", "pa55word", "Zq8Yx7Wv6Ut5"):          # no secret echoed
        assert secret not in lines[0]
    assert sorted(tmp_path.rglob("*")) == before      # no output folder, no cache, no lock
