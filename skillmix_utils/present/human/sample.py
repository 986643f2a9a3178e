"""Which texts human raters grade, and in which order (the config's `human:` section).

The sample is stratified by (student, k): `human.n_texts` texts shared out as evenly as the
strata allow (a stratum with too few texts gives its share to the others), and inside each
stratum the texts with the lowest SHA-256 rank of "<seed>:<record id>" are taken, so the same
config gives the same sample on every machine, and a larger `n_texts` keeps the smaller
sample's texts. Only texts that exist (status ok, a non-empty answer) are sampled.

What a rater sees of a text is its `HumanItem`: an opaque key (`access.item_key`: useless
without the study's secret), the topic, the skills with their definitions (and examples only if
the grader whose instructions raters get saw them: `rater_instructions`), the sentence limit and
the text. Writer, student, setting, record id and every model grade stay on the server.

Byte-identical texts written for the same skills and topic (a tuned model that answers exactly
as its base did) are one item: graded once, counted once by the agreement table (through the
first sampled record), and every grade names all their records (`HumanItem.record_ids`).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.grader_methods import method
from skillmix_utils.core.grading import rubric_items
from skillmix_utils.core.prompts import load_template, number_words, sentence_limit
from skillmix_utils.core.records import TextRecord
from skillmix_utils.present.human.access import human_dir, item_key, study_secret
from skillmix_utils.stages.current import STORES, current_records
from skillmix_utils.stages.scoring import study_graders


@dataclass(frozen=True)
class HumanItem:
    """One text as a rater sees it (plus `record_id(s)`, `stratum` and `text_hash`, server side)."""
    key: str                    # opaque: HMAC of the item under the study's secret
    record_id: str              # the record the agreement table counts the item as
    stratum: str                # "<student>|k<k>": never sent to the page
    k: int
    topic: str
    skills: tuple[dict, ...]    # {name, definition, example}
    sentence_limit: str         # "two sentences"
    criteria: tuple[str, ...]   # the k + 3 rubric items, grader wording
    text: str
    text_hash: str
    record_ids: tuple[str, ...] = ()   # every record holding this very text for this rubric

    def public(self) -> dict:
        """What the page may show: no record id, no stratum."""
        d = asdict(self)
        for hidden in ("record_id", "record_ids", "stratum"):
            d.pop(hidden)
        return d


def _rank(*parts) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def text_hash(text: str) -> str:
    """A short content hash: a grade is only valid for the exact text it was given on.

    >>> text_hash("abc")
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def allocate(sizes: dict[str, int], n: int, seed: int = 0) -> dict[str, int]:
    """Share n out over strata as evenly as their sizes allow (water filling); a remainder goes
    to strata in a seeded order, not always to the same ones.

    >>> allocate({"a|k1": 10, "a|k2": 1, "b|k1": 10}, 7)
    {'a|k1': 3, 'a|k2': 1, 'b|k1': 3}
    >>> allocate({"a": 2, "b": 2}, 9)
    {'a': 2, 'b': 2}
    >>> sorted(allocate({"a": 5, "b": 5, "c": 5, "d": 5}, 6).values())
    [1, 1, 2, 2]
    """
    out = {s: 0 for s in sizes}
    left = min(n, sum(sizes.values()))
    order = sorted(sizes, key=lambda s: _rank(seed, "stratum", s))
    while left > 0:
        open_ = [s for s in order if out[s] < sizes[s]]
        share = max(1, left // len(open_))
        for s in open_:
            if left == 0:
                break
            add = min(share, sizes[s] - out[s], left)
            out[s] += add
            left -= add
    return out


def source_records(cfg) -> list[TextRecord]:
    """The current records (`current_records`, as the metric tables count them) of the stage
    the human section names (eval or datagen): raters never grade a retired text."""
    stage = cfg.human.source
    path = cfg.out / STORES[stage] / "records.jsonl"
    if not path.exists():
        raise SkillmixError(f"no records to grade yet: {path} does not exist (run the "
                            f"{'evaluation' if stage == 'eval' else 'data'} stage first)",
                            field="human.source")
    return current_records(cfg, stage)


def rater_grader(cfg):
    """The grader whose instructions raters get: `human.grader` (a name or spec), else the
    source stage's first grader; None when the config has no grader at all."""
    graders = study_graders(cfg, cfg.human.source)
    wanted = cfg.human.grader
    if wanted is None:
        return graders[0] if graders else None
    for g in graders:
        if wanted in (g.label, g.spec):
            return g
    raise SkillmixError(f"no grader named {wanted!r}; the config's graders are "
                        f"{', '.join(g.label for g in graders) or 'none'}", field="human.grader")


def shows_examples(method_name: str) -> bool:
    """Whether a grading method's prompt gives the skills' examples (the published GPT-4 table
    prompt does; the open-weight prompt and the yes/no judge give definitions only).

    >>> shows_examples("table"), shows_examples("point_earned"), shows_examples("yes_no_logprob")
    (True, False, False)
    """
    return "{skills_defs_and_examples_simple}" in load_template(method(method_name).prompt)


def rater_instructions(cfg) -> dict:
    """What raters are told beyond the rubric, as the LLM grading was done: whether the skills
    come with examples, and whether the explicit-name rule takes skill points away. With no
    grader in the config, the published GPT-4 prompt's (definitions with examples)."""
    grader = rater_grader(cfg)
    return {"examples": shows_examples(grader.method if grader else "table"),
            "explicit_name_rule": bool(cfg.scoring.explicit_name_rule)}


def _twin(rec: TextRecord) -> tuple:
    # Texts that are one item: the same bytes, graded against the same rubric.
    return (rec.combination.topic, tuple(rec.combination.skills), rec.answer)


def _item(recs: list[TextRecord], catalog, secret: bytes, seed: int, examples: bool) -> HumanItem:
    rec = recs[0]
    c = rec.combination
    skills = []
    for name in c.skills:
        try:
            s = catalog.skill(name)
            skills.append({"name": s.name, "definition": s.definition,
                           "example": s.example if examples else ""})
        except SkillmixError:   # a skill the catalog no longer has: the name alone
            skills.append({"name": name, "definition": "", "example": ""})
    return HumanItem(key=item_key(secret, seed, *_twin(rec)), record_id=rec.id,
                     record_ids=tuple(r.id for r in recs),
                     stratum=f"{rec.student or rec.model}|k{c.k}", k=c.k, topic=c.topic,
                     skills=tuple(skills), sentence_limit=number_words(sentence_limit(c.k)),
                     criteria=tuple(rubric_items(list(c.skills), c.topic)),
                     text=rec.answer, text_hash=text_hash(rec.answer))


def human_items(cfg, records: list[TextRecord] | None = None, catalog=None) -> list[HumanItem]:
    """The stratified sample of `cfg.human`, in record order (see `rater_order` for the page's).

    Example: `human_items(load_study_config("configs/demo.yaml"))[0].criteria`.
    """
    h = cfg.human
    records = source_records(cfg) if records is None else records
    pool = [r for r in records if r.status == "ok" and (r.answer or "").strip()
            and (not h.students or (r.student or r.model) in h.students)
            and (not h.ks or r.combination.k in h.ks)]
    if not pool:
        raise SkillmixError("no written texts match the human section (students, ks)",
                            field="human")
    strata: dict[str, list[TextRecord]] = {}
    for r in pool:
        strata.setdefault(f"{r.student or r.model}|k{r.combination.k}", []).append(r)
    shares = allocate({s: len(v) for s, v in strata.items()}, h.n_texts, h.seed)
    chosen = set()
    for s, recs in strata.items():
        ranked = sorted(recs, key=lambda r: _rank(h.seed, r.id))
        chosen.update(r.id for r in ranked[: shares[s]])
    catalog = catalog if catalog is not None else cfg.catalog.load()
    examples = rater_instructions(cfg)["examples"]
    secret = study_secret(cfg)
    twins: dict[tuple, list[TextRecord]] = {}
    for r in pool:
        twins.setdefault(_twin(r), []).append(r)
    items, seen = [], set()
    for r in records:
        if r.id in chosen and _twin(r) not in seen:
            seen.add(_twin(r))
            group = [r] + [t for t in twins[_twin(r)] if t.id != r.id]
            items.append(_item(group, catalog, secret, h.seed, examples))
    return items


def rater_order(items: list[HumanItem], seed: int, rater: str) -> list[HumanItem]:
    """The items in the rater's own seeded random order (raters differ, so that order effects
    do not line up across raters)."""
    return sorted(items, key=lambda it: _rank(seed, rater, it.key))


def grades_dir(cfg) -> Path:
    """Where the human grades of a study live: outputs/<study>/human/grades/."""
    return human_dir(cfg) / "grades"
