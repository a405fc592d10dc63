"""`dltrain prepare har`: SOURCE -> windows -> subject-wise splits -> standardisation -> DATA_DIR."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dltrain import __version__
from dltrain.core.files import atomic_folder
from dltrain.core.outputs import check_output_folder
from dltrain.data.datadir import parse_meta, write_meta
from dltrain.data.har.meta import Split, write_split
from dltrain.core.errors import DataError, UsageError
from dltrain.data.har.types import SPLIT_BY_SUBJECT, UNKNOWN_SUBJECT, HarOptions, HarSource, read_har_source

logger = logging.getLogger("dltrain")
FORMAT_VERSION = 1


def assign_subject_splits(source: HarSource, options: HarOptions) -> np.ndarray:
    """Final split of each window: undecided windows go to train/val(/test) by whole subjects."""
    windows = source.windows
    splits = windows.splits.copy()
    undecided = splits == SPLIT_BY_SUBJECT
    if not undecided.any():
        return splits
    subjects = np.unique(windows.subjects[undecided])
    if (subjects == UNKNOWN_SUBJECT).any():
        raise DataError(f"{source.path}: some windows have neither a subject nor a split")
    needs_test = not (splits == "test").any()
    rng = np.random.default_rng(options.seed)
    shuffled = rng.permutation(subjects)
    val_count = _subject_count(len(subjects), options.val_fraction)
    test_count = _subject_count(len(subjects), options.test_fraction) if needs_test else 0
    if val_count + test_count >= len(subjects):
        raise DataError(
            f"{source.path}: {len(subjects)} subject(s) cannot be split into train, validation"
            f"{' and test' if needs_test else ''} by subject; lower --val-fraction/--test-fraction or add subjects"
        )
    val_subjects = set(shuffled[:val_count].tolist())
    test_subjects = set(shuffled[val_count : val_count + test_count].tolist())
    for index in np.flatnonzero(undecided):
        subject = windows.subjects[index]
        splits[index] = "val" if subject in val_subjects else "test" if subject in test_subjects else "train"
    return splits


def _subject_count(total: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, int(round(total * fraction)))


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every reading of the train windows."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-8] = 1.0  # a constant channel carries no information; avoid dividing by zero
    return mean.astype(np.float32), std.astype(np.float32)


def validate_options(options: HarOptions) -> None:
    if options.window is not None and options.window < 2:
        raise UsageError(f"--window {options.window}: must be at least 2 readings")
    if options.step is not None and options.step < 1:
        raise UsageError(f"--step {options.step}: must be at least 1")
    for name in ("val_fraction", "test_fraction"):
        value = getattr(options, name)
        if not 0 <= value < 1:
            raise UsageError(f"--{name.replace('_', '-')} {value}: must lie in [0, 1)")


def prepare_har(source: str, out: Path, options: HarOptions, force: bool = False) -> dict:
    validate_options(options)
    check_output_folder(out, force, "prepared data")
    har = read_har_source(source, options)
    windows = har.windows
    labelled = windows.y >= 0
    if not labelled.any():
        raise DataError(f"{source}: no labelled windows of {har.window} readings found")
    splits = assign_subject_splits(har, options)
    train = labelled & (splits == "train")
    if not train.any():
        raise DataError(f"{source}: the train split is empty")
    mean, std = standardisation(windows.x[train])

    meta = {
        "format_version": FORMAT_VERSION,
        "task": "har",
        "classes": har.classes,
        "channels": har.channels,
        "input_shape": [har.window, len(har.channels)],
        "window": har.window,
        "step": har.step,
        "sample_rate_hz": har.sample_rate_hz,
        "normalization": {"mean": mean.tolist(), "std": std.tolist()},
        "splits": {},
        "class_counts": {},
        "split_subjects": {},
        "source": {"kind": har.kind, "path": har.path, "argument": source, **har.notes},
        "options": dataclasses.asdict(options),
        "rejects": int(har.notes.get("skipped_short_recordings", 0)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dltrain_version": __version__,
    }
    with atomic_folder(out) as staging:
        for name in ("train", "val", "test", "unlabelled"):
            chosen = splits == name
            if name != "unlabelled":
                chosen &= labelled
            if not chosen.any():
                continue
            split = Split(windows.x[chosen], windows.y[chosen], windows.ids[chosen], windows.subjects[chosen])
            write_split(staging, name, split)
            meta["splits"][name] = int(chosen.sum())
            if name != "unlabelled":
                counts = np.bincount(split.y, minlength=len(har.classes))
                meta["class_counts"][name] = dict(zip(har.classes, counts.tolist()))
            known = sorted(set(split.subjects.tolist()) - {UNKNOWN_SUBJECT})
            if known:
                meta["split_subjects"][name] = known
        write_meta(staging, parse_meta(meta, "the prepared meta.json"))
    missing = [name for name in ("val", "test") if name not in meta["splits"]]
    if "val" in missing:
        logger.warning("no validation split: 'dltrain train' needs one (raise --val-fraction)")
    logger.info(
        "prepared %s: %s windows of %d x %d, classes %s -> %s",
        har.kind,
        ", ".join(f"{name} {count}" for name, count in meta["splits"].items()),
        har.window,
        len(har.channels),
        ", ".join(har.classes),
        out,
    )
    return meta
