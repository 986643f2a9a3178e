"""Checks that run before a stage (or `skillmix run`) writes anything, so that bad input ends in
one line naming the file and field, and never in a half-written output folder:

- paths: the output folder and the cache folder are folders (or can be made), not files;
- the catalog loads, and every pool the stage draws from has at least k skills and a topic;
- every model the stage will call has a valid spec and, for openai: / anthropic:, its API key
  in the environment (keys are never read from a config);
- every student adapter is a LoRA adapter or checkpoint folder, or `@train` with a train section;
- the config has the section each command needs, the response cache can be written, and the
  output folder holds no config.yaml the user wrote (a run would replace it);
- `skillmix grade --records FILE`: a file of readable records (`check_records_file`);
  `skillmix train`: a training mix with rows, before any model is converted or loaded.

`check_study(cfg, config_file, sections)` raises `SkillmixError`; `sections` names what will run
("data", "train", "evaluation", or "graders:<data|evaluation>" for `skillmix grade`).
"""
from __future__ import annotations

import os
from pathlib import Path

from skillmix_utils.core.config import StudyConfig, users_config_in
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.records import RecordStore
from skillmix_utils.llm import parse_spec
from skillmix_utils.llm.cache import check_writable
from skillmix_utils.llm.models import cache_dir
from skillmix_utils.stages.train.formatting import find_mix
from skillmix_utils.stages.train.preflight import check_mix

KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def check_folder(path: Path, file, field: str) -> None:
    """`path` is a folder or can be created: neither it nor a parent is a file."""
    path = Path(path).expanduser()
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == path else f"cannot be made: {p} is a file"
                raise SkillmixError(f"{path} {what}, not a folder", file=file, field=field)
            if not os.access(p, os.W_OK):
                raise SkillmixError(f"{p} is not writable", file=file, field=field)
            return


def models_called(cfg: StudyConfig, sections) -> list[tuple[str, object]]:
    """(config field, ModelSpec) of every API or local model the sections call."""
    out = []
    if "data" in sections and cfg.data:
        out.append(("data.teacher.spec", cfg.data.teacher))
    if ("data" in sections or "graders:data" in sections) and cfg.data:
        out += [(f"data.graders.{i}.spec", g) for i, g in enumerate(cfg.data.graders)]
    if "evaluation" in sections and cfg.evaluation:
        out += [(f"evaluation.students.{i}.model.spec", s.model)
                for i, s in enumerate(cfg.evaluation.students)]
    if ("evaluation" in sections or "graders:evaluation" in sections) and cfg.evaluation:
        out += [(f"evaluation.graders.{i}.spec", g) for i, g in enumerate(cfg.evaluation.graders)]
    return out


def check_keys(cfg: StudyConfig, sections, file) -> None:
    """Every openai:/anthropic: model the sections call has its key in the environment."""

    for field, spec in models_called(cfg, sections):
        try:
            kind, _ = parse_spec(spec.spec)
        except SkillmixError as exc:
            raise SkillmixError(exc.reason, file=file, field=field) from None
        env = KEY_ENV.get(kind)
        if env and not os.environ.get(env):
            raise SkillmixError(f"{spec.spec} needs the environment variable {env} (keys are "
                                "read from the environment only); nothing was written",
                                file=file, field=field)


def check_pools(cfg: StudyConfig, sections, file, catalog=None) -> None:
    """Every (k, pool) drawn from has at least k skills and one topic."""
    catalog = catalog or cfg.catalog.load()
    draws = []
    if "data" in sections and cfg.data:
        draws += [(f"data.counts.{k}", k, cfg.data.pools[k].skills, cfg.data.pools[k].topics)
                  for k in cfg.data.counts]
    if "evaluation" in sections and cfg.evaluation:
        draws += [("evaluation.ks", k, s, s) for s in cfg.evaluation.settings
                  for k in cfg.evaluation.ks]
    src = f" ({catalog.source})" if getattr(catalog, "source", None) else ""
    for field, k, skills, topics in draws:
        n_skills, n_topics = len(catalog.skills_in(skills)), len(catalog.topics_in(topics))
        if k > n_skills:
            raise SkillmixError(f"k={k} needs {k} distinct skills, but the {skills} skill pool of "
                                f"the catalog{src} has {n_skills}", file=file, field=field)
        if n_topics == 0:
            raise SkillmixError(f"the {topics} topic pool of the catalog{src} is empty (a topics "
                                "list is split in two halves: give at least two topics)",
                                file=file, field=field)


def check_adapters(cfg: StudyConfig, file) -> None:
    """Student adapters exist (a folder with adapter_config.json or config.json) or are @train."""
    for i, st in enumerate(cfg.evaluation.students if cfg.evaluation else []):
        field = f"evaluation.students.{i}.adapter"
        if not st.adapter:
            continue
        if st.adapter == "@train" or st.adapter.startswith("@train:"):
            if cfg.train is None:
                raise SkillmixError(f"{st.adapter!r} needs a train section", file=file, field=field)
            continue
        path = Path(st.adapter).expanduser()
        if not path.is_dir():
            raise SkillmixError(f"no adapter folder {path}", file=file, field=field)
        if not ((path / "adapter_config.json").exists() or (path / "config.json").exists()):
            raise SkillmixError(f"{path} is neither a LoRA adapter (adapter_config.json) nor a "
                                "checkpoint (config.json)", file=file, field=field)


SECTION_OF = {"data": "data", "graders:data": "data", "train": "train",
              "evaluation": "evaluation", "graders:evaluation": "evaluation"}


def check_sections(cfg: StudyConfig, sections, file) -> None:
    """The config has every section the command needs (data, train, evaluation)."""
    for s in sorted(sections):
        name = SECTION_OF.get(s)
        if name and getattr(cfg, name) is None:
            raise SkillmixError(f"the config has no {name} section, which this command needs "
                                "(see configs/demo.yaml for one)", file=file, field=name)


def check_study(cfg: StudyConfig, config_file, sections, keys: bool = True) -> None:
    """All the checks above for the sections that will run (keys only when `keys`, so that a
    dry run shows its plan without them); raises SkillmixError."""

    sections = set(sections)
    check_sections(cfg, sections, config_file)
    check_folder(cfg.out, config_file, "output_dir")
    theirs = users_config_in(cfg.out)
    if theirs is not None:
        raise SkillmixError(f"{theirs} was not written by skillmix and a run would replace it; "
                            "give the study an output folder of its own", file=config_file,
                            field="output_dir")
    check_folder(cache_dir(), None, "SKILLMIX_CACHE")
    check_writable(cache_dir() / "llm")
    if keys:
        check_keys(cfg, sections, config_file)
    if sections & {"data", "evaluation"}:
        check_pools(cfg, sections, config_file)
    if "evaluation" in sections:
        check_adapters(cfg, config_file)


def check_records_file(path, field: str = "--records") -> str:
    """A records JSONL with at least one readable record (damaged lines are skipped with one
    warning); returns "data" or "evaluation": whose graders it needs. Writes nothing."""
    path = Path(path)
    if not path.exists():
        raise SkillmixError("no such records file", file=str(path), field=field)
    if path.is_dir():
        raise SkillmixError("is a folder; give a records file such as "
                            "outputs/<study>/eval/records.jsonl", file=str(path), field=field)
    store = RecordStore(path)
    records = list(store.load(warn=False).values())
    if not records:
        raise SkillmixError("holds no readable record (a records JSONL written by skillmix, of "
                            "this schema version)", file=str(path), field=field)
    store.load()      # the one warning about lines that were skipped, if any
    return "data" if records[0].stage == "datagen" else "evaluation"


def check_training_data(cfg: StudyConfig, file) -> Path:
    """The training mix exists and has rows: said before any model is converted or loaded."""
    t = cfg.train
    path = find_mix(cfg.out, t.data_mix, t.subsample)
    if path.is_file():
        check_mix(cfg)      # an empty mix, said with the data card's counts and what to change
    return path
