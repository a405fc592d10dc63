"""`dltrain reproduce`: re-run the baselines of baselines.yaml from scratch and check each lands in
its band — prepare, train (deterministic ops), score on the test split."""

from __future__ import annotations

import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dltrain.core.errors import UsageError
from dltrain.reporting.tables import short_metric_name
from dltrain.tasks import TASKS

logger = logging.getLogger("dltrain")
BUDGETS = ("ci", "full")


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prepare: dict[str, Any] = Field(default_factory=dict)  # keyword options of the task's prepare
    set: list[str] = Field(default_factory=list)  # `--set` overrides on top of the preset
    band: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> Budget:
        if self.band[0] > self.band[1]:
            raise ValueError(f"band {list(self.band)}: low above high")
        return self


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str
    source: str
    preset: str
    metric: Literal["accuracy", "quadratic_weighted_kappa"]
    budgets: dict[Literal["ci", "full"], Budget]


def load_baselines(path: Path | None = None) -> dict[str, Baseline]:
    text = path.read_text() if path else (resources.files("dltrain.runs") / "baselines.yaml").read_text()
    try:
        return {name: Baseline.model_validate(entry) for name, entry in (yaml.safe_load(text) or {}).items()}
    except ValidationError as error:
        raise UsageError(f"baselines file: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from None


def reproduce_baseline(name: str, baseline: Baseline, budget_name: str, out: Path) -> dict:
    """Prepare, train and score one baseline; the row of the results table."""
    from dltrain.config.loading import load_config
    from dltrain.training.session import train_run

    budget = baseline.budgets[budget_name]
    folder = out / f"{name}-{budget_name}"
    started = time.perf_counter()
    logger.info("reproducing %s at the %s budget in %s", name, budget_name, folder)
    TASKS.get(baseline.task).prepare(baseline.source, folder / "data", budget.prepare, os.cpu_count() or 1)
    config = load_config(baseline.preset, [*budget.set, "train.deterministic=true"])
    provenance = train_run(folder / "data", folder / "run", config, baseline.preset, force=True)
    measured = provenance.metrics["test"][baseline.metric]
    low, high = budget.band
    return {
        "baseline": name,
        "budget": budget_name,
        "metric": f"test {short_metric_name(baseline.metric)}",
        "expected": f"{low:.2f} - {high:.2f}",
        "measured": round(float(measured), 4),
        "status": "ok" if low <= measured <= high else "REGRESSION",
        "epochs": provenance.epochs_run,
        "seconds": round(time.perf_counter() - started, 1),
        "run": str(folder / "run"),
    }


def reproduce(names: list[str], budget_name: str, out: Path) -> list[dict]:
    baselines = load_baselines()
    if budget_name not in BUDGETS:
        raise UsageError(f"--budget {budget_name!r}: choose {' or '.join(BUDGETS)}")
    unknown = [name for name in names if name not in baselines]
    if unknown:
        raise UsageError(f"unknown baseline {unknown[0]!r}; valid: {', '.join(baselines)}")
    missing = [name for name in names if budget_name not in baselines[name].budgets]
    if missing:
        raise UsageError(f"baseline {missing[0]!r} has no {budget_name} budget")
    return [reproduce_baseline(name, baselines[name], budget_name, Path(out)) for name in names]


def results_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="baselines reproduced")
    columns = ["baseline", "budget", "metric", "expected", "measured", "status", "epochs", "seconds"]
    for column in columns:
        table.add_column(column, justify="right" if column in ("measured", "epochs", "seconds") else "left")
    for row in rows:
        style = "green" if row["status"] == "ok" else "bold red"
        table.add_row(*(str(row[column]) for column in columns), style=style)
    return table
