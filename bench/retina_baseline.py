"""The retina-cnn baseline on the simulated demo set, and prepare's speed against a naive loop.

    python bench/retina_baseline.py            # demo budget: kappa and wall times (about 10 minutes)
    python bench/retina_baseline.py --smoke    # tiny sizes, to check the script still runs

Part 1 runs the real commands in fresh processes: `dltrain prepare retina demo` (simulate the
Kaggle-layout set, then prepare it), `dltrain train --config retina-cnn`, and reads the test
split's quadratic weighted kappa. Part 2 takes the demo photographs at least 2000 px wide and
prepares them twice in one run: with `dltrain prepare retina` (draft decoding, all cores, process
start-up included) and with a naive single-process PIL open -> crop -> LANCZOS resize -> save loop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from common import timed  # bench/common.py: these scripts run as `python bench/NAME.py`

KAPPA_BAR = 0.80
DEMO_SECONDS_BAR = 600.0
SPEEDUP_BAR = 4.0


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
    from dltrain.retina.images import pad_to_square

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for path in paths:
        array = np.asarray(Image.open(path).convert("RGB"))
        top, bottom, left, right = naive_box(array)
        image = Image.fromarray(pad_to_square(array[top:bottom, left:right])).resize((size, size), Image.Resampling.LANCZOS)
        image.save(out / f"{path.stem}.jpeg", quality=95)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    arguments = parser.parse_args()
    work = arguments.work or Path(tempfile.mkdtemp(prefix="dltrain-retina-bench-"))
    dltrain = [sys.executable, "-m", "dltrain"]
    patients, size, extra = (12, 64, ["--set", "train.epochs=1"]) if arguments.smoke else (300, 128, [])

    raw, data, run = work / "raw", work / "data", work / "run"
    prepare_seconds = timed([*dltrain, "prepare", "retina", "demo", "--out", str(data), "--demo-dir", str(raw), "--size", str(size),
                             "--mix", "balanced", "--patients", str(patients), "--force"])
    train_seconds = timed([*dltrain, "train", str(data), "--out", str(run), "--config", "retina-cnn", "--force", *extra])
    metrics = json.loads((run / "metrics-test.json").read_text())
    provenance = json.loads((run / "provenance.json").read_text())

    wide = [path for path in sorted((raw / "train").glob("*.jpeg")) if Image.open(path).width >= 2000]
    wide = wide[: 24 if arguments.smoke else 200]
    subset = work / "wide"
    shutil.rmtree(subset, ignore_errors=True)
    (subset / "train").mkdir(parents=True)
    for path in wide:
        os.link(path, subset / "train" / path.name)
    labels = pd.read_csv(raw / "trainLabels.csv")
    labels[labels["image"].isin([path.stem for path in wide])].to_csv(subset / "trainLabels.csv", index=False)
    ours = timed([*dltrain, "prepare", "retina", str(subset), "--out", str(work / "wide-prepared"), "--size", "512", "--force"])
    naive = naive_prepare(wide, work / "wide-naive", 512)

    versions = provenance["versions"]
    print()
    print(f"retina-cnn on the simulated demo set ({'smoke' if arguments.smoke else f'{patients} patients, balanced grades, {size} px'}); "
          f"{os.cpu_count()} cores, {provenance['device']['type']}; TF {versions['tensorflow']}, Keras {versions['keras']}")
    print(f"{'measure':<44}{'value':>10}{'bar':>8}{'ratio':>8}")
    print(f"{'test quadratic weighted kappa':<44}{metrics['quadratic_weighted_kappa']:>10.4f}{KAPPA_BAR:>8.2f}{metrics['quadratic_weighted_kappa'] / KAPPA_BAR:>8.3f}")
    total = prepare_seconds + train_seconds
    print(f"{'demo wall time (simulate+prepare+train), s':<44}{total:>10.1f}{DEMO_SECONDS_BAR:>8.0f}{total / DEMO_SECONDS_BAR:>8.3f}")
    print(f"{'  simulate + prepare, s':<44}{prepare_seconds:>10.1f}")
    print(f"{'  train (incl. evaluation), s':<44}{train_seconds:>10.1f}")
    print(f"{'test accuracy':<44}{metrics['accuracy']:>10.4f}")
    print(f"{'epochs run (best)':<44}{provenance['epochs_run']:>10} ({provenance['best_epoch']})")
    speedup = naive / ours
    print(f"prepare {len(wide)} photographs >= 2000 px wide to 512 px: dltrain {ours:.1f} s (incl. start-up), "
          f"naive loop {naive:.1f} s -> {speedup:.2f}x (goal {SPEEDUP_BAR:.0f}x)")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
