"""The skill and topic catalog: the built-in open catalog, the Skill-Mix reference files, user files.

    >>> cat = load_catalog()                      # data/catalog/skills.yaml + topics.yaml
    >>> len(cat.skills), len(cat.skills_in("train")), len(cat.topics_in("held_out"))
    (101, 53, 50)
    >>> cat.skill("Red Herring").category
    'rhetorical'

What `load_catalog(skills=PATH, topics=PATH)` reads (docs/protocol.md §1):
- skills: a YAML catalog shaped like the built-in one; the Skill-Mix reference CSV (header
  `category,skill,definition,example,comments,status,added by`; rows whose status is `remove`,
  `in review` or `maybe` are dropped; split by category, literary + rhetorical = train, unless
  `train_categories` says otherwise); or a simple CSV `name,category,definition,example[,split]`.
- topics: a YAML file shaped like the built-in one, or plain text, one topic a line (blank
  lines skipped), split 50 / 50 by the seeded draw of `split_topics` (seed `topic_seed`).

The split rule belongs to the catalog file, not to code: a YAML skills file says
`split: {rule: by_category, train_categories: [...]}` or `split: {rule: explicit}` (then every
skill carries `split`); a YAML topics file says `split: {rule: seeded_draw, method: sha256_rank,
seed: N}` or `split: {rule: explicit}`. A per-item `split` that disagrees with the file's rule is
an error, so the recorded rule can never silently drift from the recorded splits.

Every problem is one `SkillmixError` naming the file and the field.
"""
from __future__ import annotations

from skillmix_utils.core.catalog.load import load_catalog, summary_table
from skillmix_utils.core.catalog.model import (
                                               DEFAULT_TRAIN_CATEGORIES,
                                               POOLS,
                                               SIMPLE_CSV_COLUMNS,
                                               SKILLMIX_CSV_COLUMNS,
                                               SKILLMIX_DROPPED_STATUSES,
                                               SPLITS,
                                               TOPIC_SPLIT_METHOD,
                                               Catalog,
                                               Skill,
                                               Topic,
)
from skillmix_utils.core.catalog.parsers import (
                                               parse_skills_csv,
                                               parse_skills_yaml,
                                               parse_topics_text,
                                               parse_topics_yaml,
                                               split_topics,
)
from skillmix_utils.core.catalog.resplit import (
                                               apply_partition,
                                               random_split,
                                               read_frequencies,
                                               restrict_catalog,
                                               subset_names,
)

__all__ = ["DEFAULT_TRAIN_CATEGORIES", "POOLS", "SIMPLE_CSV_COLUMNS", "SKILLMIX_CSV_COLUMNS",
           "SKILLMIX_DROPPED_STATUSES", "SPLITS", "TOPIC_SPLIT_METHOD", "Catalog", "Skill", "Topic",
           "apply_partition", "load_catalog", "parse_skills_csv", "parse_skills_yaml",
           "parse_topics_text", "parse_topics_yaml", "random_split", "read_frequencies",
           "restrict_catalog", "split_topics", "subset_names", "summary_table"]
