"""The study as data: config, catalog, records, prompts, rubric, parsing and metrics (no model access)."""
