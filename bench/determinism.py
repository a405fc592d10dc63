"""What deterministic ops cost: the same training with train.deterministic false and true, side by
side in one run, on both tasks, as a ratio of training seconds.

    python bench/determinism.py              # har-gru on HAPT, retina-cnn on the CI demo set (about 8 minutes)
    python bench/determinism.py --epochs 2   # shorter
    python bench/determinism.py --repeats 2  # alternate the two settings twice, to see the noise

Training seconds come from each run's provenance.json (the fit loop only: not start-up, data
loading or scoring). Runs alternate between the two settings so that a slow spell of a shared
machine does not fall on one side only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DLTRAIN = [sys.executable, "-m", "dltrain"]


def prepare(work: Path) -> dict[str, Path]:
    har, retina = work / "hapt", work / "retina"
    subprocess.run([*DLTRAIN, "prepare", "har", "hapt", "--out", str(har), "--force"], check=True)
    subprocess.run(
        [
            *DLTRAIN,
            "prepare",
            "retina",
            "demo",
            "--out",
            str(retina),
            "--demo-dir",
            str(work / "raw"),
            "--patients",
            "80",
            "--test-patients",
            "0",
            "--size",
            "64",
            "--mix",
            "balanced",
            "--force",
        ],
        check=True,
    )
    return {"har": har, "retina": retina}


def train_seconds(data: Path, run: Path, preset: str, epochs: int, deterministic: bool) -> float:
    settings = [
        f"train.epochs={epochs}",
        f"train.deterministic={str(deterministic).lower()}",
        "early_stopping.patience=0",
        "early_stopping.start_from_epoch=0",
    ]
    subprocess.run(
        [
            *DLTRAIN,
            "train",
            str(data),
            "--out",
            str(run),
            "--config",
            preset,
            "--force",
            *sum((["--set", s] for s in settings), []),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads((run / "provenance.json").read_text())["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, help="folder for data and runs (default: a temporary one)")
    arguments = parser.parse_args()
    work = arguments.work or Path(tempfile.mkdtemp(prefix="dltrain-determinism-"))
    data = prepare(work)
    print(f"{'task':8} {'default s':>10} {'deterministic s':>16} {'ratio':>6}")
    for task, preset in (("har", "har-gru"), ("retina", "retina-cnn")):
        seconds = {False: [], True: []}
        for repeat in range(arguments.repeats):
            for deterministic in (False, True):
                run = work / f"{task}-{'det' if deterministic else 'default'}-{repeat}"
                seconds[deterministic].append(train_seconds(data[task], run, preset, arguments.epochs, deterministic))
        default, deterministic = statistics.median(seconds[False]), statistics.median(seconds[True])
        print(f"{task:8} {default:10.1f} {deterministic:16.1f} {deterministic / default:6.2f}")


if __name__ == "__main__":
    main()
