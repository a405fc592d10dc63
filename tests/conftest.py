"""What every test process shares: the CPU split into two logical devices (before TensorFlow
starts), and fixtures of small data in the real layouts and of a tiny trained run of each task.
The helpers themselves live in tests/helpers/; tests import those, never this file."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder, write_classroom_folder, write_long_csv, write_uci_folder
from helpers.examples import settings
from helpers.journey import walk
from helpers.shared import built_once, copied, repointed
from helpers.training import REPLICAS, TINY_CNN, TINY_GRU


def split_the_cpu(devices: int) -> None:
    """Make the CPU `devices` logical devices; must run before TensorFlow starts, hence at import."""
    from dltrain.core.console import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)


split_the_cpu(REPLICAS)


@pytest.fixture(scope="session")
def cli():
    return invoke


@pytest.fixture
def uci_folder(tmp_path: Path) -> Path:
    return write_uci_folder(tmp_path / "raw")


@pytest.fixture
def classroom_folder(tmp_path: Path) -> Path:
    return write_classroom_folder(tmp_path / "classroom")


@pytest.fixture
def long_csv(tmp_path: Path) -> Path:
    return write_long_csv(tmp_path / "wisdm.csv")


def _prepare_classroom(folder: Path) -> None:
    source = write_classroom_folder(folder / "classroom", per_class=(16, 6), with_test=False)
    assert invoke("prepare", "har", source, "--out", folder / "data").exit_code == 0


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A prepared activity DATA_DIR (48 training windows of 3 classes), prepared once per session;
    each test module gets its own copy."""
    shared = built_once(tmp_path_factory, "classroom-data", _prepare_classroom)
    return copied(shared / "data", tmp_path_factory.mktemp("data") / "data")


def _train_activity(folder: Path) -> None:
    source = write_classroom_folder(folder / "classroom", per_class=(16, 6))
    assert invoke("prepare", "har", source, "--out", folder / "data").exit_code == 0
    result = invoke("train", folder / "data", "--out", folder / "run", *settings(TINY_GRU))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def activity_run(tmp_path_factory):
    """A tiny har-gru run (TINY_GRU) on a classroom folder of train and validation recordings (and
    unlabelled test ones: its DATA_DIR has an unlabelled split, no test split),
    trained once per session; each test module gets its own copy of the folder, the DATA_DIR and the run."""
    shared = built_once(tmp_path_factory, "activity-run", _train_activity)
    root = copied(shared, tmp_path_factory.mktemp("activity") / "shared")
    repointed(root / "run", root / "data")
    return {"root": root, "source": root / "classroom", "data": root / "data", "run": root / "run"}


def _train_retina(folder: Path) -> None:
    source = kaggle_folder(folder / "kaggle", patients=12)
    data = folder / "data"
    assert invoke("prepare", "retina", source, "--out", data, "--size", "32", "--workers", "1").exit_code == 0
    result = invoke("train", data, "--out", folder / "run", *TINY_CNN)  # the task preset: retina-cnn
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def retina_run(tmp_path_factory):
    """A tiny retina-cnn run on 12 patients' photographs at 32 px, trained once per session; each test
    module gets its own copy of the photographs, the DATA_DIR and the run (tests may write into them)."""
    shared = built_once(tmp_path_factory, "retina-run", _train_retina)
    root = copied(shared, tmp_path_factory.mktemp("retina") / "shared")
    repointed(root / "run", root / "data")
    return {"root": root, "source": root / "kaggle", "data": root / "data", "run": root / "run"}


@pytest.fixture(scope="session")
def journey(tmp_path_factory):
    """The folder where every documented example ran once (helpers.journey), read-only: tests that
    use it are in the xdist group "journey", so the one worker that walks it also runs them."""
    return built_once(tmp_path_factory, "journey", walk)
