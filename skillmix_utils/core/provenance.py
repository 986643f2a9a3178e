"""Where this code lives and which version it is: the checkout root and its git commit.

Reports, model cards and run summaries name the commit; launched training processes, the
notebook runner and the cache location (llm/models.cache_dir) find the checkout from here.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

# skillmix_utils/core/provenance.py -> the folder holding skillmix_utils/ (the checkout, or
# site-packages for an installed copy).
CHECKOUT = Path(__file__).resolve().parents[2]


def in_checkout() -> bool:
    """True when the package runs from skillmix's own source checkout (an editable install or
    PYTHONPATH), not from an installed copy in site-packages.

    >>> isinstance(in_checkout(), bool)
    True
    """
    try:
        return 'name = "skillmix"' in (CHECKOUT / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return False


def git_commit() -> str:
    """The code version: git commit of this checkout (+ '-dirty'), or 'unknown'."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=CHECKOUT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
