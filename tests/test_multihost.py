"""Keras on JAX: two local CPU processes training together (gloo over loopback), and the JAX backend
alone reproducing the activity baseline. Each training runs in fresh processes: Keras picks its
backend once per process, and this test process runs Keras on TensorFlow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import invoke, kaggle_folder, write_uci_folder

from dltrain.runs.reproduce import load_baselines

TIMEOUT = 300  # seconds per process; a hung collective fails the test instead of the CI job
# Every global batch full (160 windows / 16, 40 / 16 leaves 8 validation windows unused per epoch).
SETTINGS = [
    "model.units=8",
    "model.layers=1",
    "model.conv_layers=1",
    "model.conv_filters=8",
    "train.epochs=3",
    "early_stopping.start_from_epoch=0",
    "early_stopping.restore_best=false",
    "train.tensorboard=false",
]


def _sets(settings):
    return [part for setting in settings for part in ("--set", setting)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dltrain(*arguments, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "dltrain", *map(str, arguments)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _finish(process) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return process.returncode, output


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("multihost")
    dataset = write_uci_folder(root / "raw", windows_per_subject=40, window=32)
    assert invoke("prepare", "har", str(dataset), "--out", str(root / "data")).exit_code == 0
    return root / "data"


def test_two_processes_end_with_the_same_weights_and_write_the_run_once(data_dir, tmp_path):
    scratch = tmp_path / "scratch"  # the processes' temporary folders go here
    scratch.mkdir()
    port = _free_port()
    launch = [
        "train",
        data_dir,
        "--out",
        tmp_path / "run",
        "--config",
        "har-gru",
        *_sets([*SETTINGS, "train.batch_size=8"]),
        "--backend",
        "jax",
        "--distributed",
        "--coordinator",
        f"127.0.0.1:{port}",
        "--num-processes",
        "2",
    ]
    # Process 1 takes its id from the environment, as a cluster launcher would set it.
    processes = [
        _dltrain(*launch, "--process-id", "0", env={"TMPDIR": str(scratch)}),
        _dltrain(*launch, env={"TMPDIR": str(scratch), "DLTRAIN_PROCESS_ID": "1"}),
    ]
    (code_0, output_0), (code_1, output_1) = [_finish(process) for process in processes]
    assert code_0 == 0, output_0[-3000:]
    assert code_1 == 0, output_1[-3000:]
    digests = [output.split("final weights sha256 ")[1].split(",")[0] for output in (output_0, output_1)]
    assert digests[0] == digests[1]
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["backend"] == "jax" and provenance["replicas"] == 2 and provenance["processes"]["processes"] == 2
    assert provenance["weights_sha256"].startswith(digests[0])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run", "scratch"]  # written once, by process 0
    assert [
        path for path in scratch.iterdir() if path.name.startswith("dltrain-process-")
    ] == []  # process 1's folder is gone
    assert "process 0 wrote the run" in output_1

    # Data-parallel over 2 processes x 8 = one process with the global batch of 16, same seed.
    single = _dltrain(
        "train",
        data_dir,
        "--out",
        tmp_path / "single",
        "--config",
        "har-gru",
        *_sets([*SETTINGS, "train.batch_size=16"]),
        "--backend",
        "jax",
    )
    code, output = _finish(single)
    assert code == 0, output[-3000:]
    together, alone = pd.read_csv(tmp_path / "run" / "history.csv"), pd.read_csv(tmp_path / "single" / "history.csv")
    assert together["loss"].to_numpy() == pytest.approx(alone["loss"].to_numpy(), rel=1e-4)
    # Not bit-identical: the gradient sums run in another order across processes, and Adam turns the
    # resulting ~1e-7 differences of near-zero gradients into steps of up to the learning rate.
    for mine, theirs in zip(
        keras.saving.load_model(tmp_path / "run" / "model.keras").get_weights(),
        keras.saving.load_model(tmp_path / "single" / "model.keras").get_weights(),
    ):
        assert np.abs(mine - theirs).max() <= 2e-3


def test_two_processes_train_the_retina_model_alike(tmp_path):
    """The retina CNN data-parallel over two processes: val_kappa from the global batches, the same
    weights on both, the run written once."""
    source = kaggle_folder(tmp_path / "kaggle", patients=12, with_test=False)
    assert (
        invoke("prepare", "retina", source, "--out", tmp_path / "data", "--size", "32", "--workers", "1").exit_code == 0
    )
    settings = [
        "model.conv_layers=1",
        "model.conv_filters=4",
        "model.dense_units=4",
        "train.batch_size=2",
        "train.epochs=2",
        "early_stopping.patience=0",
        "train.tensorboard=false",
    ]
    port = _free_port()
    launch = [
        "train",
        tmp_path / "data",
        "--out",
        tmp_path / "run",
        *_sets(settings),
        "--backend",
        "jax",
        "--distributed",
        "--coordinator",
        f"127.0.0.1:{port}",
        "--num-processes",
        "2",
    ]
    processes = [_dltrain(*launch, "--process-id", str(index)) for index in range(2)]
    (code_0, output_0), (code_1, output_1) = [_finish(process) for process in processes]
    assert code_0 == 0, output_0[-3000:]
    assert code_1 == 0, output_1[-3000:]
    digests = [output.split("final weights sha256 ")[1].split(",")[0] for output in (output_0, output_1)]
    assert digests[0] == digests[1]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert "val_kappa" in history and np.isfinite(history["val_kappa"]).all() and len(history) == 2
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert (
        provenance["backend"] == "jax"
        and provenance["replicas"] == 2
        and "quadratic_weighted_kappa" in provenance["metrics"]["val"]
    )


def test_the_jax_backend_reproduces_the_activity_baseline(tmp_path):
    """The real HAPT recordings, the har-gru preset at the CI budget: the band TensorFlow is held to."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dltrain",
            "reproduce",
            "har-gru",
            "--budget",
            "ci",
            "--backend",
            "jax",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(result.stdout)
    low, high = load_baselines()["har-gru"].budgets["ci"].band
    assert row["status"] == "ok" and low <= row["mean"] <= high
    provenance = json.loads(next(tmp_path.rglob("provenance.json")).read_text())
    assert provenance["backend"] == "jax"


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--distributed"], "--distributed runs on --backend jax"),
        (
            ["--backend", "jax", "--distributed", "--num-processes", "2", "--process-id", "0"],
            "--distributed needs --coordinator",
        ),
        (
            [
                "--backend",
                "jax",
                "--distributed",
                "--coordinator",
                "nohost",
                "--num-processes",
                "2",
                "--process-id",
                "0",
            ],
            "give HOST:PORT",
        ),
        (
            [
                "--backend",
                "jax",
                "--distributed",
                "--coordinator",
                "127.0.0.1:1",
                "--num-processes",
                "2",
                "--process-id",
                "2",
            ],
            "ids run from 0",
        ),
        (["--backend", "mxnet"], "'mxnet' is not one of 'tensorflow', 'jax'"),
    ],
)
def test_bad_launch_options_are_one_line(arguments, fragment, data_dir, tmp_path):
    result = invoke("train", str(data_dir), "--out", str(tmp_path / "run"), *arguments)
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_the_jax_backend_without_the_extra_names_it(data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # how Python marks a module as not importable
    result = invoke("train", str(data_dir), "--out", str(tmp_path / "run"), "--backend", "jax")
    assert result.exit_code == 2 and "pip install 'dltrain[jax]'" in result.output
    assert not (tmp_path / "run").exists()
