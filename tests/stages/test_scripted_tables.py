"""Metric tables against scripted graders, compared with values computed by hand.

See tests/stages/scripted.py for the script. Hand computation (k = 2: points s1, s2, topic,
sense, length; the length point is the sentence count's, the limit is one sentence):

gpt (3 rounds, vote = mean of valid rounds > 0.5):
  c0g0 rounds [11110] [11110] [10111] -> [1,1,1,1,·], length 1 (one sentence)  -> 11111 full
  c0g1 all 11111, two sentences -> length 0                                   -> 11110
  c1g0 all 11111, names skill 1 -> s1 = 0                                     -> 01111
  c1g1 parse failure, [10111], [11111] -> s2 tie 1/2 -> 0                      -> 10111
  c2g0 three parse failures -> generation excluded
  c2g1 [00111] x 3                                                            -> 00111
  per combination (max over g): full 1,0,0; all-skills 1,0,0; skills-fraction 1, .5, 0
  -> RFM 1/3, RAS 1/3, SF 1/2; 4 parse failures, 1 excluded generation.
claude (1 round):
  c0g0 11111; c0g1 11110; c1g0 01111; c1g1 11111; c2g0 11011; c2g1 parse failure
  per combination: full 1,1,0; all-skills 1,1,1 (c2g0: both skills, 2 of 3 others); SF 1,1,0
  -> RFM 2/3, RAS 1, SF 2/3; 1 parse failure, 1 excluded generation.
agreement on the 4 texts both graded (c0g0, c0g1, c1g0, c1g1):
  full marks gpt 1000, claude 1001 -> P(claude full | gpt full) = 1, P(gpt | claude) = 1/2,
  kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2; skill_2 gpt 1110 vs claude 1111 -> kappa 0.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.records import RecordStore
from skillmix_utils.stages.evaluate import run_evaluation
from skillmix_utils.stages.tables import COLUMNS, write_metric_tables

from .scripted import study_tree


def _row(df, grader):
    rows = df[df.grader == grader]
    assert len(rows) == 1
    return rows.iloc[0]


def test_metric_tables_equal_hand_computed_values(api_env, scripted_server):
    cfg = StudyConfig.model_validate(study_tree(scripted_server, api_env / "out"))
    paths = run_evaluation(cfg)
    for name in ("config", "records", "metrics", "per_category", "agreement", "parse_failures"):
        assert paths[name].exists(), name

    m = pd.read_csv(paths["metrics"])
    assert list(m.columns) == COLUMNS
    gpt, claude = _row(m, "gpt"), _row(m, "claude")
    assert (gpt.student, gpt.setting, gpt.k, gpt.grader_method) == ("stud", "held_out", 2, "table")
    assert gpt.base_model == "openai:gpt-4o-mini"
    assert gpt.ratio_full_marks == pytest.approx(1 / 3)
    assert gpt.ratio_all_skills == pytest.approx(1 / 3)
    assert gpt.skills_fraction == pytest.approx(1 / 2)
    # SEM over combinations: full marks 1,0,0 -> sd sqrt(1/3), / sqrt(3) = 1/3
    assert gpt.ratio_full_marks_sem == pytest.approx(1 / 3)
    assert gpt.skills_fraction_sem == pytest.approx(0.5 / math.sqrt(3))
    assert gpt.ratio_full_marks_ci_low <= gpt.ratio_full_marks <= gpt.ratio_full_marks_ci_high
    assert (gpt.n_combinations, gpt.n_excluded_generations, gpt.n_excluded_combinations,
            gpt.n_parse_failures) == (3, 1, 0, 4)
    assert claude.ratio_full_marks == pytest.approx(2 / 3)
    assert claude.ratio_all_skills == pytest.approx(1.0)
    assert claude.skills_fraction == pytest.approx(2 / 3)
    assert (claude.n_combinations, claude.n_excluded_generations, claude.n_parse_failures) == (3, 1, 1)

    pf = pd.read_csv(paths["parse_failures"]).set_index("grader")
    assert pf.loc["gpt", ["n_gradings", "n_ok", "n_parse_failed", "n_error", "n_missing"]].tolist() == [18, 14, 4, 0, 0]
    assert pf.loc["claude", ["n_gradings", "n_ok", "n_parse_failed", "n_error"]].tolist() == [6, 5, 1, 0]

    ag = pd.read_csv(paths["agreement"])
    one = ag[(ag.student == "stud") & (ag.grader_a == "gpt") & (ag.grader_b == "claude")]
    full = one[one.criterion == "full_marks"].iloc[0]
    assert full.n_texts == 4
    assert full.p_full_b_given_full_a == pytest.approx(1.0)
    assert full.p_full_a_given_full_b == pytest.approx(0.5)
    assert full.kappa == pytest.approx(0.5)
    assert one[one.criterion == "skill_2"].iloc[0].kappa == pytest.approx(0.0)
    assert set(ag.student) == {"stud", "all"}

    cat = pd.read_csv(paths["per_category"])
    g = cat[cat.grader == "gpt"]
    # voted skill points of the 5 gradable texts: 11, 11, 01, 10, 00 -> 6 of 10
    assert g.n_skill_points.sum() == 10 and g.points_earned.sum() == 6

    # The records keep every raw reply, the explicit-name deduction and the parse failures.
    recs = {r.id: r for r in RecordStore(paths["records"]).records()}
    c1g0 = recs["eval/stud/held_out/k2/c1/g0"]
    assert c1g0.derived.explicit_names == [c1g0.combination.skills[0]]
    assert c1g0.derived.voted_points["gpt"] == [0.0, 1.0, 1.0, 1.0, 1.0]
    c2g0 = recs["eval/stud/held_out/k2/c2/g0"]
    assert [g.status for g in c2g0.gradings if g.grader == "gpt"] == ["parse_failed"] * 3
    assert all(g.raw_reply for g in c2g0.gradings)
    assert c2g0.derived.valid_rounds["gpt"] == 0 and "gpt" not in c2g0.derived.voted_points


def test_rerun_repeats_no_call_and_metrics_recomputes(api_env, scripted_server):
    cfg = StudyConfig.model_validate(study_tree(scripted_server, api_env / "out"))
    run_evaluation(cfg)
    calls = sum(scripted_server.calls.values())
    # student: 6 texts x 2 turns; gpt 6 x 3 rounds; claude 6 x 1 round
    assert calls == 12 + 18 + 6
    before = (api_env / "out" / "eval" / "tables" / "metrics.csv").read_text()
    run_evaluation(cfg)   # parse failures are asked again: the cache answers, nothing is paid
    assert sum(scripted_server.calls.values()) == calls
    assert (api_env / "out" / "eval" / "tables" / "metrics.csv").read_text() == before

    # Without the explicit-name rule c1g0 keeps its skill point: only the tables change.
    cfg2 = cfg.model_copy(update={"scoring": cfg.scoring.model_copy(update={"explicit_name_rule": False})})
    m = pd.read_csv(write_metric_tables(cfg2)["metrics"]).set_index("grader")
    assert m.loc["gpt", "skills_fraction"] == pytest.approx(2 / 3)   # c1: max(1.0, .5)
    assert sum(scripted_server.calls.values()) == calls


def test_grade_file_adds_a_second_grader_later(api_env, scripted_server):
    from skillmix_utils.stages.grade import grade_file

    tree = study_tree(scripted_server, api_env / "out")
    both = StudyConfig.model_validate(tree)
    tree["evaluation"]["graders"] = tree["evaluation"]["graders"][:1]
    only_gpt = StudyConfig.model_validate(tree)
    paths = run_evaluation(only_gpt)
    assert set(pd.read_csv(paths["metrics"]).grader) == {"gpt"}
    calls = sum(scripted_server.calls.values())
    out = grade_file(both, paths["records"], grader_names=["claude"])
    assert sum(scripted_server.calls.values()) == calls + 6
    m = pd.read_csv(out["metrics"])
    assert _row(m, "claude").ratio_full_marks == pytest.approx(2 / 3)
    with pytest.raises(Exception, match="no grader 'nobody'"):
        grade_file(both, paths["records"], grader_names=["nobody"])


def test_evaluation_dry_run_writes_nothing(api_env, scripted_server, capsys):
    cfg = StudyConfig.model_validate(study_tree(scripted_server, api_env / "out"))
    assert run_evaluation(cfg, dry_run=True) == {}
    out = capsys.readouterr().out
    assert "student stud: write (2 turns)" in out and "eval: grade (gpt)" in out
    assert not (api_env / "out").exists() and sum(scripted_server.calls.values()) == 0


def test_a_scoring_change_rewrites_the_stored_points_every_view_reads(api_env, scripted_server,
                                                                      tmp_path):
    """`skillmix metrics` with another scoring setting: the tables and the stored points (what
    the report and notebooks read) change together; before, the records kept the old votes."""
    import subprocess
    import sys

    import yaml

    from skillmix_utils.present import views

    tree = study_tree(scripted_server, api_env / "out")
    cfg = StudyConfig.model_validate(tree)
    paths = run_evaluation(cfg)
    c1g0 = "eval/stud/held_out/k2/c1/g0"
    assert RecordStore(paths["records"]).load()[c1g0].derived.voted_points["gpt"][0] == 0.0
    parse = [g.parse for g in RecordStore(paths["records"]).load()[
        "eval/stud/held_out/k2/c2/g0"].gradings if g.grader == "gpt"]
    assert len(parse) == 3 and all(p and p["notes"] for p in parse)   # why each parse failed
    calls = sum(scripted_server.calls.values())

    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "metrics", str(config),
                           "--set", "scoring.explicit_name_rule=false"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(scripted_server.calls.values()) == calls
    rec = RecordStore(paths["records"]).load()[c1g0]
    assert rec.derived.voted_points["gpt"][0] == 1.0 and rec.derived.scoring["explicit_name_rule"] is False
    m = pd.read_csv(paths["metrics"]).set_index("grader")
    assert m.loc["gpt", "skills_fraction"] == pytest.approx(2 / 3)
    # The report's per-text view reads the same stored votes as the table.
    frame = views.records_frame(RecordStore(paths["records"]).records()).set_index("id")
    assert frame.loc[c1g0, "points: gpt"] == "1 1 1 1 1"
    assert frame.loc[c1g0, "finish"] == "stop, stop"


def test_metrics_put_the_table_in_the_trained_runs_model_card(api_env, scripted_server):
    import json

    import yaml

    from skillmix_utils.stages.train.run import run_dir

    tree = study_tree(scripted_server, api_env / "out")
    tree["train"] = {"base_model": "smollm2-135m-instruct", "mode": "lora", "data_mix": [1, 2]}
    cfg = StudyConfig.model_validate(tree)
    run = run_dir(cfg)
    (run / "adapter").mkdir(parents=True)
    keys = ("rows", "skillmix_examples", "truncated", "dropped", "pretrain_corpus",
            "pretrain_examples", "pretrain_tokens", "real_token_fraction", "effective_batch",
            "per_device_batch_size", "accumulation_steps", "processes", "steps", "device",
            "distributed_type", "attention", "optimizer", "final_loss", "code_version")
    (run / "train_summary.json").write_text(json.dumps(
        {"run": run.name, "data": str(cfg.out / "data" / "mixes" / "k1-2.jsonl"),
         **{k: 1 for k in keys}}))
    run_evaluation(cfg)       # ends with the metric tables
    card = (run / "adapter" / "README.md").read_text()
    assert card == (run / "model_card.md").read_text()
    # gpt on the scripted texts: full marks 1/3 ± 1/3, all skills 1/3 ± 1/3, fraction 1/2 ± 0.289,
    # each with its n and 95% interval (Wilson for 1 of 3, a bootstrap for the fraction), and
    # the card says who graded.
    line = next(l for l in card.splitlines() if l.startswith("| stud | not tuned | held_out | 2 | gpt |"))
    assert line.startswith("| stud | not tuned | held_out | 2 | gpt | 0.333 ± 0.333 (n=3) [0.061, 0.792] | "
                           "0.333 ± 0.333 (n=3) [0.061, 0.792] | 0.500 ± 0.289 (n=3) [0.")
    assert line.endswith("] | 3 |")
    assert "Numbers graded by gpt (openai:gpt-4o, table)." in card
    assert yaml.safe_load(card.split("---\n")[1])["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert str(api_env) not in card
