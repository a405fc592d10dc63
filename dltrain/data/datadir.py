"""A prepared DATA_DIR: `meta.json` plus one `<split>.npz` per split, written atomically.

`meta.json` carries everything `train`, `evaluate` and `predict` need (task, classes, channels,
shapes, normalisation statistics, split sizes, source, options), so no task flag is ever needed.
Arrays are plain numpy (no pickled objects): `np.load(..., allow_pickle=False)` reads them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from dltrain.core.errors import DataError, UsageError

META_FILE = "meta.json"
SPLITS = ("train", "val", "test", "unlabelled")


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    subjects: np.ndarray


def write_json_atomic(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary sibling, then rename: readers never see a half-written file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    # mkstemp/mkdtemp create private files; finished outputs get the user's usual permissions.
    current = os.umask(0)
    os.umask(current)
    return current


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def refuse_file_as_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")


def check_output_folder(out: Path, force: bool, what: str) -> None:
    """Refuse to overwrite a non-empty folder unless --force."""
    refuse_file_as_folder(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out {out} already holds files; choose another folder or pass --force to replace the {what}")


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `out` in one rename, on failure it vanishes."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Left by an earlier run that was killed (SIGKILL, power loss) before it could clean up.
    for stale in [*out.parent.glob(f".{out.name}.partial-*"), *out.parent.glob(f".{out.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    os.chmod(staging, 0o777 & ~_umask())
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, retired / out.name)
        os.replace(staging, out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, out)


def write_split(folder: Path, name: str, split: Split) -> None:
    np.savez(folder / f"{name}.npz", x=split.x.astype(np.float32), y=split.y, ids=split.ids.astype(str), subjects=split.subjects)


def read_meta(data_dir: Path) -> dict:
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise DataError(f"{data_dir}: no such folder (make one with 'dltrain prepare')")
    meta_path = data_dir / META_FILE
    if not data_dir.is_dir() or not meta_path.is_file():
        raise DataError(f"{data_dir} is not a prepared DATA_DIR (no {META_FILE}); make one with 'dltrain prepare'")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{meta_path} is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or "task" not in meta or "classes" not in meta:
        raise DataError(f"{meta_path} lacks 'task' or 'classes'; was it written by dltrain prepare?")
    return meta


def read_split(data_dir: Path, name: str) -> Split:
    if name not in SPLITS:
        raise UsageError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
    path = Path(data_dir) / f"{name}.npz"
    if not path.is_file():
        raise DataError(f"{data_dir} has no {name} split ({path.name} missing)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return Split(arrays["x"], arrays["y"], arrays["ids"], arrays["subjects"])
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{path} is unreadable or incomplete ({error})") from None
