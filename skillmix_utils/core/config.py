"""Study configs: one validated YAML file describes a whole study (data, training, evaluation).

`load_study_config("configs/demo.yaml", overrides={"evaluation.n_combinations": 2})` returns a
`StudyConfig`; a bad file raises SkillmixError naming the file and the field. The schema is
documented field by field in README.md ("Study config"); configs/*.yaml are the examples.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skillmix_utils.core.catalog import apply_partition, load_catalog
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.redact import find_credential

Pool = Literal["train", "held_out", "all"]


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in a config must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """A model reached through a backend spec such as "openai:gpt-4o" or "hf:smollm2-135m-instruct"."""
    spec: str
    base_url: str | None = None
    temperature: float = 0.7
    max_tokens: int = 512
    seed: int | None = None
    options: dict = Field(default_factory=dict)   # passed to get_backend (batch, rpm, tpm, ...)

    @field_validator("options")
    @classmethod
    def _no_secrets(cls, v: dict) -> dict:
        # Keys come from the environment only, so a config (which is copied into outputs and
        # notebooks) can never carry one.
        bad = [k for k in v if any(w in k.lower() for w in ("key", "token", "secret", "auth"))]
        if bad:
            raise ValueError(f"{bad[0]!r}: API keys are read from the environment only "
                             "(OPENAI_API_KEY, ANTHROPIC_API_KEY), never from a config")
        return v

    @field_validator("spec")
    @classmethod
    def _has_kind(cls, v: str) -> str:
        kinds = ("openai:", "anthropic:", "openai-compatible:", "hf:", "vllm:")
        if not v.startswith(kinds):
            raise ValueError(f"{v!r} must start with one of {', '.join(kinds)}")
        if not v.split(":", 1)[1].strip():
            raise ValueError(f"{v!r} names no model: write e.g. {v}gpt-4o-mini")
        return v


class GraderSpec(ModelSpec):
    """A grader: a model plus how it is asked. `method` is table (the GPT-4 prompt), point_earned
    (the open-weight prompt) or yes_no_logprob (local judge: per-criterion Yes/No probabilities)."""
    name: str | None = None            # short label for tables, default: the spec
    method: Literal["table", "point_earned", "yes_no_logprob"] = "table"
    rounds: int = Field(3, ge=1)
    # The provider's default (1.0), so that rounds are independent samples; at 0 several rounds
    # are copies of one grading, and the grade stage warns.
    temperature: float = 1.0

    @property
    def label(self) -> str:
        return self.name or self.spec


class PoolSpec(_Strict):
    skills: Pool
    topics: Pool


class ScoringSpec(_Strict):
    explicit_name_rule: bool = True                        # the paper's harder variant
    sentence_counter: Literal["reference", "improved"] = "reference"
    # How an unreadable grading (parse_failed) counts: "exclude" leaves it out of the vote (it is
    # counted and re-gradable); "zero" scores it 0 on every criterion, as the reference code did.
    unreadable: Literal["exclude", "zero"] = "exclude"


class CatalogSpec(_Strict):
    skills: str | None = None     # None: the built-in open catalog; paths are relative to the cwd
    topics: str | None = None
    train_categories: list[str] | None = None   # CSV catalogs: categories of the training split
    topic_seed: int = 0                          # plain-text topics: seed of the 50/50 draw
    partition: "PartitionSpec | None" = None     # another train/held-out split (partitions.py)

    def load(self):
        """The catalog this spec names (catalog.load_catalog), re-split by `partition` if set."""

        catalog = load_catalog(self.skills, self.topics, train_categories=self.train_categories,
                               topic_seed=self.topic_seed)
        if self.partition is not None:

            catalog = apply_partition(catalog, self.partition)
        return catalog


class SkillPartition(_Strict):
    """How skills are split: `file` (the catalog's own split), `by_category` (these
    `train_categories` are training skills) or `random` (`train_fraction` of the skills, seeded)."""
    rule: Literal["file", "by_category", "random"] = "file"
    train_categories: list[str] | None = None
    train_fraction: float = Field(0.5, gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _categories_given(self):
        if self.rule == "by_category" and not self.train_categories:
            raise ValueError("rule by_category needs train_categories")
        if self.rule != "by_category" and self.train_categories:
            raise ValueError(f"train_categories applies to rule by_category, not {self.rule}")
        return self


class TopicPartition(_Strict):
    """How topics are split: `file` (the catalog's own split) or `random` (seeded)."""
    rule: Literal["file", "random"] = "file"
    train_fraction: float = Field(0.5, gt=0, lt=1)
    seed: int = 0


class PartitionSpec(_Strict):
    """A train/held-out partition of skills and topics (`catalog.partition`; partitions.py)."""
    name: str | None = None                 # label in tables and grid run names
    skills: SkillPartition = Field(default_factory=SkillPartition)
    topics: TopicPartition = Field(default_factory=TopicPartition)


CatalogSpec.model_rebuild()


class SkillSubsetSpec(_Strict):
    """Evaluate on a subset of skills only (e.g. the paper's "uncommon skills"): a list of
    `names`, or a `frequency_file` (CSV `skill,frequency`, frequency in [0, 1]) with the skills
    below `max_frequency`. Combinations are drawn from each setting's skills inside the subset."""
    name: str = "subset"
    names: list[str] | None = None
    frequency_file: str | None = None
    max_frequency: float = Field(0.05, gt=0, le=1)
    parrot_corpus_texts: float | None = Field(None, gt=0)   # D of the parrot line (uncommon.py)

    @model_validator(mode="after")
    def _one_source(self):
        if (self.names is None) == (self.frequency_file is None):
            raise ValueError("give exactly one of names or frequency_file")
        return self


class HumanSpec(_Strict):
    """Blind human grading (`skillmix human`; human/): which texts raters see."""
    n_texts: int = Field(60, ge=1)                 # sample size, stratified by student and k
    seed: int = 0
    source: Literal["eval", "datagen"] = "eval"    # evaluation texts or teacher texts
    students: list[str] | None = None              # only these students (eval) / writers
    ks: list[int] | None = None


class SubsampleSpec(_Strict):
    name: str
    size: int | None = Field(None, gt=0)   # None: every kept text of the k not in per_k, plus per_k
    per_k: dict[int, int] = Field(default_factory=dict)  # e.g. {3: 2000}; the rest drawn from other k
    seed: int = 0


class DataSpec(_Strict):
    """Generating D_SKILL-MIX(k) (docs/protocol.md §6)."""
    enabled: bool = True
    teacher: ModelSpec
    graders: list[GraderSpec] = Field(min_length=1)
    counts: dict[int, Annotated[int, Field(ge=1)]]          # generations per k (leave a k out to skip it)
    pools: dict[int, PoolSpec] = Field(default_factory=lambda: {
        1: PoolSpec(skills="all", topics="train"),
        2: PoolSpec(skills="train", topics="train"),
        3: PoolSpec(skills="train", topics="train")})
    keep: Literal["full_marks"] = "full_marks"
    mixes: list[list[int]] = Field(default_factory=lambda: [[1], [1, 2], [1, 2, 3]])
    subsamples: list[SubsampleSpec] = Field(default_factory=list)
    seed: int = 0

    @model_validator(mode="after")
    def _pools_cover_counts(self):
        for k in self.counts:
            if k < 1:
                raise ValueError(f"counts: k must be at least 1, got {k}")
            if k not in self.pools:
                raise ValueError(f"pools: no pool given for k={k}")
        for mix in self.mixes:
            missing = [k for k in mix if k not in self.counts]
            if missing:
                raise ValueError(f"mixes: {mix} uses k={missing} that counts does not generate")
        return self


class LoraSpec(_Strict):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"


class PretrainSpec(_Strict):
    corpus: str | None = "builtin"     # "builtin" (offline default), a folder of .txt, a datasets folder, or null
    ratio: float = Field(0.1, ge=0, lt=1)   # share of training tokens from the corpus


class TrainSpec(_Strict):
    """Fine-tuning the student (docs/protocol.md §7)."""
    enabled: bool = True
    base_model: str                                  # hf alias, folder or hub id
    mode: Literal["lora", "qlora", "full"] = "lora"
    data_mix: list[int] = Field(default_factory=lambda: [1, 2, 3])
    subsample: str | None = None                     # a DataSpec.subsamples name
    steps: int = Field(4000, ge=1)
    batch_size: int = Field(64, ge=1)                # effective: per_device × accumulation × processes
    per_device_batch_size: int = Field(4, ge=1)
    learning_rate: float = 2e-5
    warmup_steps: int = 64
    max_length: int = 1024
    format: Literal["chat_template", "plain"] = "chat_template"
    packing: bool = True
    lora: LoraSpec = Field(default_factory=LoraSpec)
    pretrain: PretrainSpec = Field(default_factory=PretrainSpec)
    gradient_checkpointing: bool = False
    # Clip the global gradient norm to this before each optimiser step (0: no clipping); the
    # same under every launcher (DeepSpeed gets it as its `gradient_clipping`).
    max_grad_norm: float = Field(1.0, ge=0)
    checkpoint_every: int = 500
    merge_adapter: bool = False
    # Where training reports (train/tracking.py): tensorboard (offline), wandb, mlflow; [] for none.
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(default_factory=lambda: ["tensorboard"])
    eval_every: int = Field(0, ge=0)        # steps between held-out losses (0: never)
    eval_examples: int = Field(0, ge=0)     # skill-mix examples kept out of training for that loss
    launcher: Literal["none", "ddp", "fsdp", "deepspeed"] = "none"
    num_processes: int = 1
    seed: int = 0


class StudentSpec(_Strict):
    """A student: a base model, optionally with the adapter or checkpoint of a training run.
    `adapter: "@train"` means the output of this study's training stage."""
    name: str
    model: ModelSpec
    adapter: str | None = None
    # vllm: students only. Before a full run, greedy outputs of vLLM and transformers + peft
    # are compared on this many prompts; the run stops if fewer than `parity_min_match` agree.
    parity_prompts: int = Field(3, ge=0)
    parity_min_match: float = Field(0.6, ge=0, le=1)


class EvaluationSpec(_Strict):
    """Evaluating with SKILL-MIX (docs/protocol.md §8)."""
    enabled: bool = True
    students: list[StudentSpec] = Field(min_length=1)
    settings: list[Literal["train", "held_out", "all"]] = Field(
        default_factory=lambda: ["train", "held_out", "all"])
    ks: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    n_combinations: int = Field(100, ge=1)
    generation_rounds: int = Field(3, ge=1)
    graders: list[GraderSpec] = Field(min_length=1)
    seed: int = 0
    skill_subset: SkillSubsetSpec | None = None        # e.g. uncommon skills only

    @field_validator("ks")
    @classmethod
    def _positive(cls, ks):
        if any(k < 1 for k in ks):
            raise ValueError(f"every k must be at least 1, got {ks}")
        return ks


class ClusterSpec(_Strict):
    """Where `skillmix run` executes a study: here (`local`), or each grid run as a SLURM job
    submitted through submitit (`slurm`; runner/slurm/, README "On a cluster"). Resources are
    per job; a job whose training needs more processes than `gpus_per_node` asks for several
    nodes (ceil(train.num_processes / gpus_per_node))."""
    executor: Literal["local", "slurm"] = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    # None: what the run needs (train.num_processes GPUs when it trains, 1 for a local model,
    # else none); 0: CPU-only jobs.
    gpus_per_node: int | None = Field(None, ge=0)
    cpus_per_task: int = Field(8, ge=1)
    mem_gb: float | None = Field(None, gt=0)           # None: the partition's default
    time_min: int = Field(1440, ge=1)                  # a job's time limit (minutes)
    max_parallel: int = Field(0, ge=0)                 # grid runs in flight at once (0: all)
    slurm_extra: dict[str, str | int | bool] = Field(default_factory=dict)   # more sbatch options


class StudyConfig(_Strict):
    name: str
    description: str = ""
    output_dir: str | None = None          # default: outputs/<name>
    catalog: CatalogSpec = Field(default_factory=CatalogSpec)
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    concurrency: int = Field(8, ge=1)
    budget_usd: float | None = Field(None, ge=0)       # cap for the study, over all its runs
    run_budget_usd: float | None = Field(None, ge=0)   # cap for one run of one stage
    data: DataSpec | None = None
    train: TrainSpec | None = None
    evaluation: EvaluationSpec | None = None
    grid: dict[str, list] = Field(default_factory=dict)   # dotted field -> values: one run each
    human: HumanSpec = Field(default_factory=HumanSpec)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, tree):
        if isinstance(tree, dict):
            found = find_credential(tree)
            if found:
                raise ValueError(f"{found[0]}: {found[1]}")
        return tree

    @property
    def out(self) -> Path:
        return Path(self.output_dir or Path("outputs") / self.name)


def _set_dotted(tree: dict, dotted: str, value, file: str) -> None:
    """Set `a.b.0.c` in a config tree; a path through a value or past a list's end is an error.

    >>> t = {"name": "x", "data": {"graders": [{"rounds": 3}]}}
    >>> _set_dotted(t, "data.graders.0.rounds", 1, "c.yaml"); t["data"]["graders"]
    [{'rounds': 1}]
    >>> _set_dotted(t, "name.sub", 1, "c.yaml")
    Traceback (most recent call last):
    ...
    skillmix_utils.core.errors.SkillmixError: c.yaml: --set name.sub: name is a value ('x'), not a section with fields
    """
    node = tree
    keys = dotted.split(".")
    if not dotted or any(not k for k in keys):
        raise SkillmixError("an empty field name", file=file, field=f"--set {dotted}")
    for depth, key in enumerate(keys):
        here = ".".join(keys[:depth]) or "(top level)"
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not key.lstrip("-").isdigit():
                raise SkillmixError(f"{here} is a list: use a number, not {key!r}",
                                    file=file, field=f"--set {dotted}")
            i = int(key)
            if not -len(node) <= i < len(node):
                raise SkillmixError(f"{here} has {len(node)} entr{'y' if len(node) == 1 else 'ies'}"
                                    f" (0-{len(node) - 1}), no entry {i}",
                                    file=file, field=f"--set {dotted}")
            key = i
        elif isinstance(node, dict):
            if not last and (key not in node or node[key] is None):
                node[key] = {}
        else:
            raise SkillmixError(f"{here} is a value ({node!r}), not a section with fields",
                                file=file, field=f"--set {dotted}")
        if last:
            node[key] = value
        else:
            node = node[key]


def refuse_credentials(tree: dict, file: str) -> None:
    """Refuse a config holding anything that looks like a credential, naming the field: keys
    are read from the environment only, and a config is copied into outputs and notebooks."""
    found = find_credential(tree)
    if found:
        raise SkillmixError(found[1], file=file, field=found[0])


def _pydantic_message(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling against README.md, 'Study config')"
    more = len(err.errors()) - 1
    return field, msg + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def load_study_config(path: str | Path, overrides: dict | None = None) -> StudyConfig:
    """Read and validate a study config; `overrides` maps dotted fields to values."""
    path = Path(path)
    if not path.exists():
        raise SkillmixError("no such study config file", file=str(path))
    if path.is_dir():
        raise SkillmixError("is a folder; give a study config YAML file", file=str(path))
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise SkillmixError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise SkillmixError(f"not valid YAML{at}: {getattr(exc, 'problem', None) or exc}",
                            file=str(path)) from None
    if not isinstance(tree, dict):
        raise SkillmixError("a study config must be a mapping of fields", file=str(path))
    tree = copy.deepcopy(tree)
    for dotted, value in (overrides or {}).items():
        _set_dotted(tree, dotted, value, str(path))
    refuse_credentials(tree, str(path))
    try:
        cfg = StudyConfig.model_validate(tree)
    except ValidationError as err:
        field, msg = _pydantic_message(err)
        raise SkillmixError(msg, file=str(path), field=field) from None
    # One rule for where a study writes, whoever loads it (CLI, runner, notebooks, API): a
    # relative output_dir, or the default outputs/<name>, is anchored at the config's project.
    out = cfg.out
    if not out.is_absolute():
        out = project_root(path.resolve().parent) / out
    return cfg.model_copy(update={"output_dir": str(out)})


def project_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding pyproject.toml or .git, else the current
    folder: where a study's relative `output_dir` (default `outputs/<name>`) lives."""
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return Path.cwd()


def write_resolved_config(cfg: StudyConfig) -> Path:
    """Write the resolved config (defaults filled in, output_dir absolute) to `<out>/config.yaml`:
    what the stages, the runner and the report read back as the study's config."""
    path = cfg.out / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = cfg.model_dump(mode="json")
    path.write_text(yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
    return path
