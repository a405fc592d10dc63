"""Start-up: `dltrain --help` and `dltrain prepare --help` vs `python -c "import tensorflow"`.

    python bench/startup.py            # 3 alternating repeats of each (about 30 seconds)
    python bench/startup.py --smoke    # one repeat

The commands run as fresh processes, alternating, and the median of each is kept. Ratio =
dltrain seconds / TensorFlow import seconds; the goal is <= 0.1 (help never imports TensorFlow).
"""

from __future__ import annotations

import statistics
import sys

from common import DLTRAIN, Report, bench_arguments, timed, verdict

GOAL = 0.1


def main() -> None:
    arguments, work = bench_arguments(
        __doc__,
        "one repeat",
        "startup",
        work=False,
        extra=lambda parser: parser.add_argument("--repeats", type=int, default=3),
    )
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
