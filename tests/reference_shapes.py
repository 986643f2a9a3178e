"""What the Skill-Mix reference code sends and writes, rebuilt here as the tests' oracle.

The templates are the reference's (its prompts/generation/default.json, prompts/grade/gpt.json and
llama.json), typed from the published text with the spaces its blockquotes cannot show; the
rendering follows the reference's rules (catalog definitions and examples as written, names
stripped; "Contains {skill}" in the open-weight rubric; "You are a helpful assistant." first
to OpenAI models). Nothing here is imported from skillmix: a test compares skillmix with it.

`tests/data/reference/` holds a catalog in the reference's file formats (our own wording): a
skills CSV with the reference header, a definition ending with a space ("accident (fallacy)"),
a name with a space before its ")", rows dropped by status; and a topics file.
"""
from __future__ import annotations

import csv
from pathlib import Path

REFERENCE_DIR = Path(__file__).parent / "data" / "reference"
SKILLS_CSV = REFERENCE_DIR / "skills.csv"
TOPICS_TXT = REFERENCE_DIR / "topics.txt"
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}

REFERENCE_TURN1 = (
    "Greetings! I am interested in natural language processing and I was wondering if you could "
    "help me generate an example of text that illustrates multiple skills in semantics or syntax. "
    "The example should be a minimal natural piece of text with up to a few lines in the context "
    "of {topic} that illustrates all of the following skills: {skills_str}. Please keep the text "
    "as short as possible, and make sure the concepts can be found fully from the text. \n\n"
    "For reference, here are the definitions and examples for the concepts:\n"
    "{skills_defs_and_examples_simple}\n\n"
    "Please start the minimal natural piece of text with 'Answer:' and start the explanation "
    "with 'Explanation:'.\n\nThanks very much!")
REFERENCE_TURN2 = (
    "Thanks very much. Could you please look over your answer and improve it? Please make sure "
    "that the new answer better illustrates all skills and remains on topic. On top of that, "
    "please also make sure the new answer only contains up to {num_sentences_str}. \n"
    "Again, please start the improved minimal natural piece of text with 'Answer:' and start the "
    "explanation with 'Explanation:'.\n\nThanks very much!")
_GRADE_HEAD = (
    "Greetings! I was wondering if you could help me grade the following answer given by a "
    "student.\n\nI\u2019ll first describe the question that was given to the student, and then "
    "give you the student\u2019s answer, and the grading rubric.\n\nThe question given to the "
    "student was as follows: \"Give a single piece of text with up to {num_sentences_str} in the "
    "context of {topic}. This single piece of text should illustrate all of the following "
    "skills: {skills_str}.\"\n\nThe student's answer was: \"{student_answer}\"\n\nFor reference, "
    "here are the definitions for the skills:\n")
REFERENCE_GRADE_GPT = _GRADE_HEAD + (
    "{skills_defs_and_examples_simple}\n\nUsing a rubric table format, please grade the "
    "student's answer with positive scoring. Each criterion is worth 1 point. The criteria are: "
    "{rubric_items}. The table should only have the following columns: 'Criteria', 'Points "
    "Earned'. In the 'Points Earned' column, please provide only numerical values with no "
    "additional formatting. Please introduce the table with 'Here's the grading table:' and "
    "please include a row for 'Total Points Earned' at the end of the table. Finally, please "
    "start your grading explanation with 'Explanation':")
REFERENCE_GRADE_LLAMA = _GRADE_HEAD + (
    "{skills_defs}\n\nPlease grade the student's answer using the following criteria: "
    "{rubric_items}. For each item in the rubric, please include in your evaluation 'Point "
    "earned: 1' if the requirement is met and 'Point earned: 0' otherwise. Please finish your "
    "grading with 'Grade:' followed by a number indicating the total points earned by the "
    "student. Thanks so much.")
_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def reference_skills(path: Path = SKILLS_CSV) -> dict[str, dict]:
    """The skills as the reference reads its CSV: rows whose status is remove, in review or
    maybe dropped, names stripped, every other field as written."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] not in ("remove", "in review", "maybe")]
    return {r["skill"].strip(): r for r in rows}


def sentences(k: int) -> str:
    n = max(1, k - 1)
    return f"{_WORDS[n]} {'sentences' if n > 1 else 'sentence'}"


def generation_turns(skills: dict, names, topic: str) -> list[str]:
    """The two user turns the reference sends for a combination."""
    defs = "\n".join(f"**{n}**: {skills[n]['definition']} For example, {skills[n]['example']}"
                     for n in names)
    return [REFERENCE_TURN1.format(topic=topic, skills_str=", ".join(names),
                                   skills_defs_and_examples_simple=defs),
            REFERENCE_TURN2.format(num_sentences_str=sentences(len(names)))]


def grading_prompt(skills: dict, names, topic: str, answer: str, version: str = "gpt") -> str:
    """The reference's grading prompt: version "gpt" (rubric table, "Correctly illustrates") or
    "llama" (the open-weight prompt: "Point earned", "Contains", definitions only)."""
    start = "Contains" if version == "llama" else "Correctly illustrates"
    rubric = ([f"{start} {n.strip().lower()}" for n in names]
              + [f"Pertains to {topic}", "Text makes sense", f"At most {sentences(len(names))}"])
    template = REFERENCE_GRADE_LLAMA if version == "llama" else REFERENCE_GRADE_GPT
    return template.format(
        num_sentences_str=sentences(len(names)), topic=topic, skills_str=", ".join(names),
        student_answer=answer, rubric_items=", ".join(rubric),
        skills_defs="\n".join(f"**{n}**: {skills[n]['definition']}" for n in names),
        skills_defs_and_examples_simple="\n".join(
            f"**{n}**: {skills[n]['definition']} For example, {skills[n]['example']}" for n in names))


def text_of(reply: str) -> str:
    """The text the reference grades: after the last "Answer:", before "Explanation", stripped."""
    return reply.split("Answer:")[-1].split("Explanation")[0].strip()


# ---------------------------------------------------------------------------------------------
# The reference's results folder and its metric arithmetic

def write_csv(path: Path, rows: list[dict]) -> None:
    """A records.csv as the reference writes it (pandas' to_csv: a header, every field)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def count_sentences(text: str) -> int:
    """The reference's sentence counter (its utils.count_num_sentences)."""
    import re

    for title in ("Mr. ", "Mrs. ", "Ms. ", "Dr. ", "Prof. "):
        text = re.sub(title, title[:-1], text)
    return len(re.split(r"""[.!?]['"]* ['"]*[A-Z]""", text))


def reference_metrics(graded: dict[int, list[list[tuple[str, float]]]], k: int) -> tuple[float, float, float, int]:
    """The reference's aggregate (its aggregate_metrics.py, default options) over the combinations
    graded: `graded[generation round]` is, per grading round, the rows' (points_0,
    true_sentence_lim_pt_0). Each points list is zero-filled or cut to k + 3, its last point
    replaced by the counter's; the rounds' mean is rounded (majority); per combination the best
    generation; the mean over combinations of (full marks, all skills, skills fraction)."""
    import numpy as np

    best: dict[int, np.ndarray] = {}
    for rounds in graded.values():
        for row in range(len(rounds[0])):
            pts = []
            for grading in rounds:
                p = [float(x) for x in grading[row][0].split(",")] if grading[row][0] else []
                p = (p + [0.0] * (k + 3))[:k + 3]
                p[-1] = grading[row][1]
                pts.append(p)
            v = np.rint(np.mean(pts, axis=0))
            s, o = v[:k], v[k:]
            m = np.array([float(v.sum() == k + 3), float(s.sum() == k and o.sum() >= 2),
                          s.sum() / k if o.sum() == 3 else 0.0])
            best[row] = np.maximum(best[row], m) if row in best else m
    a = np.array(list(best.values()))
    return (*(float(x) for x in a.mean(axis=0)), len(best))
