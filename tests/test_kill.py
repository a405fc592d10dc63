"""Real SIGKILLs: prepare killed anywhere and run again ends with the same DATA_DIR; train killed
mid-epoch and resumed ends with the same history and metrics as a run never killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder, write_classroom_folder, write_long_csv

from dltrain.config.loading import load_config
from dltrain.training.session import train_run

DLTRAIN = [sys.executable, "-m", "dltrain"]


def folder_contents(folder: Path) -> dict[str, bytes]:
    """Every file by relative path; meta.json without its creation time (the one field that differs)."""
    contents = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "meta.json":
                meta = json.loads(data)
                meta.pop("created", None)
                data = json.dumps(meta, sort_keys=True).encode()
            contents[str(path.relative_to(folder))] = data
    return contents


def kill_after(command: list, seconds: float) -> None:
    process = subprocess.Popen([str(part) for part in command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("seconds", [0.5, 1.0, 1.5, 2.5])
def test_prepare_har_killed_anywhere_then_run_again(tmp_path, seconds):
    source = write_long_csv(tmp_path / "long.csv", subjects=tuple(range(1, 13)), samples_per_activity=3000)
    reference = tmp_path / "reference"
    assert invoke("prepare", "har", str(source), "--out", str(reference)).exit_code == 0
    out = tmp_path / "data"
    command = [*DLTRAIN, "prepare", "har", source, "--out", out]
    kill_after(command, seconds)
    # Whenever the kill came, the DATA_DIR is either absent or whole.
    assert not out.exists() or folder_contents(out) == folder_contents(reference)
    result = subprocess.run([str(part) for part in command + ["--force"]], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert folder_contents(out) == folder_contents(reference)
    assert not list(tmp_path.glob(".data.*")), "staging folders of the killed run are left behind"


@pytest.mark.parametrize("seconds", [1.0, 2.0, 3.0])
def test_prepare_retina_killed_anywhere_then_run_again(tmp_path, seconds):
    source = kaggle_folder(tmp_path / "kaggle", patients=30, with_test=False)
    options = ["--size", "48", "--workers", "1"]
    reference = tmp_path / "reference"
    assert invoke("prepare", "retina", str(source), "--out", str(reference), *options).exit_code == 0
    out = tmp_path / "data"
    command = [*DLTRAIN, "prepare", "retina", source, "--out", out, *options]
    kill_after(command, seconds)
    # The same command again (no --force): it resumes from the images already written.
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert folder_contents(out) == folder_contents(reference)


KILLING_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    import keras
    from dltrain.config.loading import load_config
    from dltrain.training.session import train_run


    class KillMidEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 2 and batch == 2:  # epoch 3, third batch: two epochs saved, one half done
                os.kill(os.getpid(), signal.SIGKILL)


    data, run, settings = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    train_run(data, run, load_config("har-gru", settings), "har-gru", extra_callbacks=[KillMidEpoch()])
    """
)
SETTINGS = [
    "model.units=8",
    "model.layers=1",
    "model.conv_layers=1",
    "model.conv_filters=8",
    "model.dropout=0.3",
    "train.batch_size=8",
    "train.epochs=5",
    "train.deterministic=true",
    "optimizer.learning_rate=0.01",
    "schedule.name=plateau",
    "schedule.patience=1",
    "early_stopping.patience=3",
    "early_stopping.start_from_epoch=0",
]


def test_train_killed_mid_epoch_resumes_to_the_same_result(tmp_path):
    source = write_classroom_folder(tmp_path / "classroom", per_class=(16, 6), with_test=False)
    data = tmp_path / "data"
    assert invoke("prepare", "har", str(source), "--out", str(data)).exit_code == 0
    whole = tmp_path / "whole"
    train_run(data, whole, load_config("har-gru", SETTINGS), "har-gru")

    killed = tmp_path / "killed"
    process = subprocess.run(
        [sys.executable, "-c", KILLING_SCRIPT, str(data), str(killed), *SETTINGS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
    assert json.loads((killed / "provenance.json").read_text())["status"] == "running"  # nobody could mark it

    result = invoke("train", "--resume", str(killed))
    assert result.exit_code == 0, result.output
    whole_history, killed_history = pd.read_csv(whole / "history.csv"), pd.read_csv(killed / "history.csv")
    pd.testing.assert_frame_equal(killed_history, whole_history, rtol=1e-5)
    whole_metrics = json.loads((whole / "metrics-val.json").read_text())
    killed_metrics = json.loads((killed / "metrics-val.json").read_text())
    assert (
        killed_metrics["accuracy"] == whole_metrics["accuracy"]
        and killed_metrics["confusion_matrix"] == whole_metrics["confusion_matrix"]
    )


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    import keras
    import dltrain.training.session
    from dltrain.cli.app import app


    class PressCtrlC(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2 and os.path.exists(os.path.join(sys.argv[2], "last.keras")):
                os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends on Ctrl-C
                time.sleep(5)  # the handler runs here, at the next bytecode


    # A shell that starts a job in the background without job control ignores SIGINT in it, and
    # Python then installs no handler: the test would send Ctrl-C into the void. Restore a terminal's.
    signal.signal(signal.SIGINT, signal.default_int_handler)


    original = dltrain.training.session.train_run
    dltrain.training.session.train_run = lambda *args, **kw: original(*args, **kw, extra_callbacks=[PressCtrlC()])
    app(["train", sys.argv[1], "--out", sys.argv[2]] + sum((["--set", setting] for setting in sys.argv[3:]), []))
    """
)


def test_ctrl_c_says_how_to_resume(tmp_path):
    source = write_classroom_folder(tmp_path / "classroom", per_class=(16, 6), with_test=False)
    data = tmp_path / "data"
    assert invoke("prepare", "har", str(source), "--out", str(data)).exit_code == 0
    run = tmp_path / "run"
    process = subprocess.run(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(data), str(run), *SETTINGS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 130, process.stderr[-2000:]
    assert f"dltrain train --resume {run}" in process.stderr
    assert json.loads((run / "provenance.json").read_text())["status"] == "interrupted"
    assert os.path.isfile(run / "last.keras")
