"""Every activity SOURCE layout read into one shape: named channels and labelled windows."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dltrain.core.console import progress_bar
from dltrain.core.errors import DataError, UsageError
from dltrain.data.har.readers import hapt
from dltrain.data.har.windows import cut_windows, split_gravity, windows_within_runs

logger = logging.getLogger("dltrain")

# Channel names follow UCI HAR's Inertial Signals files so that a model trained on one source can
# predict on another that has the same channels.
UCI_CHANNELS = [f"{group}_{axis}" for group in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"]
RAW_CHANNELS = [f"{group}_{axis}" for group in ("total_acc", "body_gyro") for axis in "xyz"]
CHANNEL_ALIASES = {"uci": UCI_CHANNELS, "raw": RAW_CHANNELS}

# The UCI HAR test subjects; the HAPT recordings come from the same 30 volunteers.
HAPT_TEST_SUBJECTS = {2, 4, 9, 10, 12, 13, 18, 20, 24}

UNLABELLED = -1
UNKNOWN_SUBJECT = -1
SPLIT_BY_SUBJECT = ""  # a window whose split is decided later from its subject


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
    splits: np.ndarray  # (windows,) "train" | "val" | "test" | "unlabelled" | SPLIT_BY_SUBJECT

    @classmethod
    def concatenate(cls, parts: list["WindowSet"], timesteps: int, channels: int) -> "WindowSet":
        if not parts:
            return cls(
                np.zeros((0, timesteps, channels), np.float32),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros(0, str),
                np.zeros(0, str),
            )
        return cls(*(np.concatenate([getattr(part, name) for part in parts]) for name in ("x", "y", "subjects", "ids", "splits")))

    @classmethod
    def of(cls, x, y, subject: int, ids, split: str) -> "WindowSet":
        count = len(x)
        return cls(
            np.asarray(x, np.float32),
            np.asarray(y, np.int64),
            np.full(count, subject, np.int64),
            np.asarray(ids, str),
            np.full(count, split, dtype="<U10"),
        )


@dataclass
class HarSource:
    kind: str
    path: str
    channels: list[str]
    classes: list[str]
    windows: WindowSet
    window: int
    step: int | None
    sample_rate_hz: float | None
    notes: dict = field(default_factory=dict)


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
        raise DataError(f"{origin}: NaN or infinite value at position {tuple(int(i) for i in bad)}; clean or drop it first")


def read_hapt_source(options: HarOptions, for_prediction: bool = False) -> HarSource:
    """UCI HAPT recordings: UCI test subjects form the test split, the rest train+val by subject."""
    window = options.resolved_window()
    step = options.resolved_step(window)
    rate = hapt.HAPT_SAMPLE_RATE_HZ
    channel_index = select_channels(UCI_CHANNELS, options.channels, UCI_CHANNELS, "hapt")
    classes = list(hapt.HAPT_ACTIVITIES) + (list(hapt.HAPT_TRANSITIONS) if options.transitions else [])
    keep = set(range(1, len(classes) + 1))
    parts = []
    logger.info("reading the UCI HAPT recordings from %s", hapt.hapt_path())
    recordings = hapt.read_hapt()
    with progress_bar("windowing recordings", len(recordings)) as advance:
        for recording in recordings:
            parts.append(_hapt_windows(recording, channel_index, window, step, keep, for_prediction))
            advance()
    windows = WindowSet.concatenate(parts, window, len(channel_index))
    return HarSource(
        kind="hapt",
        path=str(hapt.hapt_path()),
        channels=[UCI_CHANNELS[index] for index in channel_index],
        classes=classes,
        windows=windows,
        window=window,
        step=step,
        sample_rate_hz=rate,
        notes={"test_subjects": sorted(HAPT_TEST_SUBJECTS)},
    )


def _hapt_windows(recording, channel_index: list[int], window: int, step: int, keep: set[int], for_prediction: bool) -> WindowSet:
    """One HAPT recording: gravity split over the whole stream first, then windows."""
    rate = hapt.HAPT_SAMPLE_RATE_HZ
    total = recording.signals[:, :3]
    body, _gravity = split_gravity(total, rate)
    all_channels = np.concatenate([body, recording.signals[:, 3:], total], axis=1)[:, channel_index]
    prefix = f"user{recording.user:02d}/exp{recording.experiment}"
    if for_prediction:
        # Labels are ignored: every window of the stream gets a prediction.
        x, starts = cut_windows(all_channels, window, step)
        labels = np.full(len(x), UNLABELLED)
        split = "unlabelled"
    else:
        x, labels, starts = windows_within_runs(all_channels, recording.labels, window, step, keep)
        labels = labels - 1
        split = "test" if recording.user in HAPT_TEST_SUBJECTS else SPLIT_BY_SUBJECT
    ids = [f"{prefix}/{start:06d}" for start in starts]
    return WindowSet.of(x, labels, recording.user, ids, split)


def read_har_source(source: str, options: HarOptions, for_prediction: bool = False) -> HarSource:
    """Dispatch on the SOURCE argument: `hapt`, a UCI HAR folder, a classroom folder, a long CSV, or a .ts file."""
    from dltrain.data.har.readers import classroom as csv_sources, uci, uea

    if source == "hapt":
        return read_hapt_source(options, for_prediction)
    path = Path(source)
    if not path.exists():
        raise DataError(f"{source}: no such file or folder (SOURCE is 'hapt', a UCI HAR folder, a folder of class folders, a CSV file or a .ts file)")
    if path.is_file() and path.suffix.lower() == ".ts":
        return uea.read_uea(path, options, for_prediction)
    if path.is_file():
        return csv_sources.read_long_csv(path, options, for_prediction)
    uci_root = uci.find_uci_root(path)
    if uci_root is not None:
        return uci.read_uci(uci_root, options, for_prediction)
    return csv_sources.read_classroom(path, options, for_prediction)
