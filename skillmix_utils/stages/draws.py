"""Which combinations a study draws, for which purpose, and what evaluation must never reuse.

Data generation draws with purpose "data" over `data.pools[k]` (`data_items`); evaluation draws
with purpose "eval" over each setting's pools (`eval_items`), **excluding by construction every
combination the study's training data was drawn from** (same set of skills, same topic:
`training_keys`). The draws are namespaced (docs/protocol.md §2), so even without the
exclusion they would be independent; the exclusion makes SKILL-MIX_train and SKILL-MIX_all
measure composition on questions the student was not trained on. `overlap_report` counts what
is left of the overlap (it must be 0) for the data card and the metric tables.

The training set is taken from the config (every planned data combination, kept or not), so the
evaluation draw is fixed before a single text is written and does not move as data generation
progresses; `overlap_report` also checks the combinations actually on disk.
"""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.catalog import restrict_catalog
from skillmix_utils.core.records import record_id
from skillmix_utils.core.sampling import combination_key, sample_combinations
from skillmix_utils.stages.context import read_existing
from skillmix_utils.stages.generate import Pending

SETTING = "data"   # the setting part of datagen record ids; the pools are in the combination


def data_items(cfg, catalog) -> list[Pending]:
    """The datagen combinations of the config, as pending items with deterministic ids."""
    items = []
    if cfg.data is None:
        return items
    for k, n in sorted(cfg.data.counts.items()):
        pool = cfg.data.pools[k]
        for c in sample_combinations(catalog, k, n, seed=cfg.data.seed, skills=pool.skills,
                                     topics=pool.topics, purpose="data"):
            items.append(Pending(record_id("datagen", SETTING, k, c.index, 0), c, 0))
    return items


_TRAINING_KEYS: dict = {}       # a paper config draws 25,000 data combinations: once is enough


def training_keys(cfg, catalog) -> set[tuple[frozenset, str]]:
    """Every (skill set, topic) the study's training data is drawn from (empty without data)."""
    if cfg.data is None:
        return set()
    memo = (cfg.data.model_dump_json(),
            tuple((s.name, s.split) for s in catalog.skills),
            tuple((t.name, t.split) for t in catalog.topics))
    if memo not in _TRAINING_KEYS:
        if len(_TRAINING_KEYS) > 8:
            _TRAINING_KEYS.clear()
        _TRAINING_KEYS[memo] = frozenset(combination_key(p.combination.skills, p.combination.topic)
                                         for p in data_items(cfg, catalog))
    return set(_TRAINING_KEYS[memo])


def eval_combinations(cfg, catalog, setting: str, k: int, exclude=None) -> list:
    """The evaluation combinations of one setting and k (the same for every student)."""
    ev = cfg.evaluation
    if exclude is None:
        exclude = training_keys(cfg, catalog)
    label = setting
    if ev.skill_subset is not None:     # e.g. uncommon skills only: the setting reads "held_out:<name>"

        catalog, label = restrict_catalog(catalog, ev.skill_subset), f"{setting}:{ev.skill_subset.name}"
    combos = sample_combinations(catalog, k, ev.n_combinations, seed=ev.seed, skills=setting,
                                 topics=setting, purpose="eval", exclude=exclude)
    return [c.model_copy(update={"setting": label}) for c in combos]


def eval_items(cfg, catalog, student, exclude=None) -> list[Pending]:
    """A student's texts: settings x ks x combinations x generation rounds."""
    ev = cfg.evaluation
    if exclude is None:
        exclude = training_keys(cfg, catalog)
    items = []
    for setting in ev.settings:
        for k in ev.ks:
            for c in eval_combinations(cfg, catalog, setting, k, exclude):
                for g in range(ev.generation_rounds):
                    items.append(Pending(record_id("eval", c.setting, k, c.index, g,
                                                   student=student.name), c, g))
    return items


def _keys_on_disk(cfg) -> set[tuple[frozenset, str]]:

    path = Path(cfg.out) / "data" / "records.jsonl"
    return {combination_key(r.combination.skills, r.combination.topic)
            for r in read_existing(path).values() if r.stage == "datagen"}


def overlap_keys(cfg, catalog) -> set[tuple[frozenset, str]]:
    """The training combinations an evaluation must not reuse: planned by the config or found
    in data/records.jsonl."""
    return training_keys(cfg, catalog) | _keys_on_disk(cfg)


def overlap_report(cfg, catalog) -> dict[str, dict[str, dict]]:
    """{setting: {k: {"n_combinations", "overlap", "excluded_draws"}}} for the evaluation.

    `overlap` counts evaluation combinations whose skill set and topic are among the training
    combinations (planned by the config or found in data/records.jsonl): 0 when the exclusion
    works. `excluded_draws` is how many draws the exclusion rejected to get there.
    """
    if cfg.evaluation is None:
        return {}
    train = training_keys(cfg, catalog)
    seen = train | _keys_on_disk(cfg)
    out: dict[str, dict[str, dict]] = {}
    for setting in cfg.evaluation.settings:
        for k in cfg.evaluation.ks:
            combos = eval_combinations(cfg, catalog, setting, k, train)
            out.setdefault(setting, {})[str(k)] = {
                "n_combinations": len(combos),
                "overlap": sum(combination_key(c.skills, c.topic) in seen for c in combos),
                "excluded_draws": sum(c.excluded_draws for c in combos)}
    return out
