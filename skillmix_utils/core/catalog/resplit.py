"""Other splits of a catalog: a config partition (`catalog.partition`) that re-splits skills and
topics, and a skill subset (`evaluation.skill_subset`, e.g. the paper's "uncommon skills").

`rule: file` keeps the catalog file's own split; `by_category` makes `train_categories` the
training skills; `random` takes the skills (or topics) with the lowest SHA-256 rank of
"<seed>:<name>", `round(train_fraction * n)` of them, as training (same on every machine,
independent of file order). A subset keeps the skills its `names` list, or those whose corpus
frequency (a CSV `skill,frequency`) is below `max_frequency`.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode("utf-8")).hexdigest()


def random_split(names, fraction: float, seed: int) -> dict[str, str]:
    """`round(fraction * n)` names (at least 1, at most n - 1) as train, by SHA-256 rank.

    >>> random_split(["a", "b", "c", "d"], 0.5, seed=1)
    {'a': 'train', 'b': 'held_out', 'c': 'held_out', 'd': 'train'}
    """
    names = list(names)
    n_train = min(len(names) - 1, max(1, round(fraction * len(names))))
    train = set(sorted(names, key=lambda x: _rank(seed, x))[:n_train])
    return {x: "train" if x in train else "held_out" for x in names}


def apply_partition(catalog, spec):
    """The catalog re-split by a PartitionSpec; `catalog.partition` names it.

    >>> from skillmix_utils.core.catalog import load_catalog
    >>> from skillmix_utils.core.config import PartitionSpec
    >>> cat = apply_partition(load_catalog(), PartitionSpec.model_validate(
    ...     {"name": "logic", "skills": {"rule": "by_category", "train_categories": ["logical"]}}))
    >>> len(cat.skills_in("train")), cat.partition
    (9, 'logic')
    """
    skills, topics = catalog.skills, catalog.topics
    skill_rule, topic_rule = catalog.skill_split, catalog.topic_split
    s = spec.skills
    if s.rule == "by_category":
        known = {c.casefold(): c for c in catalog.categories}
        unknown = [c for c in s.train_categories if c.casefold() not in known]
        if unknown:
            raise SkillmixError(f"unknown skill categor{'y' if len(unknown) == 1 else 'ies'} "
                                f"{', '.join(map(repr, unknown))}; the catalog has "
                                f"{', '.join(catalog.categories)}",
                                field="catalog.partition.skills.train_categories")
        train = {c.casefold() for c in s.train_categories}
        skills = tuple(dataclasses.replace(x, split="train" if x.category.casefold() in train
                                           else "held_out") for x in skills)
        skill_rule = (f"by_category (train: {', '.join(s.train_categories)}; held_out: all "
                      "other categories)")
    elif s.rule == "random":
        split = random_split([x.name for x in skills], s.train_fraction, s.seed)
        skills = tuple(dataclasses.replace(x, split=split[x.name]) for x in skills)
        skill_rule = f"random (sha256_rank, seed {s.seed}, train fraction {s.train_fraction})"
    t = spec.topics
    if t.rule == "random":
        split = random_split([x.name for x in topics], t.train_fraction, t.seed)
        topics = tuple(dataclasses.replace(x, split=split[x.name]) for x in topics)
        topic_rule = f"random (sha256_rank, seed {t.seed}, train fraction {t.train_fraction})"
    for what, items in (("skills", skills), ("topics", topics)):
        for pool in ("train", "held_out"):
            if not any(x.split == pool for x in items):
                raise SkillmixError(f"this partition leaves no {pool} {what}",
                                    field=f"catalog.partition.{what}")
    return dataclasses.replace(catalog, skills=skills, topics=topics, skill_split=skill_rule,
                               topic_split=topic_rule, partition=spec.name or "custom")


def read_frequencies(path) -> dict[str, float]:
    """skill name (lower case) -> corpus frequency in [0, 1], from a CSV `skill,frequency`
    (lines starting with `#` are comments).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "f.csv")
    >>> _ = open(p, "w").write("skill,frequency\\nMetaphor,0.31\\nred herring,0.004\\n")
    >>> read_frequencies(p)
    {'metaphor': 0.31, 'red herring': 0.004}
    """
    file = str(path)
    if not Path(path).exists():
        raise SkillmixError("no such frequency file", file=file)
    text = Path(path).read_text(encoding="utf-8-sig")
    text = "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("#"))
    reader = csv.DictReader(io.StringIO(text))
    if [c.strip().lower() for c in reader.fieldnames or []][:2] != ["skill", "frequency"]:
        raise SkillmixError("the header must be `skill,frequency`", file=file, field="header")
    out = {}
    for line, row in enumerate(reader, start=2):
        name = (row.get("skill") or "").strip()
        try:
            f = float(row.get("frequency"))
        except (TypeError, ValueError):
            raise SkillmixError(f"frequency {row.get('frequency')!r} is not a number",
                                file=file, field=f"line {line}") from None
        if not name or not 0 <= f <= 1:
            raise SkillmixError(f"need a skill name and a frequency in [0, 1], got {name!r}, {f}",
                                file=file, field=f"line {line}")
        out[name.casefold()] = f
    if not out:
        raise SkillmixError("no rows", file=file)
    return out


def subset_names(catalog, spec) -> list[str]:
    """The catalog skills the SkillSubsetSpec keeps, in catalog order."""
    if spec.names is not None:
        return [catalog.skill(n).name for n in spec.names]     # unknown names: SkillmixError
    freq = read_frequencies(spec.frequency_file)
    kept = [s.name for s in catalog.skills
            if s.name.casefold() in freq and freq[s.name.casefold()] < spec.max_frequency]
    if not any(s.name.casefold() in freq for s in catalog.skills):
        raise SkillmixError("names no skill of the catalog", file=spec.frequency_file)
    return kept


def restrict_catalog(catalog, spec):
    """The catalog with only the subset's skills (splits unchanged)."""
    keep = {n.casefold() for n in subset_names(catalog, spec)}
    skills = tuple(s for s in catalog.skills if s.name.casefold() in keep)
    if not skills:
        raise SkillmixError("the skill subset is empty", field="evaluation.skill_subset")
    return dataclasses.replace(catalog, skills=skills)
