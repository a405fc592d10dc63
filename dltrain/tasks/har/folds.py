"""Subject-grouped cross-validation folds of an activity DATA_DIR, for choosing settings without
the test subjects: the train and validation windows pooled, their subjects dealt into K groups,
and one DATA_DIR per fold that validates on one group and trains on the others. The test split
is in none of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.core.errors import UsageError
from dltrain.data.datadir import DataDir
from dltrain.tasks.har.derived import derived_source, write_derived, written_from
from dltrain.tasks.har.meta import Split
from dltrain.tasks.har.types import UNKNOWN_SUBJECT


def pooled_windows(data: DataDir) -> Split:
    """The train and val windows of `data` together (the subjects that may steer a choice)."""
    return data.meta.pool_splits([data.split(name) for name in ("train", "val") if data.has_split(name)])


def subject_groups(subjects: np.ndarray, folds: int) -> list[np.ndarray]:
    """The subjects dealt into `folds` groups of about as many windows each (scikit-learn's GroupKFold)."""
    from sklearn.model_selection import GroupKFold

    known = sorted(set(subjects.tolist()) - {UNKNOWN_SUBJECT})
    if (subjects == UNKNOWN_SUBJECT).any():
        raise UsageError(
            "--folds groups windows by subject, and this DATA_DIR has windows without a subject; "
            "prepare a source that names its subjects, or choose on the validation split alone"
        )
    if len(known) < folds:
        raise UsageError(f"--folds {folds}: the train and val splits hold only {len(known)} subjects")
    splitter = GroupKFold(n_splits=folds)
    return [np.unique(subjects[held]) for _, held in splitter.split(subjects, groups=subjects)]


def write_subject_folds(data: DataDir, folds: int, out: Path) -> list[Path]:
    """`out/fold-1` ... `out/fold-K`, each a DATA_DIR of train and val windows; folds written
    earlier from the same DATA_DIR are kept as they are."""
    pooled = pooled_windows(data)
    paths = []
    for fold, held_subjects in enumerate(subject_groups(pooled.subjects, folds), start=1):
        path = Path(out) / f"fold-{fold}"
        paths.append(path)
        source = derived_source(data, "fold", fold=fold, folds=folds)
        if written_from(path, source):
            continue
        held = np.isin(pooled.subjects, held_subjects)
        train, val = (Split(*(part[rows] for part in vars(pooled).values())) for rows in (~held, held))
        write_derived(data, train, val, source, path)  # each fold standardised with its own training windows
    return paths
