"""The har-gru baseline on real HAPT data: test accuracy and wall time, against the issue's bars.

    python bench/har_baseline.py                   # the preset's seed (about 3-5 minutes on 2 CPU cores)
    python bench/har_baseline.py --seeds 42,1,2,3  # the spread over seeds
    python bench/har_baseline.py --smoke           # one epoch, to check the script still runs

Runs the real commands (`dltrain prepare har hapt`, `dltrain train --config har-gru`) in fresh
processes, so start-up and the TensorFlow import count in the time, as a user would see them.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from common import timed  # bench/common.py: these scripts run as `python bench/NAME.py`

ACCURACY_BAR = 0.93
TIME_BAR_SECONDS = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one epoch only")
    parser.add_argument("--seeds", default="42", help="comma-separated train.seed values (default: the preset's 42)")
    parser.add_argument("--work", type=Path, help="folder for the DATA_DIR and RUN_DIRs (default: a temporary one)")
    arguments = parser.parse_args()

    work = arguments.work or Path(tempfile.mkdtemp(prefix="dltrain-bench-"))
    data = work / "hapt"
    dltrain = [sys.executable, "-m", "dltrain"]
    prepare_seconds = timed([*dltrain, "prepare", "har", "hapt", "--out", str(data), "--force"])
    rows = []
    for seed in [int(value) for value in arguments.seeds.split(",")]:
        run_dir = work / f"run-seed{seed}"
        extra = ["--set", f"train.seed={seed}"] + (
            ["--set", "train.epochs=1", "--set", "early_stopping.start_from_epoch=0"] if arguments.smoke else []
        )
        seconds = timed([*dltrain, "train", str(data), "--out", str(run_dir), "--config", "har-gru", "--force", *extra])
        timed([*dltrain, "evaluate", str(run_dir), "--split", "test", "--json"])  # training never scores the test split
        metrics = json.loads((run_dir / "metrics-test.json").read_text())
        provenance = json.loads((run_dir / "provenance.json").read_text())
        rows.append((seed, metrics["accuracy"], metrics["macro_f1"], seconds, provenance))

    versions = rows[0][4]["versions"]
    print()
    print(
        f"har-gru on HAPT ({'smoke: 1 epoch' if arguments.smoke else 'full preset'}); {platform.machine()}, "
        f"{rows[0][4]['device']['names'][0]}, {rows[0][4]['device']['type']}; TF {versions['tensorflow']}, Keras "
        f"{versions['keras']}"
    )
    print(f"prepare hapt: {prepare_seconds:.1f} s")
    print(
        f"{'seed':>6}{'test acc':>10}{'macro F1':>10}{'acc/bar':>9}{'train s':>9}{'s/bar':>7}{'epochs':>8}{'best':>6}"
    )
    for seed, accuracy, macro_f1, seconds, provenance in rows:
        print(
            f"{seed:>6}{accuracy:>10.4f}{macro_f1:>10.4f}{accuracy / ACCURACY_BAR:>9.3f}{seconds:>9.1f}"
            f"{seconds / TIME_BAR_SECONDS:>7.2f}{provenance['epochs_run']:>8}{provenance['best_epoch']:>6}"
        )
    accuracies = [row[1] for row in rows]
    print(
        f"test accuracy: mean {statistics.mean(accuracies):.4f}, min {min(accuracies):.4f}, max {max(accuracies):.4f} "
        f"(bar {ACCURACY_BAR}); slowest train {max(row[3] for row in rows):.0f} s (bar {TIME_BAR_SECONDS:.0f} s)"
    )
    print(f"runs under {work}")


if __name__ == "__main__":
    main()
