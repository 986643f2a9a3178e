"""The README is what a user reads first: its Contents reach every section, every README section
that a message, a config comment, a notebook or a doc names exists under that name, and the
figures it quotes are the ones the commands print."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# `README "Grids"`, `README.md ("Study configs")`, `README, "Beyond the paper"`; not "README.md"
# as a file name in code.
NAMED = re.compile(r"""README(?:\.md)?(?:,\s*|\s+\(?|\()["']([^"'\n]+)["']""")


def _headings() -> list[str]:
    text = re.sub(r"```.*?```", "", README, flags=re.S)     # a "# comment" in a code block is no heading
    return [m.group(2).strip() for m in re.finditer(r"^(#{2,4}) (.+)$", text, flags=re.M)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_contents_links_every_section_and_every_anchor_exists():
    contents = README.split("## Contents", 1)[1].split("\n## ", 1)[0]
    sections = [h for h in re.findall(r"^## (.+)$", README, flags=re.M) if h != "Contents"]
    listed = re.findall(r"\]\(#([^)]+)\)", contents)
    assert [s for s in sections if _slug(s) not in listed] == [], "sections missing from Contents"
    anchors = {_slug(h) for h in _headings()}
    broken = sorted({a for a in re.findall(r"\]\(#([^)]+)\)", README) if a not in anchors})
    assert not broken, f"links to no heading: {broken}"


def _sources():
    for pattern in ("skillmix_utils/**/*.py", "skillmix_utils/data/**/*.yaml", "configs/*.yaml",
                    "docs/*.md", "notebooks/*.py", "benchmarks/*.py", "Makefile", ".ci/run"):
        yield from sorted(ROOT.glob(pattern))


def test_every_readme_section_named_elsewhere_exists():
    headings = set(_headings())
    named = [(p.relative_to(ROOT).as_posix(), m.group(1)) for p in _sources() if p.is_file()
             for m in NAMED.finditer(p.read_text(encoding="utf-8"))]
    assert len(named) >= 10, named          # the pattern still finds the references
    missing = [f"{path}: README {name!r}" for path, name in named if name not in headings]
    assert not missing, "README sections named but not there:\n" + "\n".join(missing)


def _dry_run(config: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        env.pop(key, None)                   # a dry run needs no key
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "run", config, "--dry-run"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _usd(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, pattern
    return float(found.group(1).replace(",", ""))


def _row_usd(out: str, purpose: str) -> float:
    """The estimated dollars of a dry-run table row, by its purpose column."""
    rows = [m.group(1) for line in out.splitlines() if purpose in line
            for m in [re.search(r"\$?([\d,]+\.\d+)\s*$", line)] if m]
    assert len(rows) == 1, (purpose, out)
    return float(rows[0].replace(",", ""))


def test_repro_budget_figures_are_its_dry_run():
    out = _dry_run("configs/repro-budget.yaml")
    total = _usd(r"estimated API cost of what would run: \$([\d,.]+)", out)
    assert _usd(r"Its dry run prints \*\*\$([\d,.]+)\*\*", README) == total
    parts = {r"teacher texts \(\$(\d+)\)": "teacher: write",
             r"grades them three times \(\$(\d+)\)": "data: grade",
             r"student texts three times \(\$(\d+)\)": "eval: grade"}
    for quoted, purpose in parts.items():
        assert _usd(quoted, README) == round(_row_usd(out, purpose)), purpose


def test_api_cheap_figure_is_its_dry_run():
    out = _dry_run("configs/api-cheap.yaml")
    total = _usd(r"estimated API cost of what would run: \$([\d,.]+)", out)
    assert _usd(r"upper bound\s+of the cost \(about \$(\d+)", README) == pytest.approx(total, abs=0.5)
