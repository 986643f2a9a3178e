"""Training throughput, three ways, same model, data, steps, batch, LoRA and learning rate:

    .venv/bin/python benchmarks/bench_training.py --steps 3 --batch 4

1. packed: this project's trainer (padding-free packing; a block-diagonal mask on the CPU);
2. padded: the same trainer without packing: one row per example, each micro-batch padded to
   its longest example (examples are cut at max_length, 1,024 by default, the paper's);
3. trl:    TRL's SFTTrainer configured as a competent user would on the same hardware: fp32 on
   a CPU (bf16 on a GPU), no gradient checkpointing (ours does not use it either), the loss on
   the assistant's turns only (`assistant_only_loss`, through a copy of the model's chat
   template with `{% generation %}` markers, the end-of-turn token included as ours does), and
   padding-free packed batches where TRL supports them: with FlashAttention on a GPU. On a CPU
   TRL's padding-free batches would let examples attend to each other (it passes no mask), so
   it pads to the longest example of each batch, its default, and says so.

Each way runs in its own process (accelerate's state is per process). Prints real tokens per
second (tokens that belong to an example, divided by the time spent in optimiser steps), the
real-token fraction (real / computed tokens), the ratios against `trl` and the final losses:
all three put the loss on the answers only, and TRL reads the examples in the order ours draws
them (sequential sampler), so all three see the same batches and the losses compare; they
differ only by the LoRA matrices' random initialisation. Model loading and data preparation are not
timed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _study(args, out: Path, packing: bool):
    from skillmix_utils.core.config import load_study_config

    (out / "data" / "mixes").mkdir(parents=True, exist_ok=True)
    shutil.copy(args.data, out / "data" / "mixes" / "k1-2.jsonl")
    return load_study_config(ROOT / "tests" / "data" / "train_small.yaml", {
        "output_dir": str(out), "train.steps": args.steps, "train.batch_size": args.batch,
        "train.per_device_batch_size": args.per_device, "train.learning_rate": args.lr,
        "train.max_length": args.max_length, "train.packing": packing,
        "train.checkpoint_every": 0, "train.pretrain.ratio": 0.0, "train.warmup_steps": 1})


def run_ours(args, packing: bool) -> dict:
    from skillmix_utils.stages.train.trainer import train

    s = train(_study(args, Path(args.workdir) / ("packed" if packing else "padded"), packing))
    return {"tokens_per_second": s["tokens_per_second"],
            "real_token_fraction": s["real_token_fraction"], "final_loss": s["final_loss"]}


def _training_template(tokenizer) -> str | None:
    """The model's ChatML template with `{% generation %}` around each answer and its
    end-of-turn token (what ours puts the loss on); None for other template families."""
    tpl = tokenizer.chat_template or ""
    turn = "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    if turn not in tpl:
        return None
    return tpl.replace(turn, "{% if message['role'] == 'assistant' %}"
                             "{{ '<|im_start|>assistant\n' }}{% generation %}"
                             "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
                             "{{ '\n' }}{% else %}" + turn + "{% endif %}")


def trl_setup() -> tuple[bool, str]:
    """(pack, why): TRL packs padding-free only with FlashAttention, i.e. on a CUDA GPU."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return False, ("no GPU: TRL pads to the longest example per batch (its padding-free "
                       "batches need FlashAttention; without it examples would attend to each other)")
    if importlib.util.find_spec("flash_attn") is None:
        return False, "GPU without flash-attn: TRL pads to the longest example per batch"
    return True, "GPU with flash-attn: TRL packs padding-free (bfd)"


def run_trl(args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from skillmix_utils.llm.models import load_causal_lm, load_tokenizer, resolve_model

    cuda = torch.cuda.is_available()
    pack, _ = trl_setup()
    tok = load_tokenizer(args.model)
    template = _training_template(tok)
    if template is None:
        raise SystemExit(f"{args.model}: no training chat template for TRL's assistant-only loss")
    tok.chat_template = template
    from skillmix_utils.stages.train.schedule import step_indices

    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    # The examples ours draws, step by step, in its order; TRL reads them sequentially, so
    # both see the same micro-batches and their losses can be compared step for step.
    seed = _study(args, Path(args.workdir) / "trl-order", True).train.seed
    order = [i for step in range(args.steps)
             for i in step_indices(step, args.batch, len(rows), seed)]
    ds = Dataset.from_list([{"messages": rows[i]["messages"]} for i in order])
    counts = {"real": 0, "total": 0, "seconds": 0.0}

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            counts["seconds"] += time.perf_counter() - self.t0

    cfg = SFTConfig(output_dir=str(Path(args.workdir) / "trl"), max_steps=args.steps,
                    per_device_train_batch_size=args.per_device,
                    gradient_accumulation_steps=args.batch // args.per_device,
                    learning_rate=args.lr, weight_decay=0.0,
                    # ours: warm-up of 1 step = the full rate from step 0 (min(1, (s+1)/1));
                    # HF's warm-up starts at 0, so "constant" is the same schedule
                    lr_scheduler_type="constant", warmup_steps=0, max_length=args.max_length,
                    report_to="none", save_strategy="no", logging_steps=1,
                    use_cpu=not cuda, bf16=cuda, fp16=False, gradient_checkpointing=False,
                    assistant_only_loss=True, packing=pack, packing_strategy="bfd",
                    dataloader_num_workers=0, train_sampling_strategy="sequential")
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    if pack:
        model = AutoModelForCausalLM.from_pretrained(
            resolve_model(args.model), dtype=torch.bfloat16,
            attn_implementation="flash_attention_2")
    else:
        model = load_causal_lm(args.model, dtype="bfloat16" if cuda else "float32")
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok,
                         peft_config=lora, callbacks=[Clock()])
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        labels = batch["labels"]
        mask = batch.get("attention_mask")
        n = int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        counts["real"] += n
        counts["total"] += int(batch["input_ids"].numel())
        counts.setdefault("answer", 0)
        counts["answer"] += int((labels != -100).sum())
        return batch

    trainer.data_collator = counting
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens_per_second": counts["real"] / counts["seconds"],
            "real_token_fraction": counts["real"] / counts["total"],
            "final_loss": losses[-1] if losses else None,
            "answer_fraction": counts["answer"] / max(1, counts["real"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--per-device", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data", default=str(ROOT / "tests" / "data" / "mix_small.jsonl"))
    p.add_argument("--way", choices=["packed", "padded", "trl"], help="run one way (internal)")
    p.add_argument("--workdir")
    p.add_argument("--json", help="write the result (internal: one way's; else the table rows)")
    p.add_argument("--quick", action="store_true", help="2 steps")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for every way (1 is steadier on a busy shared machine)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps = 2
    if args.way:
        res = run_trl(args) if args.way == "trl" else run_ours(args, args.way == "packed")
        Path(args.json).write_text(json.dumps(res))
        return 0
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as work:
        for way in ("packed", "padded", "trl"):
            out = Path(work) / f"{way}.json"
            cmd = [sys.executable, __file__, "--way", way, "--workdir", work, "--json", str(out),
                   "--steps", str(args.steps), "--batch", str(args.batch), "--per-device",
                   str(args.per_device), "--lr", str(args.lr), "--max-length",
                   str(args.max_length), "--model", args.model, "--data", args.data]
            env = dict(os.environ)
            if args.threads:
                env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
            results[way] = json.loads(out.read_text())
    _, trl_how = trl_setup()
    base = results["trl"]["tokens_per_second"]
    print(f"model {args.model}, LoRA r=8, {args.steps} steps x batch {args.batch} "
          f"({args.per_device} per device), max_length {args.max_length}, torch threads "
          f"{args.threads or 'default'} of {os.cpu_count()} CPUs; trl: {trl_how}")
    print(f"{'way':8} {'real tok/s':>11} {'real frac':>10} {'vs trl':>8} {'final loss':>11}")
    for way, r in results.items():
        print(f"{way:8} {r['tokens_per_second']:11.1f} {r['real_token_fraction']:10.3f} "
              f"{r['tokens_per_second'] / base:8.2f} {r['final_loss'] or float('nan'):11.4f}")
    from benchmarks.common import row

    loss = {w: r["final_loss"] or float("nan") for w, r in results.items()}
    frac = {w: r["real_token_fraction"] for w, r in results.items()}
    setting = f"LoRA, {args.steps} steps x {args.batch}"
    rows = [
        row("training", f"ours packed vs TRL SFTTrainer ({setting})",
            results["packed"]["tokens_per_second"],
            "TRL, fp32 on CPU / bf16 on GPU, assistant-only loss" + (
                ", padding-free" if "packs" in trl_how else ", padded per batch"),
            base, "real tok/s",
            note=f"final loss {loss['packed']:.4f} vs {loss['trl']:.4f}; "
                 f"real-token fraction {frac['packed']:.2f} vs {frac['trl']:.2f}"),
        row("training", f"ours packed vs ours padded per micro-batch ({setting})",
            results["packed"]["tokens_per_second"], "padded per micro-batch",
            results["padded"]["tokens_per_second"], "real tok/s",
            note=f"final loss {loss['packed']:.4f} vs {loss['padded']:.4f}; "
                 f"real-token fraction {frac['packed']:.2f} vs {frac['padded']:.2f}"),
    ]
    if args.json:
        Path(args.json).write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
