"""A run's training set: the data mix's conversations formatted for the loss, plus the
pre-training chunks mixed in at `train.pretrain.ratio` (docs/protocol.md §7)."""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.train.formatting import Example, find_mix, format_rows, load_rows
from skillmix_utils.stages.train.pretrain import load_corpus, pretrain_examples, tokens_for_ratio


def build_examples(cfg: StudyConfig, tokenizer, data_path: str | Path | None = None
                   ) -> tuple[list[Example], dict]:
    """The training set: formatted skill-mix conversations plus the pre-training chunks."""
    t = cfg.train
    path = Path(data_path) if data_path else find_mix(cfg.out, t.data_mix, t.subsample)
    rows = load_rows(path)
    examples, stats = format_rows(rows, tokenizer, fmt=t.format, max_length=t.max_length)
    if not examples:
        raise SkillmixError("no training example fits max_length", file=str(path),
                            field="train.max_length")
    sm_tokens = sum(len(e) for e in examples)
    docs = load_corpus(t.pretrain.corpus) if t.pretrain.ratio > 0 else []
    chunk = max(16, min(t.max_length, round(sm_tokens / len(examples))))
    pre = pretrain_examples(docs, tokenizer, n_tokens=tokens_for_ratio(sm_tokens, t.pretrain.ratio),
                            chunk_len=chunk, seed=t.seed)
    info = {"data": str(path), "rows": len(rows), **stats.as_dict(),
            "skillmix_examples": len(examples), "skillmix_tokens": sm_tokens,
            "pretrain_corpus": t.pretrain.corpus, "pretrain_examples": len(pre),
            "pretrain_tokens": sum(len(e) for e in pre)}
    return examples + pre, info
