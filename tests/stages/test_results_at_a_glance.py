"""Results people can read at a glance: every number with its n and 95% interval, the judge
named, and the main table printed at the end of `skillmix metrics` and `skillmix run`."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml

from skillmix_utils import cli
from skillmix_utils.core.config import StudyConfig
from skillmix_utils.present import paper_tables
from skillmix_utils.stages.evaluate import run_evaluation

from .scripted import study_tree


@pytest.fixture()
def evaluated(api_env, scripted_server):
    tree = study_tree(scripted_server, api_env / "out")
    config = api_env / "scripted.yaml"
    config.write_text(yaml.safe_dump(tree))
    run_evaluation(StudyConfig.model_validate(tree))
    return config, api_env / "out"


def test_metrics_cli_ends_with_the_results_table(evaluated, capsys):
    config, out = evaluated
    capsys.readouterr()
    assert cli.main(["metrics", str(config)]) == 0
    printed = capsys.readouterr().out
    results = printed[printed.index("Results, "):].splitlines()
    assert results[0] == "Results, graded by gpt (openai:gpt-4o, table)."
    header, row = results[3], results[4]
    assert header.split() == ["student", "setting", "k", "n", "full", "marks", "all", "skills",
                              "skills", "fraction"]
    # gpt: full marks 1 of 3 combinations, Wilson [0.06, 0.79]
    assert row.split()[:8] == ["stud", "held_out", "2", "3", "0.33", "[0.06,", "0.79]", "0.33"]
    assert "other graders (claude)" in printed
    assert printed.rstrip().endswith(f"report: not built yet (notebook 05 writes {out / 'report.html'})")


def test_exported_tables_carry_n_interval_and_judge(evaluated):
    _, out = evaluated
    tables = out / "eval" / "tables"
    written = paper_tables.write_paper_tables(tables / "metrics.csv", out / "tables")
    md = written["table2_full_marks.md"].read_text()
    assert "graded by gpt (openai:gpt-4o, table)" in md.splitlines()[0]
    assert "| stud | held_out | 0.33 ± 0.33 (n=3) [0.06, 0.79] |" in md
    tex = written["table2_full_marks.tex"].read_text()
    assert r"0.33 $\pm$ 0.33 (n=3) [0.06, 0.79]" in tex
    csv = pd.read_csv(written["table2_full_marks.csv"], comment="#")
    assert csv.loc[0, "k=2"] == "0.33 ± 0.33 (n=3) [0.06, 0.79]"
    assert "(n=3) [" in written["table5_graders.md"].read_text()


@pytest.mark.timeout(600)
def test_run_cli_ends_with_the_results_table_and_the_report(evaluated, capsys):
    config, out = evaluated
    capsys.readouterr()
    assert cli.main(["run", str(config), "--stages", "05"]) == 0
    printed = capsys.readouterr().out
    assert printed.index("05") < printed.index("Results, graded by gpt (openai:gpt-4o, table).")
    assert "stud     held_out  2  3" in printed
    assert printed.rstrip().endswith(f"report: {out / 'report.html'}")
    assert (out / "report.html").exists()


@pytest.mark.timeout(600)
def test_figures_notebook_on_a_study_with_no_records_says_what_to_run(api_env, scripted_server,
                                                                      capsys):
    out = api_env / "out"
    config = api_env / "scripted.yaml"
    config.write_text(yaml.safe_dump(study_tree(scripted_server, out)))
    assert cli.main(["run", str(config), "--stages", "05"]) == 2       # bad input, not "done"
    err = capsys.readouterr().err
    assert "no evaluation records yet: run notebooks 02-04 first" in err
    assert not (out / "eval" / "tables").exists() and not (out / "figures").exists()
    assert not (out / "tables").exists() and not (out / "report.html").exists()
    assert cli.main(["metrics", str(config)]) == 2
    assert "run notebooks 02-04 first" in capsys.readouterr().err


def test_one_missing_text_is_one_text(evaluated, capsys):
    """A resumed evaluation with one text to write said "writing 1 texts"."""
    import json

    config, out = evaluated
    path = out / "eval" / "records.jsonl"
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])["id"]
    path.write_text("".join(line + "\n" for line in lines if json.loads(line)["id"] != last))
    capsys.readouterr()
    assert cli.main(["evaluate", str(config)]) == 0
    said = capsys.readouterr()
    said = said.out + said.err
    assert "writing 1 text\n" in said and "1 texts" not in said
