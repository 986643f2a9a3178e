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
# # 4. Evaluating with SKILL-MIX(k)
#
# Every **student** (the base model, and the base model with the adapter trained in notebook 3)
# writes texts for fresh combinations in three **settings**:
#
# * SKILL-MIX_train(k): training skills and topics (seen in training, in other combinations);
# * SKILL-MIX_held-out(k): held-out skills and topics, **never seen in training**: the main test;
# * SKILL-MIX_all(k): all skills and topics.
#
# For each k the same combinations are written G times (generation rounds) and every text is
# graded R times by each grader; per criterion the majority vote decides. Per graded text:
#
# * **Ratio of Full Marks**: 1 if all k + 3 points are earned;
# * **Ratio of All Skills**: 1 if all k skill points and at least 2 of the other 3 are earned;
# * **Skills Fraction**: the fraction of skill points earned, if all 3 other points are earned.
#
# Per combination the best of the G generations counts; the table reports the mean over
# combinations with its standard error and a 95% interval (Wilson's score interval where every
# combination scores 0 or 1, as both ratios do; a bootstrap for a fractional Skills Fraction;
# the paper printed no error bars).
# A grader reply that cannot be read is **parse_failed**: kept, counted, excluded from the vote,
# never silently a zero.

# %% tags=["parameters"]
config_path = "../configs/demo.yaml"   # the study config (see configs/)
output_dir = ""                         # empty: outputs/<study name> at the project root
overrides = ""                          # JSON mapping of dotted fields, e.g. '{"evaluation.n_combinations": 10}'
dry_run = False                         # True: print the plan and its estimated cost, write nothing

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from skillmix_utils.present import figures, paper_tables, views
from skillmix_utils.runner import notebook_config
from skillmix_utils.stages.current import current_records
from skillmix_utils.stages.evaluate import run_evaluation

pd.set_option("display.max_colwidth", 160)
cfg = notebook_config(config_path, overrides, output_dir)
ev = cfg.evaluation
print(f"study {cfg.name!r}, outputs in {cfg.out}")
print("students:", ", ".join(s.name + (f" (+ {s.adapter})" if s.adapter else "") for s in ev.students))
print(f"settings {ev.settings}, k in {ev.ks}, {ev.n_combinations} combinations, "
      f"{ev.generation_rounds} generation rounds; graders "
      + ", ".join(f"{g.label} ({g.method}, {g.rounds} rounds)" for g in ev.graders))
if views.judge_banner(cfg):
    display(Markdown(views.judge_banner(cfg)))

# %% [markdown]
# ## Run the stage
# The plan and its estimated cost first, then the evaluation (it resumes from `eval/records.jsonl`),
# shown as one progress display. With `dry_run = True` the notebook stops after the plan.

# %%
_ = run_evaluation(cfg, dry_run=True)   # prints the plan

# %%
paths = {} if dry_run else run_evaluation(cfg)
for name, path in paths.items():
    print(f"{name}: {path}")
tables = cfg.out / "eval" / "tables"
have_results = (tables / "metrics.csv").exists()
if not have_results:
    print("dry run: nothing written yet, so the results below are skipped")

# %% [markdown]
# ## Results
# Ratio of Full Marks and Skills Fraction, mean ± SEM over n combinations (n in parentheses, the
# 95% interval in brackets), for the first grader of the config (named above each table). Each
# combination counts the best of its generation rounds.

# %%
if have_results:
    metrics = pd.read_csv(tables / "metrics.csv")
    display(Markdown(views.METRIC_DEFINITIONS_MD))
    judge = paper_tables.judge_of(metrics, paper_tables.main_grader(metrics))
    display(Markdown(f"**Ratio of Full Marks**, {judge}"))
    display(paper_tables.metric_table(metrics, "ratio_full_marks", with_n=True))
    display(Markdown(f"**Skills Fraction**, {judge}"))
    display(paper_tables.metric_table(metrics, "skills_fraction", with_n=True))

# %%
if have_results:
    fig = figures.figure2_full_marks(metrics, cfg.out / "figures")
    display(Image(filename=str(fig[0])))

# %% [markdown]
# Gradings that could not be read or failed, per student, setting, k and grader:

# %%
if have_results:
    display(paper_tables.read_table(tables / "parse_failures.csv"))

# %% [markdown]
# ## What the students wrote
# One text per student and k (the report's sample browser has all of them, with every grader's
# reply).

# %%
if have_results:
    texts = views.records_frame(current_records(cfg, "eval"))
    display(views.texts_view(texts.groupby(["student", "k"]).head(1)))
