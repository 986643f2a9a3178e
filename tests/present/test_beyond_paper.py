"""Partitions, scaling to k = 8, the k = 4 addition, uncommon skills and the parrot line."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from skillmix_utils.core.catalog import load_catalog
from skillmix_utils.core.config import PartitionSpec, load_study_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.records import Combination, Grading, RecordStore, TextRecord, record_id

ROOT = Path(__file__).resolve().parents[2]
MODEL = {"spec": "hf:smollm2-135m-instruct"}


def _config(tmp_path, name="p", **extra) -> Path:
    tree = {"name": name, "output_dir": str(tmp_path / name),
            "evaluation": {"students": [{"name": "base", "model": MODEL},
                                        {"name": "tuned", "model": MODEL, "adapter": "x/adapter"}],
                           "graders": [{**MODEL, "name": "judge", "method": "yes_no_logprob", "rounds": 1}],
                           "settings": ["held_out"], "ks": [1, 2], "n_combinations": 4,
                           "generation_rounds": 1},
            "scoring": {"explicit_name_rule": False}, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


# --- partitions --------------------------------------------------------------------------------

def test_partition_resplits_skills_and_topics_and_is_recorded(tmp_path):
    part = {"name": "logic-first", "skills": {"rule": "by_category", "train_categories": ["logical", "reasoning"]},
            "topics": {"rule": "random", "seed": 3, "train_fraction": 0.3}}
    cfg = load_study_config(_config(tmp_path, catalog={"partition": part}))
    cat = cfg.catalog.load()
    assert {s.category for s in cat.skills_in("train")} == {"logical", "reasoning"}
    assert len(cat.skills_in("train")) == 18 and len(cat.topics_in("train")) == 30
    assert cat.partition == "logic-first" and "random (sha256_rank, seed 3" in cat.topic_split
    assert cat.topics_in("train") == cfg.catalog.load().topics_in("train")          # seeded
    other = load_study_config(_config(tmp_path, catalog={"partition": {**part, "topics": {"rule": "random", "seed": 4}}}))
    assert other.catalog.load().topics_in("train") != cat.topics_in("train")
    rnd = PartitionSpec.model_validate({"skills": {"rule": "random", "seed": 1, "train_fraction": 0.25}})
    from skillmix_utils.core.catalog import apply_partition

    r = apply_partition(load_catalog(), rnd)
    assert len(r.skills_in("train")) == 25 and len({s.category for s in r.skills_in("train")}) > 2
    # the summary (skillmix catalog) and the data card say which partition
    from skillmix_utils.core.catalog import summary_table

    assert "partition: logic-first" in summary_table(cat)


def test_bad_partitions_are_refused_with_the_field(tmp_path):
    bad = _config(tmp_path, catalog={"partition": {"skills": {"rule": "by_category",
                                                              "train_categories": ["poetry"]}}})
    with pytest.raises(SkillmixError, match="unknown skill category 'poetry'") as e:
        load_study_config(bad).catalog.load()
    assert e.value.field == "catalog.partition.skills.train_categories"
    with pytest.raises(SkillmixError, match="needs train_categories"):
        load_study_config(_config(tmp_path, catalog={"partition": {"skills": {"rule": "by_category"}}}))


def test_grid_over_partitions_is_labelled_by_name():
    from skillmix_utils.runner.grid import grid_points

    labels = [lb for lb, _ in grid_points({"catalog.partition": [{"name": "paper"}, {"name": "random-s1"}]})]
    assert labels == ["partition=paper", "partition=random-s1"]


def _eval_records(setting="held_out", tuned_full=(1, 1, 1, 0), base_full=(0, 1, 0, 0), k=1):
    out = []
    for student, full in (("base", base_full), ("tuned", tuned_full)):
        for i, f in enumerate(full):
            pts = [1.0] * (k + 3) if f else [0.0] + [1.0] * (k + 2)
            comb = Combination(skills=("metaphor",) * k, topic="Knots", k=k, setting=setting, index=i)
            out.append(TextRecord(id=record_id("eval", setting, k, i, 0, student=student), stage="eval",
                                  model="hf:x", student=student, combination=comb, answer="A knot holds.",
                                  adapter=None if student == "base" else "x/adapter",
                                  gradings=[Grading(grader="judge", method="yes_no_logprob", points=pts)]))
    return out


def _scored(recs):
    from skillmix_utils.core.config import ScoringSpec
    from skillmix_utils.stages.scoring import rescore

    rescore(recs, ScoringSpec(explicit_name_rule=False))    # the stored points tables use
    return recs


def test_partition_gain_is_paired_with_an_interval_and_drawn(tmp_path):
    from skillmix_utils.present.partitions import gain_rows, write_partition_gain
    from skillmix_utils.stages.current import IMPORTED

    runs = []
    for name, tuned in (("paper", (1, 1, 1, 0)), ("random-s1", (0, 1, 0, 0))):
        cfg = load_study_config(_config(tmp_path, name=name, catalog={"partition": {"name": name}}))
        RecordStore(cfg.out / "eval" / "records.jsonl").append(_scored(_eval_records(tuned_full=tuned)))
        # No config drew these made-up records ("x/adapter" does not exist): marked as
        # imported, all of them count (stages.current.current_records).
        (cfg.out / "eval" / IMPORTED).write_text("{}")
        runs.append((f"partition={name}", cfg))
    rows = gain_rows(runs[0][1])
    assert len(rows) == 1
    r = rows[0]
    assert (r["base"], r["tuned"], r["gain"]) == (0.25, 0.75, 0.5) and r["n_combinations"] == 4
    assert r["gain_ci_low"] <= 0.5 <= r["gain_ci_high"] and r["gain_ci_low"] >= 0
    assert gain_rows(runs[1][1])[0]["gain"] == 0.0
    paths = write_partition_gain(tmp_path / "grid", runs)
    df = pd.read_csv(paths["partition_gain"])
    assert list(df["partition"]) == ["paper", "random-s1"]
    assert df["skill_split"].str.startswith("by_category").all()
    assert paths["partition_gain.png"].read_bytes().startswith(b"\x89PNG")


# --- scaling -----------------------------------------------------------------------------------

def test_k_up_to_eight_has_prompts_rubric_and_combinations():
    from skillmix_utils.core.grading import rubric_items
    from skillmix_utils.core.prompts import generation_turn2, sentence_limit
    from skillmix_utils.core.sampling import sample_combinations

    cat = load_catalog()
    words = {4: "three sentences", 5: "four sentences", 6: "five sentences", 7: "six sentences",
             8: "seven sentences"}
    for k, w in words.items():
        assert sentence_limit(k) == k - 1
        assert f"only contains up to {w}." in generation_turn2(k)
        combos = sample_combinations(cat, k, 3, seed=0, skills="held_out", topics="held_out")
        assert all(len(set(c.skills)) == k for c in combos)
        crit = rubric_items(list(combos[0].skills), combos[0].topic)
        assert len(crit) == k + 3 and crit[-1] == f"At most {w}"
    with pytest.raises(SkillmixError, match="larger than the held_out skill pool"):
        sample_combinations(cat, 49, 1, seed=0)


def _grid_metrics() -> pd.DataFrame:
    rows = []
    for mix, n, level in (("base", None, 0.2), ("D(1)", 40, 0.3), ("D(1,2)", 80, 0.45),
                          ("sub40-k2heavy", 40, 0.4), ("sub80", 80, 0.5)):
        for k in range(1, 9):
            v = max(0.0, level - 0.05 * k)
            rows.append({"run": mix, "student": "base" if mix == "base" else "tuned", "setting": "held_out",
                         "k": k, "grader": "judge", "adapter": None if mix == "base" else "a",
                         "train_data": "" if mix == "base" else mix, "n_train_texts": n,
                         "ratio_full_marks": v, "ratio_full_marks_ci_low": max(0, v - 0.1),
                         "ratio_full_marks_ci_high": v + 0.1, "n_combinations": 10})
    return pd.DataFrame(rows)


def test_scaling_figures_and_table_from_grid_metrics(tmp_path):
    from skillmix_utils.present.scaling import scaling_frame, write_scaling

    frame = scaling_frame(_grid_metrics())
    assert set(frame["mix"]) == {"base", "D(1)", "D(1,2)", "sub40-k2heavy", "sub80"}
    assert len(frame) == 5 * 8 and frame["k"].max() == 8
    paths = write_scaling(tmp_path, _grid_metrics())
    assert {"scaling_success_vs_k.png", "scaling_data_efficiency.png", "scaling"} <= set(paths)
    assert paths["scaling_data_efficiency.png"].read_bytes().startswith(b"\x89PNG")
    one_size = _grid_metrics().query("n_train_texts == 40 or mix == 'base'") if False else \
        _grid_metrics()[_grid_metrics()["n_train_texts"].fillna(40) == 40]
    assert "scaling_data_efficiency.png" not in write_scaling(tmp_path / "x", one_size)


def test_scaling_and_k4_configs_validate():
    for name in ("scaling.yaml", "k4-addition.yaml", "partitions.yaml", "uncommon-skills.yaml"):
        cfg = load_study_config(ROOT / "configs" / name)
        assert cfg.grid or cfg.evaluation.skill_subset or cfg.data.subsamples, name
    k4 = load_study_config(ROOT / "configs" / "k4-addition.yaml")
    sub = {s.name: s for s in k4.data.subsamples}["d123-plus-k4"]
    assert sub.size is None and list(sub.per_k) == [4] and 4 in k4.data.counts
    sc = load_study_config(ROOT / "configs" / "scaling.yaml")
    assert max(sc.evaluation.ks) == 8


# --- uncommon skills ---------------------------------------------------------------------------

EXAMPLE = ROOT / "skillmix_utils" / "data" / "skill_frequencies_example.csv"


def test_skill_subset_by_frequency_file_or_names(tmp_path):
    from skillmix_utils.core.catalog import restrict_catalog, subset_names
    from skillmix_utils.core.config import SkillSubsetSpec

    cat = load_catalog()
    spec = SkillSubsetSpec(frequency_file=str(EXAMPLE), max_frequency=0.01)
    names = subset_names(cat, spec)
    assert "metaphor" not in names and "modus ponens" in names and "red herring" not in names
    assert len(restrict_catalog(cat, spec).skills) == len(names)
    assert subset_names(cat, SkillSubsetSpec(names=["Metaphor"])) == ["metaphor"]
    with pytest.raises(SkillmixError, match="no skill named"):
        subset_names(cat, SkillSubsetSpec(names=["no such skill"]))
    bad = tmp_path / "f.csv"
    bad.write_text("name,count\nmetaphor,3\n")
    with pytest.raises(SkillmixError, match="skill,frequency"):
        subset_names(cat, SkillSubsetSpec(frequency_file=str(bad)))


def test_subset_evaluation_plans_only_subset_skills_under_its_own_setting(tmp_path):
    from skillmix_utils.stages.evaluate import planned_items

    cfg = load_study_config(_config(tmp_path, evaluation={
        "students": [{"name": "base", "model": MODEL}], "settings": ["held_out", "all"],
        "ks": [2], "n_combinations": 5, "generation_rounds": 1,
        "graders": [{**MODEL, "name": "judge", "method": "yes_no_logprob", "rounds": 1}],
        "skill_subset": {"name": "uncommon", "frequency_file": str(EXAMPLE), "max_frequency": 0.05}}))
    items = planned_items(cfg, cfg.catalog.load(), cfg.evaluation.students[0])
    from skillmix_utils.core.catalog import subset_names

    allowed = set(subset_names(cfg.catalog.load(), cfg.evaluation.skill_subset))
    assert {p.combination.setting for p in items} == {"held_out:uncommon", "all:uncommon"}
    assert all(set(p.combination.skills) <= allowed for p in items)
    assert items[0].id.startswith("eval/base/held_out:uncommon/k2/")


def test_parrot_line_formula_and_figure(tmp_path):
    from skillmix_utils.present.uncommon import parrot_probability, parrot_rows, write_uncommon

    assert parrot_probability(5, 101, 100, 1e9) == pytest.approx(1e9 / (79208745 * 100))
    assert parrot_probability(2, 4, 2, 3) == pytest.approx(3 / 12)
    cfg = load_study_config(_config(tmp_path, evaluation={
        "students": [{"name": "base", "model": MODEL}], "settings": ["all"], "ks": [1, 2],
        "n_combinations": 4, "generation_rounds": 1,
        "graders": [{**MODEL, "name": "judge", "method": "yes_no_logprob", "rounds": 1}],
        "skill_subset": {"name": "few", "names": ["metaphor", "red herring", "modus ponens"],
                         "parrot_corpus_texts": 30}}))
    rows = parrot_rows(cfg)
    assert [(r["k"], r["n_skills"], r["n_topics"]) for r in rows] == [(1, 3, 100), (2, 3, 100)]
    assert rows[1]["parrot_probability"] == pytest.approx(30 / (3 * 100))
    (cfg.out / "eval" / "tables").mkdir(parents=True)
    pd.DataFrame([{"student": "base", "setting": "all:few", "k": k, "grader": "judge",
                   "ratio_full_marks": 0.5 / k, "ratio_full_marks_ci_low": 0.0,
                   "ratio_full_marks_ci_high": 0.8} for k in (1, 2)]
                 ).to_csv(cfg.out / "eval" / "tables" / "metrics.csv", index=False)
    paths = write_uncommon(cfg)
    assert paths["uncommon_skills.png"].read_bytes().startswith(b"\x89PNG")
    assert pd.read_csv(paths["parrot_line"])["parrot_probability"].round(3).tolist() == [0.1, 0.1]


def test_data_card_records_the_partition(tmp_path):
    from skillmix_utils.stages.export import card_markdown, data_card

    cfg = load_study_config(ROOT / "configs" / "k4-addition.yaml",
                            {"catalog.partition": {"name": "random-s1", "skills": {"rule": "random", "seed": 1}},
                             "output_dir": str(tmp_path / "k4")})
    cat = cfg.catalog.load()
    card = data_card(cfg, [], cat, {}, {}, 0, None)
    assert card["catalog"]["partition"] == "random-s1"
    assert card["catalog"]["skill_split"].startswith("random (sha256_rank, seed 1")
    assert "partition `random-s1`" in card_markdown(card)


def test_grid_summary_draws_the_scaling_figures(tmp_path):
    import json

    from skillmix_utils.present.grid_summary import summarize_grid

    runs = []
    for label, sub, n, level in (("full", None, 16, 0.5), ("half", "d123-plus-k4", 8, 0.3)):
        cfg = load_study_config(ROOT / "configs" / "k4-addition.yaml",
                                {"output_dir": str(tmp_path / label), "train.subsample": sub, "grid": {}})
        rows = []
        for student, adapter, lv in (("base", None, 0.1), ("tuned", "a/adapter", level)):
            for k in (1, 2, 3):
                row = {"study": "k4", "student": student, "adapter": adapter, "setting": "held_out",
                       "k": k, "grader": "judge", "grader_method": "table", "n_combinations": 4}
                for m in ("ratio_full_marks", "ratio_all_skills", "skills_fraction"):
                    row.update({m: lv / k, f"{m}_sem": 0.05, f"{m}_ci_low": lv / k - 0.1,
                                f"{m}_ci_high": lv / k + 0.1})
                rows.append(row)
        (cfg.out / "eval" / "tables").mkdir(parents=True)
        pd.DataFrame(rows).to_csv(cfg.out / "eval" / "tables" / "metrics.csv", index=False)
        (cfg.out / "train" / "lora").mkdir(parents=True)
        (cfg.out / "train" / "lora" / "train_summary.json").write_text(json.dumps({"skillmix_examples": n}))
        runs.append((label, cfg))
    paths = summarize_grid(tmp_path, runs)
    assert paths["scaling_success_vs_k.png"].exists() and paths["scaling_data_efficiency.png"].exists()
    frame = pd.read_csv(paths["scaling"])
    assert set(frame["mix"]) == {"base", "D(1,2,3)", "d123-plus-k4"}
    assert frame.loc[frame["mix"] == "d123-plus-k4", "n_train_texts"].eq(8).all()
