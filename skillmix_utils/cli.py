"""The `skillmix` command line: a thin layer over the library.

    skillmix catalog [--skills FILE --topics FILE]      counts per category and split; validates
    skillmix generate-data CONFIG [--set field=value]   D_SKILL-MIX(k): teacher, grader, filter, export
    skillmix train CONFIG [--dry-run]                   fine-tune the student (LoRA / QLoRA / full)
    skillmix evaluate CONFIG                            SKILL-MIX(k) for every student and setting
    skillmix grade CONFIG --records FILE                grade existing records (e.g. a second grader)
    skillmix metrics CONFIG                             recompute the metric tables from records
    skillmix run CONFIG [--stages ...] [--dry-run]      the numbered notebooks, in order, via papermill
    skillmix doctor [--model M]                         versions + GPU checks in one table

Every error about input is one line on stderr naming the file and field, and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SkillmixError


def _parse_sets(pairs: list[str]) -> dict:
    """`--set a.b=3` pairs into overrides; values are read as YAML scalars.

    >>> _parse_sets(["evaluation.n_combinations=2", "name=x"])
    {'evaluation.n_combinations': 2, 'name': 'x'}
    """
    import yaml

    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SkillmixError(f"--set takes field=value, got {pair!r}", field="--set")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _config(args):
    from .config import load_study_config

    return load_study_config(args.config, overrides=_parse_sets(args.set))


def _print_paths(paths) -> None:
    for name, path in (paths or {}).items():
        print(f"{name}: {path}")


def cmd_catalog(args) -> int:
    from .catalog import load_catalog, summary_table

    catalog = load_catalog(skills=args.skills, topics=args.topics)
    print(summary_table(catalog))
    return 0


def cmd_generate_data(args) -> int:
    cfg = _config(args)  # validate before importing the heavy stage
    from .stages.datagen import run_datagen

    _print_paths(run_datagen(cfg, dry_run=args.dry_run))
    return 0


def cmd_train(args) -> int:
    cfg = _config(args)
    if args.dry_run:
        from .train.plan import dry_run_report

        if cfg.train is None:
            raise SkillmixError("the study config has no train section", file=args.config,
                                field="train")
        text, fits = dry_run_report(cfg, device_gib=args.device_gib, tflops=args.device_tflops)
        print(text)
        return 0 if fits else 1
    from .train import run_training

    _print_paths(run_training(cfg, resume=not args.restart))
    return 0


def cmd_evaluate(args) -> int:
    cfg = _config(args)
    from .stages.evaluate import run_evaluation

    _print_paths(run_evaluation(cfg, students=args.student, dry_run=args.dry_run))
    return 0


def cmd_grade(args) -> int:
    cfg = _config(args)
    from .stages.grade import grade_file

    _print_paths(grade_file(cfg, Path(args.records), grader_names=args.grader))
    return 0


def cmd_metrics(args) -> int:
    cfg = _config(args)
    from .stages.tables import write_metric_tables

    _print_paths(write_metric_tables(cfg))
    return 0


def cmd_doctor(args) -> int:
    from .doctor import main as doctor

    return doctor(args.model, steps=args.steps)


def cmd_run(args) -> int:
    from .runner import run_study

    return run_study(args.config, stages=args.stages, dry_run=args.dry_run,
                     overrides=_parse_sets(args.set), force=args.force)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skillmix", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("catalog", help="show and validate a skill/topic catalog")
    c.add_argument("--skills", help="skills file (.yaml, .csv in Skill-Mix or simple form)")
    c.add_argument("--topics", help="topics file (.yaml or one topic a line)")
    c.set_defaults(func=cmd_catalog)

    def with_config(name, func, help_):
        s = sub.add_parser(name, help=help_)
        s.add_argument("config", help="study config YAML (see configs/)")
        s.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="override a config field, e.g. evaluation.n_combinations=10")
        s.set_defaults(func=func)
        return s

    with_config("generate-data", cmd_generate_data, "generate and filter D_SKILL-MIX").add_argument(
        "--dry-run", action="store_true", help="print the planned calls and estimated cost only")
    t = with_config("train", cmd_train, "fine-tune the student")
    t.add_argument("--restart", action="store_true", help="ignore existing checkpoints")
    t.add_argument("--dry-run", action="store_true",
                   help="print memory per device and time, exit 1 if it will not fit")
    t.add_argument("--device-gib", type=float, default=80.0,
                   help="memory of one GPU for --dry-run (default 80)")
    t.add_argument("--device-tflops", type=float, default=312.0,
                   help="dense bf16 TFLOP/s of one GPU for --dry-run (default 312, A100)")
    e = with_config("evaluate", cmd_evaluate, "evaluate students with SKILL-MIX")
    e.add_argument("--student", action="append", help="only these students (by name)")
    e.add_argument("--dry-run", action="store_true", help="print the planned calls and cost only")
    g = with_config("grade", cmd_grade, "grade an existing records file")
    g.add_argument("--records", required=True, help="records JSONL to grade")
    g.add_argument("--grader", action="append", help="only these graders (by name or spec)")
    with_config("metrics", cmd_metrics, "recompute metric tables from records")
    d = sub.add_parser("doctor", help="versions, and checks of training and serving on this machine")
    d.add_argument("--model", default="smollm2-135m-instruct", help="model to check with")
    d.add_argument("--steps", type=int, default=3, help="optimiser steps per training check")
    d.set_defaults(func=cmd_doctor)
    r = with_config("run", cmd_run, "run the numbered notebooks with papermill")
    r.add_argument("--stages", nargs="+", help="only these notebooks, e.g. 02 03")
    r.add_argument("--dry-run", action="store_true", help="say what would run and its API cost")
    r.add_argument("--force", action="store_true", help="re-run stages whose outputs are complete")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SkillmixError as err:
        print(f"skillmix: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skillmix: interrupted; what finished is saved, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
