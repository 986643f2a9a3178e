"""`skillmix push` against a loopback stand-in for the hub API (tests/hub_server.py), the way a
user meets it: the real command in a subprocess, the official huggingface_hub client, a fake
token in HF_TOKEN. The study folder is made here: real mixes and data card (stages/export.py
from fixture records), a stand-in adapter, train summary, metrics table and report."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hub_server import HubServer  # tests/ is on sys.path (pytest rootdir import)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_" + "FakeTokenForTheLoopbackHub0123456789"
USER = "ada"
CONFIG = """\
name: push-small
output_dir: {out}
data:
  teacher: {{spec: hf:smollm2-135m-instruct, max_tokens: 40, seed: 0}}
  graders:
    - {{spec: hf:smollm2-135m-instruct, name: smollm2-yes-no, method: yes_no_logprob, rounds: 1}}
  counts: {{1: 6, 2: 6}}
  mixes: [[1], [1, 2]]
train:
  base_model: smollm2-135m-instruct
  mode: lora
  data_mix: [1, 2]
  steps: 4
  batch_size: 4
  per_device_batch_size: 2
"""
WEIGHTS = b"stand-in adapter weights \x00\x01\x02"


def _metrics_rows(out: Path) -> list[dict]:
    from skillmix_utils.stages.tables import COLUMNS

    rows = []
    for student, data, full in (("base", "", 0.25), ("tuned", "D(1,2)", 0.5)):
        # metrics.csv names a tuned student's adapter by its full path, as the stage writes it
        row = dict.fromkeys(COLUMNS, 0)
        row.update(study="push-small", student=student, base_model="hf:smollm2-135m-instruct",
                   adapter=str(out / "train" / "lora-k1-2" / "adapter") if data else "",
                   train_data=data, setting="held_out", k=2, grader="smollm2-yes-no",
                   grader_method="yes_no_logprob", grader_model="hf:smollm2-135m-instruct",
                   n_combinations=4, ratio_full_marks=full,
                   ratio_full_marks_sem=0.25, ratio_all_skills=0.75, ratio_all_skills_sem=0.25,
                   skills_fraction=0.875, skills_fraction_sem=0.125)
        for metric, (lo, hi) in {"ratio_full_marks": (0.15, 0.85), "ratio_all_skills": (0.3, 0.95),
                                 "skills_fraction": (0.625, 1.0)}.items():
            row.update({f"{metric}_ci_low": lo, f"{metric}_ci_high": hi})
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """(config path, output folder) of a finished small study."""
    import pandas as pd

    from skillmix_utils.core.config import load_study_config
    from skillmix_utils.core.records import Combination, TextRecord
    from skillmix_utils.stages.export import export_data

    tmp = tmp_path_factory.mktemp("push")
    out = tmp / "outputs" / "push-small"
    config = tmp / "push-small.yaml"
    config.write_text(CONFIG.format(out=out))
    cfg = load_study_config(config)
    rows = [json.loads(x) for x in (ROOT / "tests" / "data" / "mix_small.jsonl").read_text().splitlines()]
    records = [TextRecord(id=r["id"], stage="datagen", model="hf:smollm2-135m-instruct",
                          combination=Combination(skills=tuple(r["skills"]), topic=r["topic"],
                                                  k=r["k"], index=i), conversation=r["messages"],
                          answer=r["messages"][-1]["content"], kept=True)
               for i, r in enumerate(rows) if r["k"] <= 2]
    export_data(cfg, records, cfg.catalog.load(), planned=len(records))
    run = out / "train" / "lora-k1-2"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "peft_type": "LORA", "r": 8}))
    (run / "adapter" / "adapter_model.safetensors").write_bytes(WEIGHTS)
    (run / "adapter" / "README.md").write_text("# Model Card for Model ID\n(PEFT's blank template)\n")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events.out.tfevents.1.host.1.0").write_bytes(b"\x00events")
    summary = {"run": "lora-k1-2", "data": str(out / "data" / "mixes" / "k1-2.jsonl"), **{k: 1 for k in (
        "rows", "skillmix_examples", "truncated", "dropped", "pretrain_corpus", "pretrain_examples",
        "pretrain_tokens", "real_token_fraction", "effective_batch", "per_device_batch_size",
        "accumulation_steps", "processes", "steps", "device", "distributed_type", "attention",
        "optimizer", "final_loss", "code_version")}}
    (run / "train_summary.json").write_text(json.dumps(summary))
    (run / "loss.json").write_text("[]")
    (out / "eval" / "tables").mkdir(parents=True)
    pd.DataFrame(_metrics_rows(out)).to_csv(out / "eval" / "tables" / "metrics.csv", index=False)
    (out / "report.html").write_text(f"<html><body>report of push-small in {out}</body></html>")
    return config, out


def _push(config, *args, env=None, token=TOKEN):
    """Run `skillmix push` as a user would: a new process, the hub online (unless `env` says
    otherwise), HF_TOKEN set, a fresh HF_HOME (no stored token)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")}
    base.update(HF_TOKEN=token, HF_HOME=str(Path(config).parent / "hf-home"),
                PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "push", str(config), *args],
                          env=base, capture_output=True, text=True, timeout=120)


@pytest.fixture
def hub():
    server = HubServer(token=TOKEN, user=USER).start()
    yield server
    server.stop()


def test_push_uploads_model_and_dataset(study, hub):
    import pyarrow.parquet as pq

    config, out = study
    dry = _push(config, "--dry-run", "--namespace", USER, "--endpoint", hub.url,
                env={"HF_HUB_OFFLINE": "1"})     # offline: a dry run needs no network
    assert dry.returncode == 0, dry.stderr
    assert hub.requests == []
    res = _push(config, "--endpoint", hub.url, "--private")
    assert res.returncode == 0, res.stderr
    assert not hub.unknown
    model_id, dataset_id = f"{USER}/push-small-lora-k1-2", f"{USER}/push-small-d-skill-mix"
    assert set(hub.repos) == {("model", model_id), ("dataset", dataset_id)}
    # The dry run listed exactly what went, repo by repo.
    listed, repo = {}, None
    for line in dry.stdout.splitlines():
        if line.startswith(("model ", "dataset ")):
            repo = tuple(line.split()[:2])
        elif line.startswith("  "):
            listed.setdefault(repo, set()).add(line.split()[0])
    assert listed == {k: set(v["files"]) for k, v in hub.repos.items()}
    total = sum(len(v["files"]) for v in hub.repos.values())
    assert f"total: {total} files" in dry.stdout

    model = hub.files("model", model_id)
    assert model["adapter_model.safetensors"] == WEIGHTS
    assert json.loads(model["adapter_config.json"])["base_model_name_or_path"] == \
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {"study/report.html", "study/metrics.csv", "study/config.yaml",
            "study/train_summary.json", "runs/events.out.tfevents.1.host.1.0"} <= set(model)
    card = model["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["datasets"] == [dataset_id] and meta["library_name"] == "peft"
    # Every number with its n and interval, and the judge named as what it is.
    assert "| tuned | D(1,2) | held_out | 2 | smollm2-yes-no | 0.500 ± 0.250 (n=4) [0.150, 0.850] | " \
           "0.750 ± 0.250 (n=4) [0.300, 0.950] | 0.875 ± 0.125 (n=4) [0.625, 1.000] | 4 |" in card
    assert "Numbers graded by smollm2-yes-no (hf:smollm2-135m-instruct, yes_no_logprob): a small " \
           "local judge asked yes/no per criterion, not the paper's GPT-4." in card
    assert "blank template" not in card
    pushed_config = yaml.safe_load(model["study/config.yaml"])
    assert pushed_config["output_dir"] == "outputs/push-small" and pushed_config["name"] == "push-small"

    data = hub.files("dataset", dataset_id)
    assert {"data/k1.parquet", "data/k1-2.parquet", "README.md"} == set(data)
    for mix in ("k1", "k1-2"):
        rows = [json.loads(x) for x in (out / "data" / "mixes" / f"{mix}.jsonl").read_text().splitlines()]
        assert pq.read_table(io.BytesIO(data[f"data/{mix}.parquet"])).to_pylist() == rows and rows
    dcard = data["README.md"].decode()
    dmeta = yaml.safe_load(dcard.split("---\n")[1])
    assert [c["config_name"] for c in dmeta["configs"]] == ["k1", "k1-2"]
    assert dmeta["configs"][1]["data_files"] == [{"split": "train", "path": "data/k1-2.parquet"}]
    assert dmeta["task_categories"] == ["text-generation"] and dmeta["license"] == "apache-2.0"
    assert "Keep rule" in dcard and "hf:smollm2-135m-instruct" in dcard
    # The dataset card names its judge as a local one and gives each keep rate its n and interval.
    assert "graded by `smollm2-yes-no` (hf:smollm2-135m-instruct, yes_no_logprob, 1 round): a " \
           "small local judge asked yes/no per criterion, not the paper's GPT-4" in dcard
    assert re.search(r"\| \d+\.\d{3} \(n=\d+\) \[\d\.\d{3}, \d\.\d{3}\] \|", dcard)

    everything = [c for repo in hub.repos.values() for c in repo["files"].values()]
    assert not any(TOKEN.encode() in c for c in everything)
    assert not any(str(out).encode() in c for c in everything)     # no path of this machine
    assert TOKEN not in res.stdout + res.stderr
    # The local card now matches the pushed one (metrics and the dataset repo it names).
    assert (out / "train" / "lora-k1-2" / "adapter" / "README.md").read_text() == card
    assert (out / "train" / "lora-k1-2" / "model_card.md").read_text() == card
    assert all(repo["private"] for repo in hub.repos.values())

    # Pushed again: the repos exist (409 is fine) and nothing changed, so nothing is committed.
    commits = hub.commits
    again = _push(config, "--endpoint", hub.url)
    assert again.returncode == 0, again.stderr
    assert hub.commits == commits and not hub.unknown


def test_bad_token_exits_4_and_uploads_nothing(study, hub):
    config, _ = study
    res = _push(config, "--endpoint", hub.url, token="hf_" + "WrongToken" * 4)
    assert res.returncode == 4, res.stderr
    assert "401" in res.stderr and "WrongToken" not in res.stderr + res.stdout
    assert hub.requests == [("GET", "/api/whoami-v2")] and hub.repos == {}


def test_offline_exits_2_before_any_request(study, hub):
    config, _ = study
    res = _push(config, "--endpoint", hub.url, env={"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 2
    assert "unset HF_HUB_OFFLINE" in res.stderr and "to push" in res.stderr
    assert hub.requests == []


def test_missing_pieces_name_their_stage(tmp_path, hub):
    from skillmix_utils.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.format(out=tmp_path / "out"))
    assert main(["push", str(config), "--dry-run"]) == 2
    assert hub.requests == []


def test_a_file_holding_the_token_is_refused(study, hub, tmp_path, monkeypatch, capsys):
    import shutil

    from skillmix_utils.cli import main

    config, out = study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.html").write_text(f"<html>oops {TOKEN}</html>")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", str(config), "--dry-run", "--set", f"output_dir={copy}"]) == 2
    err = capsys.readouterr().err
    assert "study/report.html" in err and TOKEN not in err
    assert hub.requests == []


def test_a_name_the_hub_refuses_is_bad_input(study, hub, capsys):
    from skillmix_utils.cli import main

    config, _ = study
    assert main(["push", str(config), "--dry-run", "--namespace", "two words"]) == 2
    assert "is not a hub repo id" in capsys.readouterr().err
