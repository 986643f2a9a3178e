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
# # 3. Fine-tuning the student
#
# The paper fine-tunes LLaMA-2-13B-Chat and Mistral-7B-Instruct-v0.2 on D_SKILL-MIX:
#
# | item | the paper |
# |---|---|
# | steps, batch | 4,000 steps of batch 64 |
# | optimiser | Adam, linear warm-up for 64 steps, then constant 2e-5 |
# | sequence length | 1,024 tokens |
# | one example | turn-1 prompt, answer 1, turn-2 prompt, answer 2, as one conversation |
# | loss | **only on the two answers** (including each answer's end-of-turn token, so the model learns to stop) |
# | pre-training text | mixed in "as in RLHF" to keep general ability (corpus and ratio not published) |
#
# Here the same recipe runs as LoRA, QLoRA (4-bit) or full fine-tuning (`train.mode`). Short
# skill-mix texts are **packed** so that nearly every token in a batch is real, without one example
# attending to another. Checkpoints are written every `train.checkpoint_every` steps; a killed run
# resumes from the last one.
#
# Training runs in a **separate process** (`skillmix train`), never inside this kernel: a crash or
# an out-of-memory error cannot take the notebook down, and multi-GPU launchers (`accelerate`) need
# their own processes. This cell shows its notes and one progress line (step, loss, ETA); the whole
# output is in `train/train.log`. Loss, learning rate, gradient norm, tokens/s and a held-out loss
# (`train.eval_every`) also go to TensorBoard: `tensorboard --logdir outputs/<study>/train`.

# %% tags=["parameters"]
config_path = "../configs/demo.yaml"   # the study config (see configs/)
output_dir = ""                         # empty: outputs/<study name> at the project root
overrides = ""                          # JSON mapping of dotted fields, e.g. '{"train.steps": 20}'
restart = False                         # True: ignore existing checkpoints and train again

# %%
import json

import pandas as pd
from IPython.display import Image, Markdown, display

from skillmix_utils.present import figures
from skillmix_utils.runner import launch_training, notebook_config
from skillmix_utils.stages.train import run_dir

cfg = notebook_config(config_path, overrides, output_dir)
t = cfg.train
print(f"study {cfg.name!r}, outputs in {cfg.out}")
display(pd.Series({"base model": t.base_model, "mode": t.mode, "data mix": t.data_mix,
                   "sub-sample": t.subsample, "steps": t.steps, "batch size": t.batch_size,
                   "per-device batch": t.per_device_batch_size, "learning rate": t.learning_rate,
                   "warm-up steps": t.warmup_steps, "max length": t.max_length,
                   "pre-training ratio": t.pretrain.ratio, "launcher": t.launcher}, name="train").to_frame())

# %% [markdown]
# ## Train (in a subprocess)
# A finished run is not repeated (its `train_summary.json` exists); set `restart = True` to
# train again from scratch.

# %%
_ = launch_training(cfg, restart=restart)

# %% [markdown]
# ## What the run recorded
# `train_summary.json` holds the effective batch, the real-token fraction of the packed batches,
# examples truncated or dropped, throughput and the final loss; `loss.json` one entry per step.

# %%
root = run_dir(cfg)
summary = json.loads((root / "train_summary.json").read_text())
display(pd.Series({k: v for k, v in summary.items() if not isinstance(v, (dict, list))}, name=root.name).to_frame())

# %%
curve = figures.loss_curve([root / "loss.json"], cfg.out / "figures")
if curve:
    display(Image(filename=str(curve[0])))

# %%
# The card is also the adapter folder's README.md, ready for the Hugging Face hub: YAML front
# matter (base model by hub id, licence, tags, data), then the recipe.
card = root / "model_card.md"
if card.exists():
    text = card.read_text()
    meta, body = (text.split("---\n", 2)[1:] if text.startswith("---\n") else ("", text))
    if meta:
        print(meta)
    display(Markdown(body.replace("\n# ", "\n### ", 1)))
