"""A back-of-the-envelope estimate of GPU memory per device, printed before a run starts.

    print(format_estimate(estimate_memory(13e9, "full", processes=4, sharding="fsdp")))

Bytes per parameter (mixed precision, Adam):
- full: bf16 weights 2 + bf16 grads 2 + fp32 master 4 + Adam moments 8 = 16; FSDP full shard
  and ZeRO-3 divide all of it by the number of processes, DDP keeps a full copy on each.
- lora: frozen bf16 weights 2; the adapter (about `lora_fraction` of the weights) costs 16.
- qlora: NF4 weights 0.5 + double-quantised scales ~0.03 + adapter; the paged 8-bit optimiser
  holds the adapter's moments in 2 bytes and can spill to CPU memory.
Activations: with gradient checkpointing about 2 bytes x hidden per token per layer plus one
layer's full activations (~34 x hidden bytes per token, Korthikanti et al. 2022); without it
~34 x hidden per token per layer. The logits (tokens x vocab x 4 bytes, twice for the loss) are
counted apart, since for small models with big vocabularies they dominate. It is an estimate
(+/- 30 %), not a promise: CUDA context and allocator fragmentation add 1-3 GB.
"""
from __future__ import annotations

GIB = 1024 ** 3


def parameter_count(config) -> int:
    """Parameters of a decoder-only transformer from its HF config (dense MLP assumed)."""
    h, layers, v = config.hidden_size, config.num_hidden_layers, config.vocab_size
    inter = getattr(config, "intermediate_size", 4 * h)
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", heads) or heads
    head_dim = getattr(config, "head_dim", None) or h // heads
    attn = h * head_dim * heads * 2 + h * head_dim * kv * 2
    mlp = 3 * h * inter
    tied = getattr(config, "tie_word_embeddings", False)
    return int(layers * (attn + mlp + 2 * h) + v * h * (1 if tied else 2) + h)


def estimate_memory(n_params: float, mode: str, *, processes: int = 1, sharding: str = "none",
                    hidden: int = 5120, layers: int = 40, vocab: int = 32000,
                    tokens_per_device: int = 4096, gradient_checkpointing: bool = True,
                    lora_fraction: float = 0.005) -> dict:
    """GiB per device by part (weights, gradients+optimiser, activations, logits, total).

    >>> e = estimate_memory(13e9, "full", processes=4, sharding="fsdp")
    >>> round(e["weights_and_states"])
    48
    """
    sharded = sharding in ("fsdp", "deepspeed") and processes > 1
    if mode == "full":
        states = n_params * 16 / (processes if sharded else 1)
    else:
        adapter = n_params * lora_fraction
        per_weight = 0.53 if mode == "qlora" else 2.0
        opt_bytes = 2 + 4 + 4 if mode == "qlora" else 16   # paged 8-bit moments: 2 bytes
        states = n_params * per_weight / (processes if sharded else 1) + adapter * opt_bytes
    per_layer = 2 * hidden if gradient_checkpointing else 34 * hidden
    acts = tokens_per_device * (per_layer * layers + (34 * hidden if gradient_checkpointing else 0))
    logits = tokens_per_device * vocab * 4 * 2
    total = states + acts + logits
    return {"mode": mode, "processes": processes, "sharding": sharding,
            "params_billion": n_params / 1e9, "weights_and_states": states / GIB,
            "activations": acts / GIB, "logits": logits / GIB, "total": total / GIB}


def estimate_for_model(model_config, mode: str, **kw) -> dict:
    """estimate_memory with the sizes read from a transformers config."""
    return estimate_memory(parameter_count(model_config), mode, hidden=model_config.hidden_size,
                           layers=model_config.num_hidden_layers,
                           vocab=model_config.vocab_size, **kw)


def format_estimate(e: dict) -> str:
    """One line for the log.

    >>> format_estimate(estimate_memory(7e9, "qlora", hidden=4096, layers=32))[:40]
    'estimated GPU memory per device: 6.3 GiB'
    """
    return (f"estimated GPU memory per device: {e['total']:.1f} GiB "
            f"({e['params_billion']:.2f}B params, {e['mode']}, {e['processes']} process(es), "
            f"sharding {e['sharding']}: weights+optimiser {e['weights_and_states']:.1f}, "
            f"activations {e['activations']:.1f}, logits {e['logits']:.1f})")
