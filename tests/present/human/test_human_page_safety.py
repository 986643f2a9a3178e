"""What a careless or curious visitor of the grading page could do, and cannot: map texts to
writers from the page source, read or write another rater's grades, become a rater by typing a
name, break the server with a malformed grade, inject HTML through a study name; and what a
rater is told (the LLM grader's own definitions and rules) and asked (each distinct text once)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.present.human import GradeStore, human_items, write_agreement
from skillmix_utils.present.human.access import rater_tokens
from skillmix_utils.present.human.sample import grades_dir
from skillmix_utils.present.human.server import TOKEN_HEADER, create_app

from .conftest import STUDENTS, make_study


def _page_data(html: str, name: str):
    m = re.search(rf'<script type="application/json" id="{name}">(.*?)</script>', html, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_item_keys_cannot_be_traced_to_records_without_the_studys_secret(study_config):
    cfg = load_study_config(study_config)
    client = create_app(cfg, "alice").test_client()
    token = rater_tokens(cfg)["alice"]
    html = client.get(f"/rate/alice?token={token}").get_data(as_text=True)
    keys = [it["key"] for it in _page_data(html, "items-data")]
    assert len(keys) == 6
    secret = cfg.out / "human" / "secret"
    assert secret.exists() and _mode(secret) == 0o600
    assert secret.read_text().strip() not in html
    # What anyone could compute from the study's name, seed and the record-id scheme maps no key.
    ids = [r for s in STUDENTS for k in (1, 2) for i in range(3)
           for r in (f"eval/{s}/held_out/k{k}/c{i}/g0",)]
    guesses = {hashlib.sha256(f"{p}:{rid}".encode()).hexdigest()
               for rid in ids for p in ("hum:0", "0", "hum")}
    assert not any(g.startswith(k) or k.startswith(g[:12]) for g in guesses for k in keys)
    # The keys hang on the secret: a new secret, new keys, and a grade given before still counts
    # (it belongs to its record and text, not to the key).
    items = human_items(cfg)
    GradeStore(grades_dir(cfg), "alice").append(items[0], 0, 1)
    secret.unlink()
    again = human_items(cfg)
    assert {it.key for it in again}.isdisjoint(keys)
    assert _mode(secret) == 0o600
    new_key = next(it.key for it in again if it.record_id == items[0].record_id)
    assert GradeStore(grades_dir(cfg), "alice").current(again) == {new_key: {0: 1}}


def test_no_token_no_grades_and_no_rater_by_typing_a_name(study_config):
    cfg = load_study_config(study_config)
    with pytest.raises(SkillmixError, match="no raters yet"):
        create_app(cfg)                                    # nobody named: nobody served
    app = create_app(cfg, ["alice", "bob"])
    tokens = rater_tokens(cfg)
    assert _mode(cfg.out / "human" / "raters.json") == 0o600
    client = app.test_client()
    key = human_items(cfg)[0].key
    grade = {"item": key, "criterion": 0, "value": 1}
    alice = {TOKEN_HEADER: tokens["alice"]}

    assert client.get("/rate/alice").status_code == 403
    assert client.get("/rate/alice?token=guess").status_code == 403
    assert client.get(f"/rate/alice?token={tokens['bob']}").status_code == 403   # bob's token
    assert client.get("/api/rate/alice/state").status_code == 403
    assert client.post("/api/rate/alice/grade", json=grade).status_code == 403
    assert client.post("/api/rate/alice/grade", json=grade,
                       headers={TOKEN_HEADER: tokens["bob"]}).status_code == 403
    assert not (grades_dir(cfg) / "alice.jsonl").exists()
    assert client.post("/api/rate/alice/grade", json=grade, headers=alice).status_code == 200
    assert client.get("/api/rate/alice/state", headers=alice).get_json()["grades"] == {key: {"0": 1}}
    page = client.get(f"/rate/alice?token={tokens['alice']}")
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    # The front page asks for the link, not for a name; a token leads to its own rater's page.
    front = client.get("/").get_data(as_text=True)
    assert 'name="rater"' not in front and 'name="token"' in front
    assert client.get(f"/?token={tokens['bob']}").headers["Location"].endswith(
        f"/rate/bob?token={tokens['bob']}")
    assert client.get("/?token=guess").status_code == 403

    # A server started without --rater serves the raters named before, and nobody else.
    everyone = create_app(cfg).test_client()
    assert everyone.get(f"/rate/bob?token={tokens['bob']}").status_code == 200
    for name in ("mallory", "carol"):
        assert everyone.post(f"/api/rate/{name}/grade", json=grade).status_code == 403
        assert everyone.post(f"/api/rate/{name}/grade", json=grade, headers=alice).status_code == 403
        assert everyone.get(f"/rate/{name}?token={tokens['alice']}").status_code == 403
        assert not (grades_dir(cfg) / f"{name}.jsonl").exists()
    assert rater_tokens(cfg).keys() == {"alice", "bob"}
    table = write_agreement(cfg, n_boot=0)["human_agreement"].read_text()
    assert "mallory" not in table and "alice" in table


@pytest.mark.parametrize("body", [
    b'[1, 2]', b'"grade"', b'null', b'17', b'{}', b'not json', b'\xff\xfe{',
    b'{"item": KEY, "criterion": 0, "value": Infinity}',
    b'{"item": KEY, "criterion": NaN, "value": 1}',
    b'{"item": KEY, "criterion": 2.7, "value": 1}',
    b'{"item": KEY, "criterion": 0.0, "value": 1}',
    b'{"item": KEY, "criterion": 0, "value": true}',
    b'{"item": KEY, "criterion": true, "value": 1}',
    b'{"item": KEY, "criterion": 0, "value": 1.0}',
    b'{"item": KEY, "criterion": 0, "value": "1"}',
    b'{"item": KEY, "criterion": "0", "value": 1}',
    b'{"item": KEY, "criterion": 0, "value": 2}',
    b'{"item": KEY, "criterion": -1, "value": 1}',
    b'{"item": KEY, "criterion": 99, "value": 1}',
    b'{"item": KEY, "criterion": 1' + b'0' * 4000 + b', "value": 1}',
    b'{"item": KEY, "criterion": 0, "value": 1, "rater": "bob"}',
    b'{"item": ["a"], "criterion": 0, "value": 1}',
    b'{"item": "nope", "criterion": 0, "value": 1}',
    b'{"item": KEY, "criterion": 0}',
    b'[' * 3000,
])
def test_a_malformed_grade_is_refused_with_400_and_nothing_saved(study_config, body):
    cfg = load_study_config(study_config)
    client = create_app(cfg, "alice").test_client()
    key = human_items(cfg)[0].key
    reply = client.post("/api/rate/alice/grade", data=body.replace(b"KEY", f'"{key}"'.encode()),
                        content_type="application/json",
                        headers={TOKEN_HEADER: rater_tokens(cfg)["alice"]})
    assert reply.status_code == 400, reply.get_data(as_text=True)
    assert reply.get_json()["error"]
    assert not (grades_dir(cfg) / "alice.jsonl").exists()


def test_a_huge_grade_body_is_refused_before_it_is_read(study_config):
    cfg = load_study_config(study_config)
    client = create_app(cfg, "alice").test_client()
    key = human_items(cfg)[0].key
    body = json.dumps({"item": key, "criterion": 0, "value": 1, "pad": "x" * (64 << 20)})
    reply = client.post("/api/rate/alice/grade", data=body, content_type="application/json",
                        headers={TOKEN_HEADER: rater_tokens(cfg)["alice"]})
    assert reply.status_code == 413
    assert not (grades_dir(cfg) / "alice.jsonl").exists()


def test_a_study_name_with_html_comes_out_escaped(study_config):
    cfg = load_study_config(study_config)
    cfg = cfg.model_copy(update={"name": 'x<img src=a onerror="alert(1)">'})
    client = create_app(cfg, "alice").test_client()
    for path in ("/", f"/rate/alice?token={rater_tokens(cfg)['alice']}"):
        html = client.get(path).get_data(as_text=True)
        assert "<img" not in html and "x&lt;img src=a onerror=&#34;alert(1)&#34;&gt;" in html


def test_raters_are_told_what_the_grader_was_told(tmp_path):
    config = make_study(tmp_path)
    cfg = load_study_config(config)                         # the GPT-4 table prompt, rule off
    catalog = cfg.catalog.load()

    def page(cfg):
        client = create_app(cfg, "alice").test_client()
        html = client.get(f"/rate/alice?token={rater_tokens(cfg)['alice']}").get_data(as_text=True)
        return html, _page_data(html, "items-data")

    html, items = page(cfg)
    assert all(s["example"] == catalog.skill(s["name"]).example for it in items for s in it["skills"])
    assert "Explicit-name rule" not in html and "naming it is not showing it" not in html
    # The yes/no judge saw definitions without examples, and the explicit-name rule took points.
    judged = load_study_config(config, {"evaluation.graders.0.method": "yes_no_logprob",
                                        "scoring.explicit_name_rule": True})
    html, items = page(judged)
    assert all(s["example"] == "" and s["definition"] == catalog.skill(s["name"]).definition
               for it in items for s in it["skills"])
    assert not any(catalog.skill(s["name"]).example in html for it in items for s in it["skills"])
    assert "Explicit-name rule" in html and "(definitions only)" in html
    assert {tuple(it["criteria"]) for it in items} == {it.criteria for it in human_items(judged)}
    # human.grader picks whose instructions raters get; an unknown one is named, exit 2.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    bad = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "human", str(config),
                          "--set", "human.grader=nobody", "--rater", "alice", "--port", "1"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "human.grader" in bad.stderr and "llm-judge" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_identical_texts_are_graded_once_and_counted_once(tmp_path):
    cfg = load_study_config(make_study(tmp_path, n_texts=12, twins=True))
    items = human_items(cfg)
    assert len(items) == 6 and len({it.text for it in items}) == 6
    assert all(len(it.record_ids) == 2 and {r.split("/")[1] for r in it.record_ids} == set(STUDENTS)
               for it in items)
    client = create_app(cfg, "alice").test_client()
    alice = {TOKEN_HEADER: rater_tokens(cfg)["alice"]}
    shown = _page_data(client.get("/rate/alice", headers=alice).get_data(as_text=True), "items-data")
    assert sorted(it["text"] for it in shown) == sorted(it.text for it in items)
    for it in items:
        for c in range(len(it.criteria)):
            assert client.post("/api/rate/alice/grade", headers=alice,
                               json={"item": it.key, "criterion": c, "value": 1}).status_code == 200
    lines = GradeStore(grades_dir(cfg), "alice").lines()
    assert all(len(g["record_ids"]) == 2 for g in lines)                  # both records get it
    assert client.get("/api/rate/alice/state", headers=alice).get_json()["n_complete"] == 6
    import pandas as pd

    df = pd.read_csv(write_agreement(cfg, n_boot=0)["human_agreement"])
    full = df[(df.a == "alice") & (df.criterion == "full_marks")].iloc[0]
    assert full.n_texts == 6 and full.n == 6                               # counted once
