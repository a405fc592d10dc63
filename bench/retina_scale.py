"""Retina at 512 px: does `dltrain train` hold as the data grows? One epoch of the retina-cnn preset
with `train.cache=none` at N, 2N and 4N photographs of 512 px (N = 100), each in a fresh process:

- peak host memory of the process (goal: 4N / N <= 1.1: nothing grows with the number of images),
  and the peak within each stage of the run (building, the first step, the later steps, validation,
  and what follows the fit: thresholds, scoring, figures), to show where any growth would go;
- time from the start of training to the end of its first step (about the same at N, 2N and 4N);
- input efficiency at 512 px: seconds per epoch through dltrain vs the same model fed from tensors
  already in memory (goal: ratio >= 0.95; the in-memory side has no augmentation, so augmentation
  is placed in the model on both sides, where a GPU would run it).

    python bench/retina_scale.py          # N = 100 simulated photographs at 512 px (about 9 minutes)
    python bench/retina_scale.py --smoke  # N = 8 at 64 px, N only: to check the script still runs
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from common import (
    Report,
    bench_arguments,
    dltrain_epoch_seconds,
    epoch_budget,
    measure,
    prepare_retina_demo,
    scaled_data_dir,
    steady_seconds,
    train_samples,
    verdict,
)
from train_input import in_memory_epochs

MEMORY_GOAL = 1.1
EFFICIENCY_GOAL = 0.95
SCALES = (1, 2, 4)
MEMORY_SETTINGS = [
    "train.cache=none",
    "train.tensorboard=false",
]  # the preset otherwise: batch 32, augmentation where auto puts it
# The model augments: the in-memory side then runs the very same graph (see the module docstring).
EFFICIENCY_SETTINGS = ["train.cache=none", "augment.placement=model", "train.tensorboard=false", "train.batch_size=16"]
STAGES = ("building", "first step", "later steps", "validation", "after the fit")


def one_epoch(data_dir: str, run_dir: str, result: str, settings: list[str]) -> None:
    """Run in a fresh process: one epoch of train_run; writes the seconds to its first step and the
    peak resident memory within each stage (sampled every 20 ms)."""
    import keras
    import psutil

    from dltrain.config.loading import load_config
    from dltrain.training.session import train_run

    process, stage, peaks, first_step = psutil.Process(), ["building"], {}, {}
    started = time.perf_counter()

    def sample() -> None:
        while True:
            peaks[stage[0]] = max(peaks.get(stage[0], 0.0), process.memory_info().rss / 2**20)
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()

    class Stages(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            stage[0] = "first step"

        def on_train_batch_end(self, batch, logs=None):
            first_step.setdefault("seconds", time.perf_counter() - started)
            stage[0] = "later steps"

        def on_test_begin(self, logs=None):
            stage[0] = "validation"

        def on_train_end(self, logs=None):
            stage[0] = "after the fit"

    config = load_config("retina-cnn", epoch_budget(1, settings))
    train_run(Path(data_dir), Path(run_dir), config, "retina-cnn", force=True, extra_callbacks=[Stages()])
    time.sleep(0.05)
    Path(result).write_text(json.dumps({"first_step_seconds": first_step["seconds"], "stage_peaks": peaks}))


def main() -> None:
    arguments, work = bench_arguments(__doc__, "N = 8 at 64 px, N only", "retina-scale")
    size, count = (64, 8) if arguments.smoke else (512, 100)
    smoke = ["model.conv_layers=1", "model.dense_units=8", "train.batch_size=4"] if arguments.smoke else []
    prepared = prepare_retina_demo(work / "retina-raw", work / f"retina-{size}px", 8 if arguments.smoke else 60, size)
    report = Report(
        f"Retina at {size} px: memory and first step at N, 2N and 4N photographs, input efficiency",
        f"python bench/retina_scale.py{' --smoke' if arguments.smoke else ''}",
        ["case", "N images", "peak memory MiB", "first step s", "ratio to N", "goal"],
    )
    runs = {}
    scales = SCALES[:1] if arguments.smoke else SCALES  # smoke: that the script runs, at the least cost
    for scale in scales:
        data = scaled_data_dir(prepared, work / f"retina-{size}px-{scale}n", scale * count / train_samples(prepared))
        result = work / f"one-epoch-{scale}n.json"
        command = [sys.executable, __file__, "--one-epoch", str(data), str(work / f"run-{scale}n"), str(result)]
        measured = measure([*command, *MEMORY_SETTINGS, *smoke])
        runs[scale] = (measured.peak_rss_mb, json.loads(result.read_text()), data)
    for scale, (memory, recorded, _) in runs.items():
        ratio = memory / runs[1][0]
        judged = scale == scales[-1] and len(scales) > 1  # smoke measures N alone: no ratio to judge
        goal = verdict(ratio, MEMORY_GOAL, at_least=False) if judged else ""
        report.add(
            f"one epoch, train.cache=none, {scale}N", scale * count, memory, recorded["first_step_seconds"], ratio, goal
        )
    for stage in STAGES:
        peaks = [runs[scale][1]["stage_peaks"].get(stage) for scale in scales]
        shown = " / ".join("-" if peak is None else f"{peak:.0f}" for peak in peaks)
        report.add(f"  peak in stage: {stage} (N / 2N / 4N)", "", shown, "", "", "")
    data = runs[1][2]
    settings = [*EFFICIENCY_SETTINGS, *smoke]
    epochs = 2
    before = steady_seconds(in_memory_epochs(data, "retina-cnn", epochs, settings))
    ours = steady_seconds(dltrain_epoch_seconds(data, work / "run-efficiency", "retina-cnn", epochs, settings))
    after = steady_seconds(in_memory_epochs(data, "retina-cnn", epochs, settings))
    ratio = (before + after) / 2 / ours
    report.add(
        f"input efficiency, {size} px, N",
        count,
        "",
        f"{ours:.2f} s/epoch vs {before:.2f} / {after:.2f}",
        ratio,
        verdict(ratio, EFFICIENCY_GOAL),
    )
    report.notes.append(
        "Peak memory: the largest resident memory of the training process and its children, sampled every 20 ms; "
        "per stage, of the process alone. First step: seconds from the start of train_run to the end of the first "
        "training batch (model building and tracing included). Efficiency: the median epoch after the first; ratio "
        "= mean in-memory / dltrain."
    )
    report.emit(arguments.markdown)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one-epoch":
        one_epoch(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        main()
