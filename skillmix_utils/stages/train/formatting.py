"""Training examples: a D_SKILL-MIX conversation -> token ids + labels, loss only on the answers.

    ex = format_conversation(row["messages"], tokenizer, fmt="chat_template", max_length=1024)

docs/protocol.md §7: turn-1 prompt, answer 1, turn-2 prompt, answer 2 as one conversation, loss only
on the two answers. Each answer's label span includes the end-of-turn token that closes it
(`<|im_end|>`, `</s>`, ...) so the model learns to stop; when pad == eos a padding-based mask
would silently drop that token (the classic Llama-2/Mistral failure), so labels are built from
character spans of the rendered conversation instead. The template's formatting after the
end-of-turn token (a newline) and every prompt token carry -100.

Over-long conversations are cut after the last answer that fits (a turn boundary) or dropped
when not even the first answer fits; `FormatStats` counts both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.export import mix_name as canonical

IGNORE = -100
# Tokens that close an assistant turn in common chat templates; the tokenizer's eos is added.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")


@dataclass
class Example:
    """One training sequence. labels[i] is the target for input_ids[i] (unshifted), -100 = no loss."""
    input_ids: list[int]
    labels: list[int]
    source: str = "skillmix"       # or "pretrain"
    id: str = ""

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_labels(self) -> int:
        # labels[0] is never a target: nothing precedes it (kept -100 so packing is exact).
        return sum(1 for t in self.labels[1:] if t != IGNORE)


@dataclass
class FormatStats:
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    dropped_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kept": self.kept, "truncated": self.truncated, "dropped": self.dropped}


def mix_name(data_mix: list[int], subsample: str | None = None) -> str:
    """The data stage's name for a mix (`stages.export.mix_name`, the one definition).

    >>> mix_name([1, 2]), mix_name([3, 2, 1]), mix_name([1, 2, 3], "sub8k")
    ('k1-2', 'k1-2-3', 'sub8k')
    """

    return canonical(data_mix, subsample)


def load_rows(path: str | Path) -> list[dict]:
    """Rows of a mix: a JSONL file or a `datasets` folder saved with save_to_disk."""
    path = Path(path)
    if path.is_dir():
        from datasets import load_from_disk

        ds = load_from_disk(str(path))
        if hasattr(ds, "keys") and "train" in ds:  # a DatasetDict
            ds = ds["train"]
        return [dict(r) for r in ds]
    if not path.exists():
        raise SkillmixError("training data not found (run the data stage first)", file=str(path))
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SkillmixError(f"line {n} is not JSON ({exc.msg})", file=str(path))
    for n, row in enumerate(rows, 1):
        if not isinstance(row.get("messages"), list) or not row["messages"]:
            raise SkillmixError(f"row {n} has no messages list", file=str(path), field="messages")
    return rows


def find_mix(out_dir: str | Path, data_mix: list[int], subsample: str | None = None) -> Path:
    """outputs/<study>/data/mixes/<name>.jsonl, or the `datasets` folder of the same name."""
    base = Path(out_dir) / "data" / "mixes" / mix_name(data_mix, subsample)
    jsonl = base.with_name(base.name + ".jsonl")
    if jsonl.exists():
        return jsonl
    if base.is_dir():
        return base
    raise SkillmixError("training mix not found (run generate-data first)", file=str(jsonl),
                        field="train.subsample" if subsample else "train.data_mix")


def _end_of_turn_strings(tokenizer) -> list[str]:
    vocab = tokenizer.get_vocab()
    eots = [s for s in END_OF_TURN if s in vocab]
    if tokenizer.eos_token and tokenizer.eos_token not in eots:
        eots.insert(0, tokenizer.eos_token)
    return eots


def _render(tokenizer, messages, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def _chat_template(messages, tokenizer) -> tuple[list[int], list[int], list[int]]:
    """ids, labels and the token index after each answer (its turn boundary)."""
    text = _render(tokenizer, messages, False)
    spans = []   # character spans [start, end) of each answer incl. its end-of-turn string
    eots = _end_of_turn_strings(tokenizer)
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], True)
        upto = _render(tokenizer, messages[: i + 1], False)
        if not (text.startswith(upto) and upto.startswith(prefix)):
            raise SkillmixError("the chat template is not prefix-stable; use format: plain",
                                field="train.format")
        answer = upto[len(prefix):]
        # A template may strip or escape the content: then search from the answer's start.
        start = answer.find(msg["content"]) if msg["content"] else -1
        after = start + len(msg["content"]) if start >= 0 else 0
        end_rel = len(answer.rstrip())
        for eot in eots:   # the first end-of-turn string after the content closes the answer
            j = answer.find(eot, after)
            if j >= 0:
                end_rel = j + len(eot)
                break
        spans.append((len(prefix), len(prefix) + end_rel))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [IGNORE] * len(ids)
    boundaries = []
    for s, e in spans:
        last = None
        for t, (a, b) in enumerate(offsets):
            if a >= s and b <= e and b > a:
                labels[t] = ids[t]
                last = t
        if last is not None:
            boundaries.append(last + 1)
    return ids, labels, boundaries


def _plain(messages, tokenizer) -> tuple[list[int], list[int], list[int]]:
    """Plain concatenation: prompt, blank line, answer + eos, blank line, ... (no template)."""
    ids: list[int] = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    labels = [IGNORE] * len(ids)
    boundaries = []
    for msg in messages:
        if msg["role"] == "assistant":
            part = tokenizer(msg["content"], add_special_tokens=False)["input_ids"]
            part = part + [tokenizer.eos_token_id]
            ids += part
            labels += part
            boundaries.append(len(ids))
            sep = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
        else:
            sep = tokenizer(msg["content"] + "\n\n", add_special_tokens=False)["input_ids"]
        ids += sep
        labels += [IGNORE] * len(sep)
    return ids, labels, boundaries


def format_conversation(messages: list[dict], tokenizer, *, fmt: str = "chat_template",
                        max_length: int = 1024, stats: FormatStats | None = None,
                        id: str = "") -> Example | None:
    """Tokenise one conversation; None when it is dropped (too long even for its first answer)."""
    ids, labels, boundaries = (_plain if fmt == "plain" else _chat_template)(messages, tokenizer)
    labels[0] = IGNORE
    truncated = False
    if len(ids) > max_length:
        fitting = [b for b in boundaries if b <= max_length]
        if not fitting:
            if stats:
                stats.dropped += 1
                stats.dropped_ids.append(id)
            return None
        ids, labels, truncated = ids[: fitting[-1]], labels[: fitting[-1]], True
    if stats:
        stats.kept += 1
        stats.truncated += truncated
    return Example(ids, labels, "skillmix", id)


def format_rows(rows: list[dict], tokenizer, *, fmt: str = "chat_template",
                max_length: int = 1024) -> tuple[list[Example], FormatStats]:
    """Every row of a mix as an Example, with counts of truncated and dropped rows."""
    stats = FormatStats()
    out = []
    for n, row in enumerate(rows):
        ex = format_conversation(row["messages"], tokenizer, fmt=fmt, max_length=max_length,
                                 stats=stats, id=str(row.get("id", n)))
        if ex is not None:
            out.append(ex)
    return out, stats
