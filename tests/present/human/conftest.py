"""A tiny graded study for the human-grading tests: real catalog skills, two students, k = 1, 2,
one LLM grader whose points the tests know."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skillmix_utils.core.records import Combination, Grading, RecordStore, TextRecord, record_id
from skillmix_utils.stages.current import IMPORTED

SKILLS = ["metaphor", "red herring", "modus ponens", "spatial reasoning"]
STUDENTS = ["student-alpha", "student-omega"]


def make_records(twins: bool = False) -> list[TextRecord]:
    """Two students x k in (1, 2) x 3 combinations; with `twins` the second student writes
    byte for byte what the first wrote (a tuned model that answers as its base did)."""
    out = []
    for student in STUDENTS:
        for k in (1, 2):
            for i in range(3):
                skills = tuple(SKILLS[(i + j) % 4] for j in range(k))
                comb = Combination(skills=skills, topic="Beekeeping", k=k, setting="held_out", index=i)
                writer = 0 if twins else STUDENTS.index(student)
                text = f"Text {writer}{k}{i}: the hive hums, a <i>quiet</i> engine of summer."
                points = [1.0] * (k + 3) if i != 1 else [0.0] + [1.0] * (k + 2)
                out.append(TextRecord(
                    id=record_id("eval", "held_out", k, i, 0, student=student), stage="eval",
                    study="hum", model="hf:SECRET-WRITER-MODEL", student=student, combination=comb,
                    answer=text, gradings=[Grading(grader="llm-judge", round=0, points=points,
                                                   raw_reply="SECRET-GRADER-REPLY")]))
    return out


def make_study(root: Path, n_texts: int = 6, twins: bool = False) -> Path:
    """Write a config and eval/records.jsonl under root; return the config path."""
    out = root / "hum"
    from skillmix_utils.core.config import ScoringSpec
    from skillmix_utils.stages.scoring import rescore

    recs = make_records(twins)
    rescore(recs, ScoringSpec(explicit_name_rule=False))   # the stored points the tables would use
    RecordStore(out / "eval" / "records.jsonl").append(recs)
    # No config drew these made-up records: marked as imported, all of them count
    # (stages.current.current_records), as the human sample's pool.
    (out / "eval" / IMPORTED).write_text("{}")
    model = {"spec": "hf:smollm2-135m-instruct"}
    cfg = {"name": "hum", "output_dir": str(out),
           "evaluation": {"students": [{"name": s, "model": model} for s in STUDENTS],
                          "graders": [{**model, "name": "llm-judge", "rounds": 1}],
                          "settings": ["held_out"], "ks": [1, 2], "n_combinations": 3},
           "human": {"n_texts": n_texts, "seed": 0},
           "scoring": {"explicit_name_rule": False}}
    path = root / "hum.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture()
def study_config(tmp_path) -> Path:
    return make_study(tmp_path)
