"""Scaling: training seconds per epoch at 1x, 2x and 4x the training data, for each task.

    python bench/scaling.py            # about 4 minutes
    python bench/scaling.py --smoke    # tiny sizes, 1x only: to check the script still runs

Each point is `train_run` (what `dltrain train` calls) on a DATA_DIR whose train split is a
quarter, a half and all of a base set (activity: the HAPT train split; retina: the simulated
demo photographs at 128 px, repeated by hard links to 512 images). Seconds per epoch count
the training batches only, median of the epochs after the first. Linear cost means seconds per
1x-unit of data stay the same: the last column is (s/epoch / scale) / (s/epoch at 1x).
"""

from __future__ import annotations

from common import (
    Report,
    bench_arguments,
    dltrain_epoch_seconds,
    prepare_hapt,
    prepare_retina_demo,
    scaled_data_dir,
    smoke_settings,
    steady_seconds,
    train_samples,
)


def main() -> None:
    arguments, work = bench_arguments(__doc__, "tiny sizes, 1x only, 2 epochs", "scaling")
    epochs = 2 if arguments.smoke else 3
    hapt = prepare_hapt(work / "hapt")
    size = 64 if arguments.smoke else 128
    retina = prepare_retina_demo(work / "retina-raw", work / f"retina-{size}px", 8 if arguments.smoke else 40, size)
    retina_images = 64 if arguments.smoke else 512
    # (task, base DATA_DIR, share of it that is 4x, preset, settings)
    tasks = [
        ("har-gru", hapt, 0.1 if arguments.smoke else 1.0, "har-gru", smoke_settings("har-gru", arguments.smoke)),
        (
            f"retina-cnn {size} px",
            retina,
            retina_images / train_samples(retina),
            "retina-cnn",
            smoke_settings("retina-cnn", arguments.smoke),
        ),
    ]
    report = Report(
        "Scaling: seconds per epoch at 1x, 2x and 4x the training data",
        f"python bench/scaling.py{' --smoke' if arguments.smoke else ''}",
        ["task", "scale", "train samples", "s/epoch", "cost per 1x relative to 1x"],
    )
    for task, base, full_share, preset, settings in tasks:
        first = None
        for scale in (1,) if arguments.smoke else (1, 2, 4):  # smoke: that the script runs, at the least cost
            data = scaled_data_dir(base, work / f"{preset}-x{scale}", full_share * scale / 4)
            samples = train_samples(data)
            seconds = steady_seconds(
                dltrain_epoch_seconds(data, work / f"run-{preset}-x{scale}", preset, epochs, settings)
            )
            first = first or seconds
            report.add(task, f"{scale}x", samples, seconds, seconds / scale / first)
    report.notes.append(f"{epochs} epochs per point; 1.0 in the last column is perfectly linear cost.")
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
