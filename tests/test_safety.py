"""Nothing lost, nothing run: outputs never destroy inputs or files dltrain did not write, a --force
that fails keeps the old result, foreign exports are never loaded, and signals and concurrent
commands end cleanly. Every data-loss case asserts that every input byte survives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder, write_classroom_folder, write_long_csv

DLTRAIN = [sys.executable, "-m", "dltrain"]
TINY = ["--set", "model.units=4", "--set", "model.layers=1", "--set", "train.epochs=1", "--set", "train.batch_size=8"]
TINY += ["--set", "train.min_steps_per_epoch=0"]


def snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file under the roots, by path, with its bytes."""
    files = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")) if Path(root).is_dir() else [Path(root)]:
            if path.is_file():
                files[str(path)] = path.read_bytes()
    return files


def one_error_line(result, exit_code: int, fragment: str) -> None:
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def trained(activity_run):
    return activity_run  # conftest's tiny run, this module's own copy


# --- --out and --force never destroy inputs or files dltrain did not write -------------------------


def test_prepare_over_its_own_source_is_refused(tmp_path):
    source = write_classroom_folder(tmp_path / "raw")
    before = snapshot(source)
    one_error_line(invoke("prepare", "har", source, "--out", source, "--force"), 2, "is the input")
    (source / "notes.txt").write_text("mine")
    before = snapshot(source)
    one_error_line(invoke("prepare", "har", source, "--out", tmp_path, "--force"), 2, "contains the input")
    one_error_line(invoke("prepare", "har", source, "--out", source / "train" / "data"), 2, "lies inside the input")
    assert snapshot(source) == before


def test_prepare_retina_over_its_photographs_is_refused(tmp_path):
    source = kaggle_folder(tmp_path / "kaggle", patients=3, with_test=False)
    before = snapshot(source)
    for out in (source, tmp_path, source / "train"):
        result = invoke("prepare", "retina", source, "--out", out, "--force", "--size", "32", "--workers", "1")
        assert result.exit_code == 2 and "the input" in result.stderr, result.output
    assert snapshot(source) == before


def test_train_over_its_data_or_the_working_folder_is_refused(trained, tmp_path, monkeypatch):
    before = snapshot(trained["data"])
    one_error_line(invoke("train", trained["data"], "--out", trained["data"], "--force", *TINY), 2, "is the input")
    project = tmp_path / "project"
    shutil.copytree(trained["data"], project / "data")
    (project / "thesis.tex").write_text("\\chapter{Results}")
    project_before = snapshot(project)
    monkeypatch.chdir(project)
    one_error_line(invoke("train", "data", "--out", ".", "--force", *TINY), 2, "the working folder itself")
    one_error_line(invoke("train", "data", "--out", Path.home(), "--force", *TINY), 2, "itself")
    assert snapshot(project) == project_before and snapshot(trained["data"]) == before


def test_force_replaces_only_what_dltrain_wrote(trained, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    before = snapshot(mine)
    one_error_line(invoke("train", trained["data"], "--out", mine, "--force", *TINY), 2, "thesis.tex")
    one_error_line(invoke("prepare", "har", trained["source"], "--out", mine, "--force"), 2, "thesis.tex")
    link = tmp_path / "link"
    link.symlink_to(trained["run"])
    one_error_line(invoke("train", trained["data"], "--out", link, "--force", *TINY), 2, "symbolic link")
    assert snapshot(mine) == before


def test_a_failed_force_run_keeps_the_previous_run(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    before = snapshot(run)
    diverging = [
        "--set",
        "optimizer.name=sgd",
        "--set",
        "optimizer.learning_rate=1e30",
        "--set",
        "model.batch_norm=false",
    ]
    result = invoke("train", trained["data"], "--out", run, "--force", *TINY, *diverging)
    assert result.exit_code == 2 and "training diverged" in result.stderr
    assert snapshot(run) == before
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")], "staging folder left behind"
    assert invoke("train", trained["data"], "--out", run, "--force", *TINY, "--set", "train.seed=7").exit_code == 0
    assert json.loads((run / "provenance.json").read_text())["seed"] == 7


def test_predict_never_overwrites_an_input_or_a_file_it_did_not_write(trained, tmp_path):
    data, run = tmp_path / "data", trained["run"]
    shutil.copytree(trained["data"], data)
    long_csv = write_long_csv(tmp_path / "long.csv")
    before = snapshot(data, long_csv, run)
    one_error_line(invoke("predict", run, data, "--out", data / "meta.json"), 2, "lies inside the input")
    one_error_line(invoke("predict", run, long_csv, "--out", long_csv), 2, "is the input")
    one_error_line(invoke("predict", run, data, "--out", run / "provenance.json"), 2, "one of the files of")
    notes = tmp_path / "notes.csv"
    notes.write_text("who,what\nme,notes\n")
    one_error_line(invoke("predict", run, data, "--out", notes), 2, "--force")
    one_error_line(invoke("predict", run, data, "--out", notes, "--force"), 2, "not a predictions CSV")
    assert notes.read_text() == "who,what\nme,notes\n" and snapshot(data, long_csv, run) == before
    out = run / "predictions.csv"  # beside the run's own files: fine
    assert invoke("predict", run, data, "--out", out).exit_code == 0
    assert invoke("predict", run, data, "--out", out).exit_code == 2  # exists
    assert invoke("predict", run, data, "--out", out, "--force").exit_code == 0
    out.unlink()


def test_predict_writes_the_csv_to_standard_output(trained):
    result = invoke("predict", trained["run"], trained["data"], "--out", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("id,activity,prob_")
    assert len(result.stdout.splitlines()) == 1 + 5  # the unlabelled split: the classroom's 5 test series


def test_export_never_replaces_the_run(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    before = snapshot(run)
    one_error_line(invoke("export", run, "--format", "saved_model", "--out", run, "--force"), 2, "is the input")
    one_error_line(invoke("export", run, "--format", "litert", "--out", run / "model.keras", "--force"), 2, "")
    assert snapshot(run) == before


def test_compare_never_overwrites_without_force(trained, tmp_path):
    out = tmp_path / "comparison"
    assert invoke("compare", trained["run"], "--out", out).exit_code == 0
    before = snapshot(out)
    one_error_line(invoke("compare", trained["run"], "--out", out), 2, "--force")
    assert snapshot(out) == before
    assert invoke("compare", trained["run"], "--out", out, "--force").exit_code == 0
    one_error_line(invoke("compare", trained["run"], "--out", trained["run"]), 2, "is the input")


# --- exported files and prepared folders are inputs too ----------------------------------------------


def test_a_savedmodel_not_written_by_export_is_never_loaded(trained, tmp_path):
    """A SavedModel whose serve() writes a file: predict refuses it before loading anything."""
    code = (
        "import tensorflow as tf\n"
        "class Evil(tf.Module):\n"
        "    @tf.function(input_signature=[tf.TensorSpec([None, 16, 3], tf.float32)])\n"
        "    def serve(self, x):\n"
        f"        tf.io.write_file({str(tmp_path / 'pwned')!r}, 'x')\n"
        "        return tf.zeros([tf.shape(x)[0], 3])\n"
        f"tf.saved_model.save(Evil(), {str(tmp_path / 'evil')!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    out = tmp_path / "p.csv"
    result = invoke("predict", trained["run"], trained["data"], "--out", out, "--model", tmp_path / "evil")
    one_error_line(result, 1, "is not an export of")
    assert not (tmp_path / "pwned").exists() and not out.exists()


@pytest.mark.parametrize("image", ["/etc/passwd", "../../../outside", "..", "a/b"])
def test_an_image_outside_the_data_dir_is_refused(tmp_path, image):
    source = kaggle_folder(tmp_path / "kaggle", patients=4, with_test=False)
    data = tmp_path / "data"
    prepared = invoke(
        "prepare", "retina", source, "--out", data, "--size", "32", "--workers", "1", "--val-fraction", "0.25"
    )
    assert prepared.exit_code == 0
    table = pd.read_csv(data / "train.csv", dtype=str)
    table.loc[0, "image"] = image
    table.to_csv(data / "train.csv", index=False)
    one_error_line(invoke("train", data, "--out", tmp_path / "run"), 1, "is not a plain file name")
    assert not (tmp_path / "run").exists()


# --- signals and concurrent commands ------------------------------------------------------------------


def test_sigterm_stops_prepare_retina_and_its_workers(tmp_path):
    source = kaggle_folder(tmp_path / "kaggle", patients=60, with_test=False)
    command = [
        *DLTRAIN,
        "prepare",
        "retina",
        str(source),
        "--out",
        str(tmp_path / "data"),
        "--size",
        "256",
        "--workers",
        "2",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 60
    while len(parent.children()) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    workers = parent.children(recursive=True)
    assert workers, "the workers never started"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143, process.stderr.read()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers left running: {alive}"
    assert "terminated" in process.stderr.read()


def test_sigterm_marks_a_training_run_interrupted_and_resumable(trained, tmp_path):
    run = tmp_path / "run"
    command = [
        *DLTRAIN,
        "train",
        str(trained["data"]),
        "--out",
        str(run),
        "--set",
        "train.epochs=500",
        "--set",
        "model.units=4",
        "--set",
        "train.batch_size=8",
        "--set",
        "early_stopping.patience=0",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "last.keras").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    assert "--resume" in process.stderr.read()
    assert json.loads((run / "provenance.json").read_text())["status"] == "interrupted"


def test_a_second_command_on_the_same_output_is_refused(trained, tmp_path):
    from dltrain.core.outputs import output_lock

    out = tmp_path / "data"
    with output_lock(out):  # another dltrain writing `out` at this moment
        one_error_line(invoke("prepare", "har", trained["source"], "--out", out), 2, f"process {os.getpid()}")
        one_error_line(invoke("train", trained["data"], "--out", out, *TINY), 2, "being written by another")
    assert not out.exists()
    stale = tmp_path / ".data.partial-killed"  # the staging folder of a prepare that was killed
    stale.mkdir()
    assert invoke("prepare", "har", trained["source"], "--out", out).exit_code == 0
    assert not stale.exists() and not (tmp_path / ".data.lock").exists()


# --- the machine's errors ---------------------------------------------------------------------------


def test_an_output_below_a_file_is_one_line(trained, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    result = invoke("prepare", "har", trained["source"], "--out", tmp_path / "notes.txt" / "data")
    assert (
        result.exit_code in (1, 2)
        and len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    )
    assert "Traceback" not in result.output and (tmp_path / "notes.txt").read_text() == "x"


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` pixels and holds none: what a decompression bomb looks like to Pillow."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [10_000, 30_000])  # above Pillow's warning limit, and above its error limit
def test_a_decompression_bomb_is_a_rejected_photograph(tmp_path, side):
    source = kaggle_folder(tmp_path / "kaggle", patients=4, with_test=False)
    (source / "train" / "1_left.jpeg").unlink()
    png_header_only(source / "train" / "1_left.png", side, side)
    result = invoke(
        "prepare",
        "retina",
        source,
        "--out",
        tmp_path / "data",
        "--size",
        "32",
        "--workers",
        "1",
        "--val-fraction",
        "0.25",
    )
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output and "DecompressionBomb" not in result.output
    rejects = pd.read_csv(tmp_path / "data" / "rejects.csv")
    assert rejects.set_index("image").loc["1_left", "reason"].startswith("too large")


def test_a_damaged_lab_folder_is_reported_and_the_command_fails(trained, tmp_path):
    lab = tmp_path / "lab"
    runs = lab / "loss" / "runs"
    runs.mkdir(parents=True)
    shutil.copytree(trained["run"], runs / "cross-entropy" / "seed-1")
    (runs / "cross-entropy" / "seed-1" / "provenance.json").write_text("{ damaged")
    shutil.copytree(trained["run"], runs / "MSE" / "seed-1")
    (runs / "MSE" / "seed-1" / "history.csv").write_text("epoch,loss\n0,lots\n")
    result = invoke("lab", "loss", "--data", trained["data"], "--out", lab, "--report-only")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    line = result.stderr.strip().splitlines()[-1]  # the report is written, and the command says it is short
    assert line.startswith("error:") and "lab run(s) under" in line and "missing or damaged" in line, line
    assert "loss/cross-entropy/seed-1" in line and "REPORT.md names them" in line
    report = (lab / "REPORT.md").read_text()
    assert "provenance.json" in report and "history.csv" in report
