"""The retina input pipeline: per-epoch orders over image indices, the same batches whatever the
cache, the cache's choice recorded, the disk cache removed, augmentation in the pipeline or in the
model, and a retina run resumed after an interruption ending as the run never interrupted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import interrupt_after_epoch, invoke, kaggle_folder

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


def batches(data_dir, cache, tmp_path, first_epoch=0, epochs=2):
    from dltrain.data.feeds import TrainingContext
    from dltrain.tasks import TASKS

    config = load_config(
        "retina-cnn", [*SMALL, f"train.cache={cache}", f"train.epochs={epochs}", "augment.placement=pipeline"]
    )
    feeds = TASKS.get("retina").training_feeds(
        DataDir.open(data_dir), config, 4, TrainingContext(first_epoch, None, tmp_path)
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


def test_auto_caches_in_memory_when_it_fits_and_says_so(retina_data, tmp_path):
    _, feeds = batches(retina_data, "auto", tmp_path)
    cache = feeds.notes["cache"]
    assert (
        cache["requested"] == "auto" and cache["mode"] == "memory" and cache["decoded_bytes"] < cache["available_bytes"]
    )
    from dltrain.data.retina.pipeline import choose_cache

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
