"""One cache for make, the command line, the Python API and a notebook kernel: the converted
model and the paid replies that `make demo` left are the ones `skillmix doctor`, `skillmix cache
info` and JupyterLab find (before, the Makefile forced `.cache/` and everything else used
`~/.cache/skillmix`, so the model was converted twice and the cache looked empty)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SKILLMIX_CACHE"}   # conftest sets it
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _api(cwd: Path, **extra) -> Path:
    code = "import skillmix_utils.llm.models as m; print(m.cache_dir())"
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(**extra),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return Path(out.strip())


def _cli(cwd: Path, **extra) -> Path:
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "cache", "info"], cwd=cwd,
                          env=_env(**extra), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return Path(re.match(r"cache: (\S+)", done.stdout).group(1))


def test_cli_api_and_kernel_share_the_checkouts_cache(tmp_path):
    expected = ROOT / ".cache"
    # From the project root (make, the CLI), notebooks/ (a JupyterLab kernel) and elsewhere.
    for cwd in (ROOT, ROOT / "notebooks", tmp_path):
        assert _api(cwd) == expected, cwd
        assert _cli(cwd) == expected, cwd


def test_skillmix_cache_overrides_everywhere(tmp_path):
    mine = tmp_path / "my-cache"
    assert _api(ROOT, SKILLMIX_CACHE=str(mine)) == mine
    assert _cli(tmp_path, SKILLMIX_CACHE=str(mine)) == mine


def test_make_defers_to_the_package():
    """The Makefile sets no cache of its own; its model step asks the package."""
    makefile = (ROOT / "Makefile").read_text()
    assignments = [l for l in makefile.splitlines()
                   if re.match(r"\s*(export\s+)?SKILLMIX_CACHE\s*[:?+]?=", l)]
    assert not assignments, assignments
    assert "from skillmix_utils.llm.models import resolve_model" in makefile


def test_an_installed_copy_uses_the_home_cache(monkeypatch, tmp_path):
    from skillmix_utils.core import provenance
    from skillmix_utils.llm import models

    monkeypatch.delenv("SKILLMIX_CACHE", raising=False)
    monkeypatch.setattr(provenance, "CHECKOUT", tmp_path / "site-packages")   # no pyproject.toml
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.cache_dir() == tmp_path / "home" / ".cache" / "skillmix"
