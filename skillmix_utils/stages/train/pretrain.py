"""The pre-training mix: plain English prose mixed into the fine-tuning data "as in RLHF".

    docs = load_corpus("builtin")              # or a folder of .txt, or a datasets folder
    chunks = pretrain_examples(docs, tok, n_tokens=20_000, chunk_len=300, seed=0)

docs/protocol.md §7 says pre-training data was mixed in but publishes neither corpus nor ratio;
`train.pretrain.ratio` is the share of all training tokens that come from the corpus.

The offline default, `corpus: builtin`, is the prose of the Python Language Reference and
Library documentation that every CPython installation carries as `pydoc_data.topics` (the text
behind `help("assert")`), about 0.4 MB, licence PSF-2.0 (Python Software Foundation License,
https://docs.python.org/3/license.html). Code samples and grammar rules (indented lines) and
headings are removed; what is left is human-written English paragraphs. It needs no download
and no extra package. It is technical prose, not general web text: for a real reproduction
point `corpus` at a folder of .txt files (e.g. Project Gutenberg books) or at a `datasets`
folder with a `text` column (e.g. a slice of C4 or FineWeb saved with `save_to_disk`).
Searched and rejected: PyPI packages named for Gutenberg carry downloaders, not text; Debian's
WordNet glosses are one-line definitions and bible-kjv-text is archaic and needs apt.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.train.formatting import IGNORE, Example

BUILTIN_SOURCE = "Python documentation (pydoc_data.topics, PSF-2.0)"


def builtin_corpus() -> list[str]:
    """Prose paragraphs of the Python docs shipped in the standard library, one doc per topic."""
    from pydoc_data.topics import topics

    docs = []
    for name in sorted(topics):
        paras = []
        for block in re.split(r"\n\s*\n", topics[name]):
            lines = block.splitlines()
            if not lines or any(line.startswith((" ", "\t")) for line in lines):
                continue  # code, grammar productions, indented lists
            if re.fullmatch(r"[*=\-~^]+", lines[-1].strip()):
                continue  # a heading and its underline
            text = " ".join(line.strip() for line in lines)
            if len(text) >= 120 and text.rstrip().endswith((".", ":", "?")):
                paras.append(text)
        if paras:
            docs.append("\n\n".join(paras))
    return docs


def load_corpus(spec: str | None) -> list[str]:
    """Documents of a corpus: "builtin", a folder of .txt files, or a `datasets` folder."""
    if spec in (None, "", "none"):
        return []
    if spec == "builtin":
        return builtin_corpus()
    path = Path(spec).expanduser()
    if not path.exists():
        raise SkillmixError("pre-training corpus not found (a folder of .txt files, a datasets "
                            "folder, or 'builtin')", file=str(path), field="train.pretrain.corpus")
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        from datasets import load_from_disk

        ds = load_from_disk(str(path))
        if hasattr(ds, "keys") and "train" in ds:
            ds = ds["train"]
        if "text" not in ds.column_names:
            raise SkillmixError("a datasets corpus needs a 'text' column", file=str(path),
                                field="train.pretrain.corpus")
        return [t for t in ds["text"] if t and t.strip()]
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    docs = [f.read_text(errors="replace") for f in files]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise SkillmixError("no .txt text found", file=str(path), field="train.pretrain.corpus")
    return docs


def tokens_for_ratio(skillmix_tokens: int, ratio: float) -> int:
    """Corpus tokens so that they are `ratio` of all training tokens.

    >>> tokens_for_ratio(900, 0.1)
    100
    """
    return 0 if ratio <= 0 else round(skillmix_tokens * ratio / (1 - ratio))


def pretrain_examples(docs: list[str], tokenizer, *, n_tokens: int, chunk_len: int,
                      seed: int = 0) -> list[Example]:
    """About n_tokens of corpus text as chunks of chunk_len tokens, loss on every token.

    Documents are shuffled (seeded), tokenised, joined with eos and cut into chunks; the corpus
    repeats if it is smaller than the budget.
    """
    if n_tokens <= 0 or not docs:
        return []
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    out: list[Example] = []
    i = 0
    while sum(len(e) for e in out) < n_tokens:
        while len(stream) < chunk_len:
            stream += tokenizer(docs[order[i % len(order)]], add_special_tokens=False)["input_ids"]
            stream.append(eos)
            i += 1
        ids, stream = stream[:chunk_len], stream[chunk_len:]
        out.append(Example(ids, [IGNORE] + ids[1:], "pretrain", f"pretrain-{len(out)}"))
    return out
