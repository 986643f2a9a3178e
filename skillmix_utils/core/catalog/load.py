"""Loading a catalog: the built-in files or the user's, by file type; and its summary table."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from skillmix_utils.core.catalog.model import SPLITS, Catalog
from skillmix_utils.core.catalog.parsers import (
    parse_skills_csv,
    parse_skills_yaml,
    parse_topics_text,
    parse_topics_yaml,
)
from skillmix_utils.core.errors import SkillmixError


def _builtin(name: str) -> tuple[str, str]:
    res = resources.files("skillmix_utils").joinpath("data", "catalog", name)
    return res.read_text(encoding="utf-8"), str(res)


def _read(path) -> tuple[str, str]:
    p, file = Path(path), str(path)
    if not p.exists():
        raise SkillmixError("no such file", file=file)
    if p.is_dir():
        raise SkillmixError("is a folder, not a file", file=file)
    try:
        return p.read_text(encoding="utf-8-sig"), file
    except UnicodeDecodeError as exc:
        raise SkillmixError(f"not UTF-8 text (byte {exc.start})", file=file) from None
    except OSError as exc:
        raise SkillmixError(f"cannot read ({exc.strerror or exc})", file=file) from None


def _source(path, builtin: str) -> tuple[str, str, str]:
    """(text, file name for messages, lower-case suffix) of a user file or a built-in one."""
    if path is None:
        return (*_builtin(builtin), ".yaml")
    return (*_read(path), Path(str(path)).suffix.lower())


def load_catalog(skills=None, topics=None, *, train_categories=None, topic_seed: int = 0,
                 whitespace: str = "stripped") -> Catalog:
    """Load and validate a catalog; None means the built-in file (data/catalog/).

    `skills`: .yaml/.yml or .csv (Skill-Mix or simple form). `topics`: .yaml/.yml or plain text.
    `train_categories` (CSV skills only; default literary, rhetorical) and `topic_seed` (plain
    text topics only) stand in for the split rule those formats cannot carry.
    `whitespace="as_written"` keeps definitions and examples as the file writes them
    (`catalog.whitespace`). Example:
    `load_catalog(skills="private/skills.csv", topics="private/topics.txt")`.
    """
    text, s_file, kind = _source(skills, "skills.yaml")
    if kind in (".yaml", ".yml"):
        if train_categories is not None:
            raise SkillmixError("train_categories applies to CSV skills files; a YAML catalog "
                                "states its own split rule", file=s_file, field="train_categories")
        skill_list, skill_rule = parse_skills_yaml(text, s_file, whitespace)
    elif kind == ".csv":
        skill_list, skill_rule = parse_skills_csv(text, s_file, train_categories, whitespace)
    else:
        raise SkillmixError(f"unknown skills file type {kind or '(none)'!r}: use .yaml, .yml "
                            "or .csv", file=s_file)

    text, t_file, kind = _source(topics, "topics.yaml")
    if kind in (".yaml", ".yml"):
        topic_list, topic_rule, seed = parse_topics_yaml(text, t_file)
    elif kind == ".csv":
        raise SkillmixError("topics are a .yaml file or plain text, one topic a line",
                            file=t_file)
    else:
        topic_list, topic_rule, seed = parse_topics_text(text, t_file, topic_seed)

    source = "built-in" if skills is None and topics is None else (
        f"skills: {'built-in' if skills is None else s_file}; "
        f"topics: {'built-in' if topics is None else t_file}")
    return Catalog(skill_list, topic_list, source=source, skill_split=skill_rule,
                   topic_split=topic_rule, topic_seed=seed)


def summary_table(catalog: Catalog) -> str:
    """Skill counts per category and split, and topic counts per split, as a text table.

    Example: `print(summary_table(load_catalog()))` (what `skillmix catalog` prints).
    """
    rows = [(c, sum(1 for s in catalog.skills if s.category == c and s.split == "train"),
             sum(1 for s in catalog.skills if s.category == c and s.split == "held_out"))
            for c in catalog.categories]
    n_train, n_held = (len(catalog.skills_in(p)) for p in SPLITS)
    t_train, t_held = (len(catalog.topics_in(p)) for p in SPLITS)
    width = max([len("skills by category"), *(len(c) for c, _, _ in rows)]) + 2
    line = lambda a, b, c, d: f"{a:<{width}}{b:>7}{c:>10}{d:>6}"  # noqa: E731
    out = [f"catalog: {catalog.source}",
           *([f"partition: {catalog.partition}"] if catalog.partition else []),
           f"skill split: {catalog.skill_split}",
           f"topic split: {catalog.topic_split}",
           "",
           line("skills by category", "train", "held_out", "all"),
           *(line(c, a, b, a + b) for c, a, b in rows),
           line("total", n_train, n_held, n_train + n_held),
           "",
           line("topics", t_train, t_held, t_train + t_held)]
    return "\n".join(out)
