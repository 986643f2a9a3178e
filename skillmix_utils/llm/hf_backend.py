"""Local transformers models (`hf:<alias|folder|hub id>`), optionally with a PEFT adapter.

Generation is batched: prompts go through the model's chat template, are sorted by length
(less padding) and left-padded; temperature 0 means greedy decoding. Runs on a CUDA GPU when
there is one, else on the CPU. `yes_no_probabilities` is the local judge's scorer.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.model_identity import model_identity
from skillmix_utils.core.redact import describe_error
from skillmix_utils.llm import loaded
from skillmix_utils.llm.base import Backend
from skillmix_utils.llm.messages import GreedyTrace, Job, Reply, check_conversations
from skillmix_utils.llm.models import load_causal_lm, load_tokenizer, resolve_model

log = logging.getLogger("skillmix.llm")


class HFBackend(Backend):
    """A local causal LM through transformers (+ peft for `adapter=`)."""

    kind = "hf"

    def __init__(self, model: str, *, adapter: str | None = None, batch_size: int = 8,
                 device: str | None = None, dtype: str = "auto", quantization: str | None = None,
                 merge_adapter: bool = True, **options):
        super().__init__(model, **options)
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise SkillmixError(f"hf: models need torch and transformers ({exc})",
                                field="model") from None

        self.path = resolve_model(model)
        self.adapter = str(Path(adapter).expanduser().resolve()) if adapter else None
        self.batch_size, self.device, self.dtype = max(1, batch_size), device, dtype
        # The weights as they are now: a checkpoint or adapter saved again later is another
        # backend's (new cache keys, loaded afresh).
        self.made = model_identity(self.spec, adapter=self.adapter,
                                   options={"dtype": dtype, "quantization": quantization})
        self.quantization = self.made["quantization"]     # "none" read as no quantization
        # False keeps the LoRA product apart, as vLLM applies it (the parity check's reference).
        self.merge_adapter = merge_adapter
        self._holder = loaded.new_holder()
        weakref.finalize(self, loaded.release, self._holder)

    def _key_extra(self) -> dict:
        return self.made

    def close(self) -> None:
        """Stop the event loop and free the model unless another backend holds it (a later
        call loads it again)."""
        super().close()
        loaded.release(self._holder)

    # --- loading ---------------------------------------------------------------------------
    def load(self):
        """(model, tokenizer, device), loaded once and shared by equal backends until released
        (`close`, `llm.loaded`)."""
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        key = ("hf", self.path, self.adapter, repr(sorted(self.made.items())), device,
               self.merge_adapter)
        return loaded.hold(key, self._holder, lambda: self._load(device))

    def _load(self, device: str):
        tok = load_tokenizer(self.path)
        tok.padding_side = "left"
        if self.quantization:
            lm = load_causal_lm(self.path, dtype=self.dtype, quantization=self.quantization,
                                adapter=self.adapter,
                                device_map={"": 0} if device == "cuda" else None)
        else:
            lm = load_causal_lm(self.path, dtype=self.dtype, adapter=self.adapter).to(device)
            if self.adapter and self.merge_adapter:
                # Unquantised weights: fold the LoRA product in once, so that decoding
                # costs what the base model's does (an unmerged adapter adds two small
                # matmuls per layer and step: the demo's tuned student took 1.8x as long).
                lm = lm.merge_and_unload()
        lm.eval()
        return lm, tok, device

    def render(self, messages: list[dict]) -> str:
        """The chat-templated prompt text, ending with the assistant's turn opening."""
        _, tok, _ = self.load()
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    # --- generation ------------------------------------------------------------------------
    def generate(self, prompts: list[str], *, temperature: float, max_tokens: int,
                 seed: int | None = None, batch_size: int | None = None,
                 on_batch=None) -> list[Reply]:
        """Replies to chat-templated prompt texts, in order (batched, left-padded)."""
        import torch

        lm, tok, device = self.load()
        bs = batch_size or self.batch_size
        enc = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(enc[i]))
        stop_ids = {tok.eos_token_id, tok.pad_token_id} - {None}
        greedy = not temperature or temperature <= 0
        gen_cfg = lm.generation_config.__class__(
            max_new_tokens=max_tokens, do_sample=not greedy,
            temperature=None if greedy else float(temperature), top_p=None if greedy else 1.0,
            top_k=None if greedy else 0, pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id)
        out: list[Reply | None] = [None] * len(prompts)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            batch = tok.pad({"input_ids": [enc[i] for i in idx]}, padding=True,
                            return_tensors="pt").to(device)
            if seed is not None and not greedy:
                torch.manual_seed(seed)
            with torch.no_grad():
                gen = lm.generate(**batch, generation_config=gen_cfg)
            width = batch["input_ids"].shape[1]
            for row, i in enumerate(idx):
                ids = gen[row, width:].tolist()
                cut = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
                text = tok.decode(ids[:cut], skip_special_tokens=True).strip()
                # No end-of-turn token within max_tokens: the reply was cut off.
                finish = "length" if cut == len(ids) and len(ids) >= max_tokens else "stop"
                out[i] = Reply(text, len(enc[i]), min(cut + 1, len(ids)) if ids else 0, finish)
            if on_batch:
                on_batch(len(idx))
        return out

    def greedy_traces(self, conversations, *, max_tokens: int, top_k: int) -> list[GreedyTrace]:
        """Greedy replies with each step's `top_k` log-probabilities, one conversation at a time
        (no padding: the same computation as an engine serving one request)."""
        import torch

        lm, tok, device = self.load()
        stop_ids = {tok.eos_token_id, tok.pad_token_id} - {None}
        gen_cfg = lm.generation_config.__class__(
            max_new_tokens=max_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
            output_logits=True, return_dict_in_generate=True)
        out = []
        for conv in check_conversations(conversations):
            ids = tok(self.render(conv), add_special_tokens=False, return_tensors="pt").to(device)
            with torch.no_grad():
                gen = lm.generate(**ids, generation_config=gen_cfg)
            tokens = gen.sequences[0, ids["input_ids"].shape[1]:].tolist()
            top = []
            for logits in gen.logits:
                best = torch.log_softmax(logits[0].float(), dim=-1).topk(top_k)
                top.append(dict(zip(best.indices.tolist(), best.values.tolist())))
            cut = next((i + 1 for i, t in enumerate(tokens) if t in stop_ids), len(tokens))
            out.append(GreedyTrace(tok.decode(tokens[:cut], skip_special_tokens=True).strip(),
                                   tokens[:cut], top[:cut]))
        return out

    async def _run_jobs(self, jobs: list[Job], temperature, max_tokens) -> dict[str, dict]:
        return await asyncio.to_thread(self._run_jobs_sync, jobs, temperature, max_tokens)

    def _run_jobs_sync(self, jobs: list[Job], temperature, max_tokens) -> dict[str, dict]:
        greedy = not temperature or temperature <= 0
        # Greedy samples of one prompt are identical: generate once. Sampled ones are grouped
        # by seed (sample j uses seed + j) so each group is one seeded, batched pass.
        groups: dict = {}
        for jb in jobs:
            groups.setdefault(None if greedy else jb.seed if jb.seed is not None else ("i", jb.index),
                              []).append(jb)
        out: dict[str, dict] = {}
        bar = self._bar(len(jobs), "sample")
        for gkey, group in groups.items():
            try:
                prompts = {}
                for jb in group:
                    prompts.setdefault(self.render(jb.messages), []).append(jb)
                texts = list(prompts)
                seed = gkey if isinstance(gkey, int) else None
                replies = self.generate(texts, temperature=temperature, max_tokens=max_tokens,
                                        seed=seed, on_batch=bar.update)
                for text, reply in zip(texts, replies):
                    for jb in prompts[text]:
                        out[jb.key] = self._record(jb, reply)
            except Exception as exc:  # noqa: BLE001 - failures are data
                err = describe_error(exc)
                log.warning("%s generation failed: %s", self.spec, err)
                out.update({jb.key: {"error": err} for jb in group})
        bar.close()
        return out

    # --- the local judge ---------------------------------------------------------------------
    def yes_no_probabilities(self, conversations, batch_size: int | None = None,
                             with_tokens: bool = False):
        """P(Yes) / (P(Yes) + P(No)) for the next token after each chat-templated prompt; with
        `with_tokens`, (probabilities, each prompt's token count) so that the judge's usage is
        recorded like any grader's (the cost table counted 0 input tokens for it).

        Both "Yes"/"No" and their leading-space variants count. Consecutive prompts that share a
        long beginning (the k + 3 questions about one text differ only in their last line) are
        scored with one pass over the shared tokens and short passes over the rest, which reuse
        its keys and values: the same numbers as scoring each prompt whole, at a fraction of the
        cost (the judge was most of the demo's time).
        """
        import torch


        lm, tok, device = self.load()
        convs = check_conversations(conversations)
        yes = _first_tokens(tok, ("Yes", " Yes"))
        no = _first_tokens(tok, ("No", " No"))
        ids = [tok(self.render(c), add_special_tokens=False)["input_ids"] for c in convs]
        out: list[float] = []
        for group in _prefix_groups(ids):
            with torch.no_grad():
                logits = self._last_logits_shared([ids[i] for i in group], device)
            probs = torch.softmax(logits.float(), dim=-1)
            p_yes = probs[:, yes].sum(-1)
            p_no = probs[:, no].sum(-1)
            out.extend((p_yes / (p_yes + p_no).clamp_min(1e-30)).tolist())
        return (out, [len(x) for x in ids]) if with_tokens else out

    def _last_logits_shared(self, seqs: list[list[int]], device):
        """Next-token logits after each sequence; the sequences' common prefix is run once."""
        import torch

        lm, tok, _ = self.load()
        n = len(seqs)
        common = min(len(s) for s in seqs) - 1
        for i in range(common):
            if any(s[i] != seqs[0][i] for s in seqs):
                common = i
                break
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        if common < 8:      # nothing worth sharing: one right-padded batch
            width = max(len(s) for s in seqs)
            inp = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
            logits = lm(input_ids=inp, attention_mask=mask).logits
            return logits[torch.arange(n), torch.tensor([len(s) - 1 for s in seqs])]
        prefix = torch.tensor([seqs[0][:common]], device=device)
        # Only the keys and values are wanted: one position's logits, not the whole prefix's
        # over a 49k vocabulary (a 1,000-token pass of the embedded model on one CPU core:
        # 5.6 s instead of 7.5 s).
        cache = lm(input_ids=prefix, use_cache=True, logits_to_keep=1).past_key_values
        cache.batch_repeat_interleave(n)
        rest = [s[common:] for s in seqs]
        width = max(len(r) for r in rest)
        inp = torch.tensor([r + [pad] * (width - len(r)) for r in rest], device=device)
        mask = torch.cat([torch.ones(n, common, dtype=torch.long, device=device),
                          torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rest],
                                       device=device)], dim=1)
        pos = torch.arange(common, common + width, device=device).unsqueeze(0).expand(n, -1)
        logits = lm(input_ids=inp, attention_mask=mask, position_ids=pos, past_key_values=cache,
                    use_cache=True).logits
        return logits[torch.arange(n), torch.tensor([len(r) - 1 for r in rest])]


def _shared(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _prefix_groups(ids: list[list[int]], max_group: int = 16, tail: int = 80) -> list[list[int]]:
    """Indices of consecutive sequences that differ only in their last `tail` tokens, at most
    `max_group` each (the questions about one text).

    >>> _prefix_groups([[1] * 100 + [2], [1] * 100 + [3], [1] * 10 + [5] * 90])
    [[0, 1], [2]]
    """
    groups: list[list[int]] = []
    for i, s in enumerate(ids):
        if groups and len(groups[-1]) < max_group:
            first = ids[groups[-1][0]]
            if _shared(first, s) >= min(len(first), len(s)) - tail:
                groups[-1].append(i)
                continue
        groups.append([i])
    return groups


def _first_tokens(tok, words) -> list[int]:
    ids = []
    for w in words:
        enc = tok(w, add_special_tokens=False)["input_ids"]
        if enc and enc[0] not in ids:
            ids.append(enc[0])
    return ids
