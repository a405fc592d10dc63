"""Small datasets written in the real layouts (nothing is mocked): UCI HAR folders, the course's
classroom folders of CSV series, WISDM-like long CSVs, fundus photographs and Kaggle folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

UCI_SIGNALS = [f"{group}_{axis}" for group in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"]
ACTIVITIES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]


def class_signal(label: int, length: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable series: each class has its own frequency and offset, plus noise."""
    time = np.arange(length)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=(1, channels))
    base = np.sin(2 * np.pi * (label + 1) * time / 16 + phase) + 0.5 * label
    return (base + 0.1 * rng.standard_normal((length, channels))).astype(np.float32)


def write_uci_folder(root: Path, windows_per_subject: int = 6, window: int = 32, subjects=None) -> Path:
    """A miniature `UCI HAR Dataset` folder: Inertial Signals, y and subject files per split."""
    rng = np.random.default_rng(0)
    dataset = root / "UCI HAR Dataset"
    dataset.mkdir(parents=True)
    (dataset / "activity_labels.txt").write_text(
        "".join(f"{number} {name}\n" for number, name in enumerate(ACTIVITIES, 1))
    )
    subjects = subjects or {"train": [1, 3, 5, 6, 7], "test": [2, 4]}
    for split, split_subjects in subjects.items():
        signals_dir = dataset / split / "Inertial Signals"
        signals_dir.mkdir(parents=True)
        rows_subject, rows_label, rows_signal = [], [], []
        for subject in split_subjects:
            for index in range(windows_per_subject):
                label = index % len(ACTIVITIES)
                rows_subject.append(subject)
                rows_label.append(label + 1)
                rows_signal.append(class_signal(label, window, len(UCI_SIGNALS), rng))
        stacked = np.stack(rows_signal)  # (windows, window, channels)
        for channel, name in enumerate(UCI_SIGNALS):
            np.savetxt(signals_dir / f"{name}_{split}.txt", stacked[:, :, channel], fmt="%.6e")
        np.savetxt(dataset / split / f"y_{split}.txt", rows_label, fmt="%d")
        np.savetxt(dataset / split / f"subject_{split}.txt", rows_subject, fmt="%d")
    return dataset


def write_series_csv(path: Path, values: np.ndarray, columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(values, columns=columns).to_csv(path)  # pandas writes the index column first


def write_classroom_folder(
    root: Path, classes=("a01", "a02", "a03"), per_class=(12, 4), length=16, with_test=True
) -> Path:
    """The course layout: train/ and validation/ of class folders of CSV series, plus unlabelled test/."""
    rng = np.random.default_rng(1)
    columns = [f"feature_{index}" for index in range(3)]
    for split, count in zip(("train", "validation"), per_class):
        for label, name in enumerate(classes):
            for index in range(count):
                write_series_csv(
                    root / split / name / f"series_{index:03d}.csv", class_signal(label, length, 3, rng), columns
                )
    if with_test:
        for index in range(5):
            write_series_csv(
                root / "test" / f"unknown_{index:03d}.csv", class_signal(index % len(classes), length, 3, rng), columns
            )
    return root


def write_long_csv(path: Path, subjects=(1, 2, 3, 4, 5), samples_per_activity=96, with_subject=True) -> Path:
    """WISDM-like long CSV: user, activity, timestamp, x, y, z; each user does each activity in turn."""
    rng = np.random.default_rng(2)
    activities = ["Jogging", "Sitting", "Walking"]
    frames = []
    for subject in subjects:
        time = 0
        for label, activity in enumerate(activities):
            values = class_signal(label, samples_per_activity, 3, rng)
            frame = pd.DataFrame(values, columns=["x", "y", "z"])
            frame.insert(0, "timestamp", np.arange(time, time + samples_per_activity) * 50)
            frame.insert(0, "activity", activity)
            if with_subject:
                frame.insert(0, "user", subject)
            time += samples_per_activity
            frames.append(frame)
    pd.concat(frames).to_csv(path, index=False)
    return path


def fundus_jpeg(path: Path, width=360, height=240, level=0, seed=0) -> Path:
    """A bright disc on a black frame (wider than tall, like a camera frame), a few dark dots per level."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    radius = height * 0.45
    centre = (width / 2, height / 2)
    draw.ellipse((centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius), fill=(200, 90, 50))
    for _ in range(level * 5):
        x, y = centre[0] + rng.uniform(-0.6, 0.6) * radius, centre[1] + rng.uniform(-0.6, 0.6) * radius
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(60, 10, 10))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=90)
    return path


def kaggle_folder(root: Path, patients=10, with_test=True) -> Path:
    rows = []
    for patient in range(1, patients + 1):
        for eye in ("left", "right"):
            level = (patient + (eye == "right")) % 5
            fundus_jpeg(root / "train" / f"{patient}_{eye}.jpeg", level=level, seed=patient)
            rows.append({"image": f"{patient}_{eye}", "level": level})
    pd.DataFrame(rows).to_csv(root / "trainLabels.csv", index=False)
    if with_test:
        for name in ("900_left", "900_right"):
            fundus_jpeg(root / "test" / f"{name}.jpeg")
    return root
