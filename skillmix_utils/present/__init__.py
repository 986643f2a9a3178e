"""Presentation: figures, tables, the HTML report, model and dataset cards, the hub, human grading."""
