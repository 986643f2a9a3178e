"""Figures a reader can trust at a glance: whole-number steps on the loss curve, a few round
loss ticks, and the number of skill points in every heat-map cell."""
from __future__ import annotations

import pandas as pd
import pytest

from skillmix_utils.present import figures


@pytest.fixture()
def drawn(monkeypatch):
    """The figures a function draws, kept open instead of written."""
    kept = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, out_dir, name: kept.append(fig) or [])
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


def test_loss_curve_steps_are_whole_and_loss_ticks_few(tmp_path, drawn):
    # The demo's three steps: loss 2.61, 2.57, 2.52 drew steps 1.00, 1.25, ... and a tick
    # every 0.01 of loss.
    run = tmp_path / "lora-k1-2-3"
    run.mkdir()
    (run / "loss.json").write_text(
        '[{"step": 1, "loss": 2.6064}, {"step": 2, "loss": 2.5660}, {"step": 3, "loss": 2.5249}]')
    figures.loss_curve([run / "loss.json"], tmp_path)
    ax = drawn[0].axes[0]
    lo, hi = ax.get_xlim()
    steps = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert steps == [1, 2, 3]
    ylo, yhi = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if ylo <= t <= yhi]
    assert 2 <= len(ticks) <= 6


def test_heatmap_cells_show_their_n(tmp_path, drawn):
    per_category = pd.DataFrame({
        "student": ["base", "base", "tuned", "tuned"], "setting": ["held_out"] * 4, "k": [3] * 4,
        "grader": ["judge"] * 4, "category": ["logical", "pragmatics"] * 2,
        "n_skill_points": [8, 7, 8, 2], "points_earned": [0, 2, 4, 2],
        "fraction_earned": [0.0, 2 / 7, 0.5, 1.0]})
    figures.category_heatmap(per_category, tmp_path)
    texts = [t.get_text() for t in drawn[0].axes[0].texts]
    assert "1.00\nn=2" in texts and "0.29\nn=7" in texts and "0.00\nn=8" in texts
