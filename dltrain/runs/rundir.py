"""The run directory: everything that explains and reproduces one training run.

    config.yaml        resolved configuration, written before training starts
    provenance.json    status, versions, git commit, seed, device, precision, XLA, and the DATA_DIR
                       with its meta.json (classes, channels, normalisation) that predict relies on
    model.keras        best model by validation (Keras format, loaded with safe_mode=True)
    last.keras         the latest epoch with optimizer state and what --resume needs
    history.csv        one row per epoch (losses, metrics, learning rate)
    metrics-<split>.json, confusion-matrix-<split>.png, learning-curves.png
    tensorboard/       TensorBoard logs, with train.tensorboard: true
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from dltrain.config.schema import Config
from dltrain.core.errors import DataError

CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"
MODEL_FILE = "model.keras"
LAST_MODEL_FILE = "last.keras"
TENSORBOARD_FOLDER = "tensorboard"
HISTORY_FILE = "history.csv"
STATUS_COMPLETE = "complete"


def git_commit() -> str | None:
    """The commit of the dltrain source tree, if it is a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def software_versions() -> dict:
    import keras
    import numpy
    import tensorflow

    from dltrain import __version__

    return {
        "dltrain": __version__,
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def prepare_run_folder(run_dir: Path, force: bool) -> None:
    """Create an empty run folder; with --force an existing one is replaced."""
    if run_dir.exists() and force:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


@dataclass
class Run:
    path: Path
    config: Config
    provenance: dict

    @property
    def data_meta(self) -> dict:
        return self.provenance["data"]["meta"]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def data_dir(self) -> Path:
        return Path(self.provenance["data"]["path"])

    def load_model(self):
        from dltrain.core.console import import_tensorflow_quietly

        import_tensorflow_quietly()
        import keras

        try:
            # compile=False: scoring needs no optimizer, and skipping it avoids rebuilding one.
            model = keras.saving.load_model(self.model_path, safe_mode=True, compile=False)
        except Exception as error:  # Keras raises many types for a damaged archive
            raise DataError(f"{self.model_path} cannot be loaded ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
        self._check_fits(model)
        return model

    def _check_fits(self, model) -> None:
        """A model.keras copied in from another run would fail deep inside Keras; say so here."""
        expected_inputs = tuple(self.data_meta["input_shape"])
        expected_outputs = 1 if self.config.model.head == "regression" else len(self.data_meta["classes"])
        inputs, outputs = tuple(model.input_shape[1:]), model.output_shape[-1]
        if inputs != expected_inputs or outputs != expected_outputs:
            raise DataError(
                f"{self.model_path} takes inputs {list(inputs)} and gives {outputs} output(s), but this run's data has inputs "
                f"{list(expected_inputs)} and needs {expected_outputs}: the file belongs to another run"
            )


def read_run_files(run_dir: Path) -> tuple[Config, dict]:
    """config.yaml and provenance.json of a run folder, finished or not."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    missing = [name for name in (CONFIG_FILE, PROVENANCE_FILE) if not (run_dir / name).is_file()]
    if missing:
        raise DataError(f"{run_dir} is not a dltrain run (missing {', '.join(missing)})")
    try:
        provenance = json.loads((run_dir / PROVENANCE_FILE).read_text())
        config = Config.model_validate(yaml.safe_load((run_dir / CONFIG_FILE).read_text()))
    except Exception as error:
        raise DataError(f"{run_dir}: damaged run files ({type(error).__name__})") from None
    if not isinstance(provenance, dict):
        raise DataError(f"{run_dir}: damaged run files ({PROVENANCE_FILE} is not an object)")
    return config, provenance


def open_run(run_dir: Path) -> Run:
    """A finished run, or a DataError saying why the folder is not one."""
    run_dir = Path(run_dir)
    config, provenance = read_run_files(run_dir)
    if not isinstance(provenance.get("data", {}).get("meta", {}).get("classes"), list):
        raise DataError(f"{run_dir}: {PROVENANCE_FILE} lacks the data description; train again")
    if provenance.get("status") != STATUS_COMPLETE:
        raise DataError(f"{run_dir}: training did not finish (status {provenance.get('status')!r}); train again")
    if not (run_dir / MODEL_FILE).is_file():
        raise DataError(f"{run_dir}: no {MODEL_FILE}")
    return Run(run_dir, config, provenance)
