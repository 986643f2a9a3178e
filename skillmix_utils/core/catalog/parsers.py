"""Reading catalog files: the YAML catalog, the Skill-Mix reference CSV, a simple CSV, plain-text
and YAML topics; and the seeded topic draw. Every problem is one SkillmixError naming file and field."""
from __future__ import annotations

import csv
import hashlib
import io

import yaml

from skillmix_utils.core.catalog.model import (
    DEFAULT_TRAIN_CATEGORIES,
    SIMPLE_CSV_COLUMNS,
    SKILLMIX_CSV_COLUMNS,
    SKILLMIX_DROPPED_STATUSES,
    SPLITS,
    TOPIC_SPLIT_METHOD,
    Skill,
    Topic,
)
from skillmix_utils.core.errors import SkillmixError

_SKILL_KEYS = {"name", "category", "definition", "example", "split"}
_HEADER_KEYS = {"version", "name", "description", "license", "licence", "provenance"}

# The seeded topic draw

def split_topics(names, seed: int = 0) -> dict[str, str]:
    """Split topics 50 / 50 by a seeded draw that any language can recompute.

    Method `sha256_rank`: sort the topics by the hex SHA-256 digest of "<seed>:<topic>" (UTF-8);
    the first half (rounded down) are train, the rest held_out. A topic's rank depends only on
    its own name, so the draw does not depend on the order of the file.

    >>> split_topics(["Sewing", "Dueling", "Knots", "Beekeeping"], seed=0)
    {'Sewing': 'train', 'Dueling': 'train', 'Knots': 'held_out', 'Beekeeping': 'held_out'}
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SkillmixError(f"the topic seed must be an integer, got {seed!r}", field="seed")
    names = list(names)
    ranked = sorted(names, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode("utf-8")).hexdigest())
    train = set(ranked[: len(names) // 2])
    return {t: ("train" if t in train else "held_out") for t in names}


# ---------------------------------------------------------------------------------------------
# Small validators shared by the parsers

def _text(value, file: str, field: str, what: str, as_written: bool = False) -> str:
    """A non-empty text field, stripped (`as_written`: kept exactly as the file has it)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise SkillmixError(f"{what} must be text, got {value!r} (quote it in YAML)",
                            file=file, field=field)
    if not value.strip():
        raise SkillmixError(f"empty {what}", file=file, field=field)
    return value if as_written else value.strip()


def _split_value(value, file: str, field: str) -> str:
    v = value.strip().lower().replace("-", "_") if isinstance(value, str) else value
    if v not in SPLITS:
        raise SkillmixError(f"unknown split {value!r}: must be train or held_out",
                            file=file, field=field)
    return v


def _check_unique(items, file: str, what: str) -> None:
    """items: (field, name) pairs; names compare case-insensitively."""
    seen: dict[str, str] = {}
    for field, name in items:
        key = " ".join(name.casefold().split())
        if key in seen:
            raise SkillmixError(f"duplicate {what} name {name!r} (same as {seen[key]})",
                                file=file, field=field)
        seen[key] = field


def _yaml(text: str, file: str):

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise SkillmixError(f"not valid YAML{at} ({getattr(exc, 'problem', None) or exc})",
                            file=file) from None


def _mapping(data, file: str, allowed: set[str], list_key: str) -> dict:
    if not isinstance(data, dict):
        raise SkillmixError(f"must be a YAML mapping with `split` and `{list_key}`", file=file)
    other = "topics" if list_key == "skills" else "skills"
    if other in data and list_key not in data:
        raise SkillmixError(f"this is a {other} file (it has `{other}`, no `{list_key}`); "
                            f"give it as the {other} file", file=file, field=other)
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise SkillmixError(f"unknown key(s) {', '.join(unknown)}; allowed: "
                            f"{', '.join(sorted(allowed))}", file=file, field=unknown[0])
    return data


# ---------------------------------------------------------------------------------------------
# Skills

def _build_skills(rows, file: str, rule: str, train_categories, rule_field: str | None,
                  whitespace: str = "stripped"):
    """rows: (field prefix, {name, category, definition, example, split?}) -> tuple[Skill].
    `whitespace`: definitions and examples "stripped" or "as_written" (names are stripped)."""
    raw = _whitespace(whitespace, file)
    train_keys = {c.casefold() for c in train_categories or ()}
    skills = []
    for prefix, row in rows:
        sep = "." if not prefix.startswith("line ") else ", "
        f = lambda col: f"{prefix}{sep}{col}"  # noqa: E731
        name = _text(row.get("name"), file, f(row.get("_name_col", "name")), "name")
        category = _text(row.get("category"), file, f("category"), "category")
        definition = _text(row.get("definition"), file, f("definition"), "definition", raw)
        example = _text(row.get("example"), file, f("example"), "example", raw)
        given = row.get("split")
        if rule == "explicit":
            if given is None or given == "":
                raise SkillmixError("missing split (the catalog's split rule is explicit)",
                                    file=file, field=f("split"))
            split = _split_value(given, file, f("split"))
        else:
            split = "train" if category.casefold() in train_keys else "held_out"
            if given is not None and _split_value(given, file, f("split")) != split:
                raise SkillmixError(f"split {given!r} disagrees with the by_category rule, "
                                    f"which gives {split!r}", file=file, field=f("split"))
        skills.append((f("name"), Skill(name, category, definition, example, split)))
    if not skills:
        raise SkillmixError("no skills", file=file)
    _check_unique([(fld, s.name) for fld, s in skills], file, "skill")
    if rule == "by_category" and rule_field:    # a named category that matches nothing is a typo
        present = {s.category.casefold() for _, s in skills}
        for c in train_categories:
            if c.casefold() not in present:
                raise SkillmixError(f"train category {c!r} is the category of no skill",
                                    file=file, field=rule_field)
    return tuple(s for _, s in skills)


def _whitespace(whitespace: str, file: str) -> bool:
    if whitespace not in ("stripped", "as_written"):
        raise SkillmixError(f"unknown whitespace rule {whitespace!r}: use stripped or as_written",
                            file=file, field="whitespace")
    return whitespace == "as_written"


def _describe_rule(rule: str, train_categories) -> str:
    if rule == "explicit":
        return "explicit (each skill names its split)"
    return f"by_category (train: {', '.join(train_categories)}; held_out: all other categories)"


def parse_skills_yaml(text: str, file: str = "skills.yaml", whitespace: str = "stripped"
                      ) -> tuple[tuple[Skill, ...], str]:
    """Skills from a YAML catalog; returns (skills, split rule in words). `whitespace`: see
    `parse_skills_csv`.

    >>> skills, rule = parse_skills_yaml('''
    ... split: {rule: by_category, train_categories: [literary]}
    ... skills:
    ...   - {name: simile, category: literary, definition: A comparison with like., example: '"Cold as ice."'}
    ...   - {name: modus ponens, category: logical, definition: If P then Q; P; so Q., example: '"It rains."'}
    ... ''')
    >>> [(s.name, s.split) for s in skills]
    [('simile', 'train'), ('modus ponens', 'held_out')]
    >>> parse_skills_yaml("split: {rule: by_length}\\nskills: []", "my.yaml")
    Traceback (most recent call last):
    ...
    skillmix_utils.core.errors.SkillmixError: my.yaml: split.rule: unknown split rule 'by_length': must be by_category or explicit
    """
    data = _mapping(_yaml(text, file), file, _HEADER_KEYS | {"split", "skills"}, "skills")
    split = data.get("split")
    if split is None:
        raise SkillmixError("missing split rule: add `split: {rule: by_category, "
                            "train_categories: [literary, rhetorical]}` or `split: {rule: explicit}`",
                            file=file, field="split")
    if not isinstance(split, dict):
        raise SkillmixError("must be a mapping with `rule`", file=file, field="split")
    unknown = sorted(str(k) for k in split if k not in {"rule", "train_categories", "description"})
    if unknown:
        raise SkillmixError(f"unknown key {unknown[0]!r}", file=file, field=f"split.{unknown[0]}")
    rule = split.get("rule")
    if rule not in ("by_category", "explicit"):
        raise SkillmixError(f"unknown split rule {rule!r}: must be by_category or explicit",
                            file=file, field="split.rule")
    cats = split.get("train_categories")
    if rule == "by_category":
        if not isinstance(cats, list) or not cats:
            raise SkillmixError("the by_category rule needs a non-empty list of categories",
                                file=file, field="split.train_categories")
        cats = tuple(_text(c, file, f"split.train_categories[{i}]", "category")
                     for i, c in enumerate(cats))
    elif cats is not None:
        raise SkillmixError("train_categories only goes with rule by_category",
                            file=file, field="split.train_categories")
    items = data.get("skills")
    if not isinstance(items, list) or not items:
        raise SkillmixError("must be a non-empty list of skills", file=file, field="skills")
    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SkillmixError("a skill must be a mapping with name, category, definition, "
                                "example", file=file, field=f"skills[{i}]")
        unknown = sorted(str(k) for k in item if k not in _SKILL_KEYS)
        if unknown:
            raise SkillmixError(f"unknown key; a skill has {', '.join(sorted(_SKILL_KEYS))}",
                                file=file, field=f"skills[{i}].{unknown[0]}")
        rows.append((f"skills[{i}]", item))
    return (_build_skills(rows, file, rule, cats, "split.train_categories", whitespace),
            _describe_rule(rule, cats))


def parse_skills_csv(text: str, file: str = "skills.csv", train_categories=None,
                     whitespace: str = "stripped") -> tuple[tuple[Skill, ...], str]:
    """Skills from the Skill-Mix reference CSV or a simple CSV; returns (skills, rule in words).
    Definitions and examples are stripped, or kept `whitespace="as_written"` as the reference
    code kept them (names are stripped either way).

    Without a split column, skills are split by category: `train_categories` (default literary,
    rhetorical) are train, the rest held_out. Categories given explicitly must each match a skill.

    The Skill-Mix form drops rows whose status is remove, in review or maybe, and strips names:

    >>> skills, rule = parse_skills_csv(
    ...     "category,skill,definition,example,comments,status,added by\\n"
    ...     "literary, metaphor ,Says one thing is another.,Time is a thief.,,,\\n"
    ...     "logical,modus ponens,If P then Q; P; so Q.,It rains.,,maybe,\\n"
    ...     "logical,modus tollens,If P then Q; not Q; so not P.,No rain.,,,\\n")
    >>> [(s.name, s.split) for s in skills]
    [('metaphor', 'train'), ('modus tollens', 'held_out')]

    The simple form is `name,category,definition,example` with an optional `split` column
    (then every row must give train or held_out):

    >>> parse_skills_csv("name,category,definition\\nx,literary,d\\n", "s.csv")
    Traceback (most recent call last):
    ...
    skillmix_utils.core.errors.SkillmixError: s.csv: header: wrong columns: missing example (expected name,category,definition,example[,split])
    """
    try:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise SkillmixError("empty file: no header line", file=file, field="header")
        cols = [h.strip().lower() for h in header]
        if "skill" in cols:
            name_col, required, optional = "skill", SKILLMIX_CSV_COLUMNS[:4], SKILLMIX_CSV_COLUMNS[4:]
            expected = ",".join(SKILLMIX_CSV_COLUMNS)
        elif "name" in cols:
            name_col, required, optional = "name", SIMPLE_CSV_COLUMNS, ("split",)
            expected = ",".join(SIMPLE_CSV_COLUMNS) + "[,split]"
        else:
            raise SkillmixError(
                f"wrong columns {','.join(cols)}: expected the Skill-Mix header "
                f"{','.join(SKILLMIX_CSV_COLUMNS)} or {','.join(SIMPLE_CSV_COLUMNS)}[,split]",
                file=file, field="header")
        missing = [c for c in required if c not in cols]
        extra = [c for c in cols if c not in required + optional]
        dup = sorted({c for c in cols if cols.count(c) > 1})
        for problem, names in (("missing", missing), ("unexpected", extra), ("repeated", dup)):
            if names:
                raise SkillmixError(f"wrong columns: {problem} {', '.join(names)} "
                                    f"(expected {expected})", file=file, field="header")
        explicit = "split" in cols
        rows = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(cols):
                raise SkillmixError(f"{len(row)} fields where the header has {len(cols)}",
                                    file=file, field=f"line {line}")
            rec = dict(zip(cols, row))
            if name_col == "skill":
                if rec.get("status", "").strip().lower() in SKILLMIX_DROPPED_STATUSES:
                    continue
                rec["name"], rec["_name_col"] = rec.pop("skill"), "skill"
            rows.append((f"line {line}", rec))
    except csv.Error as exc:
        raise SkillmixError(f"not a readable CSV ({exc})", file=file) from None
    if isinstance(train_categories, str):
        train_categories = (train_categories,)
    if explicit:
        if train_categories is not None:
            raise SkillmixError("train_categories does not apply: the file has a split column",
                                file=file, field="train_categories")
        return (_build_skills(rows, file, "explicit", None, "split", whitespace),
                _describe_rule("explicit", None))
    cats = DEFAULT_TRAIN_CATEGORIES if train_categories is None else tuple(train_categories)
    check = None if train_categories is None else "train_categories"
    return (_build_skills(rows, file, "by_category", cats, check, whitespace),
            _describe_rule("by_category", cats))


# ---------------------------------------------------------------------------------------------
# Topics

def _build_topics(rows, file: str, seed: int | None):
    """rows: (field, name, given split or None); seed None = explicit splits."""
    names = [(fld, _text(name, file, fld if fld.startswith("line") else f"{fld}.name", "topic"))
             for fld, name, _ in rows]
    if not names:
        raise SkillmixError("no topics", file=file)
    _check_unique(names, file, "topic")
    drawn = split_topics([n for _, n in names], seed) if seed is not None else {}
    topics = []
    for (fld, name), (_, _, given) in zip(names, rows):
        if seed is None:
            if given is None:
                raise SkillmixError("missing split (the topics' split rule is explicit)",
                                    file=file, field=f"{fld}.split")
            split = _split_value(given, file, f"{fld}.split")
        else:
            split = drawn[name]
            if given is not None and _split_value(given, file, f"{fld}.split") != split:
                raise SkillmixError(f"split {given!r} disagrees with the seeded draw "
                                    f"(seed {seed}), which gives {split!r}",
                                    file=file, field=f"{fld}.split")
        topics.append(Topic(name, split))
    return tuple(topics)


def _describe_draw(seed: int) -> str:
    return f"seeded_draw ({TOPIC_SPLIT_METHOD}, seed {seed}; train = first half)"


def parse_topics_text(text: str, file: str = "topics.txt",
                      seed: int = 0) -> tuple[tuple[Topic, ...], str, int]:
    """Topics from plain text, one a line (blank lines skipped), split by the seeded draw.

    Returns (topics, split rule in words, seed).

    >>> topics, rule, seed = parse_topics_text("Sewing\\n\\n  Dueling \\nKnots\\nBeekeeping\\n")
    >>> [(t.name, t.split) for t in topics]
    [('Sewing', 'train'), ('Dueling', 'train'), ('Knots', 'held_out'), ('Beekeeping', 'held_out')]
    >>> rule
    'seeded_draw (sha256_rank, seed 0; train = first half)'
    """
    rows = [(f"line {i}", line, None) for i, line in enumerate(text.splitlines(), 1)
            if line.strip()]
    return _build_topics(rows, file, seed), _describe_draw(seed), seed


def parse_topics_yaml(text: str, file: str = "topics.yaml") -> tuple[tuple[Topic, ...], str, int | None]:
    """Topics from a YAML file with `split` and `topics` (names or {name, split} mappings).

    >>> topics, rule, seed = parse_topics_yaml('''
    ... split: {rule: explicit}
    ... topics: [{name: Sewing, split: train}, {name: Knots, split: held-out}]
    ... ''')
    >>> [(t.name, t.split) for t in topics], seed
    ([('Sewing', 'train'), ('Knots', 'held_out')], None)
    """
    data = _mapping(_yaml(text, file), file, _HEADER_KEYS | {"split", "topics"}, "topics")
    split = data.get("split")
    if not isinstance(split, dict):
        raise SkillmixError("missing split rule: add `split: {rule: seeded_draw, method: "
                            f"{TOPIC_SPLIT_METHOD}, seed: 0}}` or `split: {{rule: explicit}}`",
                            file=file, field="split")
    unknown = sorted(str(k) for k in split if k not in {"rule", "method", "seed", "description"})
    if unknown:
        raise SkillmixError(f"unknown key {unknown[0]!r}", file=file, field=f"split.{unknown[0]}")
    rule = split.get("rule")
    if rule == "seeded_draw":
        if split.get("method") != TOPIC_SPLIT_METHOD:
            raise SkillmixError(f"unknown draw method {split.get('method')!r}: must be "
                                f"{TOPIC_SPLIT_METHOD}", file=file, field="split.method")
        seed = split.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SkillmixError(f"the seed must be an integer, got {seed!r}",
                                file=file, field="split.seed")
    elif rule == "explicit":
        seed = None
    else:
        raise SkillmixError(f"unknown split rule {rule!r}: must be seeded_draw or explicit",
                            file=file, field="split.rule")
    items = data.get("topics")
    if not isinstance(items, list) or not items:
        raise SkillmixError("must be a non-empty list of topics", file=file, field="topics")
    rows = []
    for i, item in enumerate(items):
        fld = f"topics[{i}]"
        if isinstance(item, dict):
            unknown = sorted(str(k) for k in item if k not in {"name", "split"})
            if unknown:
                raise SkillmixError("unknown key; a topic has name and split",
                                    file=file, field=f"{fld}.{unknown[0]}")
            rows.append((fld, item.get("name"), item.get("split")))
        else:
            rows.append((fld, item, None))
    desc = "explicit (each topic names its split)" if seed is None else _describe_draw(seed)
    return _build_topics(rows, file, seed), desc, seed
