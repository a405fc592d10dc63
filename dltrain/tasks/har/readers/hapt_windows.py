"""The `hapt` source: the UCI HAPT recordings (read safely by `hapt`) cut into labelled windows.

Gravity is separated over each whole recording, then windows are cut inside runs of one kept
activity, as UCI HAR cut its windows. UCI HAR's test volunteers form the test split; the other
windows are split later by subject.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dltrain.core.console import progress_bar
from dltrain.tasks.har.readers import hapt
from dltrain.tasks.har.types import (
    HAPT_TEST_SUBJECTS,
    SPLIT_BY_SUBJECT,
    UCI_CHANNELS,
    HarOptions,
    HarSource,
    WindowSet,
    select_channels,
)
from dltrain.tasks.har.windows import split_gravity, windows_within_runs

logger = logging.getLogger("dltrain")


def read(path: Path | None, options: HarOptions) -> HarSource:
    """The windows of every recording in the pickle at `path` (None: the installed package's)."""
    path = path or hapt.hapt_path()
    window = options.resolved_window()
    step = options.resolved_step(window)
    channel_index = select_channels(UCI_CHANNELS, options.channels, UCI_CHANNELS, "hapt")
    classes = list(hapt.HAPT_ACTIVITIES) + (list(hapt.HAPT_TRANSITIONS) if options.transitions else [])
    keep = set(range(1, len(classes) + 1))
    parts = []
    recordings = hapt.read_hapt(path)
    with progress_bar("windowing recordings", len(recordings)) as advance:
        for recording in recordings:
            parts.append(recording_windows(recording, channel_index, window, step, keep))
            advance()
    return HarSource.assemble(
        "hapt",
        path,
        [UCI_CHANNELS[index] for index in channel_index],
        classes,
        parts,
        window,
        step,
        hapt.HAPT_SAMPLE_RATE_HZ,
        notes={"test_subjects": sorted(HAPT_TEST_SUBJECTS)},
    )


def recording_windows(
    recording: hapt.HaptRecording, channel_index: list[int], window: int, step: int, keep: set[int]
) -> WindowSet:
    """One HAPT recording: gravity split over the whole stream first, then windows within runs of
    a kept label (labels 1.. become class indices 0..)."""
    total = recording.signals[:, :3]
    body, _gravity = split_gravity(total, hapt.HAPT_SAMPLE_RATE_HZ)
    all_channels = np.concatenate([body, recording.signals[:, 3:], total], axis=1)[:, channel_index]
    x, labels, starts = windows_within_runs(all_channels, recording.labels, window, step, keep)
    prefix = f"user{recording.user:02d}/exp{recording.experiment}"
    ids = [f"{prefix}/{start:06d}" for start in starts]
    split = "test" if recording.user in HAPT_TEST_SUBJECTS else SPLIT_BY_SUBJECT
    return WindowSet.of(x, labels - 1, recording.user, ids, split)
