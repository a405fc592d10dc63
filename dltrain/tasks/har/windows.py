"""Cutting continuous recordings into fixed-length windows, and separating gravity."""

from __future__ import annotations

import logging

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dltrain.core.errors import DataError

logger = logging.getLogger("dltrain")

GRAVITY_CUTOFF_HZ = 0.3  # UCI HAR: gravity is what a 0.3 Hz Butterworth low-pass keeps


def split_gravity(total_acceleration: np.ndarray, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(body, gravity) from total acceleration (samples, 3), as UCI HAR does, zero-phase."""
    from scipy.signal import butter, sosfiltfilt

    sections = butter(3, GRAVITY_CUTOFF_HZ, btype="lowpass", fs=sample_rate_hz, output="sos")
    # sosfiltfilt pads both ends; short recordings get a shorter pad instead of an error.
    default_pad = 3 * (2 * len(sections) + 1 - min((sections[:, 2] == 0).sum(), (sections[:, 5] == 0).sum()))
    pad = min(default_pad, len(total_acceleration) - 1)
    gravity = sosfiltfilt(sections, total_acceleration, axis=0, padlen=pad).astype(np.float32)
    return (total_acceleration - gravity).astype(np.float32), gravity


def window_starts(length: int, window: int, step: int) -> np.ndarray:
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, step, dtype=np.int64)


def cut_windows(signals: np.ndarray, window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of `signals` (samples, channels) -> (windows (k, window, channels), starts)."""
    starts = window_starts(len(signals), window, step)
    if len(starts) == 0:
        return np.zeros((0, window, signals.shape[1]), np.float32), starts
    view = sliding_window_view(signals, window, axis=0)[::step]  # (k, channels, window)
    return np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32), starts


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Contiguous runs of equal labels as (start, stop, label)."""
    if len(labels) == 0:
        return []
    boundaries = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(labels)]])
    return [(int(start), int(stop), int(labels[start])) for start, stop in zip(starts, stops)]


def windows_within_runs(
    signals: np.ndarray, labels: np.ndarray, window: int, step: int, keep: set[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows lying inside one run of a kept label (UCI HAR's rule): (windows, labels, starts)."""
    pieces, piece_labels, piece_starts = [], [], []
    for start, stop, label in runs(labels):
        if label not in keep:
            continue
        windows, starts = cut_windows(signals[start:stop], window, step)
        pieces.append(windows)
        piece_labels.append(np.full(len(windows), label, dtype=np.int64))
        piece_starts.append(starts + start)
    if not pieces:
        return np.zeros((0, window, signals.shape[1]), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pieces), np.concatenate(piece_labels), np.concatenate(piece_starts)


def label_counts(labels: np.ndarray, window: int, step: int, num_classes: int) -> np.ndarray:
    """How often each label 0..num_classes-1 occurs in each window: (windows, num_classes)."""
    label_windows = sliding_window_view(labels, window)[::step]
    return np.stack([(label_windows == index).sum(axis=1) for index in range(num_classes)], axis=1)


def majority_labels(labels: np.ndarray, window: int, step: int, num_classes: int) -> np.ndarray:
    """The most frequent label (0..num_classes-1) of each window; ties go to the lower index."""
    return label_counts(labels, window, step, num_classes).argmax(axis=1)


def series_windows(values: np.ndarray, window: int, step: int | None, name: str) -> tuple[np.ndarray, list[str]]:
    """One per-file series as windows with ids: whole when `step` is None (id `name`), else cut
    (ids `name#start`)."""
    if step is None:
        return values[None], [name]
    x, starts = cut_windows(values, window, step)
    return x, [f"{name}#{start}" for start in starts]


class ShortRecordings:
    """Recordings shorter than the window give no window: they are skipped and reported, and only
    when no recording at all is long enough is that an error."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.skipped: list[tuple[str, int]] = []

    def fits(self, length: int, origin: str) -> bool:
        if length < self.window:
            self.skipped.append((origin, length))
            return False
        return True

    def report(self, windows_made: int) -> int:
        """Raise if nothing was long enough; otherwise warn about what was skipped; return the count."""
        if not self.skipped:
            return 0
        origin, length = self.skipped[0]
        if windows_made == 0:
            raise DataError(
                f"{origin}: {length} samples, shorter than the window of {self.window}; pass a smaller --window"
            )
        logger.warning(
            "skipped %d recording(s) shorter than the window of %d readings (first: %s, %d readings)",
            len(self.skipped),
            self.window,
            origin,
            length,
        )
        return len(self.skipped)
