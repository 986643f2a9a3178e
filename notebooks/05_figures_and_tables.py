# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. The paper's figures and tables, from your run
#
# Everything here is recomputed from the records of notebooks 2–4 (no model is called):
#
# * **Figure 2**: Ratio of Full Marks against k, base (dashed) vs fine-tuned (solid), one panel
#   per setting, error bars = ±1 standard error of the mean (SEM) over the n combinations. When a student is one of the paper's models, the
#   numbers the paper quotes appear as stars (hollow: base, filled: fine-tuned).
# * **Tables 2–3**: each student (or data mix, in a grid) × setting × k, Ratio of Full Marks and
#   Skills Fraction with standard errors.
# * **Table 4** (data efficiency, when a grid trains on sub-samples), **Table 5** (graders
#   compared) and **Table 6** (agreement between graders), when the study has them.
# * A heat map of skill points earned per skill category.
#
# Tables are written as Markdown and LaTeX (`tables/`), figures as PNG and PDF (`figures/`), and
# everything is gathered into `report.html`, a single file that opens from disk with a browser
# for every generated text and each grader's reply.

# %% tags=["parameters"]
config_path = "../configs/demo.yaml"   # the study config (see configs/)
output_dir = ""                         # empty: outputs/<study name> at the project root
overrides = ""                          # JSON mapping of dotted fields, e.g. '{"scoring.explicit_name_rule": false}'

# %%
from IPython.display import Image, Markdown, display

from skillmix_utils import figures, paper_tables, report
from skillmix_utils.runner import notebook_config
from skillmix_utils.stages.tables import write_metric_tables

cfg = notebook_config(config_path, overrides, output_dir)
print(f"study {cfg.name!r}, outputs in {cfg.out}")
if report.judge_banner(cfg):
    display(Markdown(report.judge_banner(cfg)))

# %% [markdown]
# The metric tables are recomputed from `eval/records.jsonl` with the current `scoring` settings
# (changing the explicit-name rule or the sentence counter needs no new model call).

# %%
for name, path in write_metric_tables(cfg).items():
    print(f"{name}: {path}")

# %%
tables_dir = cfg.out / "eval" / "tables"
written = paper_tables.write_paper_tables(tables_dir / "metrics.csv", cfg.out / "tables",
                                          agreement=tables_dir / "agreement.csv")
for name in written:
    if name.endswith(".md"):
        display(Markdown(written[name].read_text()))

# %%
figs = figures.write_figures(tables_dir, cfg.out / "figures",
                             loss_files=sorted(cfg.out.glob("train/*/loss.json")))
for name, path in figs.items():
    if name.endswith(".png"):
        display(Markdown(f"**{path.stem}**"))
        display(Image(filename=str(path)))

# %% [markdown]
# ## The report

# %%
path = report.build_report(cfg.out)
print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB); open it in a browser")
