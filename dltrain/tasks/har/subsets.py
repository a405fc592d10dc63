"""A smaller training set drawn from an activity DATA_DIR: a seeded sample of its training windows
that keeps each class's share, beside the same validation windows, as a DATA_DIR of its own. The
lab's quick budget trains on one. The test split is in none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.core.errors import UsageError
from dltrain.data.datadir import DataDir
from dltrain.tasks.har.derived import derived_source, write_derived, written_from
from dltrain.tasks.har.meta import Split


def stratified_rows(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` row numbers drawn without replacement, each class getting its share of them (largest
    remainders round), in the rows' order."""
    if not 0 < count <= len(labels):
        raise UsageError(f"a subset of {count} windows cannot be drawn from {len(labels)}")
    generator = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * count / len(labels)
    quotas = np.floor(exact).astype(int)
    quotas[np.argsort(quotas - exact)[: count - quotas.sum()]] += 1  # the largest remainders get one more
    chosen = [
        generator.choice(np.flatnonzero(labels == label), size=quota, replace=False)
        for label, quota in zip(classes, quotas)
    ]
    return np.sort(np.concatenate(chosen))


def write_training_subset(data: DataDir, windows: int, seed: int, out: Path) -> Path:
    """`out`: a DATA_DIR of `windows` training windows drawn from `data` (stratified by class, seeded)
    and all of its validation windows; one written earlier from the same DATA_DIR is kept as it is."""
    out, source = Path(out), derived_source(data, "subset", windows=windows, seed=seed)
    if written_from(out, source):
        return out
    train = data.split("train")
    rows = stratified_rows(train.y, windows, seed)
    sample = Split(*(part[rows] for part in vars(train).values()))
    return write_derived(data, sample, data.split("val"), source, out)
