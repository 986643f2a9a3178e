"""What reaches the API is the reference prompt, character for character (docs/protocol.md §3).

An evaluation runs through the real `openai` SDK against the loopback server; the request bodies
the server received are compared with the reference templates (tests/reference_shapes.py, with
the two spaces the published blockquotes cannot show: before the blank line after "...found
fully from the text." in turn 1, before the line break after "...up to two sentences." in turn 2).
"""
from __future__ import annotations

from reference_shapes import REFERENCE_TURN1, REFERENCE_TURN2   # tests/ is on sys.path
from skillmix_utils.core.catalog import load_catalog
from skillmix_utils.core.config import StudyConfig
from skillmix_utils.stages.evaluate import run_evaluation


def test_generation_turns_reach_the_api_as_the_reference_renders_them(server, keys, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "cache"))
    cfg = StudyConfig.model_validate({
        "name": "wire", "output_dir": str(tmp_path / "out"),
        "evaluation": {
            "students": [{"name": "s", "model": {"spec": "openai:gpt-4o-mini",
                                                 "base_url": server.openai_url}}],
            "settings": ["held_out"], "ks": [3], "n_combinations": 1, "generation_rounds": 1,
            "graders": [{"spec": "openai:gpt-4o", "base_url": server.openai_url, "rounds": 1,
                         "parse_retries": 0, "max_unreadable": 1.0}]}})   # it echoes: unreadable
    run_evaluation(cfg)
    writes = [b for b in server.bodies if "help me generate" in str(b["messages"][0]["content"])]
    first = next(b for b in writes if len(b["messages"]) == 1)
    second = next(b for b in writes if len(b["messages"]) == 3)

    from skillmix_utils.stages.draws import eval_combinations
    combo = eval_combinations(cfg, load_catalog(), "held_out", 3)[0]
    skills = [load_catalog().skill(s) for s in combo.skills]
    turn1 = REFERENCE_TURN1.format(
        topic=combo.topic, skills_str=", ".join(s.name for s in skills),
        skills_defs_and_examples_simple="\n".join(
            f"**{s.name}**: {s.definition} For example, {s.example}" for s in skills))
    assert first["messages"] == [{"role": "user", "content": turn1}]
    assert second["messages"][0]["content"] == turn1
    assert second["messages"][2] == {"role": "user", "content": REFERENCE_TURN2.format(
        num_sentences_str="two sentences")}
