"""`dltrain lab`: real runs on a small UCI-layout set; the report's statements follow its numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import write_uci_folder

from dltrain.data.datadir import DataDir
from dltrain.experiments.lab.budgets import BUDGETS, Budget
from dltrain.experiments.lab.catalogue import EXPERIMENTS, planned_work
from dltrain.experiments.lab.cells import (
    SEEDS,
    SELECTION_SEED,
    Cell,
    CellResult,
    Score,
    SeedRun,
    difference_text,
    direction,
    shown,
)
from dltrain.experiments.lab.optimisation import batch_learning_rate, best_loss_within, chosen_rates, rate_grid
from dltrain.experiments.lab.regularisation import summarise_regularization
from dltrain.experiments.lab.start import summarise_init
from dltrain.runs.provenance import Provenance
from dltrain.tasks import task_of

# The lab's network, narrowed (its layers and their names kept), at a budget of seconds.
SMALL = ["--set", "train.batch_size=16", "--set", "train.epochs=2"]
SMALL += ["--set", "model.units=16", "--set", "model.conv_filters=16"]


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    dataset = write_uci_folder(root / "raw", windows_per_subject=24, window=32)
    result = invoke("prepare", "har", str(dataset), "--out", str(root / "data"))
    assert result.exit_code == 0, result.output
    return root / "data"


def test_init_symmetric_units_get_equal_nonzero_gradients_and_stay_identical(lab_data, tmp_path):
    import keras

    from dltrain.experiments.lab.probes import unit_spread

    out = tmp_path / "lab"
    result = invoke("lab", "init", "--data", str(lab_data), "--out", str(out), *SMALL)
    assert result.exit_code == 0, result.output
    report = (out / "REPORT.md").read_text()
    assert (out / "init" / "init.png").stat().st_size > 10_000 and "![Initialisation](init/init.png)" in report
    runs = out / "init" / "runs"
    assert sorted(path.name for path in (runs / "symmetric-dense").iterdir()) == [f"seed-{seed}" for seed in SEEDS]
    for seed in SEEDS:
        symmetric = keras.saving.load_model(runs / "symmetric-dense" / f"seed-{seed}" / "model.keras", compile=False)
        dense = symmetric.layers[-1].get_layer("dense").get_weights()[0]
        assert np.abs(dense - dense[:, :1]).max() <= 1e-6  # every unit's incoming weights are still the first's
        glorot = keras.saving.load_model(runs / "glorot_uniform" / f"seed-{seed}" / "model.keras", compile=False)
        assert unit_spread(glorot) > 1e-3
    table = pd.read_csv(out / "init" / "table.csv").set_index("cell")
    assert table.loc["symmetric (dense)", "largest gradient difference between units at init"] <= 1e-6
    assert table.loc["symmetric (dense)", "dense unit gradient norm at init"] > 1e-4  # equal, and not zero
    assert table.loc["zeros (dense)", "dense unit gradient norm at init"] == 0  # a zero ReLU layer is dead
    assert table.loc["glorot_uniform", "largest gradient difference between units at init"] > 1e-4
    assert {"best val accuracy mean", "best val accuracy std"} <= set(table.columns)
    assert table["seeds"].eq("3/3").all() and table["best val accuracy std"].notna().all()
    assert "units' kernel gradients before training were equal" in report and "and non-zero" in report
    assert "still identical in all 3 seeds" in report and "the layer is dead" in report
    assert "best val accuracy (mean ± std)" in report and "Welch's t-test" in report
    assert "| normal N(0,1) | 1 | gru_1 |" in report  # the per-layer statistics, first seed

    (out / "REPORT.md").unlink()
    result = invoke("lab", "init", "--data", str(lab_data), "--out", str(out), "--report-only", *SMALL)
    assert result.exit_code == 0, result.output
    rebuilt = (out / "REPORT.md").read_text()
    assert "the report only, from runs trained earlier" in rebuilt and "still identical in all 3 seeds" in rebuilt


def test_loss_cells_train_with_plain_sgd_and_measure_the_saturated_start(lab_data, tmp_path):
    out = tmp_path / "lab"
    settings = ["--set", "optimizer.learning_rate=1e30", *SMALL]
    result = invoke("lab", "loss", "--data", str(lab_data), "--out", str(out), *settings)
    assert result.exit_code == 0, result.output
    report = (out / "REPORT.md").read_text()
    # a diverging cell is named and the lab goes on
    assert "Cell `cross-entropy`, seeds 1, 2, 3: failed: training diverged" in report
    assert "Cell `MSE`, seeds 1, 2, 3" in report
    assert (out / "loss" / "loss.png").is_file()
    assert "had a largest probability above 0.99" in report and "kernel gradient norm under cross-entropy" in report
    table = pd.read_csv(out / "loss" / "table.csv").set_index("cell")
    assert table["softmax saturated at init mean"].between(0, 1).all()
    assert (table["output gradient norm at init mean"] > 0).all()
    experiment = EXPERIMENTS.get("loss")(BUDGETS["quick"], DataDir.open(lab_data).meta)
    for cell in experiment.cells:
        assert "optimizer.name=sgd" in cell.overrides and "optimizer.learning_rate=0.01" in cell.overrides


def test_the_regularisation_gap_scores_the_kept_model_in_inference_mode(lab_data, tmp_path):
    import keras

    from dltrain.experiments.lab.runner import cell_points, measure_kept_accuracy, read_run
    from dltrain.experiments.sweep import train_points

    data = DataDir.open(lab_data)
    cell = Cell("dropout 0.5", ["model.dropout=0.5", "train.epochs=2", "train.batch_size=16"], seeds=(1,))
    points = cell_points(cell, [])
    assert not train_points(lab_data, "har-gru", points, tmp_path)
    run = read_run(points[0].config, tmp_path / points[0].name, None)
    results = [CellResult(cell.label, [run])]
    measure_kept_accuracy(results, data)
    model = keras.saving.load_model(run.run_dir / "model.keras", compile=False)
    train = data.split("train")
    inference = float(np.mean(np.asarray(model(train.x, training=False)).argmax(axis=1) == train.y))
    assert run.extra["train_accuracy"] == pytest.approx(inference)
    # The DATA_DIR's own test subjects are never measured: without held-out subjects, the gap is to val.
    assert "held_out_accuracy" not in run.extra
    assert run.extra["gap"] == pytest.approx(run.extra["train_accuracy"] - run.extra["val_accuracy"])
    # The regularisation experiment's data: every other validation subject held out, as its test split.
    held = DataDir.open(task_of(data.meta).training_subset(data, 24, 0, tmp_path / "held", hold_out=True))
    ids = {name: set(held.split(name).ids.tolist()) for name in ("val", "test")}
    assert ids["val"] | ids["test"] == set(data.split("val").ids.tolist()) and not ids["val"] & ids["test"]
    assert not ids["test"] & set(data.split("test").ids.tolist())  # the DATA_DIR's own test windows: none
    measure_kept_accuracy(results, held)
    assert run.extra["gap"] == pytest.approx(run.extra["train_accuracy"] - run.extra["held_out_accuracy"])
    table, _ = summarise_regularization(results)
    assert table.loc[0, "train - held-out accuracy mean"] == pytest.approx(run.extra["gap"])


def test_the_dense_initializer_needs_a_dense_layer():
    from dltrain.config.loading import load_config
    from dltrain.core.errors import UsageError

    assert load_config("har-gru", ["model.dense_units=8", "model.dense_initializer=symmetric"]).model.dense_units == 8
    with pytest.raises(UsageError, match="model.dense_initializer=zeros applies to the dense layer"):
        load_config("har-gru", ["model.dense_units=0", "model.dense_initializer=zeros"])


def test_batch_size_cells_follow_the_stated_rate_rule_and_train_equal_epochs(lab_data):
    meta = DataDir.open(lab_data).meta
    experiment = EXPERIMENTS.get("batch-size")(BUDGETS["quick"], meta)
    batches = [cell.facts["batch"] for cell in experiment.cells]
    assert batches == [8, 64, meta.split_size("train")]
    for cell, batch in zip(experiment.cells, batches):
        assert f"optimizer.learning_rate={batch_learning_rate(batch)}" in cell.overrides
        assert f"train.epochs={BUDGETS['quick'].epochs}" in cell.overrides and cell.seeds == SEEDS
    assert batch_learning_rate(64) == 0.003 and batch_learning_rate(256) == 0.006
    assert "0.003 x sqrt(batch / 64)" in experiment.claim


def test_each_optimizer_gets_the_rate_its_selection_run_scored_best_on_validation(lab_data):
    experiment = EXPERIMENTS.get("optimizers")(BUDGETS["quick"], DataDir.open(lab_data).meta)
    assert len(experiment.cells) == 18 and all(cell.seeds == (SELECTION_SEED,) for cell in experiment.cells)
    assert rate_grid("adam") == [0.0003, 0.003, 0.03]
    accuracy = {("adam", 0.003): 0.9, ("sgd", 0.3): 0.8}  # every other grid run reached 0.5
    selection = [
        cell_result(
            cell.label, [accuracy.get((cell.facts["optimizer"], cell.facts["learning_rate"]), 0.5)], facts=cell.facts
        )
        for cell in experiment.cells
    ]
    chosen = {cell.label: cell for cell in chosen_rates(selection, epochs=3)}
    assert chosen["adam"].facts["learning_rate"] == 0.003 and chosen["sgd"].facts["learning_rate"] == 0.3
    assert "optimizer.learning_rate=0.3" in chosen["sgd"].overrides and chosen["sgd"].seeds == SEEDS
    assert chosen["adam"].facts["grid"] == {0.0003: 0.5, 0.003: 0.9, 0.03: 0.5}


def test_a_grid_widens_until_its_best_rate_is_inside_it(lab_data):
    from dltrain.experiments.lab.optimisation import MAX_WIDENING, rates_statement, widened_rates

    experiment = EXPERIMENTS.get("optimizers")(BUDGETS["quick"], DataDir.open(lab_data).meta)
    accuracy = lambda name, rate: {"sgd": 0.5 + 0.1 * math.log10(rate), "adam": 0.9 - abs(rate - 0.003)}[name]  # noqa: E731
    selection = [
        cell_result(cell.label, [accuracy(cell.facts["optimizer"], cell.facts["learning_rate"])], facts=cell.facts)
        for cell in experiment.cells
        if cell.facts["optimizer"] in ("sgd", "adam")
    ]
    rounds = 0
    while wider := widened_rates(selection, epochs=3):  # sgd keeps improving upwards; adam peaks inside
        assert {cell.facts["optimizer"] for cell in wider} == {"sgd"} and all(
            c.seeds == (SELECTION_SEED,) for c in wider
        )
        selection += [cell_result(c.label, [accuracy("sgd", c.facts["learning_rate"])], facts=c.facts) for c in wider]
        rounds += 1
    assert rounds == MAX_WIDENING  # then the widening stops, and the report says the rate is not tuned
    chosen = chosen_rates(selection, epochs=3)
    sgd = next(cell for cell in chosen if cell.label == "sgd")
    assert sgd.facts["learning_rate"] == max(rate_grid("sgd")) * 10**MAX_WIDENING
    results = [cell_result(cell.label, [0.9], facts=cell.facts) for cell in chosen if cell.label in ("sgd", "adam")]
    assert "Still at an end of its widened grid, so not tuned: sgd." in rates_statement(results)
    # a rate beyond the end that diverged ends the widening there: the best is inside what trains
    failed = cell_result("sgd lr=3", [float("nan")], facts={"optimizer": "sgd", "learning_rate": 3.0})
    assert widened_rates([*selection[:6], failed], epochs=3) == []  # the first 6: sgd's and adam's grids


def test_the_optimizers_experiment_trains_the_grid_then_three_seeds_at_each_chosen_rate(
    lab_data, tmp_path, monkeypatch
):
    from dltrain.experiments.lab import optimisation

    monkeypatch.setattr(optimisation, "RATE_CENTRES", {"sgd": 0.1, "adam": 0.003})
    monkeypatch.setattr(optimisation, "RATE_STEPS", (0.1, 1.0))
    monkeypatch.setattr(optimisation, "MAX_WIDENING", 0)  # the widening: test_a_grid_widens_until_its_best_is_inside
    out = tmp_path / "lab"
    result = invoke("lab", "optimizers", "--data", str(lab_data), "--out", str(out), *SMALL)
    assert result.exit_code == 0, result.output
    runs = out / "optimizers" / "runs"
    table = pd.read_csv(out / "optimizers" / "table.csv").set_index("cell")
    for name in ("sgd", "adam"):
        grid = {rate: pd.read_csv(runs / f"{name}-lr-{rate:g}" / f"seed-{SELECTION_SEED}" / "history.csv")
                for rate in rate_grid(name)}  # fmt: skip
        best = max(grid, key=lambda rate: grid[rate]["val_accuracy"].max())
        assert table.loc[name, "rate"] == best  # the grid run with the best validation accuracy chose it
        assert sorted(path.name for path in (runs / name).iterdir()) == [f"seed-{seed}" for seed in SEEDS]
        config = (runs / name / "seed-2" / "config.yaml").read_text()
        assert f"learning_rate: {best}" in config and "seed: 2" in config
    report = (out / "REPORT.md").read_text()
    assert (
        "Rates chosen on the validation split" in report and "grid (rate: best val accuracy, selection seed)" in report
    )


def test_the_budgets_plan_the_runs_and_epochs_their_docstring_counts(lab_data):
    meta = DataDir.open(lab_data).meta
    for budget in BUDGETS.values():
        assert planned_work(budget, meta) == (budget.runs, budget.most_epochs)


def test_a_budget_with_fewer_windows_trains_on_a_seeded_stratified_sample(lab_data, tmp_path):
    from dltrain.experiments.lab.runner import training_data
    from dltrain.tasks.har.subsets import stratified_rows

    data = DataDir.open(lab_data)
    labels = data.split("train").y
    rows = stratified_rows(labels, 30, seed=0)
    assert len(rows) == len(set(rows)) == 30 and (rows == stratified_rows(labels, 30, seed=0)).all()
    shares = np.bincount(labels[rows], minlength=6) / 30 - np.bincount(labels, minlength=6) / len(labels)
    assert np.abs(shares).max() <= 1 / 30 + 1e-9
    subset = training_data(data, Budget("tiny", 1, 30, 0, 0), tmp_path)
    assert subset.meta.split_size("train") == 30 and subset.meta.split_size("val") == data.meta.split_size("val")
    assert subset.meta.split_size("test") == 0 and subset.meta.source["kind"] == "subset"
    assert training_data(data, BUDGETS["quick"], tmp_path / "other").path == data.path  # fewer windows than asked


def seed_run(seed: int, accuracy: float, extra: dict | None = None) -> SeedRun:
    history = pd.DataFrame(
        {
            "epoch": [0, 1],
            "loss": [1.0, 0.8],
            "val_loss": [1.1, 0.9],
            "accuracy": [0.4, accuracy],
            "val_accuracy": [0.3, accuracy],
        }
    )
    return SeedRun(seed, Path(f"seed-{seed}"), history, Provenance(), extra=dict(extra or {}))


def cell_result(label: str, accuracies: list[float], extra: dict | None = None, facts=None) -> CellResult:
    runs = [seed_run(seed, accuracy, extra) for seed, accuracy in enumerate(accuracies, start=1)]
    return CellResult(label, runs, dict(facts or {}))


def test_a_difference_is_shown_only_when_welchs_t_test_gives_p_below_the_level():
    high, low = Score.of([0.90, 0.91, 0.92]), Score.of([0.80, 0.81, 0.82])
    assert shown(high, low) and direction(high, low) == 1 and direction(low, high) == -1
    noisy = Score.of([0.70, 0.95, 0.85])
    assert not shown(high, noisy) and direction(high, noisy) == 0  # 0.007 apart, a spread of 0.13
    assert not shown(Score.of([0.9]), low)  # one seed: never shown
    assert "Welch t" in difference_text(high, low) and "p 0.000" in difference_text(high, low)
    # Under no difference, 3 seeds a side, the rule calls at most 1 comparison in 20 shown: 3.4% in 20,000
    # simulated pairs (Welch's test is conservative this small); the old rule, a difference over twice its
    # standard error, called 11.2%
    rng = np.random.default_rng(0)
    calls = [shown(Score.of(rng.normal(0, 1, 3)), Score.of(rng.normal(0, 1, 3))) for _ in range(2000)]
    assert 0.015 <= np.mean(calls) <= 0.05, np.mean(calls)
    # every seed the same: a saturated metric, whose ± 0 separates it from nothing
    ceiling = Score.of([0.955, 0.955, 0.955])
    assert ceiling.saturated and "saturated" in ceiling.text()
    assert not shown(ceiling, Score.of([0.95, 0.95, 0.95])) and "no spread in either cell" in difference_text(
        ceiling, Score.of([0.95, 0.95, 0.95])
    )
    assert shown(ceiling, low)  # one side spread: the test is defined
    from dltrain.experiments.lab.runner import markdown_table

    table = markdown_table(pd.DataFrame({"cell": ["a", "b"], "acc mean": [0.955, 0.9], "acc std": [0.0, 0.01]}))
    assert "| a | 0.955 ± 0 (saturated) |" in table and "| b | 0.9 ± 0.01 |" in table


def test_regularisation_sentences_follow_the_rule():
    baseline = cell_result("none", [0.9, 0.9, 0.9], {"gap": 0.10})
    for run, gap in zip(baseline.runs, (0.10, 0.11, 0.09)):
        run.extra["gap"] = gap
    clear = cell_result("L2 1e-3", [0.9, 0.9, 0.9])
    for run, gap in zip(clear.runs, (0.01, 0.02, 0.00)):
        run.extra["gap"] = gap
    noisy = cell_result("dropout 0.5", [0.9, 0.9, 0.9])
    for run, gap in zip(noisy.runs, (0.15, 0.0, 0.08)):
        run.extra["gap"] = gap
    _, statements = summarise_regularization([baseline, clear, noisy])
    text = " ".join(statements)
    assert "Shrank that gap, by the rule: L2 1e-3" in text
    assert "Not separated from it (within the seed-to-seed noise): dropout 0.5" in text


def test_identical_units_sentence_only_when_the_numbers_show_it():
    measured = {"unit_gradient_mean": 0.05, "unit_gradient_difference": 0.0, "dense_units": 32}
    identical = [
        cell_result("symmetric (dense)", [0.5, 0.5, 0.5], {**measured, "unit_spread": 0.0, "identical_units": True}),
        cell_result("glorot_uniform", [0.5, 0.5, 0.5], {"unit_spread": 0.4}),
    ]
    _, statements = summarise_init(identical)
    assert any("still identical in all 3 seeds" in statement for statement in statements)
    differing = [
        cell_result("symmetric (dense)", [0.5, 0.5, 0.5], {**measured, "unit_spread": 0.2, "identical_units": False}),
        cell_result("glorot_uniform", [0.5, 0.5, 0.5], {"unit_spread": 0.4}),
    ]
    _, statements = summarise_init(differing)
    assert not any("still identical" in statement for statement in statements)
    assert any("identical in 0 of 3 seeds" in statement for statement in statements)
    activity = {"one_answer_share": 1.0, "majority_share": 0.19, "dense_feature_std": 0.0}
    silent = {**measured, "unit_spread": 0.0, "identical_units": True, **activity, "dense_silent": 1.0}
    _, statements = summarise_init([cell_result("symmetric (dense)", [0.19] * 3, silent)])
    assert any("and silent: their ReLU output was 0 on 100%" in statement for statement in statements)
    assert not any("computes one feature" in statement for statement in statements)  # a silent layer computes none
    active = {**silent, "dense_silent": 0.4, "dense_feature_std": 0.7, "one_answer_share": 0.5}
    _, statements = summarise_init([cell_result("symmetric (dense)", [0.6] * 3, active)])
    assert any("and active (output 0 on 40%" in s and "computes one feature 32 times" in s for s in statements)
    dead = [cell_result("zeros (dense)", [0.2, 0.2, 0.2], {**measured, "unit_gradient_mean": 0.0})]
    _, statements = summarise_init(dead)
    assert any("the layer is dead" in statement for statement in statements)


def test_best_loss_within_reads_only_the_epochs_finished_in_time():
    run = seed_run(1, 0.5)
    run.epoch_seconds = [2.0, 2.0]
    assert best_loss_within(run, 3.0) == 1.1 and best_loss_within(run, 4.0) == 0.9
    assert pd.isna(best_loss_within(run, 1.0))


def test_unknown_experiment_lists_the_valid_ones(lab_data, tmp_path):
    result = invoke("lab", "initialisation", "--data", str(lab_data), "--out", str(tmp_path / "lab"))
    assert result.exit_code == 2
    assert (
        "'initialisation' is not one of 'init', 'loss', 'optimizers', 'schedules', 'regularization', " in result.output
    )
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "lab").exists()
