"""Study configs: one validated YAML file describes a whole study (data, training, evaluation).

`load_study_config("configs/demo.yaml", overrides={"evaluation.n_combinations": 2})` returns a
`StudyConfig`; a bad file raises SkillmixError naming the file and the field. The schema is
documented field by field in README.md ("Study configs"); configs/*.yaml are the examples.
"""
from __future__ import annotations

from skillmix_utils.core.config.cluster import ClusterSpec
from skillmix_utils.core.config.fields import (
                                             API_KINDS,
                                             PROTOCOL_PRESETS,
                                             REFERENCE_SYSTEM_MESSAGE,
                                             SCORING_PRESETS,
)
from skillmix_utils.core.config.load import (
                                             load_study_config,
                                             project_root,
                                             refuse_credentials,
                                             users_config_in,
                                             write_resolved_config,
)
from skillmix_utils.core.config.sections import (
                                             CatalogSpec,
                                             DataSpec,
                                             EvaluationSpec,
                                             GraderSpec,
                                             HumanSpec,
                                             LoraSpec,
                                             ModelSpec,
                                             PartitionSpec,
                                             PoolSpec,
                                             PretrainSpec,
                                             ProtocolSpec,
                                             ScoringSpec,
                                             SkillSubsetSpec,
                                             StudentSpec,
                                             SubsampleSpec,
                                             TrainSpec,
)
from skillmix_utils.core.config.study import StudyConfig

__all__ = ["API_KINDS", "PROTOCOL_PRESETS", "REFERENCE_SYSTEM_MESSAGE", "SCORING_PRESETS", "CatalogSpec",
           "ClusterSpec",
           "DataSpec", "EvaluationSpec", "GraderSpec", "HumanSpec", "LoraSpec", "ModelSpec", "PartitionSpec",
           "PoolSpec", "PretrainSpec", "ProtocolSpec", "ScoringSpec", "SkillSubsetSpec", "StudentSpec",
           "StudyConfig", "SubsampleSpec", "TrainSpec", "load_study_config", "project_root",
           "refuse_credentials", "users_config_in", "write_resolved_config"]
