"""Old name of `skillmix_utils.answers` (answer extraction); kept so existing imports work."""
from skillmix_utils.answers import Extraction, extract_answer, extract_answer_with_rule  # noqa: F401

__all__ = ["Extraction", "extract_answer", "extract_answer_with_rule"]
