"""The retina input pipeline: per-epoch orders over image indices, the same batches whatever the
cache, the cache's choice recorded, the disk cache removed, augmentation in the pipeline or in the
model, and a retina run resumed after an interruption ending as the run never interrupted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder
from helpers.training import interrupt_after_epoch

from dltrain.config.loading import load_config
from dltrain.data.datadir import DataDir

tf = pytest.importorskip("tensorflow")

SMALL = [
    "model.conv_layers=1",
    "model.conv_filters=4",
    "model.dense_units=4",
    "train.batch_size=4",
    "early_stopping.patience=0",
    "train.deterministic=true",
]


@pytest.fixture(scope="module")
def retina_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    source = kaggle_folder(root / "kaggle", patients=10, with_test=False)
    assert invoke("prepare", "retina", source, "--out", root / "data", "--size", "32", "--workers", "1").exit_code == 0
    return root / "data"


NO_AUGMENTATION = ["augment.flip=false", "augment.rotation=false", "augment.zoom=0", "augment.brightness=0",
                   "augment.contrast=0"]  # fmt: skip


def batches(data_dir, cache, tmp_path, first_epoch=0, epochs=2, shard=None, augment=True):
    from dltrain.data.feeds import TrainingContext
    from dltrain.tasks import TASKS

    settings = [*SMALL, f"train.cache={cache}", f"train.epochs={epochs}", "augment.placement=pipeline"]
    config = load_config("retina-cnn", settings + ([] if augment else NO_AUGMENTATION))
    feeds = TASKS.get("retina").training_feeds(
        DataDir.open(data_dir), config, 4, TrainingContext(first_epoch, shard, tmp_path)
    )
    return [(images.numpy(), targets.numpy()) for images, targets in feeds.train_epochs(first_epoch, epochs)], feeds


def test_every_epoch_is_a_new_order_of_all_the_images():
    from dltrain.data.feeds import epoch_order

    labels = np.arange(13) % 3
    orders = np.stack([epoch_order(labels, 5, epoch).numpy() for epoch in range(3)])
    for order in orders:
        assert sorted(order) == list(range(13))
    assert not (orders[0] == orders[1]).all()
    np.testing.assert_array_equal(epoch_order(labels, 5, 1).numpy(), orders[1])  # (seed, epoch) alone decides


def test_balanced_sampling_evens_the_classes_and_decay_returns_to_the_natural_shares():
    from dltrain.data.feeds import epoch_order

    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)  # 90 / 9 / 1 %
    share = lambda order: np.bincount(labels[order], minlength=3) / len(order)  # noqa: E731
    balanced = share(epoch_order(labels, 1, 0, "balanced").numpy())
    np.testing.assert_allclose(balanced, [1 / 3] * 3, atol=0.05)
    first, late = (
        share(epoch_order(labels, 1, 0, "decay", 0.9).numpy()),
        share(epoch_order(labels, 1, 60, "decay", 0.9).numpy()),
    )
    np.testing.assert_allclose(first, [1 / 3] * 3, atol=0.05)  # 0.9 ** 0: balanced
    np.testing.assert_allclose(late, [0.9, 0.09, 0.01], atol=0.03)  # 0.9 ** 60: natural
    assert len(epoch_order(labels, 1, 3, "decay").numpy()) == len(labels)  # as many draws as samples


def test_decay_moves_each_sample_weight_from_balancing_to_its_final_weight_as_team_o_O():
    from dltrain.data.feeds import class_shares, epoch_order

    counts, final = np.array([900, 90, 10]), [1.0, 2.0, 2.0]
    natural = counts / counts.sum()
    for epoch in (0, 10, 200):  # o_O: weights = balance_weights * a + final_balance_weights * (1 - a), a = r ** epoch
        a = 0.9**epoch
        weights = a / natural + (1 - a) * np.asarray(final)  # per sample of each class
        expected = counts * weights / (counts * weights).sum()
        np.testing.assert_allclose(class_shares(counts, "decay", 0.9, final, epoch).numpy(), expected, rtol=1e-9)
    labels = np.repeat([0, 1, 2], counts)
    late = np.bincount(labels[epoch_order(labels, 1, 200, "decay", 0.9, final=final).numpy()], minlength=3)
    np.testing.assert_allclose(late / len(labels), [0.9 / 1.1, 0.18 / 1.1, 0.02 / 1.1], atol=0.03)


def test_final_sampling_weights_are_one_per_class_and_only_for_decay(data_dir, cli):
    weights = ["--set", "train.sampling=decay", "--set", "train.sampling_final_weights=[1,2]"]
    result = cli("train", data_dir, "--out", data_dir.parent / "never", *weights)
    assert result.exit_code == 2 and "has 2 weights" in result.stderr and "3 classes" in result.stderr
    assert not (data_dir.parent / "never").exists()
    result = cli("config", "show", "har-gru", "--set", "train.sampling_final_weights=[1,2,2]")
    assert result.exit_code == 2 and "applies to train.sampling=decay" in result.stderr


def test_batches_never_straddle_two_epochs(retina_data, tmp_path):
    plain, feeds = batches(retina_data, "none", tmp_path)
    train_images = DataDir.open(retina_data).meta.split_size("train")
    sizes = [len(targets) for _, targets in plain]
    assert sum(sizes) == 2 * train_images and len(sizes) == 2 * feeds.steps_per_epoch


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_a_cache_gives_the_very_batches_of_no_cache(retina_data, tmp_path, cache):
    plain, _ = batches(retina_data, "none", tmp_path)
    cached, feeds = batches(retina_data, cache, tmp_path)
    assert len(plain) == len(cached) == 2 * feeds.steps_per_epoch
    for (images, targets), (cached_images, cached_targets) in zip(plain, cached):
        np.testing.assert_array_equal(images, cached_images)
        np.testing.assert_array_equal(targets, cached_targets)
    assert feeds.notes["cache"]["mode"] == cache
    assert bool(feeds.scratch_files) == (cache == "disk") and all(path.is_file() for path in feeds.scratch_files)


@pytest.mark.parametrize("cache", ["none", "memory"])
def test_two_processes_share_every_global_batch_between_them(retina_data, tmp_path, cache):
    """Each process gets its half of every global batch, chosen among the indices (it decodes or
    looks up only its own images): the halves side by side are the global batch."""
    whole, feeds = batches(retina_data, cache, tmp_path, augment=False)
    halves = [batches(retina_data, cache, tmp_path, shard=(process, 2), augment=False)[0] for process in (0, 1)]
    full = [(images, targets) for images, targets in whole if len(targets) == 4]  # sharded epochs drop the rest
    assert len(halves[0]) == len(halves[1]) == len(full)
    for (images, targets), first, second in zip(full, *halves):
        np.testing.assert_array_equal(np.concatenate([first[0], second[0]]), images)
        np.testing.assert_array_equal(np.concatenate([first[1], second[1]]), targets)


def test_a_validation_split_smaller_than_a_global_batch_is_refused_when_sharded(retina_data, tmp_path):
    from dltrain.core.errors import DataError
    from dltrain.data.feeds import TrainingContext
    from dltrain.tasks import TASKS

    config = load_config("retina-cnn", [*SMALL, "train.cache=none"])
    with pytest.raises(DataError, match="fewer than one global batch"):
        TASKS.get("retina").training_feeds(DataDir.open(retina_data), config, 64, TrainingContext(0, (0, 2), tmp_path))


def test_auto_caches_in_memory_when_it_fits_and_says_so(retina_data, tmp_path):
    _, feeds = batches(retina_data, "auto", tmp_path)
    cache = feeds.notes["cache"]
    assert (
        cache["requested"] == "auto" and cache["mode"] == "memory" and cache["decoded_bytes"] < cache["available_bytes"]
    )
    from dltrain.tasks.retina.pipeline import choose_cache

    assert choose_cache("auto", 10**9, 512).mode == "none"  # 786 TB of decoded images: never in memory


def test_a_resumed_run_sees_the_batches_it_would_have_seen(retina_data, tmp_path):
    whole, _ = batches(retina_data, "none", tmp_path, epochs=3)
    resumed, feeds = batches(retina_data, "none", tmp_path, first_epoch=1, epochs=3)
    for (images, targets), (resumed_images, resumed_targets) in zip(whole[feeds.steps_per_epoch :], resumed):
        np.testing.assert_array_equal(images, resumed_images)  # augmented alike: draws come from (seed, step)
        np.testing.assert_array_equal(targets, resumed_targets)


@pytest.mark.parametrize("placement", ["pipeline", "model"])
def test_training_records_its_cache_and_augmentation_and_removes_the_disk_cache(retina_data, tmp_path, placement):
    run = tmp_path / "run"
    settings = sum(
        (
            ["--set", setting]
            for setting in [*SMALL, "train.epochs=1", "train.cache=disk", f"augment.placement={placement}"]
        ),
        [],
    )
    result = invoke("train", retina_data, "--out", run, *settings)
    assert result.exit_code == 0, result.output
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["input"]["cache"]["mode"] == "disk" and provenance["input"]["augmentation"] == placement
    assert not (run / "decoded-images.u8").exists()
    import keras

    layers = [
        layer.name for layer in keras.saving.load_model(run / "model.keras", safe_mode=True, compile=False).layers
    ]
    assert ("augmentation" in layers) == (placement == "model")
    # The model that augments in training predicts like one that does not: scoring is never augmented.
    assert invoke("evaluate", run, "--split", "val", "--json").exit_code == 0


def test_an_interrupted_retina_run_resumes_to_the_same_result(retina_data, tmp_path):
    from dltrain.training.session import resume_run, train_run

    config = load_config("retina-cnn", [*SMALL, "train.epochs=3", "train.cache=none", "augment.placement=pipeline"])
    whole = tmp_path / "whole"
    train_run(retina_data, whole, config, "retina-cnn")
    parted = tmp_path / "parted"
    with pytest.raises(KeyboardInterrupt):
        train_run(retina_data, parted, config, "retina-cnn", extra_callbacks=[interrupt_after_epoch(2)])
    resume_run(parted)
    pd.testing.assert_frame_equal(pd.read_csv(parted / "history.csv"), pd.read_csv(whole / "history.csv"), rtol=1e-5)


def test_a_small_set_makes_an_epoch_of_several_passes_each_its_own_order():
    from dltrain.data.feeds import epoch_order, passes_per_epoch

    assert passes_per_epoch(5836, 64, 50) == 1  # HAPT: one pass is 92 steps already
    assert passes_per_epoch(32, 32, 50) == 50 and passes_per_epoch(100, 64, 50) == 32  # 3,200 draws: 50 batches
    assert passes_per_epoch(100, 64, 0) == 1
    labels = np.arange(10) % 2
    order = epoch_order(labels, 5, 3, passes=3).numpy()
    passes = order.reshape(3, 10)
    assert all(sorted(one) == list(range(10)) for one in passes)  # every sample once per pass
    np.testing.assert_array_equal(passes[0], epoch_order(labels, 5, 3).numpy())  # the first pass: the 1-pass order
    assert not (passes[0] == passes[1]).all() and not (passes[1] == passes[2]).all()
    np.testing.assert_array_equal(order, epoch_order(labels, 5, 3, passes=3).numpy())  # (seed, epoch) alone decide
    assert not (order == epoch_order(labels, 5, 4, passes=3).numpy()).all()


def test_a_min_steps_setting_that_would_need_too_many_passes_is_one_line():
    from dltrain.core.errors import UsageError
    from dltrain.training.preflight import epoch_passes

    assert epoch_passes(32, 32, 50) == 50
    with pytest.raises(UsageError, match="needs 1000000 passes over the 32 training samples"):
        epoch_passes(32, 32, 1_000_000)
