"""Subject-grouped cross-validation folds of an activity DATA_DIR, for choosing settings without
the test subjects: the train and validation windows pooled, their subjects dealt into K groups,
and one DATA_DIR per fold that validates on one group and trains on the others. The test split
is in none of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import atomic_folder
from dltrain.data.datadir import META_FILE, DataDir, parse_meta, write_meta
from dltrain.data.har.meta import HarMeta, Split, write_split
from dltrain.data.har.prepare import standardisation
from dltrain.data.har.types import UNKNOWN_SUBJECT


def pooled_windows(data: DataDir) -> Split:
    """The train and val windows of `data` together (the subjects that may steer a choice)."""
    parts = [data.split(name) for name in ("train", "val") if data.has_split(name)]
    return Split(*(np.concatenate([getattr(part, field) for part in parts]) for field in ("x", "y", "ids", "subjects")))


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


def fold_meta(data: DataDir, train: Split, val: Split, fold: int, folds: int) -> HarMeta:
    mean, std = standardisation(train.x)  # each fold standardises with its own training windows
    meta = data.meta.model_dump(mode="json")
    classes = meta["classes"]
    meta.update(
        normalization={"mean": mean.tolist(), "std": std.tolist()},
        splits={"train": len(train.y), "val": len(val.y)},
        class_counts={
            name: dict(zip(classes, np.bincount(part.y, minlength=len(classes)).tolist()))
            for name, part in (("train", train), ("val", val))
        },
        split_subjects={"train": sorted(set(train.subjects.tolist())), "val": sorted(set(val.subjects.tolist()))},
        source={"kind": "fold", "of": str(data.path.resolve()), "of_created": data.meta.created, "fold": fold,
                "folds": folds},
    )  # fmt: skip
    return HarMeta.model_validate(meta)


def write_subject_folds(data: DataDir, folds: int, out: Path) -> list[Path]:
    """`out/fold-1` ... `out/fold-K`, each a DATA_DIR of train and val windows; folds written
    earlier from the same DATA_DIR are kept as they are."""
    pooled = pooled_windows(data)
    paths = []
    for fold, held_subjects in enumerate(subject_groups(pooled.subjects, folds), start=1):
        path = Path(out) / f"fold-{fold}"
        paths.append(path)
        if _written_from(path, data, fold, folds):
            continue
        held = np.isin(pooled.subjects, held_subjects)
        train, val = (Split(*(part[rows] for part in vars(pooled).values())) for rows in (~held, held))
        with atomic_folder(path) as staging:
            write_split(staging, "train", train)
            write_split(staging, "val", val)
            write_meta(staging, fold_meta(data, train, val, fold, folds))
    return paths


def _written_from(path: Path, data: DataDir, fold: int, folds: int) -> bool:
    if not (path / META_FILE).is_file():
        return False
    try:
        source = parse_meta(json.loads((path / META_FILE).read_text()), str(path / META_FILE)).source
    except (DataError, ValueError):
        return False
    return source == {"kind": "fold", "of": str(data.path.resolve()), "of_created": data.meta.created,
                      "fold": fold, "folds": folds}  # fmt: skip
