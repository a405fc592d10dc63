"""dltrain's default activity preset against what a practitioner would pick instead: aeon's MiniRocket
(random convolution kernels and a ridge classifier), side by side on the same DATA_DIRs in one run.

    pip install -e '.[bench]'                  # aeon, for this bench only (never a run-time dependency)
    python bench/peer.py                       # HAPT and BasicMotions, seed 1 (about 10 minutes on 2 cores)
    python bench/peer.py --seeds 1,2,3 --refit # also the final models on train + val, and the seeds' ensembles
    python bench/peer.py --smoke               # BasicMotions, one epoch: checks that the script still runs

Both sides read the same prepared DATA_DIR (`dltrain prepare har hapt`; BasicMotions from the .ts files
aeon ships) and score its test split once. MiniRocket fits the stored windows (channels x readings)
of the train split, and of train + val; dltrain trains the task's default preset (`dltrain train`,
validation for early stopping), with `--refit` also `dltrain refit` (the kept epochs on train + val),
and with several seeds `dltrain ensemble` of the seeds' runs. The ratio is dltrain's test accuracy
over MiniRocket's (fitted on train); above 1, dltrain is ahead.
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import DLTRAIN, Report, bench_arguments, prepare_hapt, timed
from suite import git_commit, machine, versions

PEER_SEED = 0


def options(parser) -> None:
    parser.add_argument("--seeds", default="1", help="comma-separated train.seed values of the dltrain runs")
    parser.add_argument("--refit", action="store_true", help="also refit each run on train + val (dltrain refit)")
    parser.add_argument("--only", help="hapt or basicmotions (default: both; smoke: basicmotions)")


def basic_motions(out: Path) -> Path:
    """aeon's BasicMotions (4 activities, 40 + 40 series of 100 readings, 6 channels), prepared by dltrain."""
    import subprocess

    import aeon

    source = Path(aeon.__file__).parent / "datasets" / "data" / "BasicMotions" / "BasicMotions_TRAIN.ts"
    if not (out / "meta.json").is_file():
        command = [*DLTRAIN, "prepare", "har", str(source), "--out", str(out), "--force"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return out


def minirocket(data_dir: Path, splits: tuple[str, ...]) -> tuple[float, float]:
    """MiniRocket fitted on `splits` of the DATA_DIR, scored on its test split: (accuracy, seconds)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    import dltrain.tasks  # noqa: F401  (registers the tasks' meta.json schemas)
    from dltrain.data.datadir import DataDir

    data = DataDir.open(data_dir)
    parts = [data.split(name) for name in splits]
    train_x = np.concatenate([part.x for part in parts]).transpose(0, 2, 1)  # aeon: (cases, channels, readings)
    train_y = np.concatenate([part.y for part in parts])
    test = data.split("test")
    started = time.perf_counter()
    model = MiniRocketClassifier(random_state=PEER_SEED, n_jobs=-1).fit(train_x, train_y)
    accuracy = float((model.predict(test.x.transpose(0, 2, 1)) == test.y).mean())
    return accuracy, time.perf_counter() - started


def dltrain_run(data_dir: Path, run_dir: Path, seed: int, smoke: bool) -> float:
    """`dltrain train` with the task's default preset, then `evaluate --split test`: the seconds trained."""
    budget = ["--set", "train.epochs=1", "--set", "early_stopping.start_from_epoch=0"] if smoke else []
    command = [*DLTRAIN, "train", str(data_dir), "--out", str(run_dir), "--force", "--set", f"train.seed={seed}"]
    seconds = timed([*command, *budget])
    return seconds + score(run_dir)


def score(run_dir: Path) -> float:
    return timed([*DLTRAIN, "evaluate", str(run_dir), "--split", "test", "--json"])


def test_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics-test.json").read_text())["accuracy"]


def dltrain_side(data_dir: Path, work: Path, seeds: list[int], refit: bool, smoke: bool) -> list[tuple]:
    """(model, fitted on, accuracies over the seeds, mean seconds) rows of dltrain's variants."""
    runs = {seed: work / f"run-seed-{seed}" for seed in seeds}
    seconds = [dltrain_run(data_dir, run, seed, smoke) for seed, run in runs.items()]
    rows = [("default preset", "train (val: early stopping)", [test_accuracy(run) for run in runs.values()], seconds)]
    variants = {"default preset": list(runs.values())}
    if refit:
        finals = [run.with_name(f"{run.name}-refit") for run in runs.values()]
        refit_seconds = [
            timed([*DLTRAIN, "refit", str(run), "--out", str(final), "--force"]) + score(final)
            for run, final in zip(runs.values(), finals)
        ]
        rows.append(
            ("refit", "train + val, the kept epochs", [test_accuracy(final) for final in finals], refit_seconds)
        )
        variants["refit"] = finals
    if len(seeds) > 1:
        for name, members in list(variants.items()):
            out = work / f"ensemble-{name.replace(' ', '-')}"
            started = time.perf_counter()
            timed([*DLTRAIN, "ensemble", *map(str, members), "--out", str(out), "--force"])
            elapsed = time.perf_counter() - started + score(out)
            rows.append(
                (f"ensemble of the {len(members)} {name} runs", "as its members", [test_accuracy(out)], [elapsed])
            )
    return rows


def main() -> None:
    arguments, work = bench_arguments(__doc__, "BasicMotions only, one epoch", "peer", extra=options)
    import aeon

    seeds = [int(value) for value in arguments.seeds.split(",")]
    chosen = (
        arguments.only.split(",")
        if arguments.only
        else ["basicmotions"]
        if arguments.smoke
        else ["hapt", "basicmotions"]
    )
    makers = {
        "hapt": lambda: prepare_hapt(work / "data" / "hapt"),
        "basicmotions": lambda: basic_motions(work / "data" / "basicmotions"),
    }
    report = Report(
        f"Activity: dltrain's default preset against aeon {aeon.__version__}'s MiniRocket",
        " ".join(["python bench/peer.py", *sys.argv[1:]]).split(" --markdown")[0],
        ["data", "model", "fitted on", "test accuracy", "spread", "ratio to MiniRocket", "seconds"],
    )
    for name in chosen:
        data_dir = makers[name]()
        peer, peer_seconds = minirocket(data_dir, ("train",))
        report.add(name, f"MiniRocket (random_state {PEER_SEED})", "train", peer, "-", 1.0, peer_seconds)
        pooled, pooled_seconds = minirocket(data_dir, ("train", "val"))
        report.add(
            name, f"MiniRocket (random_state {PEER_SEED})", "train + val", pooled, "-", pooled / peer, pooled_seconds
        )
        for model, fitted_on, accuracies, seconds in dltrain_side(
            data_dir, work / name, seeds, arguments.refit, arguments.smoke
        ):
            mean = statistics.mean(accuracies)
            spread = (
                f"sd {statistics.stdev(accuracies):.4f} over {len(accuracies)} seeds" if len(accuracies) > 1 else "-"
            )
            report.add(name, model, fitted_on, mean, spread, mean / peer, statistics.mean(seconds))
    report.notes.append(
        f"dltrain seeds {', '.join(map(str, seeds))}; seconds: one fit and the test scoring (dltrain: the mean per "
        "seed, start-up included). The test split was scored once per model, after every choice was made."
    )
    report.notes.append(
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, on {machine()}; "
        f"{versions()}, aeon {aeon.__version__}."
    )
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
