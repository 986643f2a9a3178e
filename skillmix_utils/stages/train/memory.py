"""Memory per device for a training run, part by part, to plan a cluster before paying for it.

    shape = LLAMA2_13B                                   # or model_shape(hf_config)
    e = estimate_memory(shape, "full", processes=4, sharding="fsdp", tokens_per_device=4096)
    print(format_estimate(e))

docs/memory.md derives every term by hand for LLaMA-2-13B and Mistral-7B and puts the two side
by side; tests/stages/train/test_memory.py checks the estimate against the peak memory measured on the
CPU with the embedded model. The terms, in bytes (P parameters, h hidden, i MLP width, h_kv
key/value width, L layers, V vocabulary, T tokens per micro-batch on the device, G processes):

- full, DDP: fp32 master weights 4P + fp32 gradients 4P + Adam moments 8P, and on CUDA the bf16
  copies of the weights that autocast makes and backward keeps (2P).
- full, FSDP full shard / ZeRO-3: (4 + 4 + 8)P / G (gradients are reduce-scattered every
  micro-batch, in fp32, and accumulate sharded) + the unsharded working set: two layers' bf16
  weights (the one computing, the one prefetched), one layer's bf16 gradient with its fp32
  reduce copy, and the embeddings / LM head while they compute.
- lora: the frozen base in the compute dtype + the adapter in fp32 (weight 4 + gradient 4 +
  Adam 8). Adapter size on all linear layers: r (9h + 2h_kv + 3i) per layer (250M for 13B, r=64).
- qlora: NF4 weights with double-quantised scales (0.516 bytes per linear weight), the embeddings,
  LM head and norms in fp32 (prepare_model_for_kbit_training casts them), the adapter with the
  paged 8-bit Adam (4 + 4 + 2).
- activations per token and layer (flash attention, HF LLaMA/Mistral code; c bytes of compute
  dtype, r of the residual stream, which is fp32 after prepare_model_for_kbit_training):
  2 RMSNorms (4h fp32 copy + r.h output each), attention q, k, v, output and o_proj input
  c (3h + 2h_kv), SwiGLU 4c.i, and where r != c the autocast copies of the norm outputs for
  the five projections that read them (5c.h). LoRA adds each adapted input's dropout output and
  mask ((c + 1)(6h + i)) when dropout > 0. Without flash attention (CPU, sdpa/eager) the
  attention probabilities add heads x S x c per token (S the packed row's length) and k, v are
  repeated to all heads. Gradient checkpointing keeps only each layer's input (r.h) plus one
  layer's activations during its recomputation.
- logits: T x V x (c + 12): the logits (the loop holds them), and at the start of backward the
  fp32 log-softmax kept for it, its incoming gradient and the gradient it passes on.
- the optimiser step: torch's default (foreach) AdamW on CUDA allocates a temporary the size of
  the local parameters (its sqrt of the second moments) while the activations are gone; fused
  AdamW (what the trainer uses on CUDA) and the paged 8-bit AdamW update in place. The peak is the
  larger of the end of the forward pass and the step.
- headroom on CUDA: the CUDA context and library workspaces outside the allocator (1 GiB) and
  the caching allocator's fragmentation (5% of its peak): by hand, the QLoRA 13B peak of
  ~20.4 GiB needs 1.5-2 GiB more. 0 on a CPU.

Accumulation keeps the gradients while the next micro-batch runs forward, so the parts add up.
The verdict compares the total with the memory CUDA reports for the card, not the size it is
sold as (`usable_gib`: a "24 GB" A10, L4 or A5000 shows about 22.5 GiB).
"""
from __future__ import annotations

from dataclasses import dataclass

GIB = 1024 ** 3
CONTEXT_GIB = 1.0      # CUDA context, cuBLAS / NCCL workspaces: memory the allocator does not see
FRAGMENTATION = 0.05   # reserved but unallocated memory at the peak, a share of the allocated peak
# The memory CUDA reports for cards sold by these sizes, the smallest among common ones (GiB):
# 16: T4 14.7 (V100 15.8); 24: A10, L4, A5000 with ECC 22.5 (4090 23.99); 40: A100 39.4;
# 80: A100 / H100 79.1. Other sizes are taken as given.
USABLE_GIB = {16: 14.7, 24: 22.5, 40: 39.4, 80: 79.1}


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer with a SwiGLU MLP (LLaMA, Mistral, SmolLM)."""
    name: str
    hidden: int
    layers: int
    vocab: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool = False

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def layer_params(self) -> int:
        h, kv, i = self.hidden, self.kv_width, self.intermediate
        attn = 2 * h * self.heads * self.head_dim + 2 * h * kv
        return attn + 3 * h * i + 2 * h

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def params(self) -> int:
        """All parameters.

        >>> round(LLAMA2_13B.params / 1e9, 2), round(MISTRAL_7B.params / 1e9, 2)
        (13.02, 7.24)
        """
        return self.layers * self.layer_params + self.embedding_params + self.hidden

    def lora_params(self, r: int) -> int:
        """Adapter parameters at rank r on every linear layer of every block (peft all-linear).

        >>> round(LLAMA2_13B.lora_params(64) / 1e6)
        250
        """
        h, kv, i = self.hidden, self.kv_width, self.intermediate
        return r * (9 * h + 2 * kv + 3 * i) * self.layers


# From the models' config.json files (no hub access needed to plan).
LLAMA2_13B = ModelShape("LLaMA-2-13B", hidden=5120, layers=40, vocab=32000, intermediate=13824,
                        heads=40, kv_heads=40, head_dim=128)
MISTRAL_7B = ModelShape("Mistral-7B", hidden=4096, layers=32, vocab=32000, intermediate=14336,
                        heads=32, kv_heads=8, head_dim=128)

# The Qwen2.5 family (configs/model-scale.yaml), from the hub's config.json files of
# Qwen/Qwen2.5-<size>-Instruct (the biases of q, k and v, under 0.1% of the weights, left out).
QWEN25_SHAPES = {
    "0.5B": ModelShape("Qwen2.5-0.5B", hidden=896, layers=24, vocab=151936, intermediate=4864,
                       heads=14, kv_heads=2, head_dim=64, tied=True),
    "1.5B": ModelShape("Qwen2.5-1.5B", hidden=1536, layers=28, vocab=151936, intermediate=8960,
                       heads=12, kv_heads=2, head_dim=128, tied=True),
    "3B": ModelShape("Qwen2.5-3B", hidden=2048, layers=36, vocab=151936, intermediate=11008,
                     heads=16, kv_heads=2, head_dim=128, tied=True),
    "7B": ModelShape("Qwen2.5-7B", hidden=3584, layers=28, vocab=152064, intermediate=18944,
                     heads=28, kv_heads=4, head_dim=128),
    "14B": ModelShape("Qwen2.5-14B", hidden=5120, layers=48, vocab=152064, intermediate=13824,
                      heads=40, kv_heads=8, head_dim=128),
    "32B": ModelShape("Qwen2.5-32B", hidden=5120, layers=64, vocab=152064, intermediate=27648,
                      heads=40, kv_heads=8, head_dim=128),
    "72B": ModelShape("Qwen2.5-72B", hidden=8192, layers=80, vocab=152064, intermediate=29568,
                      heads=64, kv_heads=8, head_dim=128),
}


def model_shape(config, name: str = "") -> ModelShape:
    """The shape of a transformers config (LLaMA-style)."""
    h = config.hidden_size
    heads = config.num_attention_heads
    return ModelShape(
        name or getattr(config, "_name_or_path", "") or config.model_type, hidden=h,
        layers=config.num_hidden_layers, vocab=config.vocab_size,
        intermediate=getattr(config, "intermediate_size", None) or 4 * h, heads=heads,
        kv_heads=getattr(config, "num_key_value_heads", None) or heads,
        head_dim=getattr(config, "head_dim", None) or h // heads,
        tied=bool(getattr(config, "tie_word_embeddings", False)))


def activation_bytes_per_token_layer(s: ModelShape, mode: str, *, cuda: bool = True,
                                     flash: bool = True, row_tokens: int = 0,
                                     lora_dropout: float = 0.05) -> int:
    """Bytes kept for backward per token per layer (no checkpointing).

    >>> activation_bytes_per_token_layer(LLAMA2_13B, "full") / LLAMA2_13B.hidden
    43.6
    """
    h, kv, i = s.hidden, s.kv_width, s.intermediate
    c = 2 if cuda else 4
    r = 4 if (mode == "qlora" or not cuda) else 2
    per = 2 * (4 * h + r * h) if r == 2 else 2 * (2 * r * h)  # norms: fp32 copy + output
    per += c * (3 * h + 2 * kv) + 4 * c * i
    if r != c:
        per += 5 * c * h                  # autocast casts the norm output for each projection
    if not flash:
        per += c * (s.heads * row_tokens + 2 * (h - kv))   # probabilities; k, v repeated
    if mode in ("lora", "qlora") and lora_dropout > 0:
        per += (c + 1) * (6 * h + i)      # each adapted input's dropout output and mask
    return per


def estimate_memory(shape: ModelShape, mode: str, *, processes: int = 1, sharding: str = "none",
                    tokens_per_device: int = 4096, row_tokens: int | None = None,
                    gradient_checkpointing: bool = True, lora_r: int = 16,
                    lora_dropout: float = 0.05, cuda: bool = True, flash: bool | None = None,
                    overhead_gib: float | None = None, fused_optimizer: bool | None = None) -> dict:
    """GiB per device by part: weights, gradients, optimiser, working set, activations, logits,
    the optimiser step's temporary, and the headroom over the allocator's peak.

    `fused_optimizer` (default: on CUDA, as the trainer does) says whether AdamW runs fused;
    `overhead_gib` replaces the headroom (CUDA context + fragmentation) with a fixed amount.

    >>> e = estimate_memory(LLAMA2_13B, "full", processes=4, sharding="fsdp")
    >>> round(e["peak_allocated"], 1), round(e["total"], 1), e["fits_80gb"]
    (56.2, 60.0, True)
    """
    if mode not in ("full", "lora", "qlora"):
        raise ValueError(f"mode must be full, lora or qlora, not {mode!r}")
    s = shape
    flash = cuda if flash is None else flash
    sharded = sharding in ("fsdp", "deepspeed") and processes > 1
    g = processes if sharded else 1
    P, T = s.params, tokens_per_device
    c = 2 if cuda else 4
    parts = {"weights": 0.0, "gradients": 0.0, "optimizer": 0.0, "working_set": 0.0}
    if mode == "full":
        parts["weights"] = 4 * P / g
        parts["gradients"] = 4 * P / g
        parts["optimizer"] = 8 * P / g
        if sharded:   # gathered bf16 layers, one layer's gradient + fp32 reduce copy, embeddings
            parts["working_set"] = c * (2 * s.layer_params + s.embedding_params) \
                + (c + 4) * s.layer_params
        elif cuda:
            parts["working_set"] = 2 * P      # autocast's bf16 weight copies, kept for backward
    else:
        n_lora = s.lora_params(lora_r)
        if mode == "lora":
            parts["weights"] = c * P / g + 4 * n_lora
        else:
            linear = s.layers * (s.layer_params - 2 * s.hidden)
            parts["weights"] = 0.516 * linear + 4 * (P - linear) + 4 * n_lora
        parts["gradients"] = 4 * n_lora
        parts["optimizer"] = (2 if mode == "qlora" and cuda else 8) * n_lora
    step = optimizer_step_bytes(s, mode, processes=g, cuda=cuda, lora_r=lora_r,
                                fused=cuda if fused_optimizer is None else fused_optimizer)
    checkpointing = gradient_checkpointing
    per_layer = activation_bytes_per_token_layer(
        s, mode, cuda=cuda, flash=flash, row_tokens=row_tokens or T, lora_dropout=lora_dropout)
    r = 4 if (mode == "qlora" or not cuda) else 2
    acts = T * (s.layers * r * s.hidden + per_layer) if checkpointing else T * s.layers * per_layer
    logits = T * s.vocab * (c + 12)
    states = parts["weights"] + parts["gradients"] + parts["optimizer"]
    # The end of the forward pass (everything kept for backward) or the optimiser step (states
    # and the step's temporary; the activations and the gathered layers are freed by then).
    backward_peak = states + parts["working_set"] + acts + logits
    peak = max(backward_peak, states + step)
    if overhead_gib is not None:
        context, fragmentation = overhead_gib, 0.0
    else:
        context = CONTEXT_GIB if cuda else 0.0
        fragmentation = FRAGMENTATION * peak / GIB if cuda else 0.0
    overhead = context + fragmentation
    out = {"model": s.name, "mode": mode, "processes": processes, "sharding": sharding,
           "params_billion": P / 1e9, "tokens_per_device": T,
           "gradient_checkpointing": checkpointing, "lora_r": lora_r if mode != "full" else None,
           **{k: v / GIB for k, v in parts.items()},
           "activations": acts / GIB, "logits": logits / GIB, "optimizer_step": step / GIB,
           "peak_allocated": peak / GIB,
           "peak_at": "optimizer step" if states + step > backward_peak else "backward",
           "context": context, "fragmentation": fragmentation, "overhead": overhead,
           "total": peak / GIB + overhead}
    out["weights_and_states"] = (states + parts["working_set"]) / GIB
    out["fits_80gb"] = fits(out, 80)
    return out


def optimizer_step_bytes(s: ModelShape, mode: str, *, processes: int = 1, cuda: bool = True,
                         lora_r: int = 16, fused: bool = True) -> float:
    """Bytes the optimiser step allocates beyond its states, on one device.

    >>> round(optimizer_step_bytes(LLAMA2_13B, "full", processes=4, fused=False) / GIB, 1)
    12.1
    """
    trainable = s.params if mode == "full" else s.lora_params(lora_r)
    if (mode == "qlora" and cuda) or (fused and cuda):
        return 0.0    # paged 8-bit AdamW and fused AdamW update each tensor in place
    if cuda:          # foreach: _foreach_sqrt of every second moment at once, fp32
        return 4.0 * trainable / processes
    # torch's CPU AdamW loops over the parameters: one temporary of the largest at a time.
    return 4.0 * (s.vocab * s.hidden / processes if mode == "full" else 0)


def estimate_for_model(model_config, mode: str, **kw) -> dict:
    """estimate_memory with the shape read from a transformers config."""
    return estimate_memory(model_shape(model_config), mode, **kw)


def usable_gib(device_gib: float) -> float:
    """The memory CUDA reports for a card sold as `device_gib` (USABLE_GIB), else device_gib.

    >>> usable_gib(24), usable_gib(23.99)
    (22.5, 23.99)
    """
    return USABLE_GIB.get(device_gib, device_gib)


def fits(e: dict, device_gib: float) -> bool:
    """Whether the estimate, headroom included, fits the usable memory of a `device_gib` card."""
    return e["total"] <= usable_gib(device_gib)


def device_text(device_gib: float) -> str:
    """How a device size reads in a verdict: '22.5 GiB usable of a 24 GiB card' or '23.99 GiB'."""
    usable = usable_gib(device_gib)
    return (f"{usable:g} GiB usable of a {device_gib:g} GiB card" if usable != device_gib
            else f"{device_gib:g} GiB")


def format_estimate(e: dict, device_gib: float | None = None) -> str:
    """One line for the log (with "will not fit" when a device size is given and exceeded).

    >>> format_estimate(estimate_memory(MISTRAL_7B, "qlora", lora_r=64), 24)[:43]
    'estimated memory per device: 12.6 GiB (fits'
    """
    verdict = ""
    if device_gib is not None:
        verdict = (f" (fits {device_text(device_gib)})" if fits(e, device_gib)
                   else f" (will not fit {device_text(device_gib)})")
    return (f"estimated memory per device: {e['total']:.1f} GiB{verdict}: "
            f"{e['params_billion']:.2f}B params, {e['mode']}, {e['processes']} process(es), "
            f"sharding {e['sharding']}; weights {e['weights']:.1f}, gradients "
            f"{e['gradients']:.1f}, optimiser {e['optimizer']:.1f}, working set "
            f"{e['working_set']:.1f}, activations {e['activations']:.1f}, logits "
            f"{e['logits']:.1f}, optimiser step {e['optimizer_step']:.1f}; allocator peak "
            f"{e['peak_allocated']:.1f} ({e['peak_at']}) + CUDA context "
            f"{e['context']:.1f} + fragmentation {e['fragmentation']:.1f}")


__all__ = ["ModelShape", "LLAMA2_13B", "MISTRAL_7B", "QWEN25_SHAPES", "model_shape", "estimate_memory",
           "estimate_for_model", "format_estimate", "fits", "usable_gib", "device_text",
           "optimizer_step_bytes", "activation_bytes_per_token_layer"]
