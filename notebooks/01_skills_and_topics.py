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
# # 1. Skills and topics
#
# SKILL-MIX asks a model to write a short text, about a given **topic**, that illustrates **k
# language skills at once** (a metaphor, a red herring, modus ponens ...). The paper "Can Models
# Learn Skill Composition from Examples?" (Zhao et al., NeurIPS 2024) fine-tunes small models on
# texts that combine k = 1, 2 or 3 skills and asks whether they then compose skills they were
# **never trained on** and more skills than they saw together.
#
# That question needs a split:
#
# * **S_train**: the skills of the *literary* and *rhetorical* categories (53 in the paper),
#   and half the topics (a seeded random draw);
# * **S_held-out**: every other category (reasoning, logic, theory of mind, pragmatics, common
#   sense, physical knowledge; 48 skills) and the other half of the topics.
#
# The paper's 101-skill list is private (only 10 names were published). This project ships an
# **open catalog of the same shape** that keeps the 10 published skills and topics; users who hold
# the private lists plug them in with `catalog.skills` / `catalog.topics` in the study config.
#
# This notebook explores the catalog, draws the combinations the study will use and shows the
# exact prompts the models receive. It writes nothing but one figure.

# %% tags=["parameters"]
config_path = "../configs/demo.yaml"   # the study config (see configs/)
output_dir = ""                         # empty: outputs/<study name> at the project root
overrides = ""                          # JSON mapping of dotted fields, e.g. '{"evaluation.ks": [1, 2]}'

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from skillmix_utils.core import prompts
from skillmix_utils.present import figures, report, views
from skillmix_utils.core.catalog import summary_table
from skillmix_utils.runner import notebook_config
from skillmix_utils.core.sampling import sample_combinations

pd.set_option("display.max_colwidth", 120)
cfg = notebook_config(config_path, overrides, output_dir)   # validated: a bad field stops here
print(f"study {cfg.name!r}, outputs in {cfg.out}")

# %% [markdown]
# ## The catalog
# Each skill has a name, a category, a definition and an example; the split follows from the
# category. `skillmix catalog` prints the same summary on the command line.

# %%
catalog = cfg.catalog.load()      # the built-in catalog, or the files named in catalog.skills / topics
print(summary_table(catalog))

# %%
skills = views.catalog_frame(catalog)
display(pd.crosstab(skills["category"], skills["split"], margins=True))
display(Image(filename=str(figures.catalog_counts(catalog, cfg.out / "figures")[0])))

# %% [markdown]
# A few skills from each split, with the definitions and examples the prompts quote:

# %%
display(skills.groupby("split").head(4))

# %%
topics = pd.DataFrame([{"topic": t.name, "split": t.split} for t in catalog.topics])
display(topics.groupby("split")["topic"].apply(lambda s: ", ".join(s.head(12)) + " ..."))

# %% [markdown]
# ## Sampling combinations
# A combination is k distinct skills and one topic drawn uniformly from the chosen pools with a
# seed; the same seed gives the same combinations on any machine. Every generation round reuses the
# **same** combinations, which is what makes "the best of three generations" meaningful.
#
# The data stage draws from the pools of `data.pools` (k = 1: all skills with training topics;
# k = 2, 3: training skills and topics); the evaluation draws, for each setting, skills and topics
# from the same pool (`train`, `held_out` or `all`), never a combination of the training data
# (docs/protocol.md §2). The first three of each setting and k:

# %%
from skillmix_utils.stages.draws import eval_combinations

drawn = []
if cfg.evaluation is not None:
    for setting in cfg.evaluation.settings:
        for k in cfg.evaluation.ks:
            drawn += eval_combinations(cfg, catalog, setting, k)[:3]
display(views.combinations_frame(drawn))

# %% [markdown]
# ## The prompts
# The student (or teacher) gets a two-turn conversation, the published wording rendered exactly
# (`skillmix_utils/data/prompts/`). The second turn asks for at most max(1, k − 1) sentences.

# %%
example = drawn[-1] if drawn else sample_combinations(catalog, 2, 1, seed=0, skills="train", topics="train")[0]
chosen = [catalog.skill(name) for name in example.skills]
display(Markdown("**Turn 1**"))
print(prompts.generation_turn1(chosen, example.topic))
display(Markdown("**Turn 2** (after the model's first reply)"))
print(prompts.generation_turn2(example.k))

# %% [markdown]
# The grader sees the student's answer and a rubric of k + 3 criteria: one per skill, the
# topic, "makes sense", and the length. The paper's GPT-4 prompt asks for a table:

# %%
answer = "(the student's answer goes here)"
print(prompts.grading_prompt(chosen, example.topic, answer, variant="table"))

# %% [markdown]
# A small local model cannot be trusted to write that table, so local graders
# (`method: yes_no_logprob`) are asked one yes/no question per criterion and the answer is read
# from the probabilities of "Yes" and "No". Every output labels such grades for what they are.

# %%
from skillmix_utils.stages.local_judge import judge_prompts

for question in judge_prompts(chosen, example.topic, answer)[:2]:
    print(question, "\n---")
