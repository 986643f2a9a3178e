"""A text's points, derived in one place and stored (docs/protocol.md §4-5).

`score(rec, scoring, graders, catalog)` is the only function that turns gradings into points.
Its result is stored on the record (`rec.derived`), and every reader (metric tables, paper
tables, figures, the report, the notebooks, the keep rule of data generation) reads that stored
result; when the scoring settings or the graders change, `rescore` derives again and the stage
rewrites the records whose result changed. So one text never has two scores.

What `score` does, per text:
1. **Which gradings count**: with `graders` given, only gradings by one of them, for one of its
   rounds (`grader_methods.rounds_of`), whose identity equals the identity this grader would
   give now (`expected_identity`: grader, method, rendered prompt, sampling). A grading made
   with another prompt, temperature, seed or text is superseded: it is kept in the record for
   the record's sake, never counted, and asked again by the grade stage.
2. **Unreadable gradings** (status "parse_failed"): a reply that lists only some items counts
   with the items it has; what it lacks (all of a reply that has none) is, with
   `scoring.unreadable = "exclude"` (the `improved` preset), left out of that criterion's vote,
   and the grading is counted and re-gradable; with "zero" (the `reference` preset: the
   reference code's zero-fill) every missing point is 0.
3. **Corrections**: the sentence count (`scoring.sentence_counter`, default the reference rule)
   gives the length point, which **replaces every grader's length verdict** (a zero-filled one
   too, as the reference did); with `scoring.explicit_name_rule` (the paper's harder variant, on
   in the `improved` preset) a skill whose name appears in the text
   (`grading.mentions_skill_name`, matched as `scoring.explicit_name_match` says: whole words,
   or as the reference code matched) earns no point whatever the grader said; an empty (or
   whitespace-only) answer earns neither the "makes sense" nor the length point
   (`text_rules.is_empty_text`). Which rule set which point
   (`point_rules`) is stored with the points (`Derived.point_rules`), so the report names a rule
   only where it acted.
4. **Vote**: per grader, the majority vote over its counted rounds (`metrics.majority_vote`: a
   point is awarded when the mean of the rounds is above 0.5). A grader with no counted round
   has no voted points for that text, never 0.
"""
from __future__ import annotations

from skillmix_utils.core.config import ScoringSpec
from skillmix_utils.core.grader_methods import rounds_of
from skillmix_utils.core.grading import count_sentences, is_empty_text, mentions_skill_name
from skillmix_utils.core.identity import grading_identity
from skillmix_utils.core.metrics import majority_vote
from skillmix_utils.core.prompts import method_prompt, sentence_limit
from skillmix_utils.core.records import Derived, Grading, TextRecord


def expected_identity(grader, rec: TextRecord, round_: int, catalog, _prompt: str | None = None
                      ) -> str:
    """The identity a grading of `rec` by `grader` in round `round_` would have now."""

    prompt = _prompt if _prompt is not None else grader_prompt(grader, rec, catalog)
    return grading_identity(grader, (grader.seed or 0) + int(round_), prompt)


def grader_prompt(grader, rec: TextRecord, catalog) -> str:
    """What `grader` is sent for `rec` (the prompt part of a grading's identity)."""

    skills = [catalog.skill(s) for s in rec.combination.skills]
    return method_prompt(grader.method, skills, rec.combination.topic, rec.answer or "",
                         grader.skill_criterion)


def current_gradings(rec: TextRecord, graders=None, catalog=None) -> list[tuple[object, Grading]]:
    """(grader spec or None, grading) for the gradings that count now (see the module doc)."""
    if graders is None:
        return [(None, g) for g in rec.gradings]

    by_label = {g.label: g for g in graders}
    prompts: dict[str, str] = {}
    out = []
    for g in rec.gradings:
        spec = by_label.get(g.grader)
        if spec is None or g.round not in rounds_of(spec):
            continue
        if catalog is not None:
            if spec.label not in prompts:
                try:
                    prompts[spec.label] = grader_prompt(spec, rec, catalog)
                except Exception:      # a skill no longer in the catalog: nothing is current
                    return []
            if g.identity != expected_identity(spec, rec, g.round, catalog, prompts[spec.label]):
                continue
        out.append((spec, g))
    return out


def corrections(rec: TextRecord, scoring: ScoringSpec) -> tuple[int | None, float | None, list[str]]:
    """(sentence count, length point, skills named in the text) for one record."""

    if rec.answer is None:
        return None, None, []
    n = count_sentences(rec.answer, rule=scoring.sentence_counter)
    # an empty text is not "at most N sentences" of anything: no length point
    length_point = 1.0 if n <= sentence_limit(rec.combination.k) and not is_empty_text(rec.answer) \
        else 0.0
    named = [s for s in rec.combination.skills
             if mentions_skill_name(s, rec.answer, scoring.explicit_name_match)]
    return n, length_point, named


LENGTH_RULE = "length"            # the sentence count gives the length point
NAME_RULE = "names the skill"     # a skill named verbatim earns no point
EMPTY_RULE = "empty text"         # an empty answer earns no "makes sense" and no length point


def point_rules(k: int, length_point: float | None, named: list[str], skills,
                scoring: ScoringSpec, empty: bool = False) -> list[str | None]:
    """Per rubric point (k skills, topic, sense, length): the rule that sets it over every
    grader's verdict, or None where the graders' vote stands. `adjusted_points` applies exactly
    these rules, and `score` stores them, so what the report attributes is what was done.

    >>> point_rules(2, 1.0, ["irony"], ("metaphor", "irony"), ScoringSpec())
    [None, 'names the skill', None, None, 'length']
    >>> point_rules(2, 1.0, ["irony"], ("metaphor", "irony"), ScoringSpec(explicit_name_rule=False))
    [None, None, None, None, 'length']
    >>> point_rules(1, 0.0, [], ("metaphor",), ScoringSpec(), empty=True)
    [None, None, 'empty text', 'empty text']
    """
    rules: list[str | None] = [None] * (k + 3)
    if length_point is not None:
        rules[k + 2] = LENGTH_RULE
    if scoring.explicit_name_rule:
        for i, skill in enumerate(skills):
            if skill in named:
                rules[i] = NAME_RULE
    if empty:
        rules[k + 1] = rules[k + 2] = EMPTY_RULE
    return rules


def adjusted_points(grading: Grading, k: int, length_point: float | None,
                    named: list[str], skills, scoring: ScoringSpec, empty: bool = False
                    ) -> list[float | None] | None:
    """A grading's k + 3 points after the length and explicit-name corrections (None when the
    grading does not count: a failed call, or a reply with no readable point under
    `unreadable: exclude`); None entries are points the reply does not give.

    >>> g = Grading(grader="x", points=[1, 1, 1, 1, 0])
    >>> adjusted_points(g, 2, 1.0, ["irony"], ("metaphor", "irony"), ScoringSpec())
    [1.0, 0.0, 1.0, 1.0, 1.0]
    >>> part = Grading(grader="x", status="parse_failed", points=[1, None, None, None])
    >>> adjusted_points(part, 1, 1.0, [], ("metaphor",), ScoringSpec())
    [1.0, None, None, 1.0]
    >>> adjusted_points(part, 1, 1.0, [], ("metaphor",), ScoringSpec(preset="reference"))
    [1.0, 0.0, 0.0, 1.0]
    >>> bad = Grading(grader="x", status="parse_failed")
    >>> adjusted_points(bad, 1, 1.0, [], ("metaphor",), ScoringSpec(unreadable="zero"))
    [0.0, 0.0, 0.0, 1.0]
    """
    if grading.status not in ("ok", "parse_failed"):
        return None                  # the call failed: no reply to count
    given = grading.points if grading.points is not None and len(grading.points) == k + 3 \
        else [None] * (k + 3)
    pts = [None if p is None else float(p) for p in given]
    if scoring.unreadable == "zero":
        # The reference code's zero-fill: every point the reply does not give is 0 (and then,
        # as there, the length point is the sentence count's).
        pts = [0.0 if p is None else p for p in pts]
    elif all(p is None for p in pts):
        return None                  # nothing readable: left out of the vote, counted
    for i, rule in enumerate(point_rules(k, length_point, named, skills, scoring, empty)):
        if rule == LENGTH_RULE:
            pts[i] = length_point
        elif rule in (NAME_RULE, EMPTY_RULE):
            pts[i] = 0.0
    return pts


def score(rec: TextRecord, scoring: ScoringSpec, graders=None, catalog=None) -> Derived:
    """The record's `Derived`: sentence count, length point, named skills, and per grader the
    counted rounds' corrected points and their vote. `graders` (GraderSpecs) and `catalog`
    restrict the count to current gradings; without them every grading counts."""

    n, length_point, named = corrections(rec, scoring)
    k = rec.combination.k
    empty = is_empty_text(rec.answer)
    d = Derived(sentence_count=n, length_point=length_point, explicit_names=named,
                point_rules=point_rules(k, length_point, named, rec.combination.skills, scoring,
                                        empty),
                scoring=scoring.model_dump(mode="json"))
    if rec.status != "ok" or rec.answer is None:
        return d
    for spec, g in current_gradings(rec, graders, catalog):
        rounds = d.round_points.setdefault(g.grader, {})
        pts = adjusted_points(g, k, length_point, named, rec.combination.skills, scoring, empty)
        if pts is not None:
            rounds[g.round] = pts
    for label, rounds in d.round_points.items():
        d.valid_rounds[label] = len(rounds)
        if rounds:
            nan = float("nan")
            voted, _ = majority_vote([[nan if p is None else p for p in rounds[r]]
                                      for r in sorted(rounds)])
            d.voted_points[label] = [None if v != v else float(v) for v in voted.tolist()]
    return d


def rescore(records, scoring: ScoringSpec, graders=None, catalog=None, finish=None) -> list:
    """Score `records` again (in place); returns those whose stored result changed, to be
    appended to their store. `finish(rec)` runs after scoring (data generation sets `kept`)."""
    changed = []
    for rec in records:
        before = (rec.derived, rec.kept)
        rec.derived = score(rec, scoring, graders, catalog)
        if finish:
            finish(rec)
        if (rec.derived, rec.kept) != before:
            changed.append(rec)
    return changed


def keep_rule(rec: TextRecord, grader_labels: list[str]) -> bool | None:
    """Data generation keeps a text with full marks by every grader's vote; None while some
    grader has no counted round yet.

    >>> from skillmix_utils.core.records import Combination, Derived
    >>> r = TextRecord(id="x", stage="datagen", model="m", answer="a",
    ...     combination=Combination(skills=("metaphor",), topic="Knots", k=1),
    ...     derived=Derived(voted_points={"g": [1.0, 1.0, 1.0, 1.0]}))
    >>> keep_rule(r, ["g"]), keep_rule(r, ["g", "h"])
    (True, None)
    """
    if rec.status != "ok" or rec.answer is None:
        return None
    votes = [rec.derived.voted_points.get(label) for label in grader_labels]
    if any(v is None for v in votes):
        return None
    k = rec.combination.k
    return all(len(v) == k + 3 and all(p is not None and p >= 1.0 for p in v) for v in votes)


def study_graders(cfg, stage: str) -> list:
    """The graders whose gradings count for a stage's records: the stage's own, then any other
    grader of the config with another label (e.g. a data grader asked on evaluation texts with
    `skillmix grade --grader`)."""
    own = list((cfg.evaluation.graders if stage == "eval" and cfg.evaluation
                else cfg.data.graders if stage == "datagen" and cfg.data else []))
    labels = {g.label for g in own}
    for sec in (cfg.data, cfg.evaluation):
        for g in (sec.graders if sec else []):
            if g.label not in labels:
                own.append(g)
                labels.add(g.label)
    return own
