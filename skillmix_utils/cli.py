"""The `skillmix` command line: a thin layer over the library.

    skillmix catalog [--skills FILE --topics FILE]      counts per category and split; validates
    skillmix generate-data CONFIG [--set field=value]   D_SKILL-MIX(k): teacher, grader, filter, export
    skillmix train CONFIG [--dry-run]                   fine-tune the student (LoRA / QLoRA / full)
    skillmix evaluate CONFIG                            SKILL-MIX(k) for every student and setting
    skillmix grade CONFIG --records FILE                grade existing records (e.g. a second grader)
    skillmix metrics CONFIG                             recompute the metric tables from records
    skillmix run CONFIG [--stages ...] [--dry-run]      the numbered notebooks, in order, via papermill
    skillmix doctor [--model M] [--gpu]                 versions + GPU checks in one table (--gpu: acceptance run)
    skillmix cache info | clear [llm|models|all]       the response cache and converted models
    skillmix --version
    skillmix human CONFIG [--rater NAME] [--port N]     blind human grading page on 127.0.0.1
    skillmix human-agreement CONFIG                     human vs LLM graders and human vs human
    skillmix import-reference FOLDER OUT_DIR            read the Skill-Mix reference code's results
    skillmix push CONFIG [--dry-run] [--namespace NS]   adapter, data mixes and report to the HF hub

Every error is one line on stderr naming the file and field; the exit status says what kind
(0 finished, 1 failed items left, 2 bad input, 3 budget spent, 4 request refused, 5 output folder
in use, 130 interrupted: see errors.py and README "Failures, exit status, budgets").
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from skillmix_utils import __version__
from skillmix_utils.core.catalog import load_catalog, summary_table
from skillmix_utils.core.config import load_study_config
from skillmix_utils.core.errors import EXIT_INTERRUPTED, SkillmixError, disk_full
from skillmix_utils.core.folder_lock import output_lock
from skillmix_utils.doctor import main as doctor
from skillmix_utils.llm.models import cache_dir
from skillmix_utils.present.hub import check_pieces, push
from skillmix_utils.present.human import write_agreement
from skillmix_utils.present.human.server import serve
from skillmix_utils.present.results import results_text
from skillmix_utils.runner import run_study
from skillmix_utils.stages.datagen import run_datagen
from skillmix_utils.stages.evaluate import resolve_student, run_evaluation, selected_students
from skillmix_utils.stages.grade import grade_file, graders_for
from skillmix_utils.stages.preflight import (
    check_folder,
    check_records_file,
    check_study,
    check_training_data,
)
from skillmix_utils.stages.reference_import import import_reference
from skillmix_utils.stages.tables import check_evaluated, write_metric_tables
from skillmix_utils.stages.train import run_training
from skillmix_utils.stages.train.plan import dry_run_report


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
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise SkillmixError(f"the value {value!r} is not valid YAML "
                                f"({getattr(exc, 'problem', None) or exc.__class__.__name__})",
                                field=f"--set {key.strip()}") from None
    return out


def _config(args, sections=(), keys: bool = True):
    """The validated config, after the checks that need no output (preflight.py): paths,
    catalog pools, API keys (not on a dry run) and adapters of `sections`."""

    cfg = load_study_config(args.config, overrides=_parse_sets(args.set))
    check_study(cfg, args.config, sections, keys=keys)
    return cfg


def _locked(cfg, args):
    """The output folder's lock (folder_lock.py) for a run that writes; nothing on a dry run."""
    import contextlib


    return contextlib.nullcontext() if getattr(args, "dry_run", False) else output_lock(cfg.out)


def _print_paths(paths) -> None:
    for name, path in (paths or {}).items():
        print(f"{name}: {path}")


def _print_results(out) -> None:
    """The results table and the report's path, the last thing a run prints (results.py)."""
    text = results_text(out)
    if text:
        print("\n" + text)


def cmd_catalog(args) -> int:

    catalog = load_catalog(skills=args.skills, topics=args.topics)
    print(summary_table(catalog))
    return 0


def cmd_generate_data(args) -> int:
    cfg = _config(args, ["data"], keys=not args.dry_run)  # before importing the heavy stage

    with _locked(cfg, args):
        _print_paths(run_datagen(cfg, dry_run=args.dry_run))
    return 0


def _positive(args, *names) -> None:
    """Numeric options that must be more than 0, checked before anything loads."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not value > 0:      # also NaN; None: the option's default
            raise SkillmixError(f"must be more than 0, got {value:g}",
                                field="--" + name.replace("_", "-"))


def cmd_train(args) -> int:
    _positive(args, "device_gib", "device_tflops")
    cfg = _config(args, ["train"])
    if args.dry_run:

        text, fits = dry_run_report(cfg, device_gib=args.device_gib, tflops=args.device_tflops)
        print(text)
        return 0 if fits else 1
    if cfg.train.enabled:
        check_training_data(cfg, args.config)   # before the model is converted or loaded
    with _locked(cfg, args):
        _print_paths(run_training(cfg, resume=not args.restart))
    return 0


def cmd_evaluate(args) -> int:
    cfg = _config(args, ["evaluation"], keys=not args.dry_run)

    if not args.dry_run:    # "@train" students need the training output before anything is written
        for st in selected_students(cfg, args.student):
            try:
                resolve_student(cfg, st)
            except SkillmixError as exc:
                raise SkillmixError(exc.reason, file=args.config,
                                    field=f"evaluation.students[{st.name}].adapter") from None

    with _locked(cfg, args):
        _print_paths(run_evaluation(cfg, students=args.student, dry_run=args.dry_run))
    return 0


def cmd_grade(args) -> int:

    stage = check_records_file(args.records)
    if args.dry_run:     # no key check: a plan asks nothing of the provider
        grade_file(_config(args, [f"graders:{stage}"], keys=False), Path(args.records),
                   grader_names=args.grader, dry_run=True)
        return 0
    cfg = _config(args, [f"graders:{stage}"])
    graders_for(cfg, "datagen" if stage == "data" else "eval", args.grader)   # --grader names
    with _locked(cfg, args):
        _print_paths(grade_file(cfg, Path(args.records), grader_names=args.grader))
    return 0


def cmd_metrics(args) -> int:
    cfg = _config(args)
    check_evaluated(cfg)            # never exit 0 with empty tables

    with _locked(cfg, args):
        _print_paths(write_metric_tables(cfg))
    _print_results(cfg.out)
    return 0


def cmd_doctor(args) -> int:

    if args.device == "cpu":    # the test hook: torch must not see a GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    return doctor(args.model, steps=args.steps, gpu=args.gpu, out=args.out, device=args.device)


def cmd_run(args) -> int:
    rc = run_study(args.config, stages=args.stages, dry_run=args.dry_run,
                   overrides=_parse_sets(args.set), force=args.force, executor=args.executor)
    if rc == 0 and not args.dry_run and (not args.stages or {"04", "05"} & {
            str(s).zfill(2)[:2] for s in args.stages}):
        _print_results(load_study_config(args.config, overrides=_parse_sets(args.set)).out)
    return rc


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def cmd_cache(args) -> int:
    """`cache info`: where the cache is and what it holds; `cache clear WHAT`: delete a part."""
    import shutil


    root = cache_dir()
    check_folder(root, None, "SKILLMIX_CACHE")
    parts = {"llm": root / "llm", "models": root / "models"}
    if args.action == "info":
        print(f"cache: {root}  (set SKILLMIX_CACHE to move it)")
        db = parts["llm"] / "responses.sqlite"
        entries = "no responses yet"
        if db.exists():
            import sqlite3

            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                n = con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                jobs = con.execute("SELECT COUNT(*) FROM batch_jobs").fetchone()[0]
            entries = f"{n} cached responses, {jobs} batch jobs"
        print(f"  llm     {_size(parts['llm']) / 1e6:9.1f} MB  {entries} (paid replies: clearing "
              "them means paying again)")
        models = sorted(p.name for p in parts["models"].iterdir() if p.is_dir()) if parts["models"].exists() else []
        print(f"  models  {_size(parts['models']) / 1e6:9.1f} MB  {', '.join(models) or 'none'} "
              "(converted once from GGUF; rebuilt on next use)")
        return 0
    chosen = list(parts) if args.what == "all" else [args.what]
    for name in chosen:
        size = _size(parts[name])
        shutil.rmtree(parts[name], ignore_errors=True)
        print(f"removed {parts[name]} ({size / 1e6:.1f} MB)")
    return 0


def cmd_human(args) -> int:
    if not 1 <= args.port <= 65535:
        raise SkillmixError(f"a port is 1-65535, got {args.port}", field="--port")
    cfg = _config(args)

    serve(cfg, raters=args.rater, port=args.port)
    return 0


def cmd_human_agreement(args) -> int:
    cfg = _config(args)

    _print_paths(write_agreement(cfg))
    return 0


def cmd_import_reference(args) -> int:

    _print_paths(import_reference(args.folder, args.out_dir, name=args.name, setting=args.setting,
                                  scoring=args.scoring))
    return 0


def cmd_push(args) -> int:
    cfg = _config(args, keys=False)       # no model is called; the hub token is checked by push
    if not args.dry_run:
        check_pieces(cfg, args.config)    # a missing train section or run: before the lock
    with _locked(cfg, args):              # the cards are rewritten in the run folder after a push
        push(cfg, namespace=args.namespace, private=args.private, endpoint=args.endpoint,
             dry_run=args.dry_run, config_file=args.config)
    return 0


def build_parser() -> argparse.ArgumentParser:

    p = argparse.ArgumentParser(prog="skillmix", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action="version", version=f"skillmix {__version__}")
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
    t.add_argument("--device-gib", type=float, default=None,
                   help="memory of one GPU for --dry-run (default: the config's train.device_gib, "
                        "else 80)")
    t.add_argument("--device-tflops", type=float, default=312.0,
                   help="dense bf16 TFLOP/s of one GPU for --dry-run (default 312, A100)")
    e = with_config("evaluate", cmd_evaluate, "evaluate students with SKILL-MIX")
    e.add_argument("--student", action="append", help="only these students (by name)")
    e.add_argument("--dry-run", action="store_true", help="print the planned calls and cost only")
    g = with_config("grade", cmd_grade, "grade an existing records file")
    g.add_argument("--records", required=True, help="records JSONL to grade")
    g.add_argument("--grader", action="append", help="only these graders (by name or spec)")
    g.add_argument("--dry-run", action="store_true",
                   help="print the gradings still owed and their estimated cost only")
    with_config("metrics", cmd_metrics, "recompute metric tables from records")
    d = sub.add_parser("doctor", help="versions, and checks of training and serving on this machine")
    d.add_argument("--model", default="smollm2-135m-instruct", help="model to check with")
    d.add_argument("--steps", type=int, default=3, help="optimiser steps per training check")
    d.add_argument("--gpu", action="store_true",
                   help="the GPU acceptance run (about 10 minutes): CUDA, NCCL, bitsandbytes, "
                   "the trainer in every mode against the CPU, flash-attn, vLLM, throughput")
    d.add_argument("--out", help="with --gpu: where to write the table as JSON "
                   "(default outputs/doctor/doctor_gpu.json)")
    d.add_argument("--device", choices=["cpu"],
                   help="with --gpu: run what can run on the CPU, at small sizes (a test hook)")
    d.set_defaults(func=cmd_doctor)
    r = with_config("run", cmd_run, "run the numbered notebooks with papermill")
    r.add_argument("--stages", nargs="+", help="only these notebooks, e.g. 02 03")
    r.add_argument("--dry-run", action="store_true", help="say what would run and its API cost")
    r.add_argument("--force", action="store_true", help="re-run stages whose outputs are complete")
    r.add_argument("--executor", choices=["local", "slurm"],
                   help="here, or each grid run as a SLURM job (default: the config's "
                        "cluster.executor, else local; README 'On a cluster')")
    k = sub.add_parser("cache", help="show or clear the response cache and converted models")
    k.add_argument("action", choices=["info", "clear"])
    k.add_argument("what", nargs="?", choices=["llm", "models", "all"], default="models",
                   help="clear: which part (default models; llm holds paid replies)")
    k.set_defaults(func=cmd_cache)
    h = with_config("human", cmd_human, "serve the blind human grading page on 127.0.0.1")
    h.add_argument("--rater", action="append",
                   help="serve this rater (repeatable); a new name gets its token, printed with "
                        "its link (default: every rater named before)")
    h.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    with_config("human-agreement", cmd_human_agreement,
                "agreement of human grades with the LLM graders and between raters")
    i = sub.add_parser("import-reference", help="convert a Skill-Mix reference results folder")
    i.add_argument("folder", help="the reference repository, or its results folder "
                   "(test/: k*_s*_v*_r*/<student>/...)")
    i.add_argument("out_dir", help="where to write eval/records.jsonl and eval/tables/")
    i.add_argument("--name", help="study name for the records (default: the folder's name)")
    i.add_argument("--setting", default="all", choices=["train", "held_out", "all", "custom"],
                   help="the setting the texts were drawn for (default all: the reference's pools)")
    i.add_argument("--scoring", default="reference", choices=["reference", "improved"],
                   help="the scoring preset (default reference: the numbers the reference's "
                   "own rules give; docs/protocol.md §10)")
    i.set_defaults(func=cmd_import_reference)
    u = with_config("push", cmd_push, "upload the trained weights, data mixes and report to the "
                    "Hugging Face hub")
    u.add_argument("--dry-run", action="store_true",
                   help="list every repo and file that would go, and the total; no network")
    u.add_argument("--namespace", help="user or organisation (default: the token's user)")
    u.add_argument("--private", action="store_true", help="create the repos private")
    u.add_argument("--endpoint", help="hub URL (default: HF_ENDPOINT, else huggingface.co)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SkillmixError as err:
        print(f"skillmix: error: {err}", file=sys.stderr)
        return err.exit_status
    except OSError as exc:     # a full disk where no writer named its file: still one line
        err = disk_full(exc)
        if err is None:
            raise
        print(f"skillmix: error: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("skillmix: interrupted; what finished is saved, re-run to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
