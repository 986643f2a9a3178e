"""skillmix_utils: the library behind the skillmix notebooks and command line.

The pieces, one module each (see docs/architecture.md):
catalog, sampling, prompts, generation (answer extraction), grading (rubric parser, sentence
counter, explicit-name rule), metrics, llm (model backends), records (the one record shape),
config (study configs), stages (data generation, evaluation), train (fine-tuning), figures,
report, runner (papermill batch runs), cli.

Submodules are imported on use so that `import skillmix_utils` needs neither torch nor an SDK.
"""
__version__ = "0.1.0"

from .errors import SkillmixError  # noqa: E402

__all__ = ["SkillmixError", "__version__"]
