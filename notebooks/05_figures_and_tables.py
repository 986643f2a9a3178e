# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
#   Skills Fraction, each cell "mean ± SEM (n=combinations) [95% interval]", the caption naming
#   the grader.
# * **Table 4** (data efficiency, when a grid trains on sub-samples), **Table 5** (graders
#   compared) and **Table 6** (agreement between graders), when the study has them.
# * A heat map of skill points earned per skill category.
#
# Tables are written as Markdown, LaTeX and CSV (`tables/`), figures as PNG and PDF (`figures/`), and
# everything is gathered into `report.html`, a single file that opens from disk with a browser
# for every generated text and each grader's reply.

# %% tags=["parameters"]
config_path = "../configs/demo.yaml"   # the study config (see configs/)
output_dir = ""                         # empty: outputs/<study name> at the project root
overrides = ""                          # JSON mapping of dotted fields, e.g. '{"scoring.explicit_name_rule": false}'

# %%
from IPython.display import Image, Markdown, display

from skillmix_utils.present import figures, paper_tables, report, views
from skillmix_utils.runner import notebook_config
from skillmix_utils.stages.tables import check_evaluated, write_metric_tables

cfg = notebook_config(config_path, overrides, output_dir)
print(f"study {cfg.name!r}, outputs in {cfg.out}")
if cfg.evaluation is not None and cfg.evaluation.enabled:
    check_evaluated(cfg)   # no evaluation record: says to run notebooks 02-04, writes nothing
if views.judge_banner(cfg):
    display(Markdown(views.judge_banner(cfg)))

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

# %% [markdown]
# ## Beyond the paper
#
# The checks the paper asked for and the experiments it reported without a way to set them up
# (README, "Beyond the paper"). Each cell shows what this study holds and says how to get the
# rest; nothing here calls a model.
#
# **Human grading.** `skillmix human CONFIG --rater NAME` serves a blind grading page on
# 127.0.0.1 (the config's `human:` section picks a seeded sample, stratified by student and k).
# Once someone has graded, this cell writes `human/agreement.csv`: per criterion and for full
# marks, each rater against each LLM grader and against the other raters (Cohen's kappa with a
# bootstrap interval, raw agreement, confusion counts).

# %%
from skillmix_utils.present import partitions, scaling, uncommon
from skillmix_utils.present.human import human_items, write_agreement
from skillmix_utils.present.human.agreement import summary_frame
from skillmix_utils.present.human.store import raters
from skillmix_utils.present.human.sample import grades_dir
from skillmix_utils.present.paper_tables import read_table

if (cfg.out / ("eval" if cfg.human.source == "eval" else "data") / "records.jsonl").exists():
    sample = human_items(cfg)
    strata = sorted({it.stratum for it in sample})
    print(f"human sample: {len(sample)} texts over {len(strata)} strata (student|k): {', '.join(strata)}")
    if raters(grades_dir(cfg)):
        agreement = write_agreement(cfg)
        display(Markdown(agreement["human_agreement_md"].read_text()))
    else:
        print(f"no human grades yet: skillmix human {config_path} --rater YOUR_NAME")

# %% [markdown]
# **Held-out gain and partitions.** The gain of the tuned student over the base one on the
# same held-out combinations, with a paired bootstrap interval. A grid over `catalog.partition`
# (configs/partitions.yaml) repeats the study per partition; its summary lands in the study's
# top-level `tables/partition_gain.csv` and `figures/partition_gain.png`.

# %%
import pandas as pd

students = cfg.evaluation.students if cfg.evaluation else []
if any(s.adapter for s in students) and any(not s.adapter for s in students):
    gains = pd.DataFrame(partitions.gain_rows(cfg))
    display(gains.round(3) if not gains.empty else Markdown("no held-out texts graded yet"))
print(f"partition of this study: {cfg.catalog.load().partition or 'the catalog file'}")

# %% [markdown]
# **Scaling.** Success against k, one line per student or training mix (a grid over data mixes
# and sub-sample sizes, configs/scaling.yaml, adds the data-efficiency curve against the number
# of training texts). **Skill subsets** (configs/uncommon-skills.yaml) get their own figure with
# the stochastic-parrot line.

# %%
scaled = scaling.write_scaling(cfg.out, tables_dir / "metrics.csv")
scaled.update(uncommon.write_uncommon(cfg))
for name, path in scaled.items():
    if name.endswith(".png"):
        display(Markdown(f"**{path.stem}**"))
        display(Image(filename=str(path)))
if "parrot_line" in scaled:
    display(read_table(scaled["parrot_line"]).round(4))

# %% [markdown]
# **Results of the Skill-Mix reference code.** `skillmix import-reference FOLDER OUT_DIR` reads a
# reference results folder (`k*_s*_v*_r*/<student>/records.csv`, `graded/by_<grader>_on_text_*/`)
# into skillmix records and metric tables. Set `reference_results` to such a folder to import it
# here, beside this study's outputs.

# %%
reference_results = ""      # e.g. "../../skill-mix/test"
if reference_results:
    from skillmix_utils.stages.reference_import import import_reference

    imported = import_reference(reference_results, cfg.out / "reference")
    display(read_table(imported["metrics"]).round(3))

# %% [markdown]
# The report is rebuilt so that it carries this section too.

# %%
path = report.build_report(cfg.out)
print(f"report: {path}")
