"""The scripted study used by the loopback tests: a student and two graders (OpenAI-speaking
"gpt", Anthropic-speaking "claude") whose every reply is fixed by the test, so that the metric
tables can be computed by hand.

Evaluation: one student, setting held_out, k = 2, 3 combinations (c0..c2), 2 generation rounds
(g0, g1). The student's turn-2 answers are ANSWERS[(c, g)] (each carries a tag [cXgY] so that a
grader can tell which text it is grading). Graders reply with a rubric table of the points in
GRADES[grader][(c, g)][round], or with an ungradable text where that entry is None.
"""
from __future__ import annotations

import re

from skillmix_utils.core.catalog import load_catalog
from skillmix_utils.core.grading import rubric_items
from skillmix_utils.core.sampling import sample_combinations

K, N, G = 2, 3, 2


def combos():
    return sample_combinations(load_catalog(), K, N, seed=0, skills="held_out", topics="held_out",
                               purpose="eval")


# k = 2: at most one sentence. c1g0 names its first skill verbatim (explicit-name rule).
ANSWERS = {
    (0, 0): lambda c: "Bees hum in the warm hive [c0g0].",
    (0, 1): lambda c: "Bees hum. Bees dance in the sun [c0g1].",          # two sentences
    (1, 0): lambda c: f"Every {c.skills[0]} hides in the hive [c1g0].",   # names skill 1
    (1, 1): lambda c: "Honey drips from the comb [c1g1].",
    (2, 0): lambda c: "Wax melts on the stove [c2g0].",
    (2, 1): lambda c: "Smoke calms the angry bees [c2g1].",
}

F = [1, 1, 1, 1, 1]
BAD = None   # an ungradable reply: parse_failed
GRADES = {
    "gpt": {   # three rounds
        (0, 0): [[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 0, 1, 1, 1]],
        (0, 1): [F, F, F],
        (1, 0): [F, F, F],
        (1, 1): [BAD, [1, 0, 1, 1, 1], F],
        (2, 0): [BAD, BAD, BAD],
        (2, 1): [[0, 0, 1, 1, 1]] * 3,
    },
    "claude": {   # one round
        (0, 0): [F], (0, 1): [F], (1, 0): [F], (1, 1): [F],
        (2, 0): [[1, 1, 0, 1, 1]],
        (2, 1): [BAD],
    },
}

TAG = re.compile(r"\[c(\d+)g(\d+)\]")


def _content(msg) -> str:
    c = msg["content"]
    return c if isinstance(c, str) else "".join(b.get("text", "") for b in c)


def make_respond():
    cs = combos()
    by_skills = {", ".join(c.skills): c for c in cs}
    assert len(by_skills) == len(cs)

    def respond(api: str, body: dict) -> str:
        msgs = body["messages"]
        first = _content(msgs[0])
        if "help me generate an example" in first:
            if len(msgs) == 1:
                return "Answer: A first draft about bees.\nExplanation: none yet."
            skills = re.search(r"following skills: (.*?)\. Please keep", first).group(1)
            c = by_skills[skills]
            g = int(body.get("seed") or 0)
            return f"Answer: {ANSWERS[(c.index, g)](c)}\nExplanation: it shows the skills."
        ci, g = map(int, TAG.search(first).groups())
        grader = "gpt" if api == "openai" else "claude"
        r = int(body.get("seed") or 0) if api == "openai" else 0
        pts = GRADES[grader][(ci, g)][r]
        if pts is None:
            return "I am sorry, I cannot grade this answer."
        c = cs[ci]
        rows = "\n".join(f"| {crit} | {p} |" for crit, p in zip(rubric_items(c.skills, c.topic), pts))
        return ("Here's the grading table:\n| Criteria | Points Earned |\n|---|---|\n" + rows
                + f"\n| Total Points Earned | {sum(pts)} |\nExplanation: scripted.")

    return respond


def study_tree(server, out, **extra) -> dict:
    """The study config (as a dict) pointing every model at `server`."""
    tree = {
        "name": "scripted", "output_dir": str(out), "concurrency": 2,
        "evaluation": {
            "students": [{"name": "stud", "model": {"spec": "openai:gpt-4o-mini",
                                                     "base_url": server.openai_url,
                                                     "temperature": 0.7, "max_tokens": 64}}],
            "settings": ["held_out"], "ks": [K], "n_combinations": N, "generation_rounds": G,
            # The script's unreadable replies are its point: asked once, and accepted.
            "graders": [
                {"name": "gpt", "spec": "openai:gpt-4o", "base_url": server.openai_url,
                 "rounds": 3, "max_tokens": 300, "parse_retries": 0, "max_unreadable": 1.0},
                {"name": "claude", "spec": "anthropic:claude-3-opus-20240229",
                 "base_url": server.anthropic_url, "rounds": 1, "max_tokens": 300,
                 "parse_retries": 0, "max_unreadable": 1.0},
            ],
            "seed": 0,
        },
    }
    tree.update(extra)
    return tree
