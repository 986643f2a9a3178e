"""The dataset card a pushed D_SKILL-MIX carries (README.md of the dataset repo, `hub.push`):
hub front matter (one config per mix), what the data is, how it was made, and the data card of
`stages/export.py` (teacher, graders, counts and keep rate per k, contamination check)."""
from __future__ import annotations

from collections import Counter

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.llm.models import model_aliases
from skillmix_utils.stages.export import card_markdown, mix_name
from skillmix_utils.stages.train.card import hub_license


def size_category(n: int) -> str:
    """The hub's size_categories label for n rows.

    >>> size_category(12), size_category(1000), size_category(25_000)
    ('n<1K', '1K<n<10K', '10K<n<100K')
    """
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def data_license(cfg: StudyConfig) -> str:
    """The texts' licence: the teacher's when it is a local model with a known licence, else
    "other" (an API teacher's outputs fall under its provider's terms)."""

    spec = cfg.data.teacher.spec if cfg.data is not None else ""
    alias = spec.split(":", 1)[1] if spec.startswith("hf:") else ""
    return hub_license((model_aliases().get(alias) or {}).get("license"))


def front_matter(cfg: StudyConfig, mixes: dict[str, list[dict]], default: str | None) -> str:
    """YAML front matter: licence, task, tags, size and one `configs:` entry per mix."""
    import yaml

    rows = len({r["id"] for rs in mixes.values() for r in rs})
    meta = {"license": data_license(cfg), "language": ["en"],
            "task_categories": ["text-generation"],
            "tags": ["skill-mix", "skillmix", "skill-composition", "synthetic"],
            "size_categories": [size_category(rows)],
            "pretty_name": f"D_SKILL-MIX of study {cfg.name}",
            "configs": [{"config_name": name, "data_files": [{"split": "train",
                                                              "path": f"data/{name}.parquet"}],
                         **({"default": True} if name == default else {})} for name in mixes]}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def dataset_card(cfg: StudyConfig, mixes: dict[str, list[dict]], data_card: dict | None,
                 model_repo: str | None = None) -> str:
    """The dataset card text: front matter, what D_SKILL-MIX(k) is, how to load it, the rows per
    mix and k, and the study's data card (teacher, graders, keep rate) when it has one."""

    trained = mix_name(cfg.train.data_mix, cfg.train.subsample) if cfg.train else None
    default = trained if trained in mixes else next(iter(mixes), None)
    repo = f"{model_repo.rsplit('/', 1)[0]}/{cfg.name}-d-skill-mix" if model_repo else cfg.name
    lines = [f"# D_SKILL-MIX: study `{cfg.name}`", "",
             "Short texts that each show k language skills (from the SKILL-MIX skill catalog) on a "
             "given topic, written by a teacher model, graded with the k + 3 point SKILL-MIX rubric "
             "(one point per skill, one each for the topic, the sense and the length) and **kept "
             "only at full marks**: D_SKILL-MIX(k) of \"Can Models Learn Skill Composition from "
             "Examples?\" (Zhao et al., NeurIPS 2024). Each row is the two-turn conversation "
             "(write, then polish) with its `id`, `k`, `skills` and `topic`; a mix named `k1-2-3` "
             "holds the kept texts of k = 1, 2 and 3. Made with skillmix.", "",
             "```python", "from datasets import load_dataset", "",
             f'ds = load_dataset("{repo}", "{default}", split="train")', "```", "",
             "| config | rows | rows per k |", "|---|---|---|"]
    for name, rows in mixes.items():
        per_k = ", ".join(f"k={k}: {n}" for k, n in sorted(Counter(r["k"] for r in rows).items()))
        lines.append(f"| `{name}` | {len(rows)} | {per_k or '-'} |")
    if model_repo:
        lines += ["", f"The model trained on `{trained}` in this study: [{model_repo}]"
                      f"(/{model_repo})."]
    if data_card:
        # The data card's own Markdown, one heading level down under this card's title.
        body = card_markdown(data_card).split("\n", 1)[1].lstrip("\n")
        lines += ["", "## How it was made", ""] + [
            "#" + line if line.startswith("## ") else line for line in body.splitlines()]
    else:
        lines += ["", "The study's data card (data/data_card.json) was not found: teacher, "
                      "graders and keep rates are not recorded here."]
    return front_matter(cfg, mixes, default) + "\n" + "\n".join(lines) + "\n"
