"""The whole study config: one validated YAML file describes a study (data, training, evaluation)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from skillmix_utils.core.config.cluster import ClusterSpec
from skillmix_utils.core.config.fields import StrictModel, safe_name
from skillmix_utils.core.config.sections import (
    CatalogSpec,
    DataSpec,
    EvaluationSpec,
    HumanSpec,
    ProtocolSpec,
    ScoringSpec,
    TrainSpec,
    apply_protocol,
)
from skillmix_utils.core.redact import find_credential


class StudyConfig(StrictModel):
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
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)

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
        return apply_protocol(tree) if isinstance(tree, dict) else tree

    @property
    def out(self) -> Path:
        return Path(self.output_dir or Path("outputs") / self.name)
