"""DATA_DIRs derived from an activity DATA_DIR (cross-validation folds, a training sample): train and
val windows of their own, standardised with their own training windows, and a meta.json whose
`source` says what they were made from, so that one written earlier from the same data is reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dltrain.core.errors import DataError
from dltrain.core.files import atomic_folder
from dltrain.core.outputs import DATA_DIR, check_output, output_lock
from dltrain.data.datadir import META_FILE, DataDir, parse_meta, write_meta
from dltrain.tasks.har.meta import HarMeta, Split, write_split
from dltrain.tasks.har.prepare import standardisation


def derived_source(data: DataDir, kind: str, **details) -> dict:
    """What a derived DATA_DIR was made from: the DATA_DIR (path and creation time) and how."""
    return {"kind": kind, "of": str(data.path.resolve()), "of_created": data.meta.created, **details}


def derived_meta(data: DataDir, splits: dict[str, Split], source: dict) -> HarMeta:
    mean, std = standardisation(splits["train"].x)  # standardised with the windows it trains on
    meta = data.meta.model_dump(mode="json")
    classes = meta["classes"]
    meta.update(
        normalization={"mean": mean.tolist(), "std": std.tolist()},
        splits={name: len(part.y) for name, part in splits.items()},
        class_counts={
            name: dict(zip(classes, np.bincount(part.y, minlength=len(classes)).tolist()))
            for name, part in splits.items()
        },
        split_subjects={name: sorted(set(part.subjects.tolist())) for name, part in splits.items()},
        source=source,
    )
    return HarMeta.model_validate(meta)


def write_derived(data: DataDir, train: Split, val: Split, source: dict, out: Path, held: Split | None = None) -> Path:
    """`out` as a DATA_DIR of these train and val windows (and `held` ones as its test split: windows
    that choose nothing), written whole or not at all; what is at `out` is replaced only if dltrain wrote
    it (a DATA_DIR), never a folder of other files."""
    splits = {"train": train, "val": val, **({"test": held} if held is not None else {})}
    check_output(out, DATA_DIR, force=True)
    with output_lock(out), atomic_folder(out) as staging:
        for name, part in splits.items():
            write_split(staging, name, part)
        write_meta(staging, derived_meta(data, splits, source))
    return out


def written_from(path: Path, source: dict) -> bool:
    """Whether `path` is a DATA_DIR derived as `source` says (a damaged one is not)."""
    if not (path / META_FILE).is_file():
        return False
    try:
        return parse_meta(json.loads((path / META_FILE).read_text()), str(path / META_FILE)).source == source
    except (DataError, ValueError):
        return False
