"""`dltrain reproduce`: re-run the baselines of baselines.yaml from scratch and check each lands in
its band — prepare, train (deterministic ops), score on the test split."""

from __future__ import annotations

import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
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
    text = path.read_text() if path else (resources.files("dltrain.experiments") / "baselines.yaml").read_text()
    try:
        return {name: Baseline.model_validate(entry) for name, entry in (yaml.safe_load(text) or {}).items()}
    except ValidationError as error:
        raise UsageError(f"baselines file: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from None


def reproduce_baseline(name: str, baseline: Baseline, budget_name: str, out: Path, seeds: list[int] | None) -> dict:
    """Prepare once, then per seed train from scratch and score the test split once (`evaluate`'s
    scoring: training itself never looks at it); the row of the results table, the band checked on the mean."""
    from dltrain.config.loading import load_config

    budget = baseline.budgets[budget_name]
    folder = out / f"{name}-{budget_name}"
    started = time.perf_counter()
    logger.info("reproducing %s at the %s budget in %s", name, budget_name, folder)
    TASKS.get(baseline.task).prepare(baseline.source, folder / "data", budget.prepare, os.cpu_count() or 1)
    config = load_config(baseline.preset, [*budget.set, "train.deterministic=true"])
    seeds = seeds or [config.train.seed]
    results = [_one_seed(folder, baseline, config, seed, len(seeds) > 1) for seed in seeds]
    values = [value for value, _ in results]
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    low, high = budget.band
    runs = [_run_folder(folder, seed, len(seeds) > 1) for seed in seeds]
    ensembled = _ensemble_of_seeds(runs, folder, baseline.metric) if len(seeds) > 1 else None
    return {
        "baseline": name,
        "budget": budget_name,
        "metric": f"test {short_metric_name(baseline.metric)}",
        "expected": f"{low:.2f} - {high:.2f}",
        "seeds": seeds,
        "values": [round(value, 4) for value in values],
        "mean": round(mean, 4),
        "std": round(std, 4),
        "status": "ok" if low <= mean <= high else "REGRESSION",
        "epochs": [epochs for _, epochs in results],
        "seconds": round(time.perf_counter() - started, 1),
        "runs": [str(run) for run in runs],
        "ensemble": None if ensembled is None else round(ensembled, 4),  # the seeds' runs averaged (not banded)
    }


def _ensemble_of_seeds(runs: list[Path], folder: Path, metric: str) -> float:
    """The seeds' runs as one ensemble (`dltrain ensemble`), scored on the test split once."""
    from dltrain.experiments.ensemble import ensemble
    from dltrain.runs.evaluation import evaluate_run

    ensemble(runs, folder / "ensemble", force=True)
    value = float(evaluate_run(folder / "ensemble", None, "test")[metric])
    logger.info("ensemble of %d seeds: test %s %.4f", len(runs), short_metric_name(metric), value)
    return value


def _run_folder(folder: Path, seed: int, several: bool) -> Path:
    return folder / (f"run-seed-{seed}" if several else "run")


def _one_seed(folder: Path, baseline: Baseline, config, seed: int, several: bool) -> tuple[float, int]:
    """Train with `seed` from scratch, then score the test split once: (test metric, epochs run)."""
    from dltrain.runs.evaluation import evaluate_run
    from dltrain.training.session import train_run

    run_dir = _run_folder(folder, seed, several)
    seeded = config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})})
    provenance = train_run(folder / "data", run_dir, seeded, baseline.preset, force=True)
    metrics = evaluate_run(run_dir, None, "test")
    logger.info("seed %d: test %s %.4f", seed, short_metric_name(baseline.metric), metrics[baseline.metric])
    return float(metrics[baseline.metric]), int(provenance.epochs_run or 0)


def reproduce(names: list[str], budget_name: str, out: Path, seeds: list[int] | None = None) -> list[dict]:
    baselines = load_baselines()
    if budget_name not in BUDGETS:
        raise UsageError(f"--budget {budget_name!r}: choose {' or '.join(BUDGETS)}")
    unknown = [name for name in names if name not in baselines]
    if unknown:
        raise UsageError(f"unknown baseline {unknown[0]!r}; valid: {', '.join(baselines)}")
    missing = [name for name in names if budget_name not in baselines[name].budgets]
    if missing:
        raise UsageError(f"baseline {missing[0]!r} has no {budget_name} budget")
    return [reproduce_baseline(name, baselines[name], budget_name, Path(out), seeds) for name in names]


def parse_seeds(text: str | None) -> list[int] | None:
    """--seeds 1,2,3 -> [1, 2, 3]; each a valid train.seed, none twice."""
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--seeds {text!r}: give whole numbers separated by commas, e.g. --seeds 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= seed < 2**32 for seed in seeds):
        raise UsageError(f"--seeds {text!r}: give distinct whole numbers from 0 to 4294967295, e.g. --seeds 1,2,3")
    return seeds


def results_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="baselines reproduced")
    columns = ["baseline", "budget", "metric", "expected", "measured", "status", "epochs", "seconds"]
    for column in columns:
        table.add_column(column, justify="right" if column in ("measured", "epochs", "seconds") else "left")
    for row in rows:
        style = "green" if row["status"] == "ok" else "bold red"
        several = len(row["seeds"]) > 1
        measured = (
            f"{row['mean']:.4f} ± {row['std']:.4f} ({len(row['seeds'])} seeds; ensemble {row['ensemble']:.4f})"
            if several
            else f"{row['mean']:.4f}"
        )
        epochs = "/".join(map(str, row["epochs"]))
        cells = {**row, "measured": measured, "epochs": epochs}
        table.add_row(*(str(cells[column]) for column in columns), style=style)
    return table
