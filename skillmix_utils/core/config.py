"""Study configs: one validated YAML file describes a whole study (data, training, evaluation).

`load_study_config("configs/demo.yaml", overrides={"evaluation.n_combinations": 2})` returns a
`StudyConfig`; a bad file raises SkillmixError naming the file and the field. The schema is
documented field by field in README.md ("Study config"); configs/*.yaml are the examples.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from skillmix_utils.core.catalog import apply_partition, load_catalog
from skillmix_utils.core.errors import SkillmixError, writing
from skillmix_utils.core.provenance import CHECKOUT
from skillmix_utils.core.redact import find_credential
from skillmix_utils.core.strict_yaml import load_yaml

Pool = Literal["train", "held_out", "all"]
Preset = Literal["improved", "reference"]

# Two ways to run the study (docs/protocol.md §10). "reference" reproduces the Skill-Mix
# reference code on the wire and in the arithmetic; "improved" is skillmix's own. A preset fills
# every option it names that the config leaves out; an option the config gives wins.
SCORING_PRESETS: dict[str, dict] = {
    "improved": {"explicit_name_rule": True, "explicit_name_match": "whole_words",
                 "sentence_counter": "reference", "unreadable": "exclude"},
    "reference": {"explicit_name_rule": False, "explicit_name_match": "reference",
                  "sentence_counter": "reference", "unreadable": "zero"},
}
# The protocol options live where they act: on the models (system_message to API models,
# answer_rule of writers), on the graders (skill_criterion of point_earned graders) and on the
# catalog (whitespace); `protocol.preset` fills them (`_apply_protocol`).
REFERENCE_SYSTEM_MESSAGE = "You are a helpful assistant."
PROTOCOL_PRESETS: dict[str, dict] = {
    "improved": {"system_message": None, "answer_rule": "improved",
                 "point_earned_criterion": "Correctly illustrates", "catalog_whitespace": "stripped"},
    "reference": {"system_message": REFERENCE_SYSTEM_MESSAGE, "answer_rule": "reference",
                  "point_earned_criterion": "Contains", "catalog_whitespace": "as_written"},
}
API_KINDS = ("openai:", "anthropic:")      # models reached through a provider's API


def _section(value) -> dict:
    """A `scoring` / `protocol` value as a mapping: a bare string names the preset
    (`scoring: reference` is `{preset: reference}`)."""
    return {"preset": value} if isinstance(value, str) else dict(value or {})


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in a config must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid")


# A name that becomes a folder or file name (a study's outputs/<name>, a sub-sample's mix file, a
# student's part of a record id): one path component, so that nothing lands outside its folder.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def safe_name(v: str) -> str:
    """`v` if it is one safe path component; else a ValueError that says what is allowed."""
    if not SAFE_NAME.match(v or ""):
        raise ValueError("must be one folder name: letters, digits, '.', '_' or '-', starting "
                         "with a letter or digit, at most 100 characters (no '/', no '..', not "
                         "empty)")
    return v


# What providers accept: OpenAI (and servers speaking its API, local models) temperature 0-2,
# Anthropic 0-1; at least one output token.
TEMPERATURE_RANGE = {"anthropic": (0.0, 1.0)}
DEFAULT_TEMPERATURE_RANGE = (0.0, 2.0)
# Backend options with a meaning the config can check (llm/__init__.get_backend): (minimum, kind).
NUMERIC_OPTIONS = {"timeout": (0.0, float, False), "max_retries": (0, int, True),
                   "max_retry_after": (0.0, float, True), "circuit_breaker": (0, int, True),
                   "rpm": (0.0, float, False), "tpm": (0.0, float, False),
                   "malformed_retries": (0, int, True)}


def check_url(v: str) -> str:
    """`v` if it is an http(s) URL with a host and a port in range; the error never repeats it."""
    try:
        parts = urlsplit(v)
        port = parts.port                     # raises for a port out of 0-65535 or not a number
    except ValueError:
        raise ValueError("is not a URL with a valid port (1-65535), e.g. "
                         "http://localhost:8000/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("needs a scheme and a host, e.g. http://localhost:8000/v1 or "
                         "https://api.openai.com/v1")
    if port == 0:
        raise ValueError("port 0 is not a port a server listens on (1-65535)")
    return v


class ModelSpec(_Strict):
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


class PoolSpec(_Strict):
    skills: Pool
    topics: Pool


class ScoringSpec(_Strict):
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
        section = _section(value)
        # An unknown preset fills nothing; the `preset` field then names the bad value.
        return {**SCORING_PRESETS.get(section.get("preset", "improved"), {}), **section}


class ProtocolSpec(_Strict):
    """How requests are made and replies read (docs/protocol.md §10): `preset` fills each
    model's `system_message` and `answer_rule`, each point_earned grader's `skill_criterion`
    and `catalog.whitespace` where the config leaves them out (PROTOCOL_PRESETS).
    `protocol: reference` is short for `{preset: reference}`."""
    preset: Preset = "improved"

    @model_validator(mode="before")
    @classmethod
    def _named(cls, value):
        return _section(value) if isinstance(value, str) else value


def _apply_protocol(tree: dict) -> dict:
    """The config tree with the protocol preset's values filled in where it gives none (a copy;
    the caller's tree is left as it is)."""
    proto = tree.get("protocol")
    name = _section(proto).get("preset", "improved") if isinstance(proto, (str, dict, type(None))) else None
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


class CatalogSpec(_Strict):
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
    # Whose instructions raters get (a grader's name or spec): they see the skills as that grader
    # was shown them (examples only if its prompt has them). Default: the source stage's first.
    grader: str | None = None


class SubsampleSpec(_Strict):
    name: Annotated[str, AfterValidator(safe_name)]      # the mix's file name
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
    seed: int = 0


class StudentSpec(_Strict):
    """A student: a base model, optionally with the adapter or checkpoint of a training run.
    `adapter: "@train"` means the output of this study's training stage."""
    name: Annotated[str, AfterValidator(safe_name)]      # part of its records' ids
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


class StudyConfig(_Strict):
    name: Annotated[str, AfterValidator(safe_name)]      # the folder outputs/<name>
    description: str = ""
    output_dir: str | None = None          # default: outputs/<name>
    catalog: CatalogSpec = Field(default_factory=CatalogSpec)
    protocol: ProtocolSpec = Field(default_factory=ProtocolSpec)
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    concurrency: int = Field(8, ge=1)
    budget_usd: float | None = Field(None, ge=0)       # cap for the study, over all its runs
    run_budget_usd: float | None = Field(None, ge=0)   # cap for one run of one stage
    data: DataSpec | None = None
    train: TrainSpec | None = None
    evaluation: EvaluationSpec | None = None
    grid: dict[str, list] = Field(default_factory=dict)   # dotted field -> values: one run each
    human: HumanSpec = Field(default_factory=HumanSpec)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, tree):
        if isinstance(tree, dict):
            found = find_credential(tree)
            if found:
                raise ValueError(f"{found[0]}: {found[1]}")
        return tree

    @model_validator(mode="before")
    @classmethod
    def _protocol_preset(cls, tree):
        return _apply_protocol(tree) if isinstance(tree, dict) else tree

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
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SkillmixError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None
    tree = load_yaml(text, path) or {}
    if not isinstance(tree, dict):
        raise SkillmixError("a study config must be a mapping of fields", file=str(path))
    own_folder = _is_folders_own_config(path, tree, text)
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
    refuse_output_dir(out, path, allow_own_folder=own_folder)
    return cfg.model_copy(update={"output_dir": str(out)})


RESOLVED_HEADER = "# skillmix: the resolved config of this output folder, rewritten by every run\n"


def _is_folders_own_config(path: Path, tree: dict, text: str) -> bool:
    """True for the config.yaml skillmix wrote into an output folder (the resolved config, or
    an import's): reading it back may name its own folder as output_dir."""
    if path.name != "config.yaml":
        return False
    raw = tree.get("output_dir")
    return text.startswith(RESOLVED_HEADER) or set(StudyConfig.model_fields) <= set(tree) or (
        isinstance(raw, str) and Path(raw).is_absolute()
        and Path(raw).resolve() == path.resolve().parent)


def users_config_in(out: Path) -> Path | None:
    """`<out>/config.yaml` when it is there and skillmix did not write it (a run would replace
    it with the resolved config), else None."""
    path = Path(out) / "config.yaml"
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        tree = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return path
    return None if isinstance(tree, dict) and _is_folders_own_config(path, tree, text) else path


def refuse_output_dir(out: Path, config: Path, allow_own_folder: bool = False) -> None:
    """A study's outputs stay in a folder of their own: refuse an output_dir that is, or holds,
    `/`, the home folder, the project root, skillmix's own checkout or the study file's folder (whose own files a
    run would overwrite: config.yaml, data/, ...); `allow_own_folder` for a config.yaml that
    skillmix wrote into its output folder."""
    out = Path(out).expanduser().resolve()
    here = Path(config).resolve().parent
    guarded = [("the home folder", Path.home()), ("the root folder", Path("/")),
               ("the skillmix checkout", CHECKOUT)]
    marked = project_root(here, marked_only=True)
    if marked is not None:         # not the current folder: a notebook may run inside `out`
        guarded.append(("the project root", marked))
    if not allow_own_folder:
        guarded.insert(0, ("the study file's folder", here))
    for what, folder in guarded:
        folder = folder.resolve()
        if out == folder or out in folder.parents:
            holds = "is" if out == folder else "holds"
            raise SkillmixError(f"{out} {holds} {what}; a study writes config.yaml, data/, eval/ "
                                "and more into its output folder, so it must be a folder of its "
                                "own (default outputs/<name>)", file=str(config),
                                field="output_dir")


def project_root(start: Path, marked_only: bool = False) -> Path | None:
    """The nearest folder at or above `start` holding pyproject.toml or .git, else the current
    folder (None with `marked_only`): where a study's relative `output_dir` (default
    `outputs/<name>`) lives."""
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return None if marked_only else Path.cwd()


def write_resolved_config(cfg: StudyConfig) -> Path:
    """Write the resolved config (defaults filled in, output_dir absolute) to `<out>/config.yaml`:
    what the stages, the runner and the report read back as the study's config."""
    path = cfg.out / "config.yaml"
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tree = cfg.model_dump(mode="json")
        path.write_text(RESOLVED_HEADER + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
    return path
