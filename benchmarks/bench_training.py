"""Training throughput, three ways, same model, data, steps and batch:

    SKILLMIX_CACHE=.cache .venv/bin/python benchmarks/bench_training.py --steps 4 --batch 4

1. packed: this project's trainer (padding-free packing, block-diagonal mask on the CPU);
2. padded: the same trainer with every example padded to max_length (1,024 by default, the
   paper's sequence length);
3. trl:    TRL's SFTTrainer with its defaults (padding to the longest in each batch, no packing),
   given the same LoRA config, steps, batch, learning rate and max_length.

Each way runs in its own process (accelerate's state is per process). Prints real tokens per
second (tokens that belong to an example, divided by the time spent in optimiser steps), the
real-token fraction (real / computed tokens) and the ratios against `packed`. Model loading and
data preparation are not timed. Note: TRL's default for conversational data puts the loss on
every token, not only the answers; that changes the loss, not the speed.
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
os.environ.setdefault("SKILLMIX_CACHE", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _study(args, out: Path, packing: bool):
    from skillmix_utils.config import load_study_config

    (out / "data" / "mixes").mkdir(parents=True, exist_ok=True)
    shutil.copy(args.data, out / "data" / "mixes" / "k1-2.jsonl")
    return load_study_config(ROOT / "tests" / "data" / "train_small.yaml", {
        "output_dir": str(out), "train.steps": args.steps, "train.batch_size": args.batch,
        "train.per_device_batch_size": args.per_device, "train.learning_rate": args.lr,
        "train.max_length": args.max_length, "train.packing": packing,
        "train.checkpoint_every": 0, "train.pretrain.ratio": 0.0, "train.warmup_steps": 1})


def run_ours(args, packing: bool) -> dict:
    from skillmix_utils.train.trainer import train

    s = train(_study(args, Path(args.workdir) / ("packed" if packing else "padded"), packing))
    return {"tokens_per_second": s["tokens_per_second"],
            "real_token_fraction": s["real_token_fraction"], "final_loss": s["final_loss"]}


def run_trl(args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from skillmix_utils.models import load_causal_lm, load_tokenizer

    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    ds = Dataset.from_list([{"messages": r["messages"]} for r in rows])
    counts = {"real": 0, "total": 0, "seconds": 0.0}

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            counts["seconds"] += time.perf_counter() - self.t0

    cfg = SFTConfig(output_dir=str(Path(args.workdir) / "trl"), max_steps=args.steps,
                    per_device_train_batch_size=args.per_device,
                    gradient_accumulation_steps=args.batch // args.per_device,
                    learning_rate=args.lr, max_length=args.max_length, report_to="none",
                    save_strategy="no", logging_steps=1, use_cpu=not torch.cuda.is_available())
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=load_causal_lm(args.model, dtype="float32"), args=cfg,
                         train_dataset=ds, processing_class=load_tokenizer(args.model),
                         peft_config=lora, callbacks=[Clock()])
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        mask = batch.get("attention_mask")
        n = int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        counts["real"] += n
        counts["total"] += int(batch["input_ids"].numel())
        return batch

    trainer.data_collator = counting
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens_per_second": counts["real"] / counts["seconds"],
            "real_token_fraction": counts["real"] / counts["total"],
            "final_loss": losses[-1] if losses else None}


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
    p.add_argument("--json", help="write the result here (internal)")
    args = p.parse_args(argv)
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
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            results[way] = json.loads(out.read_text())
    base = results["packed"]["tokens_per_second"]
    print(f"model {args.model}, LoRA r=8, {args.steps} steps x batch {args.batch} "
          f"({args.per_device} per device), max_length {args.max_length}, CPU threads "
          f"{os.cpu_count()}")
    print(f"{'way':8} {'real tok/s':>11} {'real frac':>10} {'vs packed':>10} {'final loss':>11}")
    for way, r in results.items():
        print(f"{way:8} {r['tokens_per_second']:11.1f} {r['real_token_fraction']:10.3f} "
              f"{r['tokens_per_second'] / base:10.2f} {r['final_loss'] or float('nan'):11.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
