"""Who a student is: the model and weights it writes with, and their fingerprint.

A student is a base model (`model`), optionally with `adapter`: a LoRA adapter folder, a full
checkpoint folder (used as the model itself), or "@train" / "@train:<run>" (this study's
training output, through `train.trained_artifact`).
"""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.config import ModelSpec, StudentSpec, StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.identity import writer_identity
from skillmix_utils.stages.train import trained_artifact


def resolve_student(cfg: StudyConfig, student: StudentSpec) -> tuple[ModelSpec, str | None]:
    """(model spec to load, adapter folder or None) for a student.

    Example: a student `{model: {spec: hf:smollm2-135m-instruct}, adapter: "@train"}` resolves
    to the same spec and `outputs/<study>/train/<run>/adapter`.
    """
    adapter = student.adapter
    if not adapter:
        return student.model, None
    if adapter == "@train" or adapter.startswith("@train:"):

        run_name = adapter.split(":", 1)[1] if ":" in adapter else None
        # `run=` only when named: the training module's contract for a named run.
        art = trained_artifact(cfg, run=run_name) if run_name else trained_artifact(cfg)
        if art.get("model"):       # full fine-tuning or a merged adapter: load it alone
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


def weights_fingerprint(spec: ModelSpec, adapter: str | None) -> str | None:
    """The fingerprint of a local student's weights stored with its texts: the adapter's content
    hash, else a full checkpoint's (`model_identity`). None for API models and aliases, whose
    weights the spec names."""
    made = writer_identity(spec, adapter)
    return made.get("adapter_sha") or made.get("weights")
