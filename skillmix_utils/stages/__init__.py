"""The study's model stages: generating D_SKILL-MIX and evaluating with SKILL-MIX.

    skillmix generate-data configs/demo.yaml    ->  stages.datagen.run_datagen(cfg)
    skillmix evaluate configs/demo.yaml         ->  stages.evaluate.run_evaluation(cfg)
    skillmix grade configs/demo.yaml --records outputs/demo/eval/records.jsonl
                                                ->  stages.grade.grade_file(cfg, path)
    skillmix metrics configs/demo.yaml          ->  stages.tables.write_metric_tables(cfg)

Every stage appends `records.TextRecord`s to one JSONL file as soon as each text or grading
exists, resumes from it (deterministic ids), and returns a dict of the paths it wrote.
Submodules are imported lazily so that `import skillmix_utils.stages` stays cheap.
"""
from __future__ import annotations

from skillmix_utils.stages import grade
from skillmix_utils.stages.datagen import run_datagen
from skillmix_utils.stages.evaluate import run_evaluation
from skillmix_utils.stages.tables import write_metric_tables

__all__ = ["run_datagen", "run_evaluation", "grade_file", "grade_records", "write_metric_tables"]


def __getattr__(name):
    # Lazy re-exports: a stage pulls torch / the SDKs only when it is actually used.
    if name == "run_datagen":
        return run_datagen
    if name == "run_evaluation":
        return run_evaluation
    if name in ("grade_file", "grade_records"):
        return getattr(grade, name)
    if name == "write_metric_tables":
        return write_metric_tables
    raise AttributeError(name)
