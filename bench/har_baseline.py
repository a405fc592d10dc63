"""The har-gru baseline on real HAPT data: test accuracy and wall time, against the issue's bars.

    python bench/har_baseline.py            # full preset (about 10 minutes on 2 CPU cores)
    python bench/har_baseline.py --smoke    # one epoch, to check the script still runs

Runs the real commands (`dltrain prepare har hapt`, `dltrain train --config har-gru`) in fresh
processes, so start-up and TensorFlow import count in the time, as a user would see them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACCURACY_BAR = 0.93
TIME_BAR_SECONDS = 600.0


def run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one epoch only")
    parser.add_argument("--work", type=Path, help="folder for the DATA_DIR and RUN_DIR (default: a temporary one)")
    arguments = parser.parse_args()

    work = arguments.work or Path(tempfile.mkdtemp(prefix="dltrain-bench-"))
    data, run_dir = work / "hapt", work / "run"
    dltrain = [sys.executable, "-m", "dltrain"]
    extra = ["--set", "train.epochs=1"] if arguments.smoke else []
    prepare_seconds = run([*dltrain, "prepare", "har", "hapt", "--out", str(data), "--force"])
    train_seconds = run([*dltrain, "train", str(data), "--out", str(run_dir), "--config", "har-gru", "--force", *extra])
    metrics = json.loads((run_dir / "metrics-test.json").read_text())
    provenance = json.loads((run_dir / "provenance.json").read_text())

    print()
    print(f"har-gru on HAPT ({'smoke: 1 epoch' if arguments.smoke else 'full preset'}), {platform.processor() or platform.machine()}, "
          f"TF {provenance['versions']['tensorflow']}, Keras {provenance['versions']['keras']}, {provenance['device']['type']}")
    print(f"{'measure':<34}{'value':>10}{'bar':>10}{'ratio':>8}")
    rows = [
        ("test accuracy (UCI test subjects)", metrics["accuracy"], ACCURACY_BAR, metrics["accuracy"] / ACCURACY_BAR),
        ("train wall time, s", train_seconds, TIME_BAR_SECONDS, train_seconds / TIME_BAR_SECONDS),
    ]
    for name, value, bar, ratio in rows:
        print(f"{name:<34}{value:>10.4f}{bar:>10.2f}{ratio:>8.3f}")
    print(f"{'test macro F1':<34}{metrics['macro_f1']:>10.4f}")
    print(f"{'prepare wall time, s':<34}{prepare_seconds:>10.1f}")
    print(f"{'epochs run (best epoch)':<34}{provenance['epochs_run']:>10} ({provenance['best_epoch']})")
    print(f"run folder: {run_dir}")


if __name__ == "__main__":
    main()
