"""Files written whole or not at all: the one "temporary sibling, then rename" writer.

Every file dltrain writes (JSON, CSV, YAML, models, figures, JPEGs) goes through `atomic_file`,
and every folder it fills through `atomic_folder`: a reader, or a run killed half-way, never sees
a half-written output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def update_digest(digest, path: Path) -> None:
    """Feed a file's bytes to a hashlib digest, a megabyte at a time."""
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    update_digest(digest, path)
    return digest.hexdigest()


def user_umask() -> int:
    # mkstemp/mkdtemp create private files; finished outputs get the user's usual permissions.
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling of `path` with the same suffix (Keras, PIL and matplotlib
    choose the format by it); on success it replaces `path` in one rename, on failure it vanishes."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    partial = Path(temporary)
    try:
        yield partial
        os.chmod(partial, 0o666 & ~user_umask())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    with atomic_file(path) as partial:
        partial.write_bytes(payload)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json_atomic(path: Path, payload: dict | list) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=json_default) + "\n")


def stale_siblings(out: Path) -> list[Path]:
    """Staging and retired folders that an earlier run of `atomic_folder` left beside `out`."""
    return [*out.parent.glob(f".{out.name}.partial-*"), *out.parent.glob(f".{out.name}.old-*")]


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `out` in one rename (the old `out`
    is removed only then), on failure it vanishes and `out` is left as it was. Staging folders of
    killed commands are removed first: call it holding `outputs.output_lock(out)`, so that none of
    them belongs to a command still running."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_siblings(out):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    os.chmod(staging, 0o777 & ~user_umask())
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in(staging, out)


def swap_in(staging: Path, out: Path) -> None:
    """Put the finished `staging` folder (or file) in the place of `out`, whatever `out` was."""
    if out.exists() or out.is_symlink():
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, retired / out.name)
        os.replace(staging, out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, out)


def safe_file_name(name: str) -> str:
    """A sample's name (`subject/000128`, `10_left`) as a file name: anything but letters, digits, '-',
    '_' and '.' becomes '_', and a leading '.' too (no hidden files)."""
    cleaned = "".join(character if character.isalnum() or character in "-_." else "_" for character in name)
    return "_" + cleaned[1:] if cleaned.startswith(".") else cleaned


def safe_file_names(names: list[str]) -> list[str]:
    """`safe_file_name` of each, made unique (`a_b`, `a_b-2`, ...): two inputs never share a file."""
    seen: dict[str, int] = {}
    unique = []
    for name in map(safe_file_name, names):
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return unique
