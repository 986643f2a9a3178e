"""Figures, paper tables and the report from a synthetic study (no model, no stage)."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from synthetic import make_study, metrics_frame

from skillmix_utils.present import figures, paper_tables, report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def study(tmp_path):
    return make_study(tmp_path)


def _is_png(path):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 2000


def test_paper_tables(study):
    written = paper_tables.write_paper_tables(study / "eval/tables/metrics.csv", study / "tables",
                                              agreement=study / "eval/tables/agreement.csv")
    for name in ("table2_full_marks", "table3_skills_fraction", "table5_graders", "table6_agreement",
                 "paper_comparison"):
        assert (study / "tables" / f"{name}.md").exists() and (study / "tables" / f"{name}.tex").exists()
    assert "table4_data_efficiency.md" not in written       # no grid over training data
    md = (study / "tables/table2_full_marks.md").read_text()
    body = [l for l in md.splitlines() if l.startswith("| llama")]
    assert len(body) == 4                                     # 2 students x 2 settings
    assert md.splitlines()[2] == "| student | setting | k=1 | k=2 | k=3 |"
    assert all(l.count("±") == 3 for l in body)
    tex = (study / "tables/table2_full_marks.tex").read_text()
    assert r"\begin{tabular}{llccc}" in tex and r"held\_out" in tex and r"$\pm$" in tex
    t5 = paper_tables.grader_table(study / "eval/tables/metrics.csv")
    assert list(t5.columns) == ["student", "setting", "k", "gpt-4", "claude-3-opus"] and len(t5) == 12
    comp = paper_tables.paper_comparison_table(study / "eval/tables/metrics.csv")
    row = comp[(comp["setting"] == "held_out") & (comp["k"] == 3)].iloc[0]
    assert (row["paper base"], row["paper tuned"]) == ("0.04", "0.37") and "±" in row["ours tuned"]


def test_metric_table_uses_the_first_grader_and_sems(study):
    df = metrics_frame()
    t = paper_tables.metric_table(df, "ratio_full_marks")
    first = df[(df.grader == "gpt-4") & (df.student == "llama-2-13b-chat") & (df.setting == "train") & (df.k == 1)].iloc[0]
    assert t.iloc[0]["k=1"] == (f"{first.ratio_full_marks:.2f} ± {first.ratio_full_marks_sem:.2f}"
                                f" (n={first.n_combinations}) [{first.ratio_full_marks_ci_low:.2f},"
                                f" {first.ratio_full_marks_ci_high:.2f}]")


def test_data_efficiency_table_from_a_grid_frame():
    a = metrics_frame().assign(run="data_mix=1-2-3", train_data="D(1,2,3)", n_train_texts=13957)
    b = metrics_frame().assign(run="subsample=sub8000", train_data="sub8000", n_train_texts=8000)
    t = paper_tables.data_efficiency_table(pd.concat([a, b]))
    assert set(t["train_data"]) == {"D(1,2,3) (n=13957)", "sub8000 (n=8000)"}
    assert len(t) == 4                                        # 2 data x 2 settings, tuned only


def test_paper_numbers_are_protocol_section_8():
    ref = paper_tables.paper_numbers()
    assert len(ref) == 6
    row = ref[(ref.model == "mistral-7b-instruct-v0.2")].iloc[0]
    assert (row.setting, row.k, row.base, row.tuned) == ("held_out", 3, 0.08, 0.49)
    assert paper_tables.match_paper_model("hf:smollm2-135m-instruct") is None


def test_figures_are_non_empty_images(study):
    out = study / "figures"
    written = figures.write_figures(study / "eval/tables", out,
                                    loss_files=[study / "train/lora-k1-2-3/loss.json"])
    for name in ("figure2_full_marks", "figure2_skills_fraction", "category_heatmap", "loss_curve"):
        assert _is_png(out / f"{name}.png"), name
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name
    assert set(written) >= {"figure2_full_marks.png", "category_heatmap.pdf"}


def test_figures_skip_missing_inputs(tmp_path):
    assert figures.write_figures(tmp_path / "nothing", tmp_path / "figs") == {}
    assert figures.category_heatmap(pd.DataFrame({"x": [1]}), tmp_path) == []


def test_loss_file_shapes(tmp_path):
    for i, data in enumerate([[{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}],
                              {"steps": [1, 2], "loss": [2.0, 1.5]},
                              {"history": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]}]):
        p = tmp_path / f"l{i}.json"
        p.write_text(json.dumps(data))
        assert figures.read_loss(p)["loss"].tolist() == [2.0, 1.5]


def test_report_is_self_contained(study):
    figures.write_figures(study / "eval/tables", study / "figures")
    path = report.build_report(study)
    html = path.read_text()
    assert path == study / "report.html"
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']https?://""", html)          # no CDN, no network
    data = json.loads(re.search(r'<script id="samples-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1).replace("<\\/", "</"))
    assert len(data) == 24 and {"answer", "gradings", "skills", "setting", "k"} <= set(data[0])
    assert "<b>bold</b>" not in html.split('<script id="samples-data"')[0]  # escaped outside JSON
    assert "Ratio of Full Marks" in html and "Grader agreement" in html


def test_report_of_an_empty_study(tmp_path):
    path = report.build_report(tmp_path / "empty")
    assert "No metric tables yet" in path.read_text()


def test_grid_summary_stacks_runs_and_writes_table4(tmp_path):
    from skillmix_utils.core.config import StudyConfig
    from skillmix_utils.present.grid_summary import summarize_grid

    runs = []
    for label, mix, sub in (("data_mix=1-2-3", [1, 2, 3], None), ("subsample=sub8000", [1, 2, 3], "sub8000")):
        out = tmp_path / "grid" / label
        (out / "eval/tables").mkdir(parents=True)
        metrics_frame().to_csv(out / "eval/tables/metrics.csv", index=False)
        cfg = StudyConfig.model_validate({
            "name": "g", "output_dir": str(out),
            "train": {"base_model": "smollm2-135m-instruct", "data_mix": mix, "subsample": sub}})
        runs.append((label, cfg))
    written = summarize_grid(tmp_path, runs)
    stacked = pd.read_csv(written["grid_metrics"])
    assert set(stacked["run"]) == {"data_mix=1-2-3", "subsample=sub8000"}
    assert set(stacked["train_data"]) == {"D(1,2,3)", "sub8000"}
    assert (tmp_path / "tables" / "table4_data_efficiency.md").exists()
    t2 = (tmp_path / "tables" / "table2_full_marks.md").read_text()
    assert "subsample=sub8000 / llama-2-13b-chat-ft" in t2
    assert (tmp_path / "figures" / "grid_figure2_full_marks.png").read_bytes().startswith(PNG)


def test_paper_comparison_takes_the_run_with_the_paper_data_mix():
    """In a grid the comparison used the first tuned row whatever its data mix (the D(1) run's
    value stood beside every D(1,2,3) number); each number now comes from its own run."""
    runs = []
    for label, mix, level in (("data_mix=1", "D(1)", 0.1), ("data_mix=1-2", "D(1,2)", 0.2),
                              ("data_mix=1-2-3", "D(1,2,3)", 0.3)):
        df = metrics_frame()
        df = pd.concat([df, df[df.setting == "train"].assign(setting="all")], ignore_index=True)
        df = df.assign(run=label, train_data=mix)
        tuned = df.adapter.astype(str).str.len() > 0
        df.loc[tuned, "ratio_full_marks"] = level
        df.loc[tuned, "ratio_full_marks_sem"] = 0.01
        runs.append(df)
    comp = paper_tables.paper_comparison_table(pd.concat(runs, ignore_index=True))
    held = comp[(comp["setting"] == "held_out") & (comp["k"] == 3)].iloc[0]
    assert held["ours tuned"].startswith("0.30 ± 0.01 (n=20) [")
    assert held["ours tuned from"] == "data_mix=1-2-3 / llama-2-13b-chat-ft"
    k1 = comp[comp["k"] == 1].iloc[0]                       # the paper's D(1) number
    assert k1["ours tuned"].startswith("0.10 ± 0.01 (n=") and k1["ours tuned from"].startswith("data_mix=1 /")
    only_d1 = paper_tables.paper_comparison_table(runs[0])
    row = only_d1[(only_d1["setting"] == "held_out") & (only_d1["k"] == 3)].iloc[0]
    assert row["ours tuned"] == "–" and row["ours tuned from"] == "no run trained on D(1,2,3)"


def test_figure2_always_draws_an_interval_and_the_papers_marks_for_any_student(tmp_path, monkeypatch):
    """The demo's base point (0 of 12, SEM 0) had no error bar and looked certain; its students
    are no paper model, so the paper's numbers were not drawn at all."""
    drawn = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, out, name: drawn.setdefault(name, fig) and [])
    students = [("smol-base", "hf:smollm2-135m-instruct", None),
                ("smol-tuned", "hf:smollm2-135m-instruct", "outputs/x/train/run/adapter")]
    df = metrics_frame(students=students, graders=["smollm2-yes-no"])
    df = df[(df["setting"] == "held_out") & (df["k"] == 3)].assign(n_combinations=12)
    base = df["adapter"].isna()
    df.loc[base, ["ratio_full_marks", "ratio_full_marks_sem"]] = 0.0
    figures.figure2_full_marks(df, tmp_path)
    fig = drawn["figure2_full_marks"]
    ax = fig.axes[0]
    labels = fig.legends[0].get_texts()
    assert {"paper (LLaMA-2-13B-Chat), base", "paper (Mistral-7B-Instruct-v0.2), fine-tuned"} <= \
        {t.get_text() for t in labels}
    # the base line's error bar: from 0 up to Wilson's 0.24 for 0 of 12
    base_bar = ax.containers[0]
    segments = base_bar.lines[2][0].get_segments()
    (_, y0), (_, y1) = segments[0]
    assert (y0, y1) == (0.0, pytest.approx(0.2425, abs=1e-3))


def test_the_page_carries_transcripts_for_the_first_texts_only(tmp_path):
    """A paper-sized study must not make a report of tens of MB: past the limit a card keeps
    its answer, points and finish reasons, and says where the transcript is."""
    from synthetic import paired_records

    rows = report.sample_rows(paired_records(), "eval", transcripts=2)
    assert [r["conversation"] is not None for r in rows[:3]] == [True, True, False]
    assert rows[2]["gradings"][0]["prompt"] is None and rows[2]["finish"] == ["stop", "stop"]
    assert rows[0]["conversation"][1]["content"].startswith("Answer:")
