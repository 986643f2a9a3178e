"""Study configs: good ones load, bad ones fail with one message naming file and field."""
from __future__ import annotations

from pathlib import Path

import subprocess
import sys
import textwrap

import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.core.errors import SkillmixError

GOOD = textwrap.dedent("""\
    name: tiny
    evaluation:
      students:
        - name: base
          model: {spec: "hf:smollm2-135m-instruct", max_tokens: 32}
      ks: [1, 2]
      n_combinations: 2
      generation_rounds: 1
      graders:
        - {spec: "hf:smollm2-135m-instruct", method: yes_no_logprob, rounds: 1}
    """)


def write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults(tmp_path):
    cfg = load_study_config(write(tmp_path, GOOD))
    assert cfg.name == "tiny"
    assert cfg.evaluation.settings == ["train", "held_out", "all"]
    assert cfg.evaluation.graders[0].method == "yes_no_logprob"
    # no project marker above tmp_path: outputs/<name> under the current folder (core/config.py)
    assert cfg.out == Path.cwd() / "outputs" / "tiny"
    assert cfg.data is None and cfg.train is None


def test_overrides_use_dotted_fields(tmp_path):
    cfg = load_study_config(write(tmp_path, GOOD), overrides={
        "evaluation.n_combinations": 7, "evaluation.students.0.model.max_tokens": 9})
    assert cfg.evaluation.n_combinations == 7
    assert cfg.evaluation.students[0].model.max_tokens == 9


@pytest.mark.parametrize("bad, field, words", [
    (GOOD.replace("n_combinations: 2", "n_combinations: 0"), "evaluation.n_combinations", "greater"),
    (GOOD.replace("ks: [1, 2]", "ks: [0, 2]"), "evaluation.ks", "at least 1"),
    (GOOD.replace("n_combinations: 2", "n_combinatons: 2"), "evaluation.n_combinatons", "unknown field"),
    (GOOD.replace('"hf:smollm2-135m-instruct", max_tokens', '"gpt4", max_tokens'),
     "evaluation.students.0.model.spec", "must start with"),
    (GOOD.replace("method: yes_no_logprob", "method: vibes"), "evaluation.graders.0.method", ""),
])
def test_bad_fields_are_named(tmp_path, bad, field, words):
    path = write(tmp_path, bad)
    with pytest.raises(SkillmixError) as info:
        load_study_config(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert info.value.field == field, message
    assert words in message


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(SkillmixError, match="no such study config"):
        load_study_config(tmp_path / "nope.yaml")
    with pytest.raises(SkillmixError, match="not valid YAML"):
        load_study_config(write(tmp_path, "name: [unclosed"))


def test_datagen_mix_must_use_generated_k(tmp_path):
    text = GOOD + textwrap.dedent("""\
        data:
          teacher: {spec: "hf:smollm2-135m-instruct"}
          graders: [{spec: "hf:smollm2-135m-instruct", method: yes_no_logprob}]
          counts: {1: 4}
          mixes: [[1, 2]]
        """)
    with pytest.raises(SkillmixError, match=r"uses k=\[2\]"):
        load_study_config(write(tmp_path, text))


def test_cli_reports_bad_config_in_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, GOOD.replace("ks: [1, 2]", "ks: [1, 2]\n  colour: blue"))
    proc = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "metrics", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "evaluation.colour" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in proc.stderr


def test_api_keys_are_refused_in_configs(tmp_path):
    text = GOOD.replace("max_tokens: 32}", "max_tokens: 32, options: {api_key: sk-live-123}}")
    with pytest.raises(SkillmixError, match="environment only") as info:
        load_study_config(write(tmp_path, text))
    assert "sk-live-123" not in str(info.value)
