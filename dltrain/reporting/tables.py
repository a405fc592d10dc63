"""How numbers and metric names look in every table dltrain prints or writes."""

from __future__ import annotations

import math

SHORT_METRIC_NAMES = {
    "quadratic_weighted_kappa": "kappa",
    "blended_quadratic_weighted_kappa": "blended kappa",
    "referable_auc": "referable AUC",
}


def short_metric_name(name: str) -> str:
    return SHORT_METRIC_NAMES.get(name, name)


def format_cell(value, missing: str = "-") -> str:
    """A table cell: a missing or non-finite number as `missing`; floats to 4 decimals without
    trailing zeros, or 4 significant digits when very small or large; anything else as text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)
