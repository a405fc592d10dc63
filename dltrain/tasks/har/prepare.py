"""`dltrain prepare har`: SOURCE -> windows -> subject-wise splits -> standardisation -> DATA_DIR."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dltrain import __version__
from dltrain.core.checks import check_fraction, check_positive
from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import atomic_folder
from dltrain.core.outputs import DATA_DIR, check_output, output_lock
from dltrain.core.vocabulary import SPLITS
from dltrain.data.datadir import write_meta
from dltrain.data.meta import DATA_FORMAT_VERSION
from dltrain.tasks.har.meta import HarMeta, Split, write_split
from dltrain.tasks.har.readers import read_har_source, source_path
from dltrain.tasks.har.splits import split_by_subject
from dltrain.tasks.har.types import UNKNOWN_SUBJECT, HarOptions, HarSource
from dltrain.tasks.limits import MAX_READINGS, MAX_SEED

logger = logging.getLogger("dltrain")


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every reading of the train windows."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-8] = 1.0  # a constant channel carries no information; avoid dividing by zero
    return mean.astype(np.float32), std.astype(np.float32)


def validate_options(options: HarOptions) -> None:
    if options.window is not None and not 2 <= options.window <= MAX_READINGS:
        raise UsageError(f"--window {options.window}: must be 2 to {MAX_READINGS:,} readings")
    if options.step is not None and not 1 <= options.step <= MAX_READINGS:
        raise UsageError(f"--step {options.step}: must be 1 to {MAX_READINGS:,} readings")
    if not 0 <= options.seed <= MAX_SEED:
        raise UsageError(f"--seed {options.seed}: must be 0 to {MAX_SEED}")
    if options.sample_rate_hz is not None:
        check_positive("--sample-rate", options.sample_rate_hz)
    if options.channels is not None and not options.channels.strip(", "):
        raise UsageError("--channels is empty; name the channels (comma-separated), or 'uci' or 'raw'")
    check_fraction("--val-fraction", options.val_fraction)
    check_fraction("--test-fraction", options.test_fraction)


def refuse_unpreparable(har: HarSource, source: str, options: HarOptions) -> None:
    """What a reader accepts for prediction but training cannot use: re-cutting windows the source
    cut itself, a source without labels (or files) to learn from."""
    if har.ready_cut is not None:
        if options.step is not None:
            raise UsageError(f"--step does not apply to {har.ready_cut}: its windows are already cut")
        if options.window is not None and options.window != har.window:
            raise UsageError(
                f"--window {options.window}: the windows of {har.ready_cut} are already cut to {har.window} readings"
            )
    if har.training_refusals:
        raise DataError(har.training_refusals[0])
    if not (har.windows.y >= 0).any():
        raise DataError(f"{source}: no labelled windows of {har.window} readings found")


def prepare_har(source: str, out: Path, options: HarOptions, force: bool = False) -> HarMeta:
    validate_options(options)
    check_output(out, DATA_DIR, force, inputs=[source_path(source)])
    with output_lock(out):
        return _prepare(source, out, options)


def _prepare(source: str, out: Path, options: HarOptions) -> HarMeta:
    har = read_har_source(source, options)
    refuse_unpreparable(har, source, options)
    splits = split_by_subject(har.windows, options, har.path)
    train = (har.windows.y >= 0) & (splits == "train")
    if not train.any():
        raise DataError(f"{source}: the train split is empty")
    mean, std = standardisation(har.windows.x[train])
    meta = write_data_dir(out, har, splits, base_meta(har, source, options, mean, std))
    if "val" not in meta.splits:
        logger.warning("no validation split: 'dltrain train' needs one (raise --val-fraction)")
    logger.info(
        "prepared %s: %s windows of %d x %d, classes %s -> %s",
        har.kind,
        ", ".join(f"{name} {count}" for name, count in meta.splits.items()),
        har.window,
        len(har.channels),
        ", ".join(har.classes),
        out,
    )
    return meta


def base_meta(har: HarSource, source: str, options: HarOptions, mean: np.ndarray, std: np.ndarray) -> dict:
    """meta.json before the splits are written (their sizes, class counts and subjects come then)."""
    return {
        "format_version": DATA_FORMAT_VERSION,
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
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dltrain_version": __version__,
    }


def write_data_dir(out: Path, har: HarSource, splits: np.ndarray, meta: dict) -> HarMeta:
    """Each split's windows (labelled ones only, but for `unlabelled`) and meta.json, atomically;
    fills in meta's split sizes, class counts and subjects, and returns it validated."""
    windows = har.windows
    labelled = windows.y >= 0
    with atomic_folder(out) as staging:
        for name in SPLITS:
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
        typed = HarMeta.model_validate(meta)
        write_meta(staging, typed)
    return typed
