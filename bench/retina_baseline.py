"""The retina-cnn baseline on the simulated demo set: kappa and wall time against the issue's bars.

    python bench/retina_baseline.py            # demo budget: kappa and wall times (about 10 minutes)
    python bench/retina_baseline.py --smoke    # tiny sizes, to check the script still runs

Runs the real commands in fresh processes: `dltrain prepare retina demo` (simulate the
Kaggle-layout set, then prepare it), `dltrain train --config retina-cnn`, and reads the test
split's quadratic weighted kappa. Prepare's speed against a naive loop: bench/retina_prepare.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from common import timed  # bench/common.py: these scripts run as `python bench/NAME.py`

KAPPA_BAR = 0.80
DEMO_SECONDS_BAR = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    arguments = parser.parse_args()
    work = arguments.work or Path(tempfile.mkdtemp(prefix="dltrain-retina-bench-"))
    dltrain = [sys.executable, "-m", "dltrain"]
    patients, size, extra = (12, 64, ["--set", "train.epochs=1"]) if arguments.smoke else (300, 128, [])

    raw, data, run = work / "raw", work / "data", work / "run"
    prepare_seconds = timed(
        [
            *dltrain,
            "prepare",
            "retina",
            "demo",
            "--out",
            str(data),
            "--demo-dir",
            str(raw),
            "--size",
            str(size),
            "--mix",
            "balanced",
            "--patients",
            str(patients),
            "--force",
        ]
    )
    train_seconds = timed(
        [*dltrain, "train", str(data), "--out", str(run), "--config", "retina-cnn", "--force", *extra]
    )
    timed([*dltrain, "evaluate", str(run), "--split", "test", "--json"])  # training never scores the test split
    metrics = json.loads((run / "metrics-test.json").read_text())
    provenance = json.loads((run / "provenance.json").read_text())

    versions = provenance["versions"]
    print()
    print(
        "retina-cnn on the simulated demo set "
        f"({'smoke' if arguments.smoke else f'{patients} patients, balanced grades, {size} px'}); "
        f"{os.cpu_count()} cores, {provenance['device']['type']}; TF {versions['tensorflow']}, Keras "
        f"{versions['keras']}"
    )
    print(f"{'measure':<44}{'value':>10}{'bar':>8}{'ratio':>8}")
    print(
        f"{'test quadratic weighted kappa':<44}{metrics['quadratic_weighted_kappa']:>10.4f}{KAPPA_BAR:>8.2f}"
        f"{metrics['quadratic_weighted_kappa'] / KAPPA_BAR:>8.3f}"
    )
    total = prepare_seconds + train_seconds
    print(
        f"{'demo wall time (simulate+prepare+train), s':<44}{total:>10.1f}{DEMO_SECONDS_BAR:>8.0f}"
        f"{total / DEMO_SECONDS_BAR:>8.3f}"
    )
    print(f"{'  simulate + prepare, s':<44}{prepare_seconds:>10.1f}")
    print(f"{'  train (incl. evaluation), s':<44}{train_seconds:>10.1f}")
    print(f"{'test accuracy':<44}{metrics['accuracy']:>10.4f}")
    print(f"{'epochs run (best)':<44}{provenance['epochs_run']:>10} ({provenance['best_epoch']})")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
