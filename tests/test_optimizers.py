"""Optimizer parameters reach Keras; the learning rate logged per epoch follows each schedule's formula.

(That every optimizer and schedule trains on both tasks is in test_toolbox.py.)"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import write_classroom_folder

from dltrain.config.schema import OptimizerConfig
from dltrain.networks.optimizers import OPTIMIZERS, SCHEDULES

LR = 0.01
TINY = [
    "--set",
    "model.units=4",
    "--set",
    "model.layers=1",
    "--set",
    "model.conv_layers=0",
    "--set",
    "train.batch_size=8",
    "--set",
    "early_stopping.patience=0",
    "--set",
    "early_stopping.start_from_epoch=0",
    "--set",
    f"optimizer.learning_rate={LR}",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("schedules")
    source = write_classroom_folder(root / "classroom", per_class=(16, 4), with_test=False)  # 48 train windows: 6 steps
    assert invoke("prepare", "har", str(source), "--out", str(root / "data")).exit_code == 0
    return root / "data"


def train(data_dir, tmp_path, *settings):
    run = tmp_path / "run"
    result = invoke("train", str(data_dir), "--out", str(run), *TINY, *settings)
    assert result.exit_code == 0, result.output
    return pd.read_csv(run / "history.csv")


def test_optimizer_parameters_reach_keras():
    config = OptimizerConfig(name="adamw", learning_rate=0.002, beta_1=0.8, weight_decay=0.01, clipnorm=2.0)
    optimizer = OPTIMIZERS.get("adamw")(config, config.learning_rate)
    assert optimizer.beta_1 == 0.8 and optimizer.weight_decay == 0.01 and optimizer.clipnorm == 2.0
    nesterov = OPTIMIZERS.get("nesterov")(OptimizerConfig(name="nesterov", momentum=0.8), 0.1)
    assert nesterov.nesterov and nesterov.momentum == 0.8


EPOCHS = 4
SCHEDULE_CASES = {
    "constant": ([], lambda epoch: LR),
    "step": (["--set", "schedule.every=2", "--set", "schedule.factor=0.5"], lambda epoch: LR * 0.5 ** (epoch // 2)),
    "exponential": (["--set", "schedule.decay_rate=0.3"], lambda epoch: LR * math.exp(-0.3 * epoch)),
    "inverse_time": (["--set", "schedule.decay_rate=0.5"], lambda epoch: LR / (1 + 0.5 * epoch)),
    "linear": (["--set", "schedule.final_learning_rate=0.002"], lambda epoch: LR - (LR - 0.002) * epoch / EPOCHS),
    "recorded": (  # as dltrain refit replays a plateau run's cuts; after the list, its last rate
        ["--set", "schedule.rates=[0.01, 0.004, 0.0016]"],
        lambda epoch: [0.01, 0.004, 0.0016][min(epoch, 2)],
    ),
    "cosine": (
        ["--set", "schedule.warmup_epochs=1"],
        lambda epoch: LR * epoch if epoch < 1 else LR * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / (EPOCHS - 1))),
    ),
}


def test_every_schedule_has_a_case():
    assert set(SCHEDULES.names()) == set(SCHEDULE_CASES) | {"plateau"}


@pytest.mark.parametrize("name", sorted(SCHEDULE_CASES))
def test_logged_learning_rate_follows_the_schedule(data_dir, tmp_path, name):
    settings, formula = SCHEDULE_CASES[name]
    history = train(data_dir, tmp_path, "--set", f"schedule.name={name}", "--set", f"train.epochs={EPOCHS}", *settings)
    expected = [formula(epoch) for epoch in range(EPOCHS)]
    assert history["learning_rate"].tolist() == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_impossible_schedule_settings_are_config_errors(data_dir, tmp_path):
    result = invoke(
        "train",
        str(data_dir),
        "--out",
        str(tmp_path / "r"),
        *TINY,
        "--set",
        "schedule.name=cosine",
        "--set",
        "schedule.warmup_epochs=5",
        "--set",
        "train.epochs=5",
    )
    assert result.exit_code == 2 and "warmup_epochs (5) must be below train.epochs (5)" in result.stderr
    assert not (tmp_path / "r").exists()
