"""What a new user meets first: help screens, `config keys|show`, `--version`, `env`, `runs`,
inputs said plainly (`hapt`, swapped arguments, a missing option), and the figures of a run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from helpers.cli import command_paths, invoke
from helpers.data import write_classroom_folder
from rich.console import Console
from typer.testing import CliRunner

from dltrain.cli.app import app
from dltrain.config.keys import config_keys, keys_table
from dltrain.config.loading import valid_keys
from dltrain.runs.listing import find_runs, runs_table

WIDE = {"COLUMNS": "200"}  # help screens unwrapped, to read the choices in one piece


@pytest.fixture(scope="module")
def har_run(activity_run):
    return activity_run["run"]  # conftest's tiny run, this module's own copy


@pytest.fixture(scope="module")
def har_data(activity_run):
    return activity_run["data"]  # the DATA_DIR that run was trained on


def one_error_line(result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:") and sum(line.startswith("error:") for line in lines) == 1, lines
    assert "Traceback" not in result.output
    return lines[-1]


# ---------------------------------------------------------------------------------------------
# help screens
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(command_paths()), ids=" ".join)
def test_every_help_screen_names_its_placeholders_and_ends_with_examples(path):
    result = invoke(*path, "-h")
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    placeholders = re.findall(r"[{\[]([^\]}]+)[}\]]", usage.split(" ".join(path), 1)[1])
    assert all(name.rstrip(".") == name.rstrip(".").upper() for name in placeholders), usage  # no {run_dir}
    assert "--verbose" in result.stdout  # accepted after the command too
    examples = result.stdout.split("Examples", 1)[1].splitlines()
    assert 1 <= sum(line.strip().startswith(f"dltrain {' '.join(path)}") for line in examples) <= 3


@pytest.mark.parametrize("columns", [80, 120])
def test_every_help_fits_its_terminal_and_no_flag_shows_a_value_placeholder(columns):
    for path in [(), *command_paths()]:
        text = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(columns)}).stdout
        assert "<bool>" not in text, path  # a flag takes no value
        assert max(len(line) for line in text.splitlines()) <= columns, path
        command = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        # A line break inside a paragraph of a docstring is kept by the help: it breaks mid-sentence
        assert all("\n" not in paragraph.strip() for paragraph in (command.help or "").split("\n\n")), path
    listing = CliRunner().invoke(app, ["--help"], env={"COLUMNS": str(columns)}).stdout
    described = " ".join(line.strip("│ ") for line in listing.split("Commands", 1)[1].splitlines())
    assert "epochs and time, in the order given." in " ".join(described.split())
    assert "exit 3 if one left its band." in " ".join(described.split())
    assert re.search(r"--verbose\s+-v\s+Debug logs", listing)


def test_the_positional_placeholders_read_the_same_everywhere():
    usages = {path: invoke(*path, "-h").stdout for path in command_paths()}
    usage = lambda path: next(line for line in usages[path].splitlines() if "Usage:" in line)  # noqa: E731
    assert "{RUN_DIR} {INPUT}" in usage(("predict",))
    assert "[DATA_DIR]" in usage(("train",)) and "{DATA_DIR}" in usage(("sweep",))
    for path in [("evaluate",), ("blend",), ("export",)]:
        assert "{RUN_DIR}" in usage(path)
    assert "{SOURCE}" in usage(("prepare", "har")) and "{SOURCE}" in usage(("prepare", "retina"))


@pytest.mark.parametrize(
    "path, choices",
    [
        (("evaluate",), "<val|test|train>"),
        (("predict",), "<unlabelled|test|val|train>"),
        (("predict",), "Retina runs: flips"),  # --tta MODE: the modes are the run's task's, checked against it
        (("reproduce",), "<ci|full>"),
        (("reproduce",), "<tensorflow|jax>"),
        (("lab",), "<quick|full>"),
        (("lab",), "init|loss|optimizers|schedules|regularization|batch-size"),
        (("export",), "<saved_model|litert|onnx>"),
        (("export",), "<none|float16|dynamic>"),
        (("prepare", "retina"), "<kaggle|balanced>"),
        (("train",), "<tensorflow|jax>"),
        (("config", "keys"), "<backbone|cnn|gru|inception|resnet1d>"),
    ],
)
def test_options_with_a_fixed_set_of_values_show_them(path, choices):
    result = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert choices in result.stdout


def test_prepare_comes_first_and_its_source_specific_options_have_panels():
    listed = re.findall(r"^│ (\w+) ", invoke("--help").stdout, flags=re.MULTILINE)
    assert listed[:4] == ["prepare", "train", "evaluate", "predict"]
    har = CliRunner().invoke(app, ["prepare", "har", "-h"], env=WIDE).stdout
    long_csv = har.split("Long CSV SOURCE only", 1)[1]
    assert (
        "--label-column" in long_csv and "--pure-windows" in long_csv and "--label-column" not in har.split("Long")[0]
    )
    retina = CliRunner().invoke(app, ["prepare", "retina", "-h"], env=WIDE).stdout
    demo = retina.split("demo SOURCE only", 1)[1]
    assert "--patients" in demo and "--mix" in demo and "--patients" not in retina.split("demo SOURCE only")[0]


def test_verbose_after_the_command_is_the_same_as_before_it(tmp_path):
    (tmp_path / "not-a-run").mkdir()
    quiet = invoke("runs", tmp_path)
    assert quiet.exit_code == 0 and "not-a-run" not in quiet.stderr
    for arguments in (["runs", tmp_path, "--verbose"], ["--verbose", "runs", tmp_path], ["runs", "-v", tmp_path]):
        result = invoke(*arguments)
        assert result.exit_code == 0 and "not-a-run" in result.stderr and "DEBUG" in result.stderr, arguments
    # --verbose keeps the traceback of an error, wherever it is given
    assert isinstance(invoke("evaluate", tmp_path / "absent", "--verbose").exception, Exception)
    assert invoke("evaluate", tmp_path / "absent").exit_code == 1


def test_split_validation_is_val(har_run):
    result = invoke("evaluate", har_run, "--split", "validation", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["split"] == "val"
    assert "'everything' is not a split" in one_error_line(invoke("evaluate", har_run, "--split", "everything"), 2)


def test_shell_completion_is_offered_and_completes_choices():
    assert "--install-completion" in invoke("--help").stdout
    # Typer detects the user's shell from the process tree (CI runs under sh, which it does not support); this
    # variable, read when the app is built (so in a fresh process), makes --show-completion take the shell's name.
    environment = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    script = subprocess.run(
        [sys.executable, "-m", "dltrain", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert script.returncode == 0 and "_DLTRAIN_COMPLETE" in script.stdout, script.stdout + script.stderr
    completion = {"_DLTRAIN_COMPLETE": "complete_bash", "COMP_WORDS": "dltrain export run --format ", "COMP_CWORD": "4"}
    offered = CliRunner().invoke(app, [], env=completion, prog_name="dltrain")
    assert offered.stdout.split() == ["saved_model", "litert", "onnx"]


# ---------------------------------------------------------------------------------------------
# config keys | show
# ---------------------------------------------------------------------------------------------


def test_every_config_key_has_a_description():
    rows = config_keys()
    assert {row.key for row in rows} == set(valid_keys())
    assert not [row.key for row in rows if not row.description]


def test_config_keys_lists_type_default_values_and_description():
    result = invoke("config", "keys")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) == set(valid_keys())
    assert re.match(r"schedule\.name\s+choice\s+constant\s+constant, step, exponential", lines["schedule.name"])
    dropouts = [line for line in result.stdout.splitlines() if line.startswith("model.dropout ")]
    assert any("0.0 <= x < 1.0" in line and "(backbone, cnn, gru) dropout between layers" in line for line in dropouts)
    assert any("(inception, resnet1d) dropout before the head" in line for line in dropouts)  # defaults differ
    assert "sgd" in lines["optimizer.name"] and "auto, true, false" in lines["train.mixed_precision"]
    assert "(gru) units per recurrent layer" in lines["model.units"]  # a key of some models names them
    cnn = json.loads(invoke("config", "keys", "--model", "cnn", "--json").stdout)
    keys = {row["key"]: row for row in cnn}
    assert "model.stem_filters" in keys and "model.units" not in keys and "train.epochs" in keys
    assert keys["model.name"]["default"] == "cnn" and keys["model.head"]["allowed"] == "classification, regression"
    table = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    table.print(keys_table(config_keys("gru"), every_model=False))
    assert "model.recurrent_dropout" in table.export_text()


def test_config_show_resolves_a_preset_without_data_like_print_config(data_dir, tmp_path):
    shown = invoke("config", "show", "har-gru", "--set", "train.epochs=3", "--set", "model.units=16")
    assert shown.exit_code == 0, shown.output
    config = yaml.safe_load(shown.stdout)
    assert config["train"]["epochs"] == 3 and config["model"]["units"] == 16
    printed = invoke("train", data_dir, "--set", "train.epochs=3", "--set", "model.units=16", "--print-config")
    assert printed.exit_code == 0 and yaml.safe_load(printed.stdout) == config
    own = tmp_path / "mine.yaml"
    own.write_text("train: {epochs: 7}\n")
    assert yaml.safe_load(invoke("config", "show", own).stdout)["train"]["epochs"] == 7
    assert "har-gru, har-inception, har-resnet1d, retina-512, retina-cnn" in one_error_line(invoke("config", "show"), 2)
    unknown = one_error_line(invoke("config", "show", "har-gru", "--set", "train.epoch=3"), 2)
    assert "did you mean train.epochs" in unknown and "'dltrain config keys' lists every key" in unknown


# ---------------------------------------------------------------------------------------------
# --version, env
# ---------------------------------------------------------------------------------------------


def test_version_names_the_software_and_gpus_without_starting_tensorflow():
    code = (
        "import sys; from typer.testing import CliRunner; from dltrain.cli.app import app\n"
        "result = CliRunner().invoke(app, ['--version'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'\n"
        "print(result.stdout)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    names = [line.split()[0] for line in output.splitlines() if line.strip()]
    assert names == ["dltrain", "python", "tensorflow", "keras", "gpus"]
    assert "(backend " in output


def test_env_reports_the_machine_for_a_bug_report():
    report = json.loads(invoke("env", "--json").stdout)
    assert {"dltrain", "python", "tensorflow", "keras", "keras_backend", "gpus", "platform", "cpu", "memory"} <= set(
        report
    )
    assert report["cpu_cores_usable"] >= 1 and isinstance(report["tensorflow_gpus"]["gpus"], list)
    assert report["auto"]["retina-cnn"] == {
        "precision": "float32", "xla": False, "augmentation": "pipeline", "strategy": "default", "replicas": 1
    }  # fmt: skip
    assert report["auto"]["har-gru"]["augmentation"] == "model"  # the signals' augmentation is a layer on any machine
    text = invoke("env").stdout
    for name in ("gpus (driver)", "gpus (tensorflow)", "platform", "cpu", "memory", "auto (har-gru)"):
        assert re.search(rf"^{re.escape(name)}\s", text, flags=re.MULTILINE), name


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------


def test_runs_lists_the_runs_and_counts_what_is_not_one(har_run, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(har_run, models / "complete-run")
    interrupted = shutil.copytree(har_run, models / "sweep" / "stopped-run")
    provenance = json.loads((interrupted / "provenance.json").read_text())
    (interrupted / "provenance.json").write_text(json.dumps({**provenance, "status": "interrupted", "metrics": {}}))
    (interrupted / "metrics-test.json").unlink(missing_ok=True)
    (models / "notes").mkdir()
    (models / "broken").mkdir()
    (models / "broken" / "config.yaml").write_text("model: [")
    result = invoke("runs", models, "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    rows = {row["name"]: row for row in listing["runs"]}
    assert set(rows) == {"complete-run", "sweep/stopped-run"} and listing["skipped"] == 2
    assert rows["complete-run"]["status"] == "complete" and rows["complete-run"]["task"] == "har"
    assert rows["complete-run"]["config"] == "har-gru" and rows["complete-run"]["validation"]["metric"] == "accuracy"
    assert rows["sweep/stopped-run"]["status"] == "interrupted" and rows["sweep/stopped-run"]["validation"]  # history
    assert rows["sweep/stopped-run"]["test"] is None
    text = invoke("runs", models)
    assert text.stdout.splitlines()[0].split() == ["run", "task", "config", "status", "validation", "test", "date"]
    assert "skipped 2 folder(s)" in text.stderr
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(runs_table(find_runs(models), 80))
    rendered = console.export_text()
    assert max(len(line) for line in rendered.splitlines()) <= 80
    written = date.fromtimestamp((models / "complete-run" / "provenance.json").stat().st_mtime)
    for cell in ("interrupted", "complete", "har-gru", "acc 0.", str(written)):  # whole, not cut
        assert cell in rendered, cell
    assert "sweep/stopped-run" in "".join(line.split()[0] for line in rendered.splitlines()[2:] if line[0] != " ")
    assert "no such folder" in one_error_line(invoke("runs", tmp_path / "absent"), 1)


# ---------------------------------------------------------------------------------------------
# inputs said plainly
# ---------------------------------------------------------------------------------------------


def test_hapt_is_always_the_packages_recordings_and_a_folder_of_that_name_is_dot_slash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_classroom_folder(tmp_path / "hapt", per_class=(6, 3), with_test=False)
    package = invoke("prepare", "har", "hapt", "--out", "data/package", "--step", "512")
    assert package.exit_code == 0, package.output
    assert "SOURCE hapt: the UCI HAPT recordings of an installed package (not the folder hapt here" in package.stderr
    assert json.loads((tmp_path / "data/package/meta.json").read_text())["source"]["kind"] == "hapt"
    assert "next: dltrain train data/package" in package.stderr
    folder = invoke("prepare", "har", "./hapt", "--out", "data/folder")
    assert folder.exit_code == 0, folder.output
    assert "SOURCE ./hapt: a folder of CSV series" in folder.stderr
    assert json.loads((tmp_path / "data/folder/meta.json").read_text())["classes"] == ["a01", "a02", "a03"]
    assert "dltrain prepare har hapt --out data/hapt" in one_error_line(invoke("train", "hapt"), 1)


def test_swapped_and_missing_arguments_name_the_fix(har_run, tmp_path):
    swapped = one_error_line(invoke("predict", "hapt", har_run, "--out", tmp_path / "p.csv"), 2)
    assert f"dltrain predict {har_run} hapt --out FILE.csv" in swapped
    assert "is an INPUT, not a RUN_DIR" in one_error_line(invoke("predict", "hapt", "models/x", "--out", "p.csv"), 2)
    assert "dltrain prepare har hapt --out DATA_DIR" in one_error_line(invoke("prepare", "hapt"), 2)
    assert "dltrain prepare retina demo --out DATA_DIR" in one_error_line(invoke("prepare", "demo"), 2)
    missing = one_error_line(invoke("prepare", "har", "hapt"), 2)
    assert "missing --out; for example: dltrain prepare har hapt --out data/hapt" in missing
    missing = one_error_line(invoke("predict", har_run, "hapt"), 2)
    assert "missing --out; for example: dltrain predict" in missing
    assert "missing RUN_DIR; for example: dltrain evaluate" in one_error_line(invoke("evaluate"), 2)
    assert not (tmp_path / "p.csv").exists()


def test_evaluate_of_an_unfinished_run_says_how_to_continue_it(har_run, tmp_path):
    for status in ("interrupted", "running"):
        run = shutil.copytree(har_run, tmp_path / status)
        provenance = json.loads((run / "provenance.json").read_text())
        (run / "provenance.json").write_text(json.dumps({**provenance, "status": status}))
        line = one_error_line(invoke("evaluate", run, "--split", "val"), 1)
        assert f"dltrain train --resume {run}" in line


def test_prepare_predict_and_evaluate_log_the_input_they_resolved(har_run, har_data, tmp_path):
    source = write_classroom_folder(tmp_path / "classroom", per_class=(4, 2))
    result = invoke("predict", har_run, source / "test", "--out", tmp_path / "p.csv")
    assert result.exit_code == 0 and f"SOURCE {source / 'test'}: a folder of CSV series" in result.stderr
    result = invoke("predict", har_run, har_data, "--split", "val", "--out", tmp_path / "q.csv")
    assert result.exit_code == 0 and f"INPUT {har_data}: the val split of a prepared DATA_DIR" in result.stderr
    result = invoke("evaluate", har_run, "--split", "val")
    assert result.exit_code == 0 and "on the val split of the run's own DATA_DIR" in result.stderr


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def test_the_figures_name_the_run_and_mark_the_kept_epoch(har_run, tmp_path):
    from dltrain.reporting.figures import curve_panels, plot_confusion_matrix, plot_learning_curves
    from dltrain.runs.evaluation import curves_title
    from dltrain.runs.rundir import Run

    run = Run.open(har_run)
    assert run.provenance.best_epoch is not None
    assert curves_title(run) == f"{har_run.name}: preset har-gru, kept epoch {run.provenance.best_epoch} of 2"
    history = pd.read_csv(har_run / "history.csv")
    assert curve_panels(history) == ["loss", "accuracy", "learning_rate"]
    history["learning_rate"] = [0.0, 1e-3]  # a warm-up from 0: no log scale
    assert plot_learning_curves(history, tmp_path / "curves.png", "title", kept_epoch=2)
    metrics = json.loads((har_run / "metrics-val.json").read_text())
    metrics["classes"] = [f"a_rather_long_class_name_{index}" for index in range(3)]  # slanted, not overlapping
    plot_confusion_matrix(metrics, tmp_path / "matrix.png", "title")
    assert (tmp_path / "curves.png").stat().st_size > 10_000 and (tmp_path / "matrix.png").stat().st_size > 10_000


def test_a_one_epoch_run_gets_whole_epoch_ticks_and_visible_points():
    from dltrain.reporting.figures import learning_curves_figure, pyplot

    history = pd.DataFrame({"epoch": [0], "loss": [0.5], "val_loss": [0.6], "accuracy": [0.8], "val_accuracy": [0.7]})
    figure = learning_curves_figure(history, "one epoch", kept_epoch=1)
    for axes in figure.axes:
        assert list(axes.get_xticks()) == [1]
        assert all(line.get_marker() == "o" for line in axes.get_lines() if len(line.get_xdata()) == 1)
    pyplot().close(figure)
    longer = pd.DataFrame({"epoch": range(40), "loss": np.linspace(1, 0.1, 40), "val_loss": np.linspace(1, 0.2, 40)})
    figure = learning_curves_figure(longer, "forty epochs", kept_epoch=30)
    assert all(float(tick).is_integer() for tick in figure.axes[0].get_xticks())
    pyplot().close(figure)


def test_lab_report_only_reports_the_experiments_that_were_run(tmp_path):
    line = one_error_line(invoke("lab", "--report-only", "--out", tmp_path / "lab"), 1)
    assert "no lab runs to report on" in line
