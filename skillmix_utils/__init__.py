"""skillmix_utils: the library behind the skillmix notebooks and command line.

The public API, `import skillmix_utils as sm` (each name is imported on first use, so
`import skillmix_utils` needs neither torch nor an SDK and takes milliseconds):

| name | what |
|---|---|
| `load_config(path, overrides=None)` | a validated study config (`configs/*.yaml`) |
| `load_catalog(skills=None, topics=None)` | the skills and topics (the built-in open catalog by default) |
| `sample_combinations(catalog, k, n, seed, skills=, topics=)` | seeded k-skill + topic combinations |
| `generation_prompt(skills, topic)` / `followup_prompt(k)` | the two turns a writer receives |
| `grading_prompt(skills, topic, answer, variant=)` | the k + 3 point rubric prompt |
| `rubric(skills, topic)` | the k + 3 criteria, in order |
| `parse_grade(reply, criteria)` | a grader's reply as points per criterion (or parse_failed) |
| `count_sentences(text)` | the deterministic length rule's sentence counter |
| `skillmix_metrics(points, k)` | Ratio of Full Marks / All Skills / Skills Fraction with SEM and CI |
| `get_backend(spec)` | a model by spec: `openai:`, `anthropic:`, `hf:`, `vllm:` ... |
| `run_stage(name, cfg)` | run one stage ("data", "train", "evaluate", "metrics") on a config |
| `run_study(config_path)` | all numbered notebooks through papermill (`skillmix run`) |
| `build_report(out_dir)` | the self-contained report.html of a study |

The layers behind them (see docs/architecture.md): `core` (the study as data), `llm` (model
access), `stages` (generate, train, evaluate, grade, tables), `present` (figures, tables,
report, hub), and the entry points `runner` and `cli`.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from skillmix_utils.core.errors import SkillmixError  # noqa: E402

# name -> (module, attribute). PEP 562 lazy attributes: importing any submodule runs this file
# first, so it must not import the stages (torch, SDKs, pandas) itself.
_LAZY = {
    "load_config": ("core.config", "load_study_config"),
    "load_catalog": ("core.catalog", "load_catalog"),
    "sample_combinations": ("core.sampling", "sample_combinations"),
    "generation_prompt": ("core.prompts", "generation_turn1"),
    "followup_prompt": ("core.prompts", "generation_turn2"),
    "grading_prompt": ("core.prompts", "grading_prompt"),
    "rubric": ("core.grading", "rubric_items"),
    "parse_grade": ("core.grading", "parse_grade"),
    "count_sentences": ("core.text_rules", "count_sentences"),
    "skillmix_metrics": ("core.metrics", "skillmix_metrics"),
    "get_backend": ("llm", "get_backend"),
    "run_study": ("runner", "run_study"),
    "build_report": ("present.report", "build_report"),
}
# What run_stage runs, resolved the same way.
_STAGES = {
    "data": ("stages.datagen", "run_datagen"), "generate-data": ("stages.datagen", "run_datagen"),
    "datagen": ("stages.datagen", "run_datagen"), "train": ("stages.train", "run_training"),
    "evaluate": ("stages.evaluate", "run_evaluation"), "eval": ("stages.evaluate", "run_evaluation"),
    "metrics": ("stages.tables", "write_metric_tables"),
}


def _resolve(module: str, attr: str):
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


__all__ = ["SkillmixError", "__version__", "run_stage", *_LAZY]


def run_stage(name: str, cfg, **options):
    """Run one stage of a study in this process and return the paths it wrote.

    `name`: "data" (generate and filter D_SKILL-MIX), "train" (fine-tune), "evaluate" (write,
    grade and tabulate SKILL-MIX), "metrics" (recompute the tables from records). `cfg` is a
    config from `load_config` or a path to one; `options` go to the stage (e.g. dry_run=True,
    students=["base"]). Example: ``sm.run_stage("evaluate", "configs/demo.yaml", dry_run=True)``.
    """
    if not hasattr(cfg, "model_dump"):
        cfg = _resolve("runner", "notebook_config")(str(cfg))
    if name not in _STAGES:
        raise SkillmixError(f"unknown stage {name!r} (data, train, evaluate, metrics)", field="stage")
    if name == "metrics":
        return _resolve(*_STAGES[name])(cfg)
    return _resolve(*_STAGES[name])(cfg, **options)


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = _resolve(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skillmix_utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
