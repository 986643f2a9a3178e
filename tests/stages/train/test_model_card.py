"""The adapter folder is hub-ready: a model card with YAML front matter naming the base model by
its hub id, no absolute paths, and an adapter config that does not point into this machine."""
from __future__ import annotations

import json

import yaml

from skillmix_utils.stages.train.card import model_card, portable_base


def _summary(tmp_path):
    keys = ("rows", "skillmix_examples", "truncated", "dropped", "pretrain_corpus", "pretrain_examples",
            "pretrain_tokens", "real_token_fraction", "effective_batch", "per_device_batch_size",
            "accumulation_steps", "processes", "steps", "device", "distributed_type", "attention",
            "optimizer", "final_loss", "code_version")
    return {"run": "lora-k1-2-3", "data": str(tmp_path / "outputs" / "demo" / "data" / "mixes" / "k1-2-3.jsonl"),
            **{k: 1 for k in keys}}


def test_card_has_front_matter_and_no_absolute_path(tmp_path):
    from skillmix_utils.core.config import load_study_config

    cfg = load_study_config("configs/demo.yaml", {"output_dir": str(tmp_path / "outputs" / "demo")})
    card = model_card(cfg, _summary(tmp_path))
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["library_name"] == "peft" and meta["license"] == "apache-2.0"
    assert "skill-mix" in meta["tags"] and meta["datasets"]
    assert str(tmp_path) not in card and "/work/" not in card
    body = card.split("---\n", 2)[2]
    assert body.lstrip().startswith("# lora-k1-2-3: HuggingFaceTB/SmolLM2-135M-Instruct fine-tuned")


def test_adapter_config_names_the_hub_id(tmp_path):
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"base_model_name_or_path": "/root/.cache/skillmix/models/smollm2", "r": 8}))
    portable_base(path, "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert json.loads(path.read_text()) == {"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "r": 8}


def test_a_rewritten_card_keeps_the_dataset_a_push_named(tmp_path):
    import yaml

    from skillmix_utils.core.config import load_study_config
    from skillmix_utils.stages.train.card import write_card

    cfg = load_study_config("configs/demo.yaml", {"output_dir": str(tmp_path / "outputs" / "demo")})
    root = tmp_path / "run"
    (root / "adapter").mkdir(parents=True)
    assert write_card(cfg, root) is None          # no summary yet: nothing is written
    (root / "train_summary.json").write_text(json.dumps(_summary(tmp_path)))
    write_card(cfg, root, dataset_repo="ada/demo-d-skill-mix")
    card = write_card(cfg, root, metrics=[])      # e.g. `skillmix metrics` after the push
    assert yaml.safe_load(card.split("---\n")[1])["datasets"] == ["ada/demo-d-skill-mix"]
    assert (root / "adapter" / "README.md").read_text() == card
