"""The lab's experiments, all registered: importing this module registers each one (initialisation
and loss in `start`, optimizers, schedules and batch size in `optimisation`, regularisation in
`regularisation`), and it counts the work they plan.
"""

from __future__ import annotations

from dltrain.experiments.lab import optimisation, regularisation, start  # noqa: F401 (imported to register their experiments)
from dltrain.experiments.lab.budgets import Budget
from dltrain.experiments.lab.cells import Cell, CellResult
from dltrain.experiments.lab.framework import EXPERIMENTS

__all__ = ["EXPERIMENTS", "planned_work"]


def planned_work(budget: Budget, meta) -> tuple[int, int]:
    """Runs and their most epochs, over every experiment, as planned before training (the optimizers' chosen
    cells counted at their grid's size)."""
    runs = epochs = 0
    for name in EXPERIMENTS.names():
        experiment = EXPERIMENTS.get(name)(budget, meta)
        cells = experiment.cells + (experiment.choose(grid_placeholder(experiment.cells)) if experiment.choose else [])
        for cell in cells:
            count = next(
                int(item.split("=")[1]) for item in reversed(cell.overrides) if item.startswith("train.epochs=")
            )
            runs += len(cell.seeds)
            epochs += len(cell.seeds) * count
    return runs, epochs


def grid_placeholder(cells: list[Cell]) -> list[CellResult]:
    return [CellResult(cell.label, [], cell.facts) for cell in cells]
