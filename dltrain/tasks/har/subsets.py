"""A smaller training set drawn from an activity DATA_DIR: a seeded sample of its training windows
that keeps each class's share, beside the same validation windows, as a DATA_DIR of its own. The
lab's quick budget trains on one. The test split is in none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.core.errors import UsageError
from dltrain.data.datadir import DataDir
from dltrain.data.meta import HELD_OUT_SOURCE_KEY
from dltrain.tasks.har.derived import derived_source, write_derived, written_from
from dltrain.tasks.har.meta import Split
from dltrain.tasks.har.types import UNKNOWN_SUBJECT


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


def write_training_subset(data: DataDir, windows: int, seed: int, out: Path, hold_out: bool = False) -> Path:
    """`out`: a DATA_DIR of `windows` training windows drawn from `data` (stratified by class, seeded)
    and its validation windows; with `hold_out`, only every other validation subject's windows validate,
    and the others' are the subset's test split: windows that choose nothing (not `data`'s test subjects;
    where the val split names fewer than two subjects, every other window is held out instead). One
    written earlier from the same DATA_DIR is kept as it is."""
    extra = {HELD_OUT_SOURCE_KEY: True} if hold_out else {}
    out, source = Path(out), derived_source(data, "subset", windows=windows, seed=seed, **extra)
    if written_from(out, source):
        return out
    train = data.split("train")
    rows = stratified_rows(train.y, min(windows, len(train.y)), seed)
    sample = Split(*(part[rows] for part in vars(train).values()))
    val = data.split("val")
    if not hold_out:
        return write_derived(data, sample, val, source, out)
    subjects = sorted(set(val.subjects.tolist()) - {UNKNOWN_SUBJECT})
    # Every other subject; with fewer than two named, every other window (of the same subjects, then).
    held = np.isin(val.subjects, subjects[1::2]) if len(subjects) >= 2 else np.arange(len(val.y)) % 2 == 1
    validating, held_out = (Split(*(part[rows] for part in vars(val).values())) for rows in (~held, held))
    return write_derived(data, sample, validating, source, out, held=held_out)
