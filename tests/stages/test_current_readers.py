"""Issue 18: every view of a study's results reads the records the metric tables count, and the
report names a scoring rule only where scoring let it take a point.

The scripted study (scripted.py) with two API students, "base" and "tuned", writing the same
texts. Then the tuned student's temperature changes and `skillmix metrics` runs: its texts are
still planned (same ids) but no longer made the way the config makes them, so the metric
tables drop them; the report (criterion table, failure gallery, sample browser, costs), the
partition gain table and the human sample must drop them too.
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import yaml

from skillmix_utils.core.config import load_study_config
from skillmix_utils.present import report
from skillmix_utils.present.human import human_items
from skillmix_utils.present.partitions import gain_rows
from skillmix_utils.stages.evaluate import run_evaluation

from .scripted import study_tree

C1G0 = "eval/stud/held_out/k2/c1/g0"      # names its first skill verbatim (scripted.ANSWERS)


def _metrics(config, *sets) -> None:
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "metrics", str(config),
                           *[a for s in sets for a in ("--set", s)]],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def _section(html: str, name: str) -> str:
    return re.search(rf'<section id="{name}".*?</section>', html, re.S).group(0)


def _samples(html: str) -> list[dict]:
    data = re.search(r'<script id="samples-data" type="application/json">(.*?)</script>',
                     html, re.S).group(1)
    return json.loads(data.replace("<\\/", "</"))


def test_a_retired_student_text_reaches_no_view(api_env, scripted_server, tmp_path):
    tree = study_tree(scripted_server, api_env / "out")
    stud = tree["evaluation"]["students"][0]
    tree["evaluation"]["students"] = [{**copy.deepcopy(stud), "name": name}
                                      for name in ("base", "tuned")]
    tree["human"] = {"n_texts": 100, "seed": 0}
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = load_study_config(config)
    run_evaluation(cfg)
    html = report.build_report(cfg.out).read_text()
    assert {s["student"] for s in _samples(html)} == {"base", "tuned"}      # both, before
    assert "tuned" in _section(html, "analysis")
    # (the scripted server answers both alike: one item per text, naming both records)
    assert {r.split("/")[1] for it in human_items(cfg) for r in it.record_ids} == {"base", "tuned"}
    assert gain_rows(cfg, base="base", tuned="tuned")[0]["n_combinations"] == 3

    # A student setting changes: the tuned texts are retired (same ids, made otherwise).
    tree["evaluation"]["students"][1]["model"]["temperature"] = 0.9
    config.write_text(yaml.safe_dump(tree))
    changed = load_study_config(config)
    _metrics(config)
    metrics = (cfg.out / "eval" / "tables" / "metrics.csv").read_text()
    assert ",tuned," not in metrics and ",base," in metrics

    html = report.build_report(cfg.out).read_text()
    samples = _samples(html)
    assert samples and {s["student"] for s in samples} == {"base"}
    assert not any(s["id"].startswith("eval/tuned/") for s in samples)
    for part in ("analysis", "failures", "costs"):
        assert "tuned" not in _section(html, part), part
    assert 'records: eval 6' in html                         # base's 6 texts, not 12
    assert gain_rows(changed, base="base", tuned="tuned") == []   # no tuned text to pair
    items = human_items(changed)
    assert items and {r.split("/")[1] for it in items for r in it.record_ids} == {"base"}


def test_the_report_names_the_explicit_name_rule_only_where_it_took_a_point(
        api_env, scripted_server, tmp_path):
    tree = study_tree(scripted_server, api_env / "out")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = load_study_config(config)
    run_evaluation(cfg)

    html = report.build_report(cfg.out).read_text()
    named = {(s["id"], g, i) for s in _samples(html) for g, src in s["sources"].items()
             for i, x in enumerate(src) if x == "rule: names the skill"}
    # the rule is on (default) and fired on c1g0's first skill only, for both graders
    assert named == {(C1G0, "gpt", 0), (C1G0, "claude", 0)}
    assert "rule: names the skill" in _section(html, "failures")
    c1g0 = next(s for s in _samples(html) if s["id"] == C1G0)
    assert c1g0["voted"]["gpt"][0] == 0.0

    _metrics(config, "scoring.explicit_name_rule=false")
    html = report.build_report(cfg.out).read_text()
    assert "rule: names the skill" not in html
    c1g0 = next(s for s in _samples(html) if s["id"] == C1G0)
    assert c1g0["voted"]["gpt"][0] == 1.0 and c1g0["sources"]["gpt"][0] == "grader"
    assert c1g0["explicit"] == [c1g0["skills"][0]]       # the text still names it: a fact
    assert all(src[-1] == "rule: length" for s in _samples(html) if s["answer"]
               for src in s["sources"].values())
