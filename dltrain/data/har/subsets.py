"""A smaller training set drawn from an activity DATA_DIR: a seeded sample of its training windows
that keeps each class's share, beside the same validation windows, as a DATA_DIR of its own. The
lab's quick budget trains on one. The test split is in none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import atomic_folder
from dltrain.data.datadir import META_FILE, DataDir, parse_meta, write_meta
from dltrain.data.har.meta import HarMeta, Split, write_split
from dltrain.data.har.prepare import standardisation


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


def subset_meta(data: DataDir, train: Split, val: Split, seed: int) -> HarMeta:
    mean, std = standardisation(train.x)  # standardised with the windows it trains on
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
        source=subset_source(data, len(train.y), seed),
    )
    return HarMeta.model_validate(meta)


def subset_source(data: DataDir, windows: int, seed: int) -> dict:
    return {
        "kind": "subset",
        "of": str(data.path.resolve()),
        "of_created": data.meta.created,
        "windows": windows,
        "seed": seed,
    }


def write_training_subset(data: DataDir, windows: int, seed: int, out: Path) -> Path:
    """`out`: a DATA_DIR of `windows` training windows drawn from `data` (stratified by class, seeded)
    and all of its validation windows; one written earlier from the same DATA_DIR is kept as it is."""
    out = Path(out)
    if written_from(out, subset_source(data, windows, seed)):
        return out
    train = data.split("train")
    rows = stratified_rows(train.y, windows, seed)
    sample = Split(*(part[rows] for part in vars(train).values()))
    val = data.split("val")
    with atomic_folder(out) as staging:
        write_split(staging, "train", sample)
        write_split(staging, "val", val)
        write_meta(staging, subset_meta(data, sample, val, seed))
    return out


def written_from(path: Path, source: dict) -> bool:
    if not (path / META_FILE).is_file():
        return False
    try:
        return parse_meta(json.loads((path / META_FILE).read_text()), str(path / META_FILE)).source == source
    except (DataError, ValueError):
        return False
