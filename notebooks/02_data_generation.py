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
# # 2. Generating the training data, D_SKILL-MIX(k)
#
# A strong **teacher** (GPT-4 in the paper) writes skill-mix texts with the two-turn prompt of
# notebook 1; a **grader** (GPT-4 again) scores every text on its k + 3 criteria, three times,
# and the majority vote of the rounds decides each point. Two rules are applied by code, not by
# the grader: the **length point** comes from a deterministic sentence count, and a skill whose
# name appears verbatim in the text earns nothing (the paper's "harder variant").
#
# Only texts with **full marks** are kept. The paper generated about 5,000 texts with k = 1 (all
# skills, training topics) and 10,000 each with k = 2 and 3 (training skills and topics) and kept
# 13,957. The kept texts are exported as the mixes D(1), D(1,2), D(1,2,3) (and any sub-samples),
# in chat form, for the fine-tuning notebook.
#
# The stage **resumes**: every text and grading is appended to `data/records.jsonl` as soon as it
# exists, and every model reply is cached, so re-running this notebook repeats no paid call.
# The data card records counts, keep rates, cost and a **contamination check** (no held-out skill
# or topic entered a split where it must not be).

# %% tags=["parameters"]
config_path = "../configs/demo.yaml"   # the study config (see configs/)
output_dir = ""                         # empty: outputs/<study name> at the project root
overrides = ""                          # JSON mapping of dotted fields, e.g. '{"data.counts": {"1": 8}}'
dry_run = False                         # True: print the plan and its estimated cost, write nothing

# %%
import json

import pandas as pd
from IPython.display import Image, Markdown, display

from skillmix_utils.present import figures, views
from skillmix_utils.runner import notebook_config
from skillmix_utils.stages.current import current_records
from skillmix_utils.stages.datagen import run_datagen

pd.set_option("display.max_colwidth", 160)
cfg = notebook_config(config_path, overrides, output_dir)
print(f"study {cfg.name!r}, outputs in {cfg.out}")
print(f"teacher {cfg.data.teacher.spec}; graders " + ", ".join(f"{g.label} ({g.method}, {g.rounds} rounds)" for g in cfg.data.graders))
print("generations per k:", dict(cfg.data.counts))
if views.judge_banner(cfg):
    display(Markdown(views.judge_banner(cfg)))

# %% [markdown]
# ## Run the stage
# First the plan and its estimated cost (nothing is written), then the stage itself, shown as
# one progress display (texts written and graded of those planned, failures, cost, ETA). With
# `dry_run = True` the notebook stops after the plan: the cells below show outputs only when
# they exist.

# %%
_ = run_datagen(cfg, dry_run=True)   # prints the plan

# %%
paths = {} if dry_run else run_datagen(cfg)
for name, path in paths.items():
    print(f"{name}: {path}")
card_path = cfg.out / "data" / "data_card.json"
have_data = card_path.exists()
if not have_data:
    print("dry run: nothing written yet, so the data card and texts below are skipped")

# %% [markdown]
# ## The data card

# %%
if have_data:
    card = json.loads(card_path.read_text())
    display(views.count_frame(card["per_k"]))
    print(f"kept {card['total']['kept']} of {card['total']['graded']} graded; cost ${card['cost_usd']['total']:.4f}; "
          f"contamination check {'passed' if card['contamination_check']['passed'] else 'FAILED'}")
    display(pd.DataFrame([{"mix": name, "rows": m["rows"], "per k": m["per_k"]}
                          for name, m in {**card["mixes"], **card["subsamples"]}.items()]))
    kr = figures.keep_rate(card, cfg.out / "figures")
    if kr:
        display(Image(filename=str(kr[0])))

# %% [markdown]
# ## What the teacher wrote
# Kept texts first; the voted points are in rubric order (skills, topic, sense, length).

# %%
if have_data:
    texts = views.records_frame(current_records(cfg, "datagen"))
    display(views.texts_view(texts.sort_values("kept", ascending=False, key=lambda s: s.fillna(False)).head(12)))

# %% [markdown]
# How the answer was cut out of the teacher's reply (docs/protocol.md §3: after the last "Answer:",
# before the first "Explanation"; other shapes are handled and counted):

# %%
if have_data:
    display(pd.Series(card["extraction_rules"], name="texts").rename_axis("extraction rule"))
