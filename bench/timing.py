"""Shared by the bench scripts: wall time of a command run in a fresh process."""

from __future__ import annotations

import subprocess
import time


def timed(command: list[str]) -> float:
    """Seconds from start to exit of `command` (start-up and imports included); raises if it fails."""
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started
