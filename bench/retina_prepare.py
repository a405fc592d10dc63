"""Retina prepare on full-size photographs: `dltrain prepare retina` vs a naive PIL loop, and its
peak memory at N and 4N images.

    python bench/retina_prepare.py            # N = 120 Kaggle-size JPEGs, 4N = 480 (about 3 minutes)
    python bench/retina_prepare.py --smoke    # tiny sizes, to check the script still runs

The photographs are the simulated demo set re-saved at the frame sizes of the Kaggle cameras
(1200 to 2592 px tall, 2-10 megapixels, JPEG quality 90). `dltrain` runs as a fresh process, so
Python start-up and imports count against it; the naive loop (single process: open, decode at
full resolution, crop to the fundus, LANCZOS resize, save) runs inside this script and pays no
start-up. Peak memory is the largest resident-set sum over the dltrain process and its workers,
sampled every 20 ms; 4N is the same N files hard-linked under new names.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import DLTRAIN, Report, bench_arguments, measure, prepare_retina_demo, verdict
from PIL import Image

SPEEDUP_GOAL = 8.0
MEMORY_GROWTH_GOAL = 1.25  # peak memory at 4N / at N
KAGGLE_FRAMES = ((3888, 2592), (3456, 2304), (2592, 1944), (2592, 1728), (2048, 1536), (1800, 1200))
SIZE = 512


def kaggle_photographs(raw: Path, out: Path, count: int) -> list[Path]:
    """`count` distinct Kaggle-size JPEGs made from the simulated photographs under `raw`."""
    sources = sorted((raw / "train").glob("*.jpeg"))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        target = out / f"{index + 1}_{'left' if index % 2 == 0 else 'right'}.jpeg"
        if not target.is_file():
            with Image.open(sources[index % len(sources)]) as source:
                source.convert("RGB").resize(KAGGLE_FRAMES[index % len(KAGGLE_FRAMES)], Image.Resampling.BILINEAR).save(
                    target, quality=90
                )
        paths.append(target)
    return paths


def kaggle_folder(paths: list[Path], folder: Path, copies: int) -> Path:
    """A Kaggle-layout folder (trainLabels.csv + train/) holding each photograph `copies` times."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "train").mkdir(parents=True)
    rows = []
    for copy in range(copies):
        for index, path in enumerate(paths):
            name = f"{index + 1 + copy * len(paths)}_{path.stem.split('_')[1]}"
            os.link(path, folder / "train" / f"{name}.jpeg")
            rows.append({"image": name, "level": index % 5})
    pd.DataFrame(rows).to_csv(folder / "trainLabels.csv", index=False)
    return folder


def naive_box(array: np.ndarray) -> tuple[int, int, int, int]:
    """The same crop rule as dltrain's, written the first way that comes to mind: every pixel."""
    intensity = array.max(axis=2).astype(np.int16)
    border = np.concatenate([intensity[0], intensity[-1], intensity[:, 0], intensity[:, -1]])
    bright = intensity > np.median(border) + 10
    rows = np.flatnonzero(bright.sum(axis=1) > 0.02 * intensity.shape[1])
    columns = np.flatnonzero(bright.sum(axis=0) > 0.02 * intensity.shape[0])
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def naive_prepare(paths: list[Path], out: Path, size: int) -> float:
    """What a first script does: decode at full resolution, crop, resize with LANCZOS, save."""
    from dltrain.tasks.retina.images import pad_to_square

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for path in paths:
        array = np.asarray(Image.open(path).convert("RGB"))
        top, bottom, left, right = naive_box(array)
        image = Image.fromarray(pad_to_square(array[top:bottom, left:right])).resize(
            (size, size), Image.Resampling.LANCZOS
        )
        image.save(out / f"{path.stem}.jpeg", quality=95)
    return time.perf_counter() - started


def main() -> None:
    arguments, work = bench_arguments(__doc__, "N = 8 photographs", "prepare")
    count = 8 if arguments.smoke else 120
    prepare_retina_demo(work / "retina-raw", work / "retina-64px", 8 if arguments.smoke else 40, 64)
    paths = kaggle_photographs(work / "retina-raw", work / "kaggle-size", count)
    heights = sorted({Image.open(path).height for path in paths})

    def ours(copies: int):
        folder = kaggle_folder(paths, work / f"kaggle-x{copies}", copies)
        shutil.rmtree(
            work / f"prepared-x{copies}", ignore_errors=True
        )  # prepare resumes into a folder it finished: start empty
        return measure(
            [
                *DLTRAIN,
                "prepare",
                "retina",
                str(folder),
                "--out",
                str(work / f"prepared-x{copies}"),
                "--size",
                str(SIZE),
                "--force",
            ]
        )

    one = ours(1)
    naive = naive_prepare(paths, work / "naive", SIZE)
    four = ours(4)
    report = Report(
        f"Retina prepare: {count} full-size photographs ({heights[0]}-{heights[-1]} px tall) to {SIZE} px",
        f"python bench/retina_prepare.py{' --smoke' if arguments.smoke else ''}",
        ["measure", "seconds", "images/s", "peak memory MiB", "speed-up over the naive loop", "goal"],
    )
    report.add(f"naive PIL loop, {count} images (1 process, no start-up)", naive, count / naive, "", "", "")
    report.add(
        f"dltrain prepare, {count} images (incl. start-up)",
        one.seconds,
        count / one.seconds,
        round(one.peak_rss_mb),
        naive / one.seconds,
        verdict(naive / one.seconds, SPEEDUP_GOAL),
    )
    # The 4N folder is the same N files four times over, so the naive loop's time for it is 4x its time for N.
    report.add(
        f"dltrain prepare, {4 * count} images (incl. start-up)",
        four.seconds,
        4 * count / four.seconds,
        round(four.peak_rss_mb),
        4 * naive / four.seconds,
        verdict(4 * naive / four.seconds, SPEEDUP_GOAL),
    )
    growth = four.peak_rss_mb / one.peak_rss_mb
    report.notes.append(
        f"peak memory at 4N / at N: {growth:.3f}, {verdict(growth, MEMORY_GROWTH_GOAL, at_least=False)}: images are "
        "streamed, "
        "never held together."
    )
    report.notes.append(
        f"the naive loop's time for {4 * count} images is 4x its measured time for {count} (the same files, linked "
        "four times)."
    )
    report.notes.append(
        f"{os.cpu_count()} cores; dltrain uses all of them by default (--workers); the naive loop uses one."
    )
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
