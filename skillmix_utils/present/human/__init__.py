"""Blind human grading of a study's texts, and how humans agree with the LLM graders.

    skillmix human configs/demo.yaml --rater alice          # prints alice's link, with her token
    skillmix human-agreement configs/demo.yaml              # human/agreement.csv (+ .md)

- `sample.py`: which texts raters see (the config's `human:` section: a seeded sample stratified
  by student and k, identical texts once), in which order (seeded per rater), and what they are
  told (the grader's definitions, examples only if it saw them, the explicit-name rule).
- `access.py`: the study's secret (item keys nobody can trace without it) and the raters' tokens.
- `store.py`: every grade, appended the moment it is given to `human/grades/<rater>.jsonl`.
- `server.py`: the grading page (Flask on 127.0.0.1), writer, student, setting and every model
  grade hidden, each rater's page and grades behind the rater's token; strict grade bodies; the
  k + 3 rubric with the skill definitions beside it; keyboard shortcuts.
- `agreement.py`: per criterion and for full marks, human vs each LLM grader and human vs human:
  Cohen's kappa with a bootstrap interval, raw agreement and the confusion counts.
"""
from skillmix_utils.present.human.agreement import agreement_table, write_agreement
from skillmix_utils.present.human.sample import HumanItem, human_items, rater_order
from skillmix_utils.present.human.store import GradeStore

__all__ = ["HumanItem", "human_items", "rater_order", "GradeStore", "agreement_table",
           "write_agreement"]
