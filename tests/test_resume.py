"""Checkpoints, --resume and divergence: an interrupted run continues exactly where it stopped."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.training import interrupt_after_epoch

from dltrain.config.loading import load_config
from dltrain.training.checkpoints import read_resume_state
from dltrain.training.session import resume_run, train_run

EPOCHS = 6
# Dropout, batch norm, signal augmentation's draws, the plateau rule and early stopping all carry
# state across epochs.
SETTINGS = [
    "model.units=8",
    "model.layers=1",
    "model.conv_layers=1",
    "model.conv_filters=8",
    "model.dropout=0.3",
    "model.batch_norm=true",
    "augment.signal_scaling=0.1",
    "augment.signal_time_warp=0.2",
    "train.batch_size=8",
    f"train.epochs={EPOCHS}",
    "train.deterministic=true",
    "optimizer.learning_rate=0.01",
    "schedule.name=plateau",
    "schedule.patience=1",
    "schedule.factor=0.5",
    "early_stopping.patience=3",
    "early_stopping.start_from_epoch=1",
    "early_stopping.monitor=val_loss",
]


def final_weights(run_dir):
    return keras.saving.load_model(run_dir / "last.keras").get_weights()


def test_resume_after_an_interruption_matches_an_uninterrupted_run(data_dir, tmp_path):
    config = load_config("har-gru", SETTINGS)
    whole = tmp_path / "whole"
    train_run(data_dir, whole, config, "har-gru")

    parted = tmp_path / "parted"
    with pytest.raises(KeyboardInterrupt):
        train_run(data_dir, parted, config, "har-gru", extra_callbacks=[interrupt_after_epoch(3)])
    assert json.loads((parted / "provenance.json").read_text())["status"] == "interrupted"
    assert read_resume_state(parted / "last.keras")["epochs_done"] == 3
    assert len(pd.read_csv(parted / "history.csv")) == 3

    provenance = resume_run(parted)
    assert provenance.status == "complete" and provenance.resumed_after_epochs == [3]
    whole_history, parted_history = pd.read_csv(whole / "history.csv"), pd.read_csv(parted / "history.csv")
    assert len(parted_history) == len(whole_history)
    pd.testing.assert_frame_equal(parted_history, whole_history, rtol=1e-5)
    for resumed, uninterrupted in zip(final_weights(parted), final_weights(whole)):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)
    assert provenance.best_epoch == json.loads((whole / "provenance.json").read_text())["best_epoch"]


def test_resume_cli_refuses_a_complete_run_and_new_settings(data_dir, tmp_path):
    run = tmp_path / "run"
    assert (
        invoke(
            "train",
            str(data_dir),
            "--out",
            str(run),
            *sum((["--set", s] for s in SETTINGS), []),
            "--set",
            "train.epochs=2",
        ).exit_code
        == 0
    )
    assert (run / "model.keras").is_file() and (run / "last.keras").is_file()
    result = invoke("train", "--resume", str(run))
    assert result.exit_code == 2 and "complete already" in result.stderr
    result = invoke("train", "--resume", str(run), "--set", "train.epochs=9")
    assert result.exit_code == 2 and "--resume continues with the run's own config.yaml" in result.stderr
    result = invoke("train", "--resume", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "no such run folder" in result.stderr
    result = invoke("train", "--resume", str(tmp_path))
    assert result.exit_code == 1 and "is not a dltrain run" in result.stderr


def test_divergence_before_any_checkpoint_is_one_clear_error(data_dir, tmp_path):
    run = tmp_path / "run"
    # Plain SGD at an absurd rate overflows float32 within the first steps.
    result = invoke(
        "train",
        str(data_dir),
        "--out",
        str(run),
        *sum((["--set", s] for s in SETTINGS), []),
        "--set",
        "optimizer.name=sgd",
        "--set",
        "optimizer.learning_rate=1e30",
        "--set",
        "model.batch_norm=false",
    )
    assert result.exit_code == 2, result.output
    assert "training diverged" in result.stderr and "lower optimizer.learning_rate" in result.stderr
    assert "Traceback" not in result.output and not run.exists()


def test_divergence_after_good_epochs_keeps_the_best_checkpoint(data_dir, tmp_path):
    run = tmp_path / "run"
    # One step per epoch and a cosine warm-up from 0: epoch 1 steps at rate 0 (nothing can
    # diverge), epoch 2 at an overflowing rate, so the loss of epoch 3 is no longer finite.
    settings = [
        "--set",
        "optimizer.name=sgd",
        "--set",
        "optimizer.learning_rate=1e30",
        "--set",
        "model.batch_norm=false",
        "--set",
        "schedule.name=cosine",
        "--set",
        "schedule.warmup_epochs=4",
        "--set",
        "early_stopping.start_from_epoch=0",
        "--set",
        "train.batch_size=48",
        "--set",
        "train.min_steps_per_epoch=0",  # one pass, one step an epoch
    ]
    result = invoke("train", str(data_dir), "--out", str(run), *sum((["--set", s] for s in SETTINGS), []), *settings)
    assert result.exit_code == 0, result.output
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["status"] == "complete" and provenance["diverged_at"] == {"epoch": 2, "where": "validation"}
    assert provenance["best_epoch"] < provenance["diverged_at"]["epoch"]
    assert "diverged" in result.stderr


def test_divergence_during_the_warm_up_leaves_no_run_to_resume(data_dir, tmp_path):
    """Epoch 1 is checkpointed (last.keras) but, inside the warm-up, not kept; epoch 2 diverges: nothing
    is worth resuming, so the folder goes, as when divergence comes before any checkpoint."""
    run = tmp_path / "run"
    settings = [*SETTINGS, "optimizer.name=sgd", "optimizer.learning_rate=1e30", "model.batch_norm=false"]
    settings += ["schedule.name=cosine", "schedule.warmup_epochs=4", "early_stopping.start_from_epoch=3"]
    settings += ["train.batch_size=48", "train.min_steps_per_epoch=0"]
    result = invoke("train", str(data_dir), "--out", str(run), *sum((["--set", s] for s in settings), []))
    assert result.exit_code == 2, result.output
    assert "before any epoch could be kept" in result.stderr and not run.exists()


def test_a_mixed_precision_run_resumes_with_its_loss_scale(data_dir, tmp_path):
    config = load_config(
        "har-gru", SETTINGS + ["train.mixed_precision=true", "train.epochs=3", "train.deterministic=false"]
    )
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(data_dir, run, config, "har-gru", extra_callbacks=[interrupt_after_epoch(1)])
    state = read_resume_state(run / "last.keras")
    assert len(state["optimizer_variables"]) > len(
        keras.saving.load_model(run / "last.keras", compile=False).trainable_weights
    )
    provenance = resume_run(run)
    assert provenance.status == "complete" and provenance.precision == "mixed_float16"
    assert len(pd.read_csv(run / "history.csv")) == 3


class _Model:
    """What DivergenceWatch reads of a model: the stop flag, and weights (finite unless told)."""

    def __init__(self, finite: bool = True) -> None:
        self.stop_training = False
        self.finite = finite

    def get_weights(self):
        return [np.array([1.0, np.inf if not self.finite else 2.0])]


@pytest.mark.parametrize(
    ("batch_losses", "epoch_logs", "finite", "expected"),
    [
        ([2.0, 3.0], {"loss": 2.5, "val_loss": 2.4}, True, None),  # a healthy epoch
        ([2.0, 1e30], {}, True, {"epoch": 1, "where": "batch 2"}),  # huge but finite: exploded all the same
        ([2.0, float("nan")], {}, True, {"epoch": 1, "where": "batch 2"}),
        ([2.0, 3.0], {"loss": 2.5, "val_loss": 3e4}, True, {"epoch": 1, "where": "validation"}),  # over 1e4 x 2.0
        ([0.25, 0.27], {"loss": 0.26, "val_loss": 0.27}, False, {"epoch": 1, "where": "weights"}),  # bounded loss
    ],
)
def test_divergence_is_a_nonfinite_or_exploded_loss_or_nonfinite_weights(batch_losses, epoch_logs, finite, expected):
    """Decided on numbers alone, whatever a processor's float arithmetic makes of an absurd rate."""
    from dltrain.training.callbacks import DivergenceWatch

    watch = DivergenceWatch()
    watch.set_model(_Model(finite))
    watch.on_epoch_begin(0)
    for batch, loss in enumerate(batch_losses):
        watch.on_train_batch_end(batch, {"loss": loss})
    watch.on_epoch_end(0, dict(epoch_logs))
    assert watch.diverged_at == expected
    assert watch.model.stop_training is (expected is not None)
    restored = DivergenceWatch(resume_state=watch.state())  # a resumed run judges by the same reference
    assert restored.reference == watch.reference == max(batch_losses[0], 1.0)


def test_a_run_that_fails_while_scoring_keeps_its_epochs_and_resumes_to_scoring(tmp_path):
    """Epochs trained are never thrown away: an error after them (here a validation photograph
    damaged once training ends) leaves a resumable run, and resuming it only scores."""
    from helpers.data import kaggle_folder

    source = kaggle_folder(tmp_path / "kaggle", patients=8, with_test=False)
    data = tmp_path / "data"
    assert invoke("prepare", "retina", source, "--out", data, "--size", "32", "--workers", "1").exit_code == 0
    victim = data / "images" / f"{pd.read_csv(data / 'val.csv')['image'][0]}.jpeg"
    intact = victim.read_bytes()

    class DamageAtTheEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            victim.write_bytes(b"damaged")

    settings = ["model.conv_layers=1", "model.conv_filters=4", "model.dense_units=0", "train.epochs=2"]
    config = load_config("retina-cnn", settings)
    run = tmp_path / "run"
    with pytest.raises(Exception, match=victim.name):
        train_run(data, run, config, "retina-cnn", extra_callbacks=[DamageAtTheEnd()])
    assert json.loads((run / "provenance.json").read_text())["status"] == "interrupted"
    assert read_resume_state(run / "last.keras")["epochs_done"] == 2
    victim.write_bytes(intact)
    provenance = resume_run(run)
    assert provenance.status == "complete" and provenance.epochs_run == 2 and provenance.resumed_after_epochs == [2]
    assert len(pd.read_csv(run / "history.csv")) == 2


def test_an_early_stopped_run_resumes_to_scoring_only(data_dir, tmp_path):
    """Early stopping ended the run; a crash before it was scored must not train further epochs."""
    config = load_config("har-gru", [*SETTINGS[:-4], "early_stopping.patience=1", "early_stopping.start_from_epoch=0",
                                     "early_stopping.min_delta=1000"])  # fmt: skip
    run = tmp_path / "run"

    class CrashAfterStopping(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            raise RuntimeError("lost power")

    with pytest.raises(RuntimeError, match="lost power"):
        train_run(data_dir, run, config, "har-gru", extra_callbacks=[CrashAfterStopping()])
    state = read_resume_state(run / "last.keras")
    assert state["stopped"] and state["epochs_done"] < EPOCHS
    provenance = resume_run(run)
    assert provenance.status == "complete" and provenance.epochs_run == state["epochs_done"]
