"""The split rules for activity windows, in one place.

Neighbouring windows overlap, so a random pick of windows would put near-copies of training windows
into validation and test. Every rule here therefore keeps together what belongs together: whole
subjects where subjects are known, else the last files or series of each class in order, else
contiguous blocks of time.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from dltrain.core.errors import DataError, UsageError
from dltrain.tasks.har.types import EXCLUDED, SPLIT_BY_SUBJECT, UNKNOWN_SUBJECT, UNLABELLED, HarOptions, WindowSet


def split_by_subject(windows: WindowSet, options: HarOptions, origin: str) -> np.ndarray:
    """Final split of each window: labelled undecided windows go to train/val(/test) by whole
    subjects, chosen at random (options.seed); a test share only when the source has no test split."""
    splits = windows.splits.copy()
    # Unlabelled windows are never prepared, so only the labelled ones say which subjects there are.
    undecided = (splits == SPLIT_BY_SUBJECT) & (windows.y != UNLABELLED)
    if not undecided.any():
        return splits
    subjects = np.unique(windows.subjects[undecided])
    if (subjects == UNKNOWN_SUBJECT).any():
        raise DataError(f"{origin}: some windows have neither a subject nor a split")
    needs_test = not (splits == "test").any()
    shuffled = np.random.default_rng(options.seed).permutation(subjects)
    val_count = _subject_count(len(subjects), options.val_fraction)
    test_count = _subject_count(len(subjects), options.test_fraction) if needs_test else 0
    if val_count + test_count >= len(subjects):
        raise DataError(
            f"{origin}: {len(subjects)} subject(s) cannot be split into train, validation"
            f"{' and test' if needs_test else ''} by subject; lower --val-fraction/--test-fraction or add subjects"
        )
    val_subjects = shuffled[:val_count]
    test_subjects = shuffled[val_count : val_count + test_count]
    held_out = np.where(np.isin(windows.subjects, test_subjects), "test", "train")
    chosen = np.where(np.isin(windows.subjects, val_subjects), "val", held_out)
    splits[undecided] = chosen[undecided]
    return splits


def _subject_count(total: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, int(round(total * fraction)))


def last_share_per_class(classes: Sequence[Hashable], val_fraction: float, test_fraction: float) -> list[str]:
    """Split of each item (file or series, in their order) given its class: the last share of each
    class is test, the share before it validation, the rest train. Without subjects this keeps
    the held-out items apart from the train ones instead of interleaving them."""
    splits = ["train"] * len(classes)
    for name in dict.fromkeys(classes):
        positions = [index for index, value in enumerate(classes) if value == name]
        count = len(positions)
        test_count = int(round(count * test_fraction))
        val_count = int(round(count * val_fraction))
        for order, index in enumerate(positions):
            if order >= count - test_count:
                splits[index] = "test"
            elif order >= count - test_count - val_count:
                splits[index] = "val"
    return splits


def time_blocks(count: int, val_fraction: float, test_fraction: float) -> list[tuple[int, int, str]]:
    """(start, stop, split) of a stream of `count` readings: train first, then val, then test."""
    if val_fraction + test_fraction >= 1:
        raise UsageError("--val-fraction plus --test-fraction must be below 1")
    train_stop = int(round(count * (1 - val_fraction - test_fraction)))
    val_stop = int(round(count * (1 - test_fraction)))
    blocks = [(0, train_stop, "train"), (train_stop, val_stop, "val"), (val_stop, count, "test")]
    return [(start, stop, split) for start, stop, split in blocks if stop > start]


def time_block_splits(
    starts: np.ndarray, window: int, count: int, val_fraction: float, test_fraction: float
) -> np.ndarray:
    """Split of each window (its first reading at `starts`) of a stream without subjects: the
    block of time holding the whole window, or EXCLUDED for a window straddling two blocks, which
    would otherwise share readings with windows of another split."""
    splits = np.full(len(starts), EXCLUDED, dtype="<U10")
    for start, stop, split in time_blocks(count, val_fraction, test_fraction):
        splits[(starts >= start) & (starts + window <= stop)] = split
    return splits
