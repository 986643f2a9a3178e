"""Human grading without a browser: the sample, the store, the app's rules, the agreement."""
from __future__ import annotations

import json

import numpy as np
import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.present.human import GradeStore, human_items, rater_order, write_agreement
from skillmix_utils.present.human.access import rater_tokens
from skillmix_utils.present.human.sample import grades_dir
from skillmix_utils.present.human.server import TOKEN_HEADER, create_app


def test_sample_is_stratified_seeded_and_blind(study_config):
    cfg = load_study_config(study_config)
    items = human_items(cfg)
    assert len(items) == 6
    strata = [it.stratum for it in items]
    assert sorted(strata.count(s) for s in set(strata)) == [1, 1, 2, 2]         # 4 strata share 6
    assert [it.key for it in human_items(cfg)] == [it.key for it in items]      # seeded
    more = load_study_config(study_config, {"human.n_texts": 8})
    assert {it.key for it in items} <= {it.key for it in human_items(more)}     # grows, keeps
    page = json.dumps([it.public() for it in items])
    for secret in ("student-", "held_out", "SECRET", "eval/", "llm-judge"):
        assert secret not in page
    assert items[0].criteria[-1].startswith("At most")
    assert rater_order(items, 0, "alice") != rater_order(items, 0, "bob")


def test_app_saves_each_grade_and_keeps_raters_apart(study_config):
    cfg = load_study_config(study_config)
    items = human_items(cfg)
    client = create_app(cfg, ["alice", "bob"]).test_client()
    tokens = rater_tokens(cfg)
    alice = {TOKEN_HEADER: tokens["alice"]}
    key = items[0].key
    post = lambda body: client.post("/api/rate/alice/grade", json=body, headers=alice)  # noqa: E731
    assert post({"item": key, "criterion": 0, "value": 1}).status_code == 200
    lines = GradeStore(grades_dir(cfg), "alice").lines()
    assert lines[-1]["item"] == key and lines[-1]["value"] == 1 and lines[-1]["record_id"].startswith("eval/")
    assert post({"item": "nope", "criterion": 0, "value": 1}).status_code == 400
    assert post({"item": key, "criterion": 99, "value": 1}).status_code == 400
    assert post({"item": key, "criterion": 0, "value": 2}).status_code == 400
    assert client.get(f"/rate/..%2Fx?token={tokens['alice']}").status_code in (403, 404)
    # bob's page carries none of alice's grades
    bob = client.get(f"/rate/bob?token={tokens['bob']}").get_data(as_text=True)
    assert '<script type="application/json" id="grades-data">{}</script>' in bob
    assert client.get("/api/rate/alice/state", headers=alice).get_json()["grades"] == {key: {"0": 1}}
    # a server started for one rater serves no other, even with the other's own token
    only = create_app(cfg, "alice").test_client()
    assert only.get(f"/rate/bob?token={tokens['bob']}").status_code == 403
    assert only.get(f"/?token={tokens['alice']}").headers["Location"].endswith("/rate/alice?token="
                                                                            + tokens["alice"])


def test_grade_on_a_rewritten_text_is_not_used(study_config):
    from skillmix_utils.core.records import RecordStore

    cfg = load_study_config(study_config)
    items = human_items(cfg)
    store = GradeStore(grades_dir(cfg), "alice")
    store.append(items[0], 0, 1)
    assert store.current(items) == {items[0].key: {0: 1}}
    recs = RecordStore(cfg.out / "eval" / "records.jsonl")
    rec = recs.load()[items[0].record_id]
    recs.append(rec.model_copy(update={"answer": "a different text"}))
    assert store.current(human_items(cfg)) == {}


def test_agreement_human_vs_llm_and_human_vs_human(study_config):
    cfg = load_study_config(study_config)
    items = human_items(cfg)
    alice, bob = GradeStore(grades_dir(cfg), "alice"), GradeStore(grades_dir(cfg), "bob")
    for it in items:
        for c in range(len(it.criteria)):
            alice.append(it, c, 1)                              # alice: everything yes
            bob.append(it, c, 0 if (c == 0 and it.record_id.endswith("/c1/g0")) else 1)  # bob = llm
    paths = write_agreement(cfg, n_boot=200)
    import pandas as pd

    df = pd.read_csv(paths["human_agreement"])
    row = lambda a, b, c: df[(df.a == a) & (df.b == b) & (df.criterion == c)].iloc[0]  # noqa: E731
    n_c1 = sum(it.record_id.endswith("/c1/g0") for it in items)
    assert n_c1 > 0
    bl = row("bob", "llm-judge", "full_marks")                 # bob agrees with the judge on all
    assert bl.kappa == 1.0 and bl.agreement == 1.0 and bl.n_texts == len(items)
    al = row("alice", "llm-judge", "full_marks")
    assert al.yes_no == n_c1 and al.no_yes == 0 and al.yes_yes == len(items) - n_c1
    assert al.agreement == pytest.approx((len(items) - n_c1) / len(items))
    assert al.kappa == pytest.approx(0.0)                      # alice says yes to everything
    ab = row("alice", "bob", "skills")
    assert ab.pair == "human-human" and ab.n == sum(it.k for it in items)
    assert "kappa [95% CI]" in paths["human_agreement_md"].read_text()
    # bob and the judge both said yes to every topic: kappa is undefined, not a perfect 1.0,
    # and has no interval; the Markdown says why.
    topic = row("bob", "llm-judge", "topic")
    assert np.isnan(topic.kappa) and np.isnan(topic.kappa_ci_low) and topic.agreement == 1.0
    assert topic.note == "kappa undefined: both gave every text yes"
    assert "undefined (one label throughout)" in paths["human_agreement_md"].read_text()


def test_cli_serves_the_page_and_writes_agreement(study_config, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    nobody = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "human", str(study_config),
                             "--port", str(port)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert nobody.returncode == 2 and "--rater: no raters yet" in nobody.stderr
    assert "Traceback" not in nobody.stderr
    assert not (load_study_config(study_config).out / "human").exists()    # nothing written
    proc = subprocess.Popen([sys.executable, "-m", "skillmix_utils.cli", "human", str(study_config),
                             "--rater", "carol", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]    # the banner, carol's link
        assert f"http://127.0.0.1:{port}/" in lines[0], lines
        link = lines[1].split("carol: ", 1)[1].strip()
        assert link.startswith(f"http://127.0.0.1:{port}/rate/carol?token=")
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(link, timeout=2).read().decode()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(proc.stdout.read())
                time.sleep(0.1)
        assert page is not None and "Blind grading: hum" in page and ">carol<" in page
        with pytest.raises(urllib.error.HTTPError, match="403"):      # the page without the token
            urllib.request.urlopen(f"http://127.0.0.1:{port}/rate/carol", timeout=2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    log = proc.stdout.read()                              # the request log: paths, no token
    assert "GET /rate/carol?token=*** HTTP" in log and link.split("token=")[1] not in log
    out = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "human-agreement",
                          str(study_config)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "human_agreement:" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "human", str(study_config),
                          "--rater", "../x"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "rater names" in bad.stderr


def test_report_has_the_beyond_the_paper_section(study_config):
    from skillmix_utils.present.report import build_report

    cfg = load_study_config(study_config)
    items = human_items(cfg)
    store = GradeStore(grades_dir(cfg), "alice")
    for it in items:
        for c in range(len(it.criteria)):
            store.append(it, c, 1)
    write_agreement(cfg, n_boot=50)
    html = build_report(cfg.out).read_text()
    assert '<section id="beyond">' in html and "Human grading: agreement" in html
    assert "llm-judge" in html and "kappa [95% CI]" in html
