"""The `dltrain` command line: a thin layer that checks inputs and calls one library function each.

TensorFlow and Keras are imported only inside the commands that need them, so `--help` is instant.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.markup import escape

from dltrain import __version__
from dltrain.core.console import configure_logging, stderr_console
from dltrain.core.errors import DltrainError

logger = logging.getLogger("dltrain")

app = typer.Typer(
    name="dltrain",
    help="Train, evaluate and submit deep-learning baselines for activity recognition and retinopathy grading.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
prepare_app = typer.Typer(help="Turn raw data into a prepared DATA_DIR (windows or images, splits, meta.json).", no_args_is_help=True)
app.add_typer(prepare_app, name="prepare")

DEFAULT_PRESETS = {"har": "har-gru", "retina": "retina-cnn"}
REGRESSION_EXIT_CODE = 3  # `dltrain reproduce`: a baseline's metric left its band
_state = {"verbose": False}


def user_errors(command: Callable) -> Callable:
    """Turn a DltrainError into one line on stderr and its exit code; --verbose keeps the traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DltrainError as error:
            if _state["verbose"]:
                raise
            # Escaped: messages quote user data, and "[...]" in it must not be read as Rich markup.
            stderr_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            stderr_console.print("interrupted", highlight=False)
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dltrain {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs, TensorFlow messages and full tracebacks.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    _state["verbose"] = verbose
    configure_logging(verbose)


@prepare_app.command("har")
@user_errors
def prepare_har_command(
    source: Annotated[str, typer.Argument(help="'hapt' (real UCI HAPT recordings from a package), a 'UCI HAR Dataset' folder, a folder of class folders of CSV series (optionally under train/ validation/ test/), a long CSV file, or a UEA .ts file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="DATA_DIR to write (meta.json + one .npz per split).")],
    window: Annotated[Optional[int], typer.Option(help="Readings per window (default: 128; whole series for per-file CSV series).")] = None,
    step: Annotated[Optional[int], typer.Option(help="Readings between window starts (default: window/2, 50% overlap).")] = None,
    channels: Annotated[Optional[str], typer.Option(help="'uci' (9: body_acc, body_gyro, total_acc), 'raw' (6: total_acc, body_gyro), or comma-separated channel/column names.")] = None,
    transitions: Annotated[bool, typer.Option(help="hapt: also learn the 6 postural transitions (12 classes).")] = False,
    val_fraction: Annotated[float, typer.Option(help="Share of train subjects (or of the time span, when no subject is known) held out for validation.")] = 0.2,
    test_fraction: Annotated[float, typer.Option(help="Share held out for testing where the source has no test split of its own.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the subject split.")] = 42,
    label_column: Annotated[Optional[str], typer.Option(help="Long CSV: label column (default: label or activity).")] = None,
    time_column: Annotated[Optional[str], typer.Option(help="Long CSV: time column (default: time or timestamp).")] = None,
    subject_column: Annotated[Optional[str], typer.Option(help="Long CSV: subject column (default: subject or user, if present).")] = None,
    pure_windows: Annotated[bool, typer.Option(help="Long CSV: keep only windows with one label throughout (default: the majority label).")] = False,
    sample_rate: Annotated[Optional[float], typer.Option(help="Sampling rate in Hz, recorded in meta.json for CSV sources.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing non-empty DATA_DIR.")] = False,
) -> None:
    """Prepare activity-recognition windows: subject-wise splits, standardisation fitted on train."""
    from dltrain.data.har.prepare import prepare_har
    from dltrain.data.har.types import HarOptions

    options = HarOptions(
        window=window,
        step=step,
        channels=channels,
        transitions=transitions,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        label_column=label_column,
        time_column=time_column,
        subject_column=subject_column,
        pure_windows=pure_windows,
        sample_rate_hz=sample_rate,
    )
    prepare_har(source, out, options, force=force)


@prepare_app.command("retina")
@user_errors
def prepare_retina_command(
    source: Annotated[str, typer.Argument(help="'demo' (a simulated graded set, written in the Kaggle layout first), a Kaggle-layout folder (trainLabels.csv + train/, optional test/), or a course-layout folder (train/<level>/*.jpeg, validation/<level>/*.jpeg).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="DATA_DIR to write (images/, per-split CSVs, rejects.csv, meta.json).")],
    size: Annotated[int, typer.Option(help="Side of the square output images, in pixels.")] = 512,
    graham: Annotated[bool, typer.Option(help="Graham's normalisation (4*img - 4*blur + 128) and a circular mask.")] = False,
    val_fraction: Annotated[float, typer.Option(help="Share of patients held out for validation (both eyes together).")] = 0.2,
    test_fraction: Annotated[float, typer.Option(help="Share of patients held out for testing.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the patient split (and of the demo set).")] = 42,
    workers: Annotated[Optional[int], typer.Option(help="Parallel processes (default: all cores).")] = None,
    patients: Annotated[int, typer.Option(help="demo: simulated training patients (two eyes each).")] = 300,
    test_patients: Annotated[int, typer.Option(help="demo: simulated patients in the unlabelled test/ folder.")] = 20,
    mix: Annotated[str, typer.Option(help="demo: grade mix, 'kaggle' (73.5/7.0/15.1/2.5/2.0 %) or 'balanced'.")] = "kaggle",
    demo_dir: Annotated[Optional[Path], typer.Option(help="demo: where the simulated Kaggle-layout set goes (default: data/raw/retina-demo beside --out).")] = None,
    force: Annotated[bool, typer.Option(help="Replace a DATA_DIR that holds other files or other image options.")] = False,
) -> None:
    """Prepare fundus photographs: crop to the fundus, square, resize; patient-wise splits; rejects listed."""
    import os

    from dltrain.data.retina.images import ImageOptions
    from dltrain.data.retina.prepare import prepare_retina_source

    prepare_retina_source(
        source, out, ImageOptions(size=size, graham=graham), val_fraction, test_fraction, seed, workers or os.cpu_count() or 1, force,
        demo_dir=demo_dir, patients=patients, test_patients=test_patients, mix=mix,
    )


def _default_run_dir(data_dir: Path, config_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("models") / f"{data_dir.name}-{Path(config_name).stem}-{stamp}"


@app.command()
@user_errors
def train(
    data_dir: Annotated[Optional[Path], typer.Argument(help="Prepared DATA_DIR (from 'dltrain prepare'); with --resume, the run's own by default.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="RUN_DIR to write (default: models/<data>-<config>-<time>).")] = None,
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="Preset name (har-gru, retina-cnn) or YAML file (default: the task's preset).")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override one config key, e.g. --set train.epochs=10 (repeatable).")] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the resolved configuration as YAML and exit.")] = False,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue an interrupted RUN_DIR from its last epoch, with its own config, optimizer state and counters.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing non-empty RUN_DIR.")] = False,
    backend: Annotated[str, typer.Option(envvar="KERAS_BACKEND", help="Keras backend: tensorflow, or jax (the jax extra; needed for --distributed).", rich_help_panel="Backend and several hosts")] = "tensorflow",
    distributed: Annotated[bool, typer.Option("--distributed", help="One of several processes (hosts) training together, data-parallel (--backend jax).", rich_help_panel="Backend and several hosts")] = False,
    coordinator: Annotated[Optional[str], typer.Option(envvar="DLTRAIN_COORDINATOR", help="HOST:PORT of process 0, the same for every process.", rich_help_panel="Backend and several hosts")] = None,
    num_processes: Annotated[Optional[int], typer.Option(envvar="DLTRAIN_NUM_PROCESSES", help="How many processes train together.", rich_help_panel="Backend and several hosts")] = None,
    process_id: Annotated[Optional[int], typer.Option(envvar="DLTRAIN_PROCESS_ID", help="This process's number, 0 to N-1; process 0 writes RUN_DIR.", rich_help_panel="Backend and several hosts")] = None,
) -> None:
    """Train a model on DATA_DIR; the best and last model, history and metrics go to RUN_DIR."""
    from dltrain.core.errors import UsageError
    from dltrain.training.multihost import SINGLE_PROCESS, check_process_options, select_backend

    group = SINGLE_PROCESS
    if distributed:
        if backend != "jax":
            raise UsageError("--distributed runs on --backend jax (Keras 3 on TensorFlow has no multi-worker training)")
        if resume is not None:
            raise UsageError("--resume continues single-process runs only; train a --distributed run again")
        group = check_process_options(coordinator, num_processes, process_id)
    select_backend(backend)  # before anything imports Keras
    if resume is not None:
        if config or overrides or out or force or print_config:
            raise UsageError("--resume continues with the run's own config.yaml and folder; --config, --set, --out, --force and --print-config do not apply")
        from dltrain.training.session import resume_run

        _report_run(resume_run(resume, data_dir), resume)
        return
    if data_dir is None:
        raise UsageError("missing DATA_DIR (a folder written by 'dltrain prepare'), or --resume RUN_DIR")
    from dltrain.config.schema import load_config
    from dltrain.data.datadir import read_meta

    meta = read_meta(data_dir)
    config_name = config or DEFAULT_PRESETS.get(meta["task"])
    resolved = load_config(config_name, overrides)
    if print_config:
        typer.echo(resolved.to_yaml(), nl=False)
        return
    run_dir = out or _default_run_dir(data_dir, config_name)
    from dltrain.training.session import train_run

    if group.is_chief:
        _report_run(train_run(data_dir, run_dir, resolved, config_name, force=force, group=group), run_dir)
        return
    # The other processes train in step with process 0 into a folder of their own, then drop it.
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix=f"dltrain-process-{group.process_id}-"))
    try:
        train_run(data_dir, scratch / "run", resolved, config_name, group=group)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("process %d of %d done; process 0 wrote the run", group.process_id, group.num_processes)


def _report_run(provenance: dict, run_dir: Path) -> None:
    summary = ", ".join(
        f"{split} " + ", ".join(f"{name.replace('quadratic_weighted_kappa', 'kappa')} {value:.4f}" for name, value in values.items() if name != "macro_f1")
        for split, values in provenance["metrics"].items()
    )
    logger.info("run complete: %s", summary)
    stderr_console.print(f"run: {run_dir}  (model.keras, last.keras, history.csv, metrics-*.json, *.png)", highlight=False)


@app.command()
@user_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A finished RUN_DIR.")],
    data: Annotated[Optional[Path], typer.Option("--data", help="DATA_DIR to score (default: the run's own).")] = None,
    split: Annotated[str, typer.Option(help="Which split to score: val or test.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")] = False,
    tta: Annotated[bool, typer.Option("--tta", help="Retina: average the predictions over the four flips of each image.")] = False,
) -> None:
    """Score a run: accuracy, macro F1, per-class precision/recall and the confusion matrix."""
    from dltrain.core.errors import UsageError

    if split not in ("val", "test", "train"):
        raise UsageError(f"--split {split!r}: choose val or test (or train)")
    from dltrain.inference.evaluate import confusion_table, evaluate_run, metrics_table

    metrics = evaluate_run(run_dir, data, split, tta)
    if as_json:
        sys.stdout.write(json.dumps(metrics) + "\n")
        return
    from rich.console import Console

    console = Console()
    console.print(metrics_table(metrics))
    console.print(confusion_table(metrics))
    console.print(f"wrote {run_dir}/metrics-{split}.json, confusion-matrix-{split}.png, learning-curves.png", highlight=False)


@app.command()
@user_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A finished RUN_DIR.")],
    source: Annotated[str, typer.Argument(metavar="INPUT", help="Activity: any SOURCE that 'prepare har' reads (labels ignored). Retina: a folder of photographs or one photograph. Either: a prepared DATA_DIR.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write: activity 'id,activity' (+ probabilities); retina 'image,level' (Kaggle submission).")],
    split: Annotated[Optional[str], typer.Option(help="With a DATA_DIR: which split (default: unlabelled if present, else test).")] = None,
    probabilities: Annotated[bool, typer.Option(help="Activity: add prob_<class> columns after id,activity.")] = True,
    tta: Annotated[bool, typer.Option("--tta", help="Retina: average the predictions over the four flips of each image.")] = False,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Score with a file from 'dltrain export' (SavedModel folder, .tflite, .onnx) instead of the run's model.keras.")] = None,
) -> None:
    """Write predictions for INPUT with the run's model and the training normalisation."""
    from dltrain.inference.predict import predict_run

    frame = predict_run(run_dir, source, out, split, probabilities, tta, model)
    counts = frame[frame.columns[1]].value_counts()
    logger.info("wrote %d predictions to %s (%s)", len(frame), out, ", ".join(f"{name} {count}" for name, count in counts.items()))


def _table_width() -> int | None:
    """The terminal's width; in a pipe or a file, wide enough that no column is cut short."""
    return None if sys.stdout.isatty() else 250


@app.command()
@user_errors
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to compare (finished or interrupted).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for comparison.csv and comparison.png (overlaid learning curves).")] = None,
) -> None:
    """Compare runs: the settings that differ, best validation values, epochs, time, test scores."""
    from rich.console import Console

    from dltrain.runs.compare import compare_runs, comparison_table

    frame = compare_runs(run_dirs, out)
    Console(width=_table_width()).print(comparison_table(frame))
    if out is not None:
        stderr_console.print(f"wrote {out}/comparison.csv and {out}/comparison.png", highlight=False)


@app.command()
@user_errors
def sweep(
    data_dir: Annotated[Path, typer.Argument(help="Prepared DATA_DIR (from 'dltrain prepare').")],
    grid: Annotated[list[str], typer.Option("--grid", "-g", help="A key and its values, e.g. --grid optimizer.name=sgd,momentum,adam (repeatable: the product is trained).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for one run per grid point, comparison.csv and comparison.png.")],
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="Preset name or YAML file every run starts from (default: the task's preset).")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a key for every run, e.g. --set train.epochs=5 (repeatable).")] = None,
    force: Annotated[bool, typer.Option(help="Replace run folders under --out that belong to another sweep.")] = False,
) -> None:
    """Train one run per grid point (complete ones are kept, interrupted ones resumed), then compare them."""
    from rich.console import Console

    from dltrain.runs.compare import comparison_table
    from dltrain.data.datadir import read_meta
    from dltrain.core.errors import DataError
    from dltrain.runs.sweep import parse_grid
    from dltrain.runs.sweep import sweep as run_sweep

    config_name = config or DEFAULT_PRESETS.get(read_meta(data_dir)["task"])
    frame, failures = run_sweep(data_dir, config_name, parse_grid(grid), overrides or [], out, force)
    if frame is not None:
        Console(width=_table_width()).print(comparison_table(frame))
        stderr_console.print(f"wrote {out}/comparison.csv and {out}/comparison.png", highlight=False)
    if failures:
        raise DataError(f"{len(failures)} of the sweep's runs failed: " + "; ".join(f"{name}: {message}" for name, message in failures))


@app.command()
@user_errors
def reproduce(
    names: Annotated[Optional[list[str]], typer.Argument(help="Baselines to re-run (see baselines.yaml: har-gru, retina-cnn).")] = None,
    all_baselines: Annotated[bool, typer.Option("--all", help="Re-run every baseline.")] = False,
    budget: Annotated[str, typer.Option(help="'ci' (minutes, a wide band) or 'full' (the preset's budget, the real band).")] = "ci",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for each baseline's data and run.")] = Path("models/reproduce"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON list on stdout.")] = False,
    backend: Annotated[str, typer.Option(envvar="KERAS_BACKEND", help="Keras backend to train on: tensorflow or jax (the jax extra).")] = "tensorflow",
) -> None:
    """Re-run baselines from scratch (prepare, train with deterministic ops, score); exit 3 if one left its band."""
    from dltrain.core.errors import UsageError
    from dltrain.training.multihost import select_backend

    select_backend(backend)  # before anything imports Keras
    from dltrain.runs.reproduce import load_baselines, reproduce as run_reproduce, results_table

    if all_baselines == bool(names):
        raise UsageError(f"name the baselines to re-run or pass --all (baselines: {', '.join(load_baselines())})")
    rows = run_reproduce(list(load_baselines()) if all_baselines else list(names), budget, out)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        from rich.console import Console

        Console(width=_table_width()).print(results_table(rows))
    regressions = [row["baseline"] for row in rows if row["status"] != "ok"]
    if regressions:
        stderr_console.print(f"[bold red]error:[/] {escape(', '.join(regressions))} left the expected band", highlight=False)
        raise typer.Exit(REGRESSION_EXIT_CODE)


@app.command()
@user_errors
def lab(
    experiments: Annotated[Optional[list[str]], typer.Argument(help="Experiments to run: init, loss, optimizers, schedules, regularization, batch-size (default: all, in the lecture's order).")] = None,
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared activity DATA_DIR, e.g. from 'dltrain prepare har hapt'.")] = Path("data/hapt"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for each experiment's runs, table and figure, and REPORT.md.")] = Path("models/lab"),
    budget: Annotated[str, typer.Option(help="'quick' (6 epochs a run, about 15 minutes for all on 2 CPU cores) or 'full' (20 epochs).")] = "quick",
    overrides: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a key in every run, e.g. --set train.seed=1 (repeatable).")] = None,
    force: Annotated[bool, typer.Option(help="Replace run folders under --out that hold other runs.")] = False,
    report_only: Annotated[bool, typer.Option(help="Train nothing: rebuild REPORT.md, tables and figures from the runs already under --out.")] = False,
) -> None:
    """The lecture's claims on your data: one small grid per technique, a figure, a table and generated statements in REPORT.md."""
    from dltrain.lab.runner import run_lab

    report = run_lab(data, out, experiments or [], budget, overrides or [], force, report_only)
    stderr_console.print(f"wrote {report} (figures beside it, one folder per experiment)", highlight=False)


@app.command()
@user_errors
def export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (from 'dltrain train').")],
    export_format: Annotated[str, typer.Option("--format", "-f", help="saved_model (TF Serving), litert (TensorFlow Lite, batch of one) or onnx (needs the 'onnx' extra).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write: a folder for saved_model, a .tflite or .onnx file otherwise.")],
    quantize: Annotated[str, typer.Option(help="litert only: none, float16 or dynamic (8-bit weights, dynamic range).")] = "none",
    tolerance: Annotated[Optional[float], typer.Option(help="Largest probability difference to the Keras model allowed on the check samples (default: 1e-4; float16 1e-2; dynamic 5e-2).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Export a run's model and check it on the spot against the Keras model on 32 validation samples."""
    from dltrain.inference.export import export_run

    check = export_run(run_dir, export_format, out, quantize, tolerance, force)
    print(f"wrote {check.path} ({check.format}{', ' + check.quantization + ' quantisation' if check.quantization != 'none' else ''})")
    print(f"check on {check.samples} validation samples: largest probability difference {check.max_difference:.2e}, classes agree {check.agreement:.1%}")
    if check.accuracy:
        print(f"validation accuracy: Keras {check.accuracy['keras']:.4f}, export {check.accuracy['exported']:.4f}")
