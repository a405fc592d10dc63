"""Predict: `dltrain predict` on a folder of photographs and on activity recordings, vs the same
model's batched `predict` on tensors already in memory, and vs the course's per-image loop.

    python bench/predict_speed.py            # about 3 minutes
    python bench/predict_speed.py --smoke    # tiny sizes, to check the script still runs

Everything runs in this process. Each side runs once untimed (the process's first model load and
tracing would otherwise count against whichever side goes first), then both alternately ROUNDS
times; the figures are the medians. `dltrain predict` is `predict_run` (what the command calls),
timed from the call to the CSV on disk: model loading, reading and preparing every input,
predicting, writing. `in memory` times loading the same model and `model.predict` on the
inputs decoded beforehand into one array: the model's own speed. The per-image loop is what the
course notebook does: for each file, open it, make a batch of one, `model.predict`. Ratio =
in-memory seconds / dltrain seconds (goal >= 0.9); the loop's ratio = loop seconds / dltrain seconds.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from common import (
    Report,
    bench_arguments,
    prepare_hapt,
    prepare_retina_demo,
    scaled_data_dir,
    smoke_settings,
    train_samples,
    verdict,
)
from PIL import Image

GOAL = 0.9
ROUNDS = 3  # alternating timed rounds per side after the untimed one (--smoke: 1, untimed round skipped)


def short_run(data_dir: Path, run_dir: Path, preset: str, settings: list[str]) -> Path:
    from dltrain.config.loading import load_config
    from dltrain.training.session import train_run

    if not (run_dir / "model.keras").is_file():
        overrides = ["train.epochs=1", "early_stopping.patience=0", "early_stopping.start_from_epoch=0", *settings]
        train_run(data_dir, run_dir, load_config(preset, overrides), preset, force=True)
    return run_dir


def dltrain_seconds(run_dir: Path, source: Path, out: Path) -> float:
    from dltrain.inference.predict import predict_run

    out.unlink(missing_ok=True)
    started = time.perf_counter()
    predict_run(run_dir, str(source), out)
    return time.perf_counter() - started


def alternating_medians(ours, theirs, rounds: int) -> tuple[float, float]:
    """Median seconds of `ours()` and `theirs()`, timed alternately after one untimed call of each
    (none with a single round: --smoke only checks that the script runs)."""
    if rounds > 1:
        ours(), theirs()
    timed = [(ours(), theirs()) for _ in range(rounds)]
    return float(np.median([pair[0] for pair in timed])), float(np.median([pair[1] for pair in timed]))


def in_memory_seconds(run_dir: Path, inputs: np.ndarray) -> float:
    from dltrain.data.feeds import SCORING_BATCH_SIZE
    from dltrain.runs.rundir import Run

    started = time.perf_counter()  # loading counts on both sides: predicting needs the model
    model = Run.open(run_dir).load_model()
    model.predict(inputs, batch_size=SCORING_BATCH_SIZE, verbose=0)
    return time.perf_counter() - started


def per_image_loop_seconds(run_dir: Path, paths: list[Path], size: int) -> float:
    from dltrain.runs.rundir import Run

    model = Run.open(run_dir).load_model()
    started = time.perf_counter()
    for path in paths:
        image = np.asarray(Image.open(path).convert("RGB").resize((size, size)), np.float32)
        model.predict(image[None], verbose=0)
    return time.perf_counter() - started


def main() -> None:
    arguments, work = bench_arguments(__doc__, "tiny sizes", "predict")
    import_quietly()
    from dltrain.data.datadir import DataDir

    report = Report(
        "Predict: dltrain predict vs batched predict in memory, and the per-image loop",
        f"python bench/predict_speed.py{' --smoke' if arguments.smoke else ''}",
        [
            "input",
            "items",
            "dltrain s",
            "in-memory s",
            "ratio",
            "goal",
            "per-image loop s",
            "dltrain speed-up over the loop",
        ],
    )

    size = 64 if arguments.smoke else 128
    prepared = prepare_retina_demo(work / "retina-raw", work / f"retina-{size}px", 8 if arguments.smoke else 40, size)
    images = 32 if arguments.smoke else 1024
    data = scaled_data_dir(prepared, work / "retina-predict", images / train_samples(prepared))
    run = short_run(data, work / "run-retina", "retina-cnn", smoke_settings("retina-cnn", arguments.smoke))
    import pandas as pd

    folder = work / "photographs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    names = pd.read_csv(data / "train.csv", dtype={"image": str})["image"]
    for name in names:
        (folder / f"{name}.jpeg").hardlink_to(data / "images" / f"{name}.jpeg")
    paths = sorted(folder.iterdir())
    decoded = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])  # uint8, as dltrain feeds it
    rounds = 1 if arguments.smoke else ROUNDS
    ours, memory = alternating_medians(
        lambda: dltrain_seconds(run, folder, work / "submission.csv"), lambda: in_memory_seconds(run, decoded), rounds
    )
    loop_paths = paths[: len(paths) // 8 or 1]  # the loop is slow: timed on an eighth, scaled up
    loop = per_image_loop_seconds(run, loop_paths, size) * len(paths) / len(loop_paths)
    report.add(
        f"folder of {size} px JPEGs",
        len(paths),
        ours,
        memory,
        memory / ours,
        verdict(memory / ours, GOAL),
        loop,
        loop / ours,
    )

    hapt = prepare_hapt(work / "hapt")
    har_data = scaled_data_dir(hapt, work / "hapt-small", 0.05) if arguments.smoke else hapt
    har_run = short_run(har_data, work / "run-har", "har-gru", smoke_settings("har-gru", arguments.smoke))
    windows = DataDir.open(hapt).split("test")
    ours, memory = alternating_medians(
        lambda: dltrain_seconds(har_run, hapt, work / "predictions-test.csv"),
        lambda: in_memory_seconds(har_run, windows.x),
        rounds,
    )
    report.add(
        "HAPT DATA_DIR, test split", len(windows.x), ours, memory, memory / ours, verdict(memory / ours, GOAL), "", ""
    )
    from dltrain.tasks.har.readers import read_har_source
    from dltrain.tasks.har.types import HarOptions

    started = time.perf_counter()
    recordings = read_har_source("hapt", HarOptions()).windows.x
    reading = time.perf_counter() - started
    ours, memory = alternating_medians(
        lambda: dltrain_seconds(har_run, "hapt", work / "predictions-hapt.csv"),
        lambda: in_memory_seconds(har_run, recordings),
        rounds,
    )
    report.add(
        "hapt recordings (read, windowed)",
        len(recordings),
        ours,
        memory,
        memory / ours,
        verdict(memory / ours, GOAL),
        "",
        "",
    )
    report.notes.append(
        f"hapt recordings: reading the package's gzip'd pickle and cutting its windows took {reading:.2f} s on its "
        "own, which the "
        "in-memory side (given the windows) does not pay; without it the ratio is "
        f"{memory / max(ours - reading, 1e-9):.2f}."
    )
    report.notes.append("the per-image loop was timed on an eighth of the folder and scaled to the whole.")
    report.notes.append(
        f"dltrain and in-memory seconds: medians of {rounds} alternating round(s) after one untimed round each."
    )
    report.emit(arguments.markdown)


def import_quietly() -> None:
    from dltrain.core.console import import_tensorflow_quietly

    import_tensorflow_quietly(verbose=False)


if __name__ == "__main__":
    main()
