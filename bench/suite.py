"""Run every bench script, side by side in one go, and write bench/RESULTS.md.

    python bench/suite.py                  # what `make bench` runs (about 13 minutes on 2 cores)
    python bench/suite.py --smoke          # tiny sizes: checks that every script still runs
    python bench/suite.py --only startup,har_prepare

Each script runs in its own process (one TensorFlow state per script) and writes its Markdown
section; the scripts share one working folder, so HAPT and the simulated photographs are
prepared once. RESULTS.md starts with the machine, the versions and the command.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = (
    "startup",
    "har_prepare",
    "retina_prepare",
    "train_input",
    "retina_scale",
    "model_cost",
    "retina_blend",
    "predict_speed",
    "scaling",
    "gpu_check",
)
BENCH = Path(__file__).resolve().parent
WITHOUT_DATA = ("startup", "model_cost", "gpu_check")  # the scripts that take no --work folder


def machine() -> str:
    import psutil

    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else platform.processor()
    )
    memory = psutil.virtual_memory().total / 2**30
    return f"{model}, {os.cpu_count()} logical cores, {memory:.0f} GiB memory, {platform.system()} {platform.release()}"


def versions() -> str:
    names = ("tensorflow", "keras", "numpy", "pillow", "pandas")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return f"Python {platform.python_version()}, " + ", ".join(found)


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=BENCH, capture_output=True, text=True).stdout.strip()
    return (result.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes in every script")
    parser.add_argument("--only", help=f"comma-separated scripts (default: all of {', '.join(SCRIPTS)})")
    parser.add_argument("--work", type=Path, help="shared working folder (default: a temporary one)")
    parser.add_argument(
        "--results",
        type=Path,
        default=BENCH / "RESULTS.md",
        help="where to write the results (default: bench/RESULTS.md)",
    )
    arguments = parser.parse_args()
    chosen = arguments.only.split(",") if arguments.only else list(SCRIPTS)
    unknown = sorted(set(chosen) - set(SCRIPTS))
    if unknown:
        parser.error(f"unknown bench script(s) {', '.join(unknown)}; valid: {', '.join(SCRIPTS)}")
    work = arguments.work or Path(tempfile.mkdtemp(prefix="dltrain-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sections, started = [], time.perf_counter()
    for name in chosen:
        markdown = work / f"{name}.md"
        command = [sys.executable, str(BENCH / f"{name}.py"), "--markdown", str(markdown)]
        command += ["--work", str(work)] if name not in WITHOUT_DATA else []
        command += ["--smoke"] if arguments.smoke else []
        print(f"== {name}", flush=True)
        script_started = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        sections.append(
            markdown.read_text().replace("\n\n", f"\n\n_{time.perf_counter() - script_started:.0f} s_\n\n", 1)
        )
    minutes = (time.perf_counter() - started) / 60
    command = (
        "make bench"
        if not arguments.smoke and not arguments.only
        else " ".join(["python bench/suite.py", *sys.argv[1:]])
    )
    header = [
        "# Bench results",
        "",
        f"- command: `{command}` ({minutes:.1f} minutes in "
        f"all{', smoke sizes: the figures mean nothing' if arguments.smoke else ''})",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; commit {git_commit()}",
        f"- machine: {machine()}",
        f"- software: {versions()}",
        "- ratios are measured side by side in this one run; the goals are the issue's. Re-run: `make bench`.",
        "",
    ]
    arguments.results.write_text("\n".join(header) + "\n" + "\n".join(sections))
    print(f"wrote {arguments.results} ({minutes:.1f} minutes)")


if __name__ == "__main__":
    main()
