"""The model card of a trained run: front matter the hub reads (base model, licence, datasets) and
the study's metrics table, rewritten when metrics.csv changes (docs: README "Share on the hub")."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.numbers import CELL_NOTE, judge_phrase, plural, row_estimate
from skillmix_utils.llm.models import model_aliases


def base_hub_id(name: str) -> str:
    """The hub id a model card names as base_model: an alias's hub id (or the hub model its
    embedded weights come from), a hub id as given, else the folder's name (never a path)."""

    entry = model_aliases().get(name) or {}
    if entry.get("hub_id") or entry.get("source_hub_id"):
        return entry.get("hub_id") or entry["source_hub_id"]
    if name.count("/") == 1 and not Path(name).expanduser().exists():
        return name
    return Path(name).name


# The hub accepts only its own licence ids in a card's front matter; models.yaml holds the names.
_HUB_LICENSES = {"apache-2.0": "apache-2.0", "mit": "mit", "llama-2-community-license": "llama2",
                 "llama2": "llama2"}


def hub_license(name: str | None) -> str:
    """A licence name as the hub's id, "other" when the hub has none for it.

    >>> hub_license("Apache-2.0"), hub_license("Llama 2 Community License"), hub_license(None)
    ('apache-2.0', 'llama2', 'other')
    """
    return _HUB_LICENSES.get((name or "").lower().replace(" ", "-"), "other")


def local_dataset_name(cfg: StudyConfig, summary: dict) -> str:
    """The dataset a card names before it is pushed: the study's mix, e.g. demo-d-skill-mix-k1-2-3."""
    return f"{cfg.name}-d-skill-mix-{Path(str(summary['data'])).stem}"


def front_matter(cfg: StudyConfig, summary: dict, dataset_repo: str | None = None) -> str:
    """YAML front matter the Hugging Face hub reads: base_model, library, license, tags, datasets
    (the pushed dataset repo id when `dataset_repo` is given, else the local mix's name)."""


    t = cfg.train
    meta = {"base_model": base_hub_id(t.base_model),
            "library_name": "peft" if t.mode != "full" else "transformers",
            "license": hub_license((model_aliases().get(t.base_model) or {}).get("license")),
            "tags": ["skill-mix", "skillmix", "skill-composition", t.mode, "generated_from_trainer"],
            "datasets": [dataset_repo or local_dataset_name(cfg, summary)],
            "pipeline_tag": "text-generation"}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a study's eval/tables/metrics.csv (`stages.tables`), [] when there is none."""
    import pandas as pd

    path = Path(path)
    if not path.exists() or not path.stat().st_size:
        return []
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).to_dict("records")


def metrics_markdown(rows: list[dict]) -> str:
    """The card's evaluation section: who graded (`numbers.judge_phrase`, a local judge named as
    such) and one line per student x setting x k x grader with the three SKILL-MIX metrics, each
    "mean ± SEM (n=N) [95% interval]" (`numbers.row_estimate`; "" when there are no rows).

    >>> print(metrics_markdown([{"student": "tuned", "train_data": "D(1,2,3)", "setting": "held_out",
    ...     "k": 3, "grader": "gpt-4", "grader_model": "openai:gpt-4-0613", "grader_method": "table",
    ...     "n_combinations": 2, "ratio_full_marks": 0.5, "ratio_full_marks_sem": 0.5,
    ...     "ratio_full_marks_ci_low": 0.09, "ratio_full_marks_ci_high": 0.91,
    ...     "ratio_all_skills": 1.0, "ratio_all_skills_sem": 0.0, "ratio_all_skills_ci_low": 0.34,
    ...     "ratio_all_skills_ci_high": 1.0, "skills_fraction": 1.0,
    ...     "skills_fraction_sem": float("nan")}]).splitlines()[-1])
    | tuned | D(1,2,3) | held_out | 3 | gpt-4 | 0.500 ± 0.500 (n=2) [0.090, 0.910] | 1.000 ± 0.000 (n=2) [0.340, 1.000] | 1.000 (n=2) | 2 |
    """
    if not rows:
        return ""
    judges = list(dict.fromkeys(judge_phrase(r["grader"], r.get("grader_model"), r.get("grader_method"))
                                for r in rows))
    lines = ["## Evaluation: SKILL-MIX", "",
             "The study's metrics table (`eval/tables/metrics.csv`, docs/protocol.md §5): the student "
             "writes texts for n combinations of k skills and a topic, drawn from the training "
             "skills, the held-out ones or all; the grader scores each with the k + 3 point "
             "rubric (majority vote over its rounds). Per text, **full marks**: all k + 3 points; "
             "**all skills**: all k skill points and at least 2 of the other 3; **skills "
             "fraction**: the mean skill point when the other 3 are all earned, else 0. Per "
             "combination the best generation counts; each cell is the " + CELL_NOTE + ".", "",
             *[f"Numbers {j}." for j in judges], "",
             "| student | trained on | setting | k | grader | full marks | all skills | "
             "skills fraction | n |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        data = r.get("train_data")
        data = data if isinstance(data, str) and data else "not tuned"
        lines.append(f"| {r['student']} | {data} | {r['setting']} | {r['k']} | {r['grader']} | "
                     + " | ".join(row_estimate(r, m, digits=3) for m in
                                  ("ratio_full_marks", "ratio_all_skills", "skills_fraction"))
                     + f" | {r['n_combinations']} |")
    return "\n".join(lines) + "\n"


def model_card(cfg: StudyConfig, summary: dict, metrics: list[dict] | None = None,
               dataset_repo: str | None = None) -> str:
    """The model card text (hub-ready: YAML front matter, no absolute paths): what was trained
    on what, how, with which code, and (given `metrics`, rows of metrics.csv) how it scored."""
    t = cfg.train
    hp = t.model_dump()
    rows = "\n".join(f"| {k} | {json.dumps(v) if isinstance(v, (dict, list)) else v} |"
                     for k, v in hp.items())
    out = "adapter/" if t.mode != "full" else "model/"
    summary = {**summary, "data": Path(str(summary["data"])).name}
    evaluation = metrics_markdown(metrics or [])
    where = (f" (config `{Path(summary['data']).stem}` of the dataset `{dataset_repo}`)"
             if dataset_repo else "")
    return front_matter(cfg, summary, dataset_repo) + f"""
# {summary['run']}: {base_hub_id(t.base_model)} fine-tuned on D_SKILL-MIX ({summary['data']})

Study `{cfg.name}`. Mode **{t.mode}**; output `{out}`{' (merged into model/)' if t.merge_adapter else ''}.
Recipe of "Can Models Learn Skill Composition from Examples?" (NeurIPS 2024), docs/protocol.md §7:
Adam, {t.warmup_steps} warm-up steps then constant {t.learning_rate}, loss only on the two answers.

{evaluation}
## Data
- training mix: `{summary['data']}`{where}: {plural(summary['rows'], 'row')}, {summary['skillmix_examples']} kept,
  {summary['truncated']} truncated on a turn boundary, {summary['dropped']} dropped (max_length {t.max_length})
- pre-training mix: corpus `{summary['pretrain_corpus']}`, ratio {t.pretrain.ratio},
  {summary['pretrain_examples']} chunks, {summary['pretrain_tokens']} tokens
- format: {t.format}; packing: {t.packing} (real-token fraction {summary['real_token_fraction']})

## Run
- effective batch {summary['effective_batch']} = {summary['per_device_batch_size']} per device x
  {summary['accumulation_steps']} accumulation x {summary['processes']} process(es)
- {plural(summary['steps'], 'step')} on {summary['device']} ({summary['distributed_type']}), attention {summary['attention']},
  optimiser {summary['optimizer']}; final loss {summary['final_loss']}
- code version (git): `{summary['code_version']}`

## Hyper-parameters
| field | value |
|---|---|
{rows}
"""


def portable_base(config_path: Path, hub_id: str) -> None:
    """Point an adapter's base_model_name_or_path at the hub id, not this machine's cache path
    (a local load still works: `load_causal_lm` loads the base by alias and then the adapter)."""
    if not config_path.exists():
        return
    data = json.loads(config_path.read_text())
    if Path(str(data.get("base_model_name_or_path", ""))).is_absolute():
        data["base_model_name_or_path"] = hub_id
        config_path.write_text(json.dumps(data, indent=2))


def _pushed_dataset(card_path: Path) -> str | None:
    """The hub dataset repo id ("ns/name") an existing card names, None when it names none."""

    if not card_path.exists():
        return None
    parts = card_path.read_text().split("---\n", 2)
    try:
        names = (yaml.safe_load(parts[1]) or {}).get("datasets") or [] if len(parts) == 3 else []
    except yaml.YAMLError:
        return None
    return next((n for n in names if isinstance(n, str) and n.count("/") == 1), None)


def write_card(cfg: StudyConfig, root: str | Path, metrics: list[dict] | None = None,
               dataset_repo: str | None = None) -> str | None:
    """Rewrite a finished run's model_card.md and its weights folder's README.md from its
    train_summary.json, with the metrics table and the dataset repo id when given; returns the
    card, or None when the run has no summary yet (nothing is written then)."""
    root = Path(root)
    summary_path = root / "train_summary.json"
    if not summary_path.exists():
        return None
    if dataset_repo is None:         # keep the hub dataset a pushed card names (`skillmix push`)
        dataset_repo = _pushed_dataset(root / "model_card.md")
    card = model_card(cfg, json.loads(summary_path.read_text()), metrics, dataset_repo)
    (root / "model_card.md").write_text(card)
    weights = root / ("model" if cfg.train.mode == "full" else "adapter")
    if weights.is_dir():
        (weights / "README.md").write_text(card)
    return card
