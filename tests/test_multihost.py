"""Keras on JAX: two local CPU processes training together (gloo over loopback), and the JAX backend
alone reproducing the activity baseline. Each training runs in fresh processes: Keras picks its
backend once per process, and this test process runs Keras on TensorFlow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder, write_uci_folder

from dltrain.experiments.reproduce import load_baselines

TWO_HOST_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "TF_CPP_MIN_LOG_LEVEL": "3"}
BENCH = Path(__file__).resolve().parent.parent / "bench"
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

    # Data-parallel over 2 processes x 8 = one process data-parallel over its 2 host devices x 8
    # (train.strategy=mirrored on JAX), same seed.
    single = _dltrain(
        "train",
        data_dir,
        "--out",
        tmp_path / "single",
        "--config",
        "har-gru",
        *_sets([*SETTINGS, "train.batch_size=8", "train.strategy=mirrored"]),
        "--backend",
        "jax",
        env=TWO_HOST_DEVICES,
    )
    code, output = _finish(single)
    assert code == 0, output[-3000:]
    alone_provenance = json.loads((tmp_path / "single" / "provenance.json").read_text())
    assert alone_provenance["strategy"] == "data-parallel" and alone_provenance["global_batch"] == 16
    together, alone = pd.read_csv(tmp_path / "run" / "history.csv"), pd.read_csv(tmp_path / "single" / "history.csv")
    assert together["loss"].to_numpy() == pytest.approx(alone["loss"].to_numpy(), rel=1e-3)
    # Not bit-identical: the gradient sums run in another order across processes, and Adam turns the
    # resulting ~1e-7 differences of near-zero gradients into steps of up to the learning rate, so no
    # tolerance tuned on one machine holds on the next. What the maths guarantees: both start from the
    # same weights (the same seed) and an Adam step moves a weight by at most rate x (1 - beta_1) /
    # sqrt(1 - beta_2) (Kingma and Ba, 2015, section 2.1), so after `steps` steps on each side the two
    # differ by at most twice the sum of those bounds; weights initialised apart differ by far more.
    from dltrain.config.loading import load_config

    config = load_config("har-gru", [*SETTINGS, "train.batch_size=8"])
    steps = len(together) * max(160 // 16, config.train.min_steps_per_epoch)
    rate = config.optimizer.learning_rate  # the peak of its schedule
    beta_1, beta_2 = config.optimizer.beta_1, config.optimizer.beta_2
    bound = 2 * steps * rate * max(1.0, (1 - beta_1) / np.sqrt(1 - beta_2))
    # (Batch normalisation's moving statistics are averages of the data, not Adam steps: the losses
    # above cover them.)
    for mine, theirs in zip(
        keras.saving.load_model(tmp_path / "run" / "model.keras").trainable_weights,
        keras.saving.load_model(tmp_path / "single" / "model.keras").trainable_weights,
    ):
        assert np.abs(np.asarray(mine) - np.asarray(theirs)).max() <= bound


def test_two_processes_train_the_retina_model_alike_as_gpus_would(tmp_path):
    """The retina CNN data-parallel over two processes, each with what one GPU resolves to on JAX
    (mixed precision, XLA, augmentation in the model) forced here, and deterministic ops: val_kappa
    from the global batches, the same weights on both, the run written once; then scored by
    `evaluate` on TensorFlow."""
    from dltrain.config.loading import load_config
    from dltrain.training.resolution import Machine, resolve

    source = kaggle_folder(tmp_path / "kaggle", patients=12)
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
        "train.deterministic=true",
    ]
    settings += resolve(Machine.with_gpus("8.0", backend="jax"), load_config("retina-cnn", settings)).settings()
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
    assert (provenance["precision"], provenance["xla"], provenance["augmentation"]) == ("mixed_float16", True, "model")
    assert provenance["deterministic_ops"] is True and provenance["cudnn_gru"] is False
    scored = invoke("evaluate", tmp_path / "run", "--split", "test", "--json")
    assert scored.exit_code == 0, scored.output
    assert -1 <= json.loads(scored.stdout)["quadratic_weighted_kappa"] <= 1


def test_what_one_gpu_resolves_to_runs_every_preset_on_jax_over_two_host_devices(tmp_path):
    """bench/gpu_check.py as it would run on a GPU machine with JAX and no TensorFlow: each preset
    built as one GPU of compute capability 8.0 resolves it on JAX (mixed precision, XLA, augmentation
    in the model), data-parallel over this host's two devices, from random tensors."""
    markdown = tmp_path / "check.md"
    command = [sys.executable, BENCH / "gpu_check.py", "--smoke", "--backend", "jax", "--machine", "gpu-8.0"]
    command += ["--strategy", "mirrored", "--markdown", markdown]
    result = subprocess.run(
        list(map(str, command)), capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, **TWO_HOST_DEVICES}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = markdown.read_text()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "mixed" in line]
    assert [row[0].strip("| ") for row in rows] == ["har-gru", "retina-cnn", "retina-512"]
    for row in rows:  # batch (2 replicas x 4), precision, XLA, augmentation
        assert row[3:7] == ["8", "mixed_float16", "True", "model"], row
    assert "TensorFlow imported: no." in text


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
