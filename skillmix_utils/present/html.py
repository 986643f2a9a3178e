"""A table as HTML for the report: escaped, floats to three decimals, empty for no rows."""
from __future__ import annotations

import pandas as pd


def html_table(df: pd.DataFrame, cls: str = "data") -> str:
    """The frame as an escaped HTML table of class `cls` ("" for an empty or missing frame)."""
    if df is None or df.empty:
        return ""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return df.to_html(index=False, classes=cls, border=0, escape=True, na_rep="")
