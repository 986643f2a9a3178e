"""The report's paired comparison gives notebook 05's gain and says what it cannot show."""
from __future__ import annotations

from synthetic import CUT, make_paired_study

from skillmix_utils.core.config import load_study_config
from skillmix_utils.present.comparison import paired_comparison, what_it_says
from skillmix_utils.present.partitions import gain_rows
from skillmix_utils.stages.current import current_records


def test_the_comparison_counts_identical_answers_and_reuses_notebook_05s_gain(tmp_path):
    cfg = load_study_config(make_paired_study(tmp_path) / "config.yaml")
    records = current_records(cfg, "eval")
    [part] = paired_comparison(cfg, records, grader="smollm2-yes-no")
    [gain] = gain_rows(cfg)                      # what notebook 05 shows
    assert (part["gain"], part["gain_ci_low"], part["gain_ci_high"]) == \
        (gain["gain"], gain["gain_ci_low"], gain["gain_ci_high"])
    assert (part["base_mean"], part["tuned_mean"], part["n"]) == (0.0, 0.2, 5)
    assert (part["identical"], part["n_pairs"]) == (4, 5)
    [other] = [p for p in part["pairs"] if not p["identical"]]
    assert other["tuned"] == CUT and other["tuned_cut"] and not other["base_cut"]
    assert (other["base_full"], other["tuned_full"]) == (False, True)
    assert part["paper"][0].startswith("paper (LLaMA-2-13B-Chat): 0.04 base")


def test_without_a_tuned_student_there_is_nothing_to_pair(tmp_path):
    out = make_paired_study(tmp_path)
    cfg = load_study_config(out / "config.yaml")
    base_only = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(
        update={"students": cfg.evaluation.students[:1]})})
    assert paired_comparison(base_only, current_records(cfg, "eval")) == []


def test_an_interval_above_zero_is_said_to_be_one_and_an_api_grader_is_not_called_local():
    says = what_it_says(100, {"gain": 0.3, "gain_ci_low": 0.2, "gain_ci_high": 0.4}, [],
                        "graded by gpt-4 (openai:gpt-4-0613, table)", local=False)
    assert "above 0" in says and "cannot tell" not in says and "not the paper's GPT-4" not in says
