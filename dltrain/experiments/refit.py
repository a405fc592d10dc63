"""`dltrain refit`: the final model of a choice already made. Once a run (or a cross-validation)
has chosen how many epochs to train, one new run trains that many epochs on the train and
validation splits together, with its source's config and nothing chosen on the validation split it
now learns from: no early stopping, the last epoch kept, and a plateau schedule replaced by the
rates the source run recorded in each epoch. Both tasks refit alike (`train.fit_on=train+val`)."""

from __future__ import annotations

import logging
from pathlib import Path

from dltrain.config.loading import load_config
from dltrain.core.errors import DataError, UsageError
from dltrain.core.outputs import RUN_DIR, check_output
from dltrain.data.datadir import DataDir
from dltrain.runs.provenance import Provenance, RefitRecord
from dltrain.runs.rundir import CONFIG_FILE, HISTORY_FILE, Run

logger = logging.getLogger("dltrain")

KEPT_EPOCH = "the run's kept epoch"
GIVEN_EPOCHS = "--epochs"


def refit_epochs(run: Run, epochs: int | None) -> tuple[int, str]:
    """How many epochs the final model trains, and what chose them."""
    if epochs is not None:
        if epochs < 1:
            raise UsageError(f"--epochs {epochs}: give at least 1")
        return epochs, GIVEN_EPOCHS
    kept = run.provenance.best_epoch
    if kept is None:
        raise UsageError(f"{run.path} records no kept epoch; give the number with --epochs")
    return kept, KEPT_EPOCH


def refit_settings(run: Run, epochs: int) -> list[str]:
    """`--set` values that turn the run's config into its final model's."""
    settings = [
        f"train.epochs={epochs}",
        "train.fit_on=train+val",
        "early_stopping.patience=0",
        "early_stopping.restore_best=false",
    ]
    if run.config.schedule.name == "plateau":  # its cuts followed validation: replay them as they fell
        history = run.history()
        if "learning_rate" not in history.columns or history.empty:
            raise DataError(f"{run.path / HISTORY_FILE} records no learning rates to replay the plateau cuts from")
        # A frozen backbone's epochs ran at their own rate; the schedule starts when the backbone is unfrozen.
        frozen = run.config.train.freeze_backbone_epochs
        rates = [float(rate) for rate in history["learning_rate"].iloc[frozen:epochs]] or [
            float(history["learning_rate"].iloc[-1])
        ]
        settings += ["schedule.name=recorded", f"schedule.rates=[{', '.join(repr(rate) for rate in rates)}]"]
    return settings


def refit(run_dir: Path, out: Path, epochs: int | None = None, data_dir: Path | None = None, force: bool = False):
    """Train the final model of `run_dir` into `out`; returns its provenance."""
    from dltrain.training.session import train_run

    run = Run.open(run_dir)
    if run.provenance.ensemble_of:
        raise UsageError(
            f"{run.path} is an ensemble, which trained nothing itself: refit its members, then ensemble those"
        )
    if "val" in run.provenance.fitted_on:
        raise UsageError(f"{run.path} trained on train and val already: refit the run it came from")
    count, chosen_by = refit_epochs(run, epochs)
    data = DataDir.open(Path(data_dir) if data_dir is not None else run.data_dir)
    run.check_trained_on(data.meta, data.path, "refit")
    check_output(out, RUN_DIR, force, inputs=[data.path, run.path])  # the source run is an input, never replaced
    config = load_config(str(run.path / CONFIG_FILE), refit_settings(run, count))
    origin = RefitRecord(run=str(run.path.resolve()), epochs=count, chosen_by=chosen_by)
    logger.info("refitting %s: %d epochs (%s) on train and val together", run.path, count, chosen_by)
    provenance: Provenance = train_run(data, out, config, f"refit of {run.path}", force=force, refit_of=origin)
    return provenance
