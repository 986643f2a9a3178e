"""Who a student is: the model and weights it writes with, and their fingerprint.

A student is a base model (`model`), optionally with `adapter`: a LoRA adapter folder, a full
checkpoint folder (used as the model itself), or "@train" / "@train:<run>" (this study's
training output, through `train.trained_artifact`).

A student is loaded the way it was trained: the adapter of a QLoRA run (its train_summary.json
says `mode: qlora`), and the base model of a study that trains it with QLoRA, load their base
in 4-bit NF4, with the trainer's own settings (`llm.models.load_causal_lm`): the adapter was
fitted to the quantised weights, base and tuned students are compared at one precision, and a
13B model fits the 24 GB card the config is sold for. `options: {quantization: none}` in the
student's model spec loads it in full precision instead (`nf4` asks for 4-bit anywhere).
"""
from __future__ import annotations

import json
from pathlib import Path

from skillmix_utils.core.config import ModelSpec, StudentSpec, StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.identity import writer_identity
from skillmix_utils.llm.models import resolve_model
from skillmix_utils.stages.train import trained_artifact

# What a finished training run records about itself (stages/train/outputs.py), beside adapter/.
SUMMARY = "train_summary.json"


def resolve_student(cfg: StudyConfig, student: StudentSpec) -> tuple[ModelSpec, str | None]:
    """(model spec to load, adapter folder or None) for a student, its quantization set the way
    it was trained (module docstring).

    Example: a student `{model: {spec: hf:smollm2-135m-instruct}, adapter: "@train"}` resolves
    to the same spec and `outputs/<study>/train/<run>/adapter` (with `quantization: nf4` in
    the spec's options when the run was QLoRA).
    """
    spec, adapter = _weights(cfg, student)
    return with_quantization(spec, quantization_like_training(cfg, spec, adapter)), adapter


def _weights(cfg: StudyConfig, student: StudentSpec) -> tuple[ModelSpec, str | None]:
    adapter = student.adapter
    if not adapter:
        return student.model, None
    if adapter == "@train" or adapter.startswith("@train:"):

        run_name = adapter.split(":", 1)[1] if ":" in adapter else None
        # `run=` only when named: the training module's contract for a named run.
        art = trained_artifact(cfg, run=run_name) if run_name else trained_artifact(cfg)
        # A QLoRA run is served as it was trained, base in 4-bit plus adapter, not from a
        # merged copy (re-quantising the merged weights would lose part of the update),
        # unless the student asks for full precision (vLLM serves the merged copy).
        as_trained = (art.get("adapter") and run_mode(art["adapter"]) == "qlora"
                      and student.model.spec.startswith("hf:")
                      and student.model.options.get("quantization") != "none")
        if art.get("model") and not as_trained:   # full fine-tuning or a merged adapter
            return student.model.model_copy(update={"spec": f"hf:{art['model']}"}), None
        if art.get("adapter"):
            return student.model, str(art["adapter"])
        raise SkillmixError(f"training output for {adapter!r} has neither adapter nor model",
                            field=f"evaluation.students[{student.name}].adapter")
    path = Path(adapter).expanduser()
    if (path / "adapter_config.json").exists():
        return student.model, str(path)
    if (path / "config.json").exists():   # a full checkpoint is the model itself
        return student.model.model_copy(update={"spec": f"hf:{path}"}), None
    raise SkillmixError(f"{adapter} is neither a LoRA adapter (adapter_config.json) nor a "
                        "checkpoint (config.json)", field=f"evaluation.students[{student.name}].adapter")


def run_mode(adapter: str | Path | None) -> str | None:
    """The training mode (lora, qlora) of the run that left an adapter folder, from the run's
    summary beside it; None when there is none (an adapter from elsewhere)."""
    if not adapter:
        return None
    summary = Path(adapter).expanduser().resolve().parent / SUMMARY
    try:
        return json.loads(summary.read_text()).get("mode")
    except (OSError, ValueError):
        return None


def quantization_like_training(cfg: StudyConfig, model: ModelSpec, adapter: str | None
                               ) -> str | None:
    """"nf4" when an hf: student was trained with QLoRA, or is the base model of a study that
    trains with QLoRA; the student's own `quantization` option wins ("none": full precision).

    The base model counts too so that base and tuned students are compared at one precision
    (and fit the card the config is sold for)."""
    if "quantization" in model.options or not model.spec.startswith("hf:"):
        return model.options.get("quantization")
    if adapter:
        return "nf4" if run_mode(adapter) == "qlora" else None
    t = cfg.train
    if t is None or t.mode != "qlora":
        return None
    name = model.spec.split(":", 1)[1]
    try:
        same = name == t.base_model or resolve_model(name) == resolve_model(t.base_model)
    except SkillmixError:    # a folder that is not there: loading it will say so
        same = False
    return "nf4" if same else None


def with_quantization(spec: ModelSpec, quantization: str | None) -> ModelSpec:
    """`spec` with its `quantization` option set (none: the option left out, so a student told
    to load in full precision is made, and identified, as any unquantised one)."""
    options = {k: v for k, v in spec.options.items() if k != "quantization"}
    if quantization not in (None, "none"):
        options["quantization"] = quantization
    return spec.model_copy(update={"options": options})


def weights_fingerprint(spec: ModelSpec, adapter: str | None) -> str | None:
    """The fingerprint of a local student's weights stored with its texts: the adapter's content
    hash, else a full checkpoint's (`model_identity`). None for API models and aliases, whose
    weights the spec names."""
    made = writer_identity(spec, adapter)
    return made.get("adapter_sha") or made.get("weights")
