"""The shapes every activity SOURCE reader returns, and the constants they share: named channels,
windows tagged with a label and a split, and the source's description for meta.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dltrain.core.errors import DataError, UsageError
from dltrain.tasks.har.windows import ShortRecordings

# Channel names follow UCI HAR's Inertial Signals files so that a model trained on one source can
# predict on another that has the same channels.
UCI_CHANNELS = [f"{group}_{axis}" for group in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"]
RAW_CHANNELS = [f"{group}_{axis}" for group in ("total_acc", "body_gyro") for axis in "xyz"]
CHANNEL_ALIASES = {"uci": UCI_CHANNELS, "raw": RAW_CHANNELS}

# The UCI HAR test subjects; the HAPT recordings come from the same 30 volunteers.
HAPT_TEST_SUBJECTS = {2, 4, 9, 10, 12, 13, 18, 20, 24}

UNLABELLED = -1
UNKNOWN_SUBJECT = -1
# The split a reader tags each window with. Prepare keeps labelled train/val/test windows and the
# unlabelled split; prediction uses every window whatever its tag.
SPLIT_BY_SUBJECT = ""  # a window whose split is decided later from its subject
EXCLUDED = "excluded"  # a window in no split, e.g. one straddling two blocks of time


@dataclass
class HarOptions:
    window: int | None = None  # None: 128 for recordings; whole series for per-file CSV series
    step: int | None = None  # None: half the window (50% overlap, as UCI HAR)
    channels: str | None = None  # "uci", "raw" or comma-separated channel names
    transitions: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 42
    label_column: str | None = None
    time_column: str | None = None
    subject_column: str | None = None
    pure_windows: bool = False
    sample_rate_hz: float | None = None

    def resolved_window(self, default: int = 128) -> int:
        return self.window or default

    def resolved_step(self, window: int) -> int:
        return self.step or max(1, window // 2)


@dataclass
class WindowSet:
    x: np.ndarray  # (windows, timesteps, channels) float32
    y: np.ndarray  # (windows,) class index or UNLABELLED
    subjects: np.ndarray  # (windows,) subject id or UNKNOWN_SUBJECT
    ids: np.ndarray  # (windows,) str, unique, readable
    splits: np.ndarray  # (windows,) "train" | "val" | "test" | "unlabelled" | SPLIT_BY_SUBJECT | EXCLUDED

    @classmethod
    def concatenate(cls, parts: list[WindowSet], timesteps: int, channels: int) -> WindowSet:
        if not parts:
            return cls(
                np.zeros((0, timesteps, channels), np.float32),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros(0, str),
                np.zeros(0, str),
            )
        names = ("x", "y", "subjects", "ids", "splits")
        return cls(*(np.concatenate([getattr(part, name) for part in parts]) for name in names))

    @classmethod
    def of(cls, x, y, subject, ids, split) -> WindowSet:
        """Windows with their labels and ids; `subject` and `split` are one value for all or one per window."""
        count = len(x)
        return cls(
            np.asarray(x, np.float32),
            np.asarray(y, np.int64),
            np.broadcast_to(np.asarray(subject, np.int64), (count,)).copy(),
            np.asarray(ids, str),
            np.broadcast_to(np.asarray(split, "<U10"), (count,)).copy(),
        )


@dataclass
class HarSource:
    kind: str
    path: str
    channels: list[str]
    classes: list[str]
    windows: WindowSet
    window: int
    step: int | None  # None: the source's own windows or whole series, not cut by dltrain
    sample_rate_hz: float | None
    notes: dict = field(default_factory=dict)  # written into meta.json's "source"
    # Set where the windows come ready cut (step is None): the source as named in a refusal of
    # --step/--window, e.g. "a UCI HAR folder".
    ready_cut: str | None = None
    # Why this source cannot be prepared for training although prediction can read it (a missing
    # label file, no label column...): one line each, prepare refuses with the first.
    training_refusals: list[str] = field(default_factory=list)

    @classmethod
    def assemble(
        cls,
        kind: str,
        path: str | Path,
        channels: list[str],
        classes: list[str],
        parts: list[WindowSet],
        window: int,
        step: int | None,
        sample_rate_hz: float | None,
        notes: dict | None = None,
        short: ShortRecordings | None = None,
        ready_cut: str | None = None,
        training_refusals: list[str] | None = None,
    ) -> HarSource:
        """One source from the windows each recording or file gave. With `short`, the count of
        recordings too short for a window goes into the notes (and a warning, or an error if none fit)."""
        windows = WindowSet.concatenate(parts, window, len(channels))
        notes = dict(notes or {})
        if short is not None:
            notes["skipped_short_recordings"] = short.report(len(windows.x))
        return cls(
            kind,
            str(path),
            list(channels),
            list(classes),
            windows,
            window,
            step,
            sample_rate_hz,
            notes,
            ready_cut,
            list(training_refusals or []),
        )


def select_channels(available: list[str], requested: str | None, default: list[str], origin: str) -> list[int]:
    """Indices into `available` of the requested channels (alias, comma list, or the default)."""
    if requested is None:
        wanted = default
    elif requested in CHANNEL_ALIASES:
        wanted = CHANNEL_ALIASES[requested]
    else:
        wanted = [name.strip() for name in requested.split(",") if name.strip()]
    missing = [name for name in wanted if name not in available]
    if missing:
        raise UsageError(f"{origin} has no channel(s) {', '.join(missing)}; available: {', '.join(available)}")
    if len(set(wanted)) != len(wanted):
        raise UsageError(f"--channels names a channel twice: {requested}")
    return [available.index(name) for name in wanted]


def check_finite(values: np.ndarray, origin: str) -> None:
    if not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values))[0]
        raise DataError(
            f"{origin}: NaN or infinite value at position {tuple(int(i) for i in bad)}; clean or drop it first"
        )
