"""Helpers for the training tests: a small study around tests/data/mix_small.jsonl."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def rows() -> list[dict]:
    """The rows of tests/data/mix_small.jsonl (a dozen D_SKILL-MIX-shaped conversations)."""
    return [json.loads(line) for line in (DATA / "mix_small.jsonl").read_text().splitlines()]


def study(out: Path, **train) -> "StudyConfig":  # noqa: F821
    """tests/data/train_small.yaml with outputs in `out`, the fixture mix in place as k1-2, and
    `train` overriding train.* fields (dotted names like "lora.r" reach nested ones)."""
    from skillmix_utils.core.config import load_study_config

    mixes = out / "data" / "mixes"
    mixes.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "mix_small.jsonl", mixes / "k1-2.jsonl")
    overrides = {"output_dir": str(out), **{f"train.{k}": v for k, v in train.items()}}
    return load_study_config(DATA / "train_small.yaml", overrides)


@pytest.fixture(scope="session")
def new_study(embedded_model):
    """The `study` helper as a fixture (for module-scoped fixtures that need a study)."""
    return study


@pytest.fixture
def make_study(tmp_path, embedded_model):
    """make_study(**train_overrides) -> StudyConfig with the fixture mix in place as k1-2."""

    def make(out: Path | None = None, **train) -> "StudyConfig":  # noqa: F821
        return study(out or tmp_path / "study", **train)

    return make
