"""Doors that fit habits: `skillmix --version`, `cache info|clear`, `grade --dry-run` (the cost of
re-grading before paying), through the command line as a user meets them."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from skillmix_utils import __version__, cli

sys.path.insert(0, str(Path(__file__).parent / "notebooks"))


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"skillmix {__version__}"


def test_cache_info_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path))
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "models" / "tiny" / "w.bin").write_bytes(b"x" * 2_000_000)
    (tmp_path / "llm").mkdir()
    with sqlite3.connect(tmp_path / "llm" / "responses.sqlite") as con:
        con.executescript("CREATE TABLE responses (key TEXT PRIMARY KEY, value TEXT, created REAL);"
                          "CREATE TABLE batch_jobs (batch_id TEXT PRIMARY KEY);"
                          "INSERT INTO responses VALUES ('k', '{}', 0);")
    assert cli.main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "1 cached responses" in out and "tiny" in out and "2.0 MB" in out
    assert cli.main(["cache", "clear"]) == 0            # default: the converted models only
    assert not (tmp_path / "models").exists() and (tmp_path / "llm" / "responses.sqlite").exists()
    assert cli.main(["cache", "clear", "all"]) == 0
    assert not (tmp_path / "llm").exists()


def test_grade_dry_run_prices_what_is_owed_and_writes_nothing(tmp_path, capsys):
    from synthetic import make_study

    out = make_study(tmp_path)
    records = tmp_path / "elsewhere.jsonl"     # not the study's own: graded whole
    records.write_bytes((out / "eval" / "records.jsonl").read_bytes())
    before = records.read_bytes()
    assert cli.main(["grade", "configs/api-cheap.yaml", "--records", str(records), "--dry-run",
                     "--set", f"output_dir={out}"]) == 0
    printed = capsys.readouterr().out
    # 24 texts, graded by neither of api-cheap's graders yet: 3 rounds each are owed.
    assert "openai:gpt-4o-mini" in printed and "72 gradings owed on 24 records" in printed
    assert "estimated total: $" in printed
    assert records.read_bytes() == before
    # The study's own records were not made the way api-cheap makes them: a real run grades
    # none of them, and neither does the plan.
    assert cli.main(["grade", "configs/api-cheap.yaml", "--records", str(out / "eval" / "records.jsonl"),
                     "--dry-run", "--set", f"output_dir={out}"]) == 0
    assert "0 gradings owed on 0 records (24 records not current" in capsys.readouterr().out
