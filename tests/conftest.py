"""Shared test fixtures.

The embedded model is converted once per machine into SKILLMIX_CACHE (default: .cache/ in the
repository, so a CI run converts it once and every test reuses it).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SKILLMIX_CACHE", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def embedded_model() -> str:
    """Folder of the embedded SmolLM2-135M-Instruct in plain Hugging Face form."""
    from skillmix_utils.models import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
