"""Commands that tell rather than train: `config keys|show`, `runs`, `env` and `--version`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dltrain.cli.common import examples, user_errors
from dltrain.config.presets import preset_names
from dltrain.core.console import stderr_console
from dltrain.networks import MODELS

CONFIG_KEYS_EXAMPLES = examples("dltrain config keys", "dltrain config keys --model cnn --json")
CONFIG_SHOW_EXAMPLES = examples(
    "dltrain config show har-gru", "dltrain config show retina-cnn --set model.name=backbone --set train.epochs=5"
)
RUNS_EXAMPLES = examples("dltrain runs", "dltrain runs models/sweep --json")
ENV_EXAMPLES = examples("dltrain env", "dltrain env --json")

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="<" + "|".join(MODELS.names()) + ">",
        help="Only this model's keys in the model section (default: every model's).",
    ),
]
AsJsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
PresetArgument = Annotated[
    str | None,
    typer.Argument(metavar="PRESET|FILE", help=f"A preset ({', '.join(preset_names())}) or a YAML config file."),
]
OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override one config key, e.g. --set train.epochs=10 (repeatable)."),
]
FolderArgument = Annotated[
    Path, typer.Argument(metavar="FOLDER", help="Where to look for run folders (and in its subfolders).")
]


@user_errors
def config_keys(model: ModelOption = None, as_json: AsJsonOption = False) -> None:
    """Every config key --set and YAML files take: type, default, allowed values, description."""
    from dltrain.config.keys import config_keys as keys_of
    from dltrain.config.keys import keys_table, keys_text

    rows = keys_of(model)
    if as_json:
        sys.stdout.write(json.dumps([row.as_dict() for row in rows], indent=1) + "\n")
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(keys_table(rows, every_model=model is None))
    else:
        sys.stdout.write(keys_text(rows, every_model=model is None))


@user_errors
def config_show(preset: PresetArgument = None, overrides: OverridesOption = None) -> None:
    """Print a preset or YAML file as the resolved config (defaults < file < --set), as YAML; no DATA_DIR needed."""
    from dltrain.config.loading import load_config, preset_names
    from dltrain.core.errors import UsageError

    if preset is None:
        raise UsageError(f"name a preset ({', '.join(preset_names())}) or a YAML config file")
    typer.echo(load_config(preset, overrides or []).to_yaml(), nl=False)


@user_errors
def runs(folder: FolderArgument = Path("models"), as_json: AsJsonOption = False) -> None:
    """The runs under FOLDER: task, config, status, validation and test metric, date (newest first)."""
    from dltrain.runs.listing import find_runs, runs_table, runs_text

    listing = find_runs(folder)
    if as_json:
        payload = {"runs": [row.as_dict() for row in listing.rows], "skipped": len(listing.skipped)}
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    if not listing.rows:
        stderr_console.print(f"no dltrain run under {folder}", highlight=False)
    elif sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        console.print(runs_table(listing, console.width))
    else:
        sys.stdout.write(runs_text(listing))
    if listing.skipped:
        stderr_console.print(
            f"skipped {len(listing.skipped)} folder(s) that are not dltrain runs (--verbose names them)",
            highlight=False,
        )


@user_errors
def env(as_json: AsJsonOption = False) -> None:
    """For bug reports: versions, Keras backend, GPUs (driver's and TensorFlow's view), platform, CPU, memory."""
    from dltrain.core.environment import aligned, environment_report, environment_rows

    report = environment_report()
    report["auto"] = auto_settings(report["keras_backend"])
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        rows = environment_rows(report)
        for preset, chosen in report["auto"].items():
            rows.append((f"auto ({preset})", ", ".join(f"{key} {value}" for key, value in chosen.items())))
        sys.stdout.write(aligned(rows))


def auto_settings(backend: str) -> dict:
    """What `auto` becomes on this machine for each task's preset (training.resolution)."""
    from dltrain.config.loading import load_config
    from dltrain.tasks import TASKS
    from dltrain.training.devices import resolve_here

    chosen = {}
    for name in TASKS.names():
        task = TASKS.get(name)
        resolution = resolve_here(load_config(task.preset, []), backend, task).describe()
        chosen[task.preset] = {
            key: resolution[key] for key in ("precision", "xla", "augmentation", "strategy", "replicas")
        }
    return chosen


def show_version(value: bool) -> None:
    """`dltrain --version`: without starting TensorFlow (package metadata and the NVIDIA driver's list)."""
    if value:
        from dltrain.core.environment import aligned, version_report, version_rows

        sys.stdout.write(aligned(version_rows(version_report())))
        raise typer.Exit()
