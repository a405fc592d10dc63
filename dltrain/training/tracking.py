"""Optional MLflow tracking (`train.tracking: mlflow`): one MLflow run per dltrain run.

Parameters are the resolved config (`section.key`), metrics are Keras's epoch logs (step = epoch
index, so a resumed run continues the same curves), the validation/test scores come at the end, and
the run directory's files become the MLflow run's artifacts. The store is the one
MLFLOW_TRACKING_URI names, else a file store in ./mlruns (MLflow 3 keeps that backend in
maintenance mode behind MLFLOW_ALLOW_FILE_STORE, which dltrain sets for that default only).

We use `MlflowClient` with an explicit run id rather than the fluent `mlflow.start_run()`: no
process-global active run, so sweeps and tests that train several runs in one process stay apart.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from dltrain.config.loading import flat_settings
from dltrain.config.schema import Config
from dltrain.core.errors import UsageError
from dltrain.core.extras import require_extra

logger = logging.getLogger("dltrain")
DEFAULT_STORE = "mlruns"
BATCH_LIMIT = 100  # entities per log_batch call that every MLflow store accepts


def check_tracking_available(config: Config) -> None:
    """Refused before a run folder exists: tracking asked for without the package."""
    if config.train.tracking == "mlflow":
        require_extra("mlflow", ("mlflow",), "train.tracking=mlflow")


def tracking_uri() -> str:
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return Path(DEFAULT_STORE).resolve().as_uri()


class MlflowTracker:
    """The MLflow side of one training: started (or reopened on --resume) before the first epoch."""

    def __init__(self, config: Config, run_dir: Path, earlier: dict | None = None):
        """`earlier`: the provenance's `tracking` entry of the run being resumed, if any."""
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri()
        self._warned = False
        earlier = earlier or {}
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            if earlier.get("mlflow_run_id") and earlier.get("uri") == self.uri:
                self.run_id = earlier["mlflow_run_id"]
                self.client.update_run(self.run_id, status="RUNNING")
                logger.info("MLflow: continuing run %s in %s", self.run_id, self.uri)
            else:
                name = config.train.tracking_experiment
                experiment = self.client.get_experiment_by_name(name)
                experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
                run = self.client.create_run(
                    experiment_id, run_name=run_dir.name, tags={"dltrain.run_dir": str(run_dir.resolve())}
                )
                self.run_id = run.info.run_id
                parameters = [
                    Param(key, str(value)) for key, value in flat_settings(config.model_dump(mode="json")).items()
                ]
                for start in range(0, len(parameters), BATCH_LIMIT):
                    self.client.log_batch(self.run_id, params=parameters[start : start + BATCH_LIMIT])
                logger.info("MLflow: run %s in experiment %r at %s", self.run_id, name, self.uri)
        except Exception as error:  # an unreachable server or an unwritable store: say so before training
            raise UsageError(
                f"MLflow tracking at {self.uri} failed ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''})"
            ) from None

    def record(self) -> dict[str, str]:
        """What provenance.json keeps, so that a resumed run continues this MLflow run."""
        return {"mlflow_run_id": self.run_id, "uri": self.uri}

    def log_metrics(self, values: dict, step: int) -> None:
        """Training goes on if the store hiccups mid-run; the user is told once."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), stamp, step) for key, value in values.items() if isinstance(value, (int, float))
        ]
        try:
            for start in range(0, len(metrics), BATCH_LIMIT):
                self.client.log_batch(self.run_id, metrics=metrics[start : start + BATCH_LIMIT])
        except Exception as error:
            if not self._warned:
                logger.warning("MLflow: metrics not logged (%s: %s); training goes on", type(error).__name__, error)
                self._warned = True

    def callback(self):
        """A Keras callback that logs each epoch's logs (Keras is imported only once training starts)."""
        import keras

        tracker = self

        class EpochMetrics(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                tracker.log_metrics(dict(logs or {}), epoch)

        return EpochMetrics()

    def finish(self, run_dir: Path, metrics: dict[str, dict[str, float]], epochs_run: int) -> None:
        # Prefixed: the kept model's val_accuracy is not one more point of the per-epoch val_accuracy curve.
        scores = {f"final_{split}_{name}": value for split, values in metrics.items() for name, value in values.items()}
        self.log_metrics(scores, epochs_run)
        try:
            self.client.log_artifacts(self.run_id, str(run_dir))
            self.client.set_terminated(self.run_id, status="FINISHED")
        except Exception as error:
            logger.warning(
                "MLflow: artifacts not logged (%s: %s); the run folder %s is complete",
                type(error).__name__,
                error,
                run_dir,
            )

    def stop(self, interrupted: bool) -> None:
        """Close the MLflow run of a training that did not finish: KILLED can be resumed, FAILED not."""
        try:
            self.client.set_terminated(self.run_id, status="KILLED" if interrupted else "FAILED")
        except Exception:  # already failing for another reason; that one is the error to report
            pass
