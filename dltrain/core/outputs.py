"""Where commands may write. Every `--out` goes through `check_output` before anything is written:

- every path is resolved; an output that is, contains or lies inside an input of the command is
  refused, and so is the working folder, the home folder or the file-system root itself (a new
  folder under the working folder, such as `models/run1`, is fine);
- an existing output is never replaced without `--force`, and `--force` replaces only what
  dltrain wrote: a folder holding one of its marker files (meta.json, provenance.json, ...), or a
  file of its own kind; anything else is refused by name;
- a symbolic link is never written through with `--force`.

`output_lock` keeps two dltrain commands from writing the same output at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dltrain.core.errors import UsageError


@dataclass(frozen=True)
class OutputKind:
    """What a command writes, and how to tell one that dltrain wrote."""

    what: str  # in messages: "DATA_DIR", "run folder", ...
    folder: bool
    markers: tuple[str, ...] = ()  # a folder holding any of these was written by dltrain
    is_ours: Callable[[Path], bool] | None = None  # whether dltrain wrote this file or folder (instead of markers)


DATA_DIR = OutputKind("DATA_DIR", True, ("meta.json", "prepare-state.json"))
RUN_DIR = OutputKind("run folder", True, ("provenance.json", "config.yaml"))
RUNS_FOLDER = OutputKind("folder of runs", True, ("comparison.csv", "REPORT.md"))


def csv_starting_with(*columns: str) -> Callable[[Path], bool]:
    """A CSV whose header begins with `columns`: how a table dltrain wrote is known again."""

    def check(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8", errors="strict") as stream:
                header = stream.readline().strip().split(",")
        except (OSError, UnicodeDecodeError):
            return False
        return header[: len(columns)] == list(columns)

    return check


def _protected_folders() -> dict[Path, str]:
    return {
        Path.cwd().resolve(): "the working folder",
        Path.home().resolve(): "the home folder",
        Path("/"): "the root folder",
    }


def _relation(out: Path, source: Path) -> str | None:
    if out == source:
        return "is"
    if source.is_relative_to(out):
        return "contains"
    if out.is_relative_to(source):
        return "lies inside"
    return None


# An input inside which an output may lie, and which of the paths inside it are its own files (an
# output must never be one of those): a run folder takes predictions or exports beside its files.
Container = tuple[Path, Callable[[Path], bool]]


def check_against_inputs(out: Path, inputs: Sequence[Path], containers: Sequence[Container] = ()) -> Path:
    """The resolved `out`, refused if it is the working or home folder, or is, contains or lies
    inside an input (inside a container only where it would be one of the container's own files)."""
    resolved = Path(out).resolve()
    name = _protected_folders().get(resolved)
    if name:
        raise UsageError(f"--out {out} is {name} itself; name a new folder inside it, e.g. {Path(out) / 'run1'}")
    owners = {Path(folder).resolve(): owned for folder, owned in containers}
    for source in [*inputs, *(folder for folder, _ in containers)]:
        source_path = Path(source).resolve()
        relation = _relation(resolved, source_path)
        if relation is None:
            continue
        if relation == "lies inside" and source_path in owners and not owners[source_path](resolved):
            continue
        kind = "one of the files of" if relation == "lies inside" and source_path in owners else relation
        raise UsageError(f"--out {out} {kind} the input {source}; write the output somewhere else")
    return resolved


def check_output(
    out: Path, kind: OutputKind, force: bool, inputs: Sequence[Path] = (), containers: Sequence[Container] = ()
) -> Path:
    """Everything about `out` that can be refused before a command writes anything; the resolved path."""
    resolved = check_against_inputs(out, inputs, containers)
    out = Path(out)
    if out.is_symlink() and (force or not out.exists()):
        raise UsageError(f"--out {out} is a symbolic link; give the folder or file it points to, or another path")
    if not out.exists():
        return resolved
    if kind.folder:
        _check_existing_folder(out, kind, force)
    else:
        _check_existing_file(out, kind, force)
    return resolved


def _check_existing_folder(out: Path, kind: OutputKind, force: bool) -> None:
    if not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    entries = sorted(entry.name for entry in out.iterdir())
    if not entries:
        return
    if not force:
        raise UsageError(
            f"--out {out} already holds files; choose another folder or pass --force to replace the {kind.what}"
        )
    ours = kind.is_ours(out) if kind.is_ours is not None else any((out / marker).is_file() for marker in kind.markers)
    if not ours:
        marked = f" (one with {' or '.join(kind.markers)})" if kind.markers else ""
        raise UsageError(
            f"--out {out} holds files dltrain did not write (e.g. {entries[0]}); --force replaces only a {kind.what} "
            f"dltrain wrote{marked}: choose another folder"
        )


def _check_existing_file(out: Path, kind: OutputKind, force: bool) -> None:
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file path")
    if not force:
        raise UsageError(f"--out {out} already exists; choose another path or pass --force to replace it")
    if kind.is_ours is not None and not kind.is_ours(out):
        raise UsageError(
            f"--out {out} is not a {kind.what} dltrain wrote; --force replaces only those: choose another path"
        )


def refuse_file_as_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold `.<name>.lock` beside `out` for the command's duration; a second dltrain writing the same
    output is refused, naming the process that holds it. The lock is the kernel's (flock): it goes
    with its process, so a killed command never leaves a stale lock."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.lock"
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise UsageError(
                f"--out {out} is being written by another dltrain command (process {owner}); wait for it to end"
            ) from None
        if os.path.exists(path) and os.stat(path).st_ino == os.fstat(descriptor).st_ino:
            break  # the lock file was not replaced while we waited for it
        os.close(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.unlink(path)
        os.close(descriptor)
