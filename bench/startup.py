"""Start-up: `dltrain --help` and `dltrain prepare --help` vs `python -c "import tensorflow"`.

    python bench/startup.py            # 3 alternating repeats of each (about 30 seconds)
    python bench/startup.py --smoke    # one repeat

The commands run as fresh processes, alternating, and the median of each is kept. Ratio =
dltrain seconds / TensorFlow import seconds; the goal is <= 0.1 (help never imports TensorFlow).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from common import DLTRAIN, Report, timed, verdict

GOAL = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="also write the result as a Markdown section here")
    arguments = parser.parse_args()
    commands = {
        "python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"],
        "dltrain --help": [*DLTRAIN, "--help"],
        "dltrain prepare --help": [*DLTRAIN, "prepare", "--help"],
        "dltrain train --help": [*DLTRAIN, "train", "--help"],
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(1 if arguments.smoke else arguments.repeats):
        for name, command in commands.items():
            seconds[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    tensorflow = medians["python -c 'import tensorflow'"]
    report = Report(
        "Start-up: help vs importing TensorFlow",
        f"python bench/startup.py{' --smoke' if arguments.smoke else ''}",
        ["command", "median s", "ratio to TF import", "goal"],
    )
    for name, value in medians.items():
        is_tensorflow = name.startswith("python")
        report.add(
            name,
            value,
            "" if is_tensorflow else value / tensorflow,
            "" if is_tensorflow else verdict(value / tensorflow, GOAL, at_least=False),
        )
    report.notes.append(
        f"median of {len(seconds[name])} fresh processes each, run alternately; start-up of the interpreter included "
        "on both sides."
    )
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
