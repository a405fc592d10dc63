"""The real command line, in a process of its own, prints none of TensorFlow's C++ start-up lines
(CUDA stub, cuInit, oneDNN, absl's "before InitializeLog", TFLite's delegate notice) without
--verbose, on the paths that start TensorFlow in different ways. Those lines are written by C++ to
file descriptor 2, which Typer's CliRunner cannot see: only a subprocess shows them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.training import interrupt_after_epoch

from dltrain.config.loading import load_config
from dltrain.training.session import train_run

CHATTER = ("cuInit", "cudart_stub", "oneDNN", "absl::InitializeLog", "XNNPACK", "cpu_feature_guard", "I0000 ", "E0000 ")
REPOSITORY = Path(__file__).resolve().parents[1]
TINY = ["model.units=8", "model.layers=1", "model.conv_layers=0", "train.batch_size=8", "train.min_steps_per_epoch=0"]


def dltrain(*arguments, cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it: dltrain sets it itself
    return subprocess.run(
        [sys.executable, "-m", "dltrain", *map(str, arguments)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_quiet(result: subprocess.CompletedProcess) -> None:
    chatter = [line for line in result.stderr.splitlines() if any(marker in line for marker in CHATTER)]
    assert not chatter, result.stderr


@pytest.fixture(scope="module")
def interrupted_run(data_dir, tmp_path_factory):
    """A run stopped after its first of two epochs, as Ctrl-C leaves it."""
    run = tmp_path_factory.mktemp("quiet") / "stopped"
    config = load_config("har-gru", [*TINY, "train.epochs=2", "early_stopping.start_from_epoch=0"])
    with pytest.raises(KeyboardInterrupt):
        train_run(data_dir, run, config, "har-gru", extra_callbacks=[interrupt_after_epoch(1)])
    return run


def test_resume_then_evaluate_are_quiet(interrupted_run, tmp_path):
    resumed = dltrain("train", "--resume", interrupted_run, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_quiet(resumed)
    assert "resuming" in resumed.stderr
    evaluated = dltrain("evaluate", interrupted_run, "--split", "val", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert_quiet(evaluated)


def test_export_is_quiet_and_logs_to_stderr(interrupted_run, tmp_path):
    if "complete" not in (interrupted_run / "provenance.json").read_text():
        assert dltrain("train", "--resume", interrupted_run, cwd=tmp_path).returncode == 0
    result = dltrain("export", interrupted_run, "--format", "litert", "--out", tmp_path / "m.tflite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_quiet(result)
    assert result.stdout == "" and "classes agree" in result.stderr and "wrote" in result.stderr


def test_errors_and_env_are_quiet(tmp_path):
    result = dltrain("lab", "--data", "missing", "--out", "x", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error:")
    assert_quiet(result)
    result = dltrain("env", cwd=tmp_path)
    assert result.returncode == 0 and "gpus (tensorflow)" in result.stdout
    assert_quiet(result)
