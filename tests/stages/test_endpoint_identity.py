"""A student on an OpenAI-compatible server moved to another server (its `base_url` changed in
the config) is another model: `skillmix evaluate` rewrites its texts with the new server's
answers instead of keeping the old server's."""
from __future__ import annotations

import os
import subprocess
import sys

import yaml

from skillmix_utils.core.records import RecordStore

from .scripted import make_respond, study_tree
from .scripted_server import ScriptedServer


def _other_server_respond():
    """The scripted study's answers, marked as written by the other server."""
    respond = make_respond()

    def other(api, body):
        text = respond(api, body)
        if "help me generate an example" in str(body["messages"][0]["content"]):
            text = text.replace("Answer: ", "Answer: [other server] ", 1)
        return text
    return other


def _evaluate(config, tree):
    config.write_text(yaml.safe_dump(tree))
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "evaluate", str(config)],
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_a_student_moved_to_another_server_is_asked_again(api_env, scripted_server, tmp_path):
    other = ScriptedServer(_other_server_respond()).start()
    try:
        out, config = tmp_path / "out", tmp_path / "study.yaml"
        tree = study_tree(scripted_server, out)
        student = tree["evaluation"]["students"][0]["model"]
        student["spec"] = "openai-compatible:student"
        _evaluate(config, tree)
        records = RecordStore(out / "eval" / "records.jsonl")
        assert not any("[other server]" in (r.answer or "") for r in records.records())

        student["base_url"] = other.openai_url
        done = _evaluate(config, tree)
        assert "rewriting them" in done.stderr
        texts = RecordStore(out / "eval" / "records.jsonl").records()
        assert len(texts) == 6 and all(r.answer.startswith("[other server]") for r in texts)
        assert other.calls["openai"] == 12          # two turns of each of the 6 texts
    finally:
        other.stop()
