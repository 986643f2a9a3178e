"""Every shipped study config validates, grids included, and says what it claims to."""
from __future__ import annotations

from pathlib import Path

import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.runner import grid_points

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_the_expected_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert {"demo", "ci", "paper-llama2-13b", "paper-mistral-7b", "current-llama2-13b",
            "current-mistral-7b", "api-cheap"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_with_every_grid_point(path):
    cfg = load_study_config(path)
    assert cfg.name == path.stem
    for label, point in grid_points(cfg.grid):
        run = load_study_config(path, overrides={**point, "grid": {}})
        assert run.train is not None, label
    if cfg.evaluation is not None:
        tuned = [s for s in cfg.evaluation.students if s.adapter == "@train"]
        assert not tuned or cfg.train is not None


@pytest.mark.parametrize("name", ["demo", "ci"])
def test_offline_configs_use_only_the_embedded_model(name):
    cfg = load_study_config(ROOT / "configs" / f"{name}.yaml")
    specs = [cfg.data.teacher.spec, *(g.spec for g in cfg.data.graders + cfg.evaluation.graders),
             *(s.model.spec for s in cfg.evaluation.students)]
    assert set(specs) == {"hf:smollm2-135m-instruct"}
    assert all(g.method == "yes_no_logprob" for g in cfg.data.graders + cfg.evaluation.graders)
    assert cfg.train.mode == "lora" and cfg.train.launcher == "none"
    assert {s.adapter for s in cfg.evaluation.students} == {None, "@train"}


@pytest.mark.parametrize("name", ["paper-llama2-13b", "paper-mistral-7b",
                                  "paper-llama2-13b-qlora", "paper-mistral-7b-qlora"])
def test_paper_configs_carry_the_paper_numbers(name):
    cfg = load_study_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg.data.teacher.spec == "openai:gpt-4-0613"
    # the paper's numbers came from the reference code: its protocol and arithmetic
    assert (cfg.protocol.preset, cfg.scoring.preset) == ("reference", "reference")
    assert cfg.data.teacher.system_message == "You are a helpful assistant."
    assert {s.model.system_message for s in cfg.evaluation.students} == {None}   # local students
    assert [g.spec for g in cfg.data.graders] == ["openai:gpt-4-0613"]
    assert [g.spec for g in cfg.evaluation.graders] == ["openai:gpt-4-0613",
                                                        "anthropic:claude-3-opus-20240229"]
    assert all(g.rounds == 3 for g in cfg.evaluation.graders)
    assert dict(cfg.data.counts) == {1: 5000, 2: 10000, 3: 10000}
    assert cfg.data.pools[1].skills == "all" and cfg.data.pools[2].skills == "train"
    t = cfg.train
    assert (t.steps, t.batch_size, t.learning_rate, t.warmup_steps, t.max_length) == (4000, 64, 2e-5, 64, 1024)
    assert t.mode == ("qlora" if name.endswith("qlora") else "full")
    assert cfg.evaluation.settings == ["train", "held_out", "all"] and cfg.evaluation.ks == [1, 2, 3, 4, 5]
    labels = [label for label, _ in grid_points(cfg.grid)]
    assert labels == ["data_mix=1_subsample=none", "data_mix=1-2_subsample=none",
                      "data_mix=1-2-3_subsample=none", "data_mix=1-2-3_subsample=sub8000"]
