"""Peak memory of training steps of the embedded model on the CPU, for test_memory.py.

    python tests/stages/train/measure_memory.py MODE TOKENS CHECKPOINTING   -> one JSON line

Runs in its own process so that the resident-set size it samples is its own: the model is
loaded, then two optimiser steps (of one and two packed micro-batches of TOKENS tokens) run while a
thread samples /proc/self/statm; the result is the peak above the resident size before the
first step (so the weights, loaded before, are not in it).
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(mode: str, tokens: int, checkpointing: bool) -> dict:
    from skillmix_utils.llm.models import load_causal_lm, load_tokenizer
    from skillmix_utils.stages.train.packing import collate, summed_loss
    from skillmix_utils.stages.train.pretrain import builtin_corpus, pretrain_examples

    torch.manual_seed(0)
    torch.set_num_threads(1)
    name = "smollm2-135m-instruct"
    tok = load_tokenizer(name)
    model = load_causal_lm(name, dtype="float32")
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        if checkpointing:
            model.enable_input_require_grads()
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    model.config.use_cache = False
    model.train()
    # Four examples of tokens/4 each, packed into one row of `tokens` (loss on every token).
    exs = pretrain_examples(builtin_corpus(), tok, n_tokens=tokens, chunk_len=tokens // 4)[:4]
    batch = collate(exs, packed=True, pad_id=tok.pad_token_id, mask_dtype=torch.bool)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = rss()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    with LiveTensors() as live:
        # The peak is in the second step's second micro-batch, with the optimiser's state (made
        # by the first step), the gradients of the first micro-batch and the activations all
        # alive; one micro-batch is enough for the first step (a quarter of the run's time).
        for micro_batches in (1, 2):
            for _ in range(micro_batches):
                logits = model(**batch.model_inputs()).logits   # held, as the trainer does
                loss = summed_loss(logits, batch.labels)
                (loss / batch.n_labels).backward()
                del loss, logits
            opt.step()
            opt.zero_grad(set_to_none=True)
    done.set()
    th.join()
    return {"mode": mode, "tokens": batch.n_real, "checkpointing": checkpointing,
            "peak_allocated_gib": live.peak / 1024 ** 3,
            "peak_rss_above_weights_gib": (peak[0] - base) / 1024 ** 3}


class LiveTensors(TorchDispatchMode):
    """Bytes of tensor storage alive, and their peak: what torch.cuda.max_memory_allocated
    reports on a GPU. Every storage an op creates is counted until the last tensor on it dies."""

    def __init__(self):
        super().__init__()
        self.users: dict[int, int] = {}
        self.size: dict[int, int] = {}
        self.now = self.peak = 0

    def _release(self, ptr: int) -> None:
        self.users[ptr] -= 1
        if self.users[ptr] == 0:
            self.now -= self.size.pop(ptr)
            del self.users[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                st = t.untyped_storage()
                ptr = st.data_ptr()
                if ptr == 0:
                    continue
                if ptr not in self.users:
                    self.users[ptr] = 0
                    self.size[ptr] = st.nbytes()
                    self.now += st.nbytes()
                    self.peak = max(self.peak, self.now)
                self.users[ptr] += 1
                weakref.finalize(t, self._release, ptr)
        return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1")))
