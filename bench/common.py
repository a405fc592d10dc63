"""Shared by the bench scripts: timing commands with their peak memory, small derived DATA_DIRs,
per-epoch timing of a training, and the report each script prints and adds to bench/RESULTS.md.

The scripts run as `python bench/NAME.py`, so they import this module by its bare name.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dltrain.reporting.tables import format_cell

DLTRAIN = [sys.executable, "-m", "dltrain"]
SAMPLE_SECONDS = 0.02  # how often a running command's memory is read


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float  # the largest sum of resident memory over the process and its children


def measure(command: list[str], quiet: bool = True) -> Measured:
    """Run `command` in a fresh process (start-up and imports included); raises if it fails."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE, text=True)
    peak = 0
    watched = psutil.Process(process.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                tree = [watched, *watched.children(recursive=True)]
                total = 0
                for member in tree:
                    try:
                        total += member.memory_info().rss
                    except psutil.Error:  # a worker that has just exited
                        pass
                peak = max(peak, total)
            except psutil.Error:
                return
            stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{errors[-2000:]}")
    return Measured(seconds, peak / 2**20)


def timed(command: list[str]) -> float:
    """Seconds from start to exit of `command` (start-up and imports included); raises if it fails."""
    return measure(command).seconds


def prepare_hapt(out: Path) -> Path:
    if not (out / "meta.json").is_file():
        subprocess.run(
            [*DLTRAIN, "prepare", "har", "hapt", "--out", str(out), "--force"], check=True, stdout=subprocess.DEVNULL
        )
    return out


def prepare_retina_demo(raw: Path, out: Path, patients: int, size: int) -> Path:
    """The simulated Kaggle-layout set under `raw` (kept between calls), prepared at `size` px."""
    if not (out / "meta.json").is_file():
        subprocess.run(
            [
                *DLTRAIN,
                "prepare",
                "retina",
                "demo",
                "--out",
                str(out),
                "--demo-dir",
                str(raw),
                "--patients",
                str(patients),
                "--test-patients",
                "0",
                "--size",
                str(size),
                "--mix",
                "balanced",
                "--force",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def scaled_data_dir(source: Path, out: Path, fraction: float) -> Path:
    """A copy of a prepared DATA_DIR whose train split holds `fraction` of the source's training
    samples (repeated when above 1: activity windows as array rows, photographs by hard links under
    new names). The val and test splits are kept as they are."""
    meta = json.loads((source / "meta.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    scale = _scale_windows if (source / "train.npz").is_file() else _scale_photographs  # how the splits are stored
    meta["splits"]["train"] = scale(source, out, fraction, meta["splits"])
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return out


def _scale_windows(source: Path, out: Path, fraction: float, splits: dict) -> int:
    for split in splits:
        shutil.copy(source / f"{split}.npz", out / f"{split}.npz")
    with np.load(source / "train.npz", allow_pickle=False) as train:
        arrays = {name: train[name] for name in train.files}
    rows = np.resize(np.arange(len(arrays["y"])), round(len(arrays["y"]) * fraction))
    np.savez(out / "train.npz", **{name: values[rows] for name, values in arrays.items()})
    return len(rows)


def _scale_photographs(source: Path, out: Path, fraction: float, splits: dict) -> int:
    import pandas as pd  # here: bench/gpu_check.py runs this module where only Keras, JAX and numpy are

    (out / "images").mkdir()
    for path in (source / "images").iterdir():
        (out / "images" / path.name).hardlink_to(path)
    for table in source.glob("*.csv"):
        shutil.copy(table, out / table.name)
    train = pd.read_csv(source / "train.csv", dtype={"image": str, "patient": str})
    rows = train.iloc[np.resize(np.arange(len(train)), round(len(train) * fraction))].reset_index(drop=True)
    copies = rows.groupby("image").cumcount()
    renamed = np.where(copies > 0, rows["image"] + "-copy" + copies.astype(str), rows["image"])
    for original, name in zip(rows["image"], renamed):
        if name != original:
            (out / "images" / f"{name}.jpeg").hardlink_to(source / "images" / f"{original}.jpeg")
    rows["image"] = renamed
    rows.to_csv(out / "train.csv", index=False)
    return len(rows)


def epoch_timer():
    """A Keras callback keeping the seconds of each epoch's training batches (validation excluded)."""
    from dltrain.training.callbacks import EpochSeconds

    return EpochSeconds()


def train_samples(data_dir: Path) -> int:
    """The train split's size, as the DATA_DIR's meta.json records it."""
    return int(json.loads((Path(data_dir) / "meta.json").read_text())["splits"]["train"])


# Smoke mode checks that a script still runs, not the machine: the smallest model of each preset,
# no TensorBoard logs, so the CI smoke runs cost seconds, not minutes.
SMOKE_SETTINGS = {
    "har-gru": [
        "model.units=8",
        "model.layers=1",
        "model.conv_layers=1",
        "model.conv_filters=8",
        "model.dense_units=0",
        "train.tensorboard=false",
        "train.min_steps_per_epoch=0",  # one pass an epoch in smoke runs
    ],
    "retina-cnn": ["model.conv_layers=1", "model.dense_units=8", "train.batch_size=8", "train.tensorboard=false"],
}


def smoke_settings(preset: str, smoke: bool) -> list[str]:
    return SMOKE_SETTINGS[preset] if smoke else []


def epoch_budget(epochs: int, settings: list[str]) -> list[str]:
    """Overrides for a timing run: exactly `epochs` epochs, every one kept, plus `settings`."""
    return [f"train.epochs={epochs}", "early_stopping.patience=0", "early_stopping.start_from_epoch=0", *settings]


def dltrain_epoch_seconds(data_dir: Path, run_dir: Path, preset: str, epochs: int, settings: list[str]) -> list[float]:
    """`train_run` (what `dltrain train` calls) of `preset`, and the seconds of each epoch's training batches."""
    from dltrain.config.loading import load_config
    from dltrain.training.session import train_run

    timer = epoch_timer()
    train_run(
        data_dir,
        run_dir,
        load_config(preset, epoch_budget(epochs, settings)),
        preset,
        force=True,
        extra_callbacks=[timer],
    )
    return timer.seconds


def steady_seconds(seconds: list[float]) -> float:
    """The median epoch after the first (which also traces the step and fills any cache)."""
    later = seconds[1:] or seconds
    return float(np.median(later))


@dataclass
class Report:
    """One bench's result: printed as a table, and written as a Markdown section for RESULTS.md."""

    title: str
    command: str
    headers: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append(list(cells))

    def text(self) -> str:
        cells = [self.headers] + [[format_cell(value) for value in row] for row in self.rows]
        widths = [max(len(row[index]) for row in cells) for index in range(len(self.headers))]
        lines = [self.title, ""]
        for row in cells:
            lines.append(
                "  ".join(
                    value.rjust(width) if index else value.ljust(width)
                    for index, (value, width) in enumerate(zip(row, widths))
                )
            )
        return "\n".join(lines + [""] + self.notes)

    def markdown(self) -> str:
        lines = [
            f"## {self.title}",
            "",
            f"`{self.command}`",
            "",
            "| " + " | ".join(self.headers) + " |",
            "|" + "---|" * len(self.headers),
        ]
        lines += ["| " + " | ".join(format_cell(value) for value in row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + [f"- {note}" for note in self.notes] + [""])

    def emit(self, markdown_path: Path | None) -> None:
        print()
        print(self.text())
        if markdown_path is not None:
            markdown_path.write_text(self.markdown())


def verdict(ratio: float, goal: float, at_least: bool = True) -> str:
    met = ratio >= goal if at_least else ratio <= goal
    return f"{'met' if met else 'NOT met'} ({'>=' if at_least else '<='} {goal:g})"


def bench_arguments(
    doc: str, smoke_help: str, name: str, work: bool = True, extra=None
) -> tuple[argparse.Namespace, Path | None]:
    """The options every bench script takes (--smoke, --work, --markdown), plus `extra(parser)`'s;
    returns them with the working folder (a new temporary one unless --work names one)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    if work:
        parser.add_argument("--work", type=Path, help="folder for data and runs (default: a temporary one)")
    parser.add_argument("--markdown", type=Path, help="also write the result as a Markdown section here")
    if extra is not None:
        extra(parser)
    arguments = parser.parse_args()
    if not work:
        return arguments, None
    return arguments, arguments.work or Path(tempfile.mkdtemp(prefix=f"dltrain-bench-{name}-"))
