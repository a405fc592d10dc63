"""Folders built once per test session and shared by every pytest-xdist worker: the first worker to
ask builds one under a file lock, the others wait and read it. Tests never write into a shared folder;
one that needs to change it works on a copy (`copied`)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

DONE = ".built"  # written last: a folder without it was left by a build that failed, and is built again


def session_root(tmp_path_factory) -> Path:
    """The temporary folder of this session, the same for every worker (each worker's own is inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """`build(folder)` run once for the session; every later call returns the same folder."""
    root = session_root(tmp_path_factory)
    folder = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / DONE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / DONE).touch()
    return folder


def copied(source: Path, destination: Path) -> Path:
    """A copy of a shared folder (or file) that a test may change."""
    if source.is_dir():
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns(DONE))
    else:
        shutil.copy2(source, destination)
    return destination


def repointed(run: Path, data: Path) -> Path:
    """A copied run made to name its copied DATA_DIR (provenance.json records the data's absolute
    path), as if it had been trained there."""
    provenance = json.loads((run / "provenance.json").read_text())
    provenance["data"]["path"] = str(data.resolve())
    (run / "provenance.json").write_text(json.dumps(provenance, indent=2))
    return run
