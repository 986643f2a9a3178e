"""The study config's sections: models and graders, scoring and protocol, catalog, data, training,
evaluation, human grading (pydantic, unknown keys rejected; README "Study configs" documents each)."""
from __future__ import annotations

import copy
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from skillmix_utils.core.catalog import apply_partition, load_catalog
from skillmix_utils.core.config.fields import (
    API_KINDS,
    DEFAULT_TEMPERATURE_RANGE,
    NUMERIC_OPTIONS,
    PROTOCOL_PRESETS,
    SCORING_PRESETS,
    TEMPERATURE_RANGE,
    Pool,
    Preset,
    StrictModel,
    as_section,
    check_url,
    safe_name,
)


class ModelSpec(StrictModel):
    """A model reached through a backend spec such as "openai:gpt-4o" or "hf:smollm2-135m-instruct"."""
    spec: str
    base_url: str | None = None
    temperature: float = 0.7
    max_tokens: int = 512
    seed: int | None = None
    options: dict = Field(default_factory=dict)   # passed to get_backend (batch, rpm, tpm, ...)
    # Sent as the first message of every request to this model (the `reference` protocol sets
    # the reference's "You are a helpful assistant." on API models); None sends none.
    system_message: str | None = None
    # How the text that counts is read from this model's reply when it writes (teacher,
    # student): "improved" (core/answers.py: markers, unwrapping) or "reference" (the
    # reference code's split, to the character).
    answer_rule: Preset = "improved"

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

    @field_validator("options")
    @classmethod
    def _known_options_in_range(cls, v: dict) -> dict:
        for name, (low, kind, zero_ok) in NUMERIC_OPTIONS.items():
            if name not in v or v[name] is None:
                continue
            x = v[name]
            if isinstance(x, bool) or not isinstance(x, (int, float)) or \
                    (kind is int and not isinstance(x, int)):
                raise ValueError(f"{name} must be a{'n integer' if kind is int else ' number'}")
            if x < low or (x == low and not zero_ok) or x != x:
                raise ValueError(f"{name} must be {'at least' if zero_ok else 'more than'} {low:g}")
        return v

    @field_validator("temperature")
    @classmethod
    def _temperature_accepted(cls, v: float, info: ValidationInfo) -> float:
        kind = str(info.data.get("spec", "")).split(":", 1)[0]
        low, high = TEMPERATURE_RANGE.get(kind, DEFAULT_TEMPERATURE_RANGE)
        if not low <= v <= high:
            raise ValueError(f"{v:g} is outside what {kind or 'the provider'} accepts "
                             f"({low:g} to {high:g})")
        return v

    @field_validator("max_tokens")
    @classmethod
    def _some_tokens(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1 (the number of tokens a reply may have)")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

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
    # How a rubric prompt words each skill criterion: "Correctly illustrates {skill}", or
    # "Contains {skill}" as the reference code's open-weight (point_earned) prompt does.
    skill_criterion: Literal["Correctly illustrates", "Contains"] = "Correctly illustrates"

    @model_validator(mode="after")
    def _rubric_options(self):
        # The local judge asks its own yes/no questions: an option it would not send is refused
        # rather than recorded in identities it does not shape.
        if self.method == "yes_no_logprob" and self.skill_criterion != "Correctly illustrates":
            raise ValueError("skill_criterion words a rubric prompt (table, point_earned); the "
                             "yes_no_logprob judge asks with its own wording")
        if self.method == "yes_no_logprob" and self.system_message is not None:
            raise ValueError("the yes_no_logprob judge sends no system message")
        return self
    # An unreadable reply (parse_failed) is asked again, with another seed, this many times in the
    # same run (the cache keeps every attempt, so a re-run pays nothing again).
    parse_retries: int = Field(2, ge=0, le=10)
    # The share of this grader's gradings that may stay unreadable after the retries before the
    # stage exits 1 (a grader answering "" or in a shape no parser reads is a failure, not data).
    max_unreadable: float = Field(0.1, ge=0, le=1)

    @property
    def label(self) -> str:
        return self.name or self.spec


class PoolSpec(StrictModel):
    skills: Pool
    topics: Pool


class ScoringSpec(StrictModel):
    """How gradings become points (docs/protocol.md §4, §10). `preset` fills the options left
    out (SCORING_PRESETS); `scoring: reference` is short for `{preset: reference}`."""
    preset: Preset = "improved"
    explicit_name_rule: bool                               # the paper's harder variant
    # How the rule matches a name: "whole_words" (core/text_rules.py) or "reference" (the name
    # cut at "(" as a substring, as the reference code matched).
    explicit_name_match: Literal["whole_words", "reference"]
    sentence_counter: Literal["reference", "improved"]
    # What a criterion a grading gives no readable point for counts (a reply that is unreadable,
    # or lists only some items): "exclude" leaves it out of that criterion's vote (the grading is
    # counted as parse_failed and re-gradable); "zero" scores it 0, the reference code's zero-fill.
    unreadable: Literal["exclude", "zero"]

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, value):
        if not isinstance(value, (str, dict)) and value is not None:
            return value
        section = as_section(value)
        # An unknown preset fills nothing; the `preset` field then names the bad value.
        return {**SCORING_PRESETS.get(section.get("preset", "improved"), {}), **section}


class ProtocolSpec(StrictModel):
    """How requests are made and replies read (docs/protocol.md §10): `preset` fills each
    model's `system_message` and `answer_rule`, each point_earned grader's `skill_criterion`
    and `catalog.whitespace` where the config leaves them out (PROTOCOL_PRESETS).
    `protocol: reference` is short for `{preset: reference}`."""
    preset: Preset = "improved"

    @model_validator(mode="before")
    @classmethod
    def _named(cls, value):
        return as_section(value) if isinstance(value, str) else value


def apply_protocol(tree: dict) -> dict:
    """The config tree with the protocol preset's values filled in where it gives none (a copy;
    the caller's tree is left as it is)."""
    proto = tree.get("protocol")
    name = as_section(proto).get("preset", "improved") if isinstance(proto, (str, dict, type(None))) else None
    if name not in PROTOCOL_PRESETS:
        return tree                  # ProtocolSpec names the bad value, with its field
    p = PROTOCOL_PRESETS[name]
    tree = copy.deepcopy(tree)

    def model(node, writes: bool):
        if not isinstance(node, dict):
            return
        if str(node.get("spec", "")).startswith(API_KINDS):
            node.setdefault("system_message", p["system_message"])
        if writes:
            node.setdefault("answer_rule", p["answer_rule"])
        elif node.get("method", "table") == "point_earned":
            node.setdefault("skill_criterion", p["point_earned_criterion"])

    catalog = tree.get("catalog")
    if catalog is None or isinstance(catalog, dict):
        tree["catalog"] = {**(catalog or {})}
        tree["catalog"].setdefault("whitespace", p["catalog_whitespace"])
    data, evaluation = (s if isinstance(s, dict) else {}
                        for s in (tree.get("data"), tree.get("evaluation")))
    model(data.get("teacher"), writes=True)
    for student in evaluation.get("students") or []:
        if isinstance(student, dict):
            model(student.get("model"), writes=True)
    for grader in (data.get("graders") or []) + (evaluation.get("graders") or []):
        model(grader, writes=False)
    return tree


class CatalogSpec(StrictModel):
    skills: str | None = None     # None: the built-in open catalog; paths are relative to the cwd
    topics: str | None = None
    train_categories: list[str] | None = None   # CSV catalogs: categories of the training split
    topic_seed: int = 0                          # plain-text topics: seed of the 50/50 draw
    partition: "PartitionSpec | None" = None     # another train/held-out split (partitions.py)
    # Definitions and examples "stripped" of surrounding whitespace, or "as_written" in the file
    # (the reference code kept them: a definition ending with a space renders two before "For
    # example"). Names are stripped either way, as the reference did.
    whitespace: Literal["stripped", "as_written"] = "stripped"

    def load(self):
        """The catalog this spec names (catalog.load_catalog), re-split by `partition` if set."""

        catalog = load_catalog(self.skills, self.topics, train_categories=self.train_categories,
                               topic_seed=self.topic_seed, whitespace=self.whitespace)
        if self.partition is not None:

            catalog = apply_partition(catalog, self.partition)
        return catalog


class SkillPartition(StrictModel):
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


class TopicPartition(StrictModel):
    """How topics are split: `file` (the catalog's own split) or `random` (seeded)."""
    rule: Literal["file", "random"] = "file"
    train_fraction: float = Field(0.5, gt=0, lt=1)
    seed: int = 0


class PartitionSpec(StrictModel):
    """A train/held-out partition of skills and topics (`catalog.partition`; partitions.py)."""
    name: str | None = None                 # label in tables and grid run names
    skills: SkillPartition = Field(default_factory=SkillPartition)
    topics: TopicPartition = Field(default_factory=TopicPartition)


CatalogSpec.model_rebuild()


class SkillSubsetSpec(StrictModel):
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


class HumanSpec(StrictModel):
    """Blind human grading (`skillmix human`; human/): which texts raters see."""
    n_texts: int = Field(60, ge=1)                 # sample size, stratified by student and k
    seed: int = 0
    source: Literal["eval", "datagen"] = "eval"    # evaluation texts or teacher texts
    students: list[str] | None = None              # only these students (eval) / writers
    ks: list[int] | None = None
    # Whose instructions raters get (a grader's name or spec): they see the skills as that grader
    # was shown them (examples only if its prompt has them). Default: the source stage's first.
    grader: str | None = None


class SubsampleSpec(StrictModel):
    name: Annotated[str, AfterValidator(safe_name)]      # the mix's file name
    size: int | None = Field(None, gt=0)   # None: every kept text of the k not in per_k, plus per_k
    per_k: dict[int, int] = Field(default_factory=dict)  # e.g. {3: 2000}; the rest drawn from other k
    seed: int = 0


class DataSpec(StrictModel):
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


class LoraSpec(StrictModel):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"


class PretrainSpec(StrictModel):
    corpus: str | None = "builtin"     # "builtin" (offline default), a folder of .txt, a datasets folder, or null
    ratio: float = Field(0.1, ge=0, lt=1)   # share of training tokens from the corpus


class TrainSpec(StrictModel):
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
    # Compute precision on CUDA (stages/train/precision.py): auto is bf16 where the GPU has it
    # and fp16 with loss scaling where it does not (T4, V100); fp32 turns mixed precision off.
    # A CPU always computes in fp32.
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    # Attention on CUDA (stages/train/attention.py): auto uses flash-attn 2 when it is installed
    # and falls back to sdpa with a warning when it is not; a broken flash-attn install is an
    # error unless this says sdpa.
    attention: Literal["auto", "flash", "sdpa"] = "auto"
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
    # Memory of the one GPU this config is written for, in GiB as sold (24 for an A10, L4 or
    # 4090): what `skillmix train --dry-run` judges the fit against unless --device-gib says
    # otherwise (no value: an 80 GiB A100/H100). Changes no weights.
    device_gib: float | None = Field(None, gt=0)
    seed: int = 0


class StudentSpec(StrictModel):
    """A student: a base model, optionally with the adapter or checkpoint of a training run.
    `adapter: "@train"` means the output of this study's training stage."""
    name: Annotated[str, AfterValidator(safe_name)]      # part of its records' ids
    model: ModelSpec
    adapter: str | None = None
    # vllm: students only. Before a full run, greedy decodings of vLLM and transformers + peft
    # (same dtype, adapter unmerged on both) are compared on this many prompts; the run stops
    # if fewer than `parity_min_match` agree. Agreement allows for rounding (a near tie may
    # flip), so the same model agrees on every prompt: the default asks for all.
    parity_prompts: int = Field(3, ge=0)
    parity_min_match: float = Field(1.0, ge=0, le=1)


class EvaluationSpec(StrictModel):
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
