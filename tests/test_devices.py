"""What `auto` becomes on machines this CPU is not (training.resolution, a pure function), and every
combination a machine can resolve to trained here on tiny inputs: the settings a GPU gets, forced.

The training combinations are a pairwise covering (every pair of two factors' values in some run)
of model x precision x XLA x augmentation x strategy x deterministic ops, built from the registries;
mirrored runs on the two logical CPU devices of every test process (conftest), with a training set
whose last batch is smaller than the replica count."""

from __future__ import annotations

import itertools
import json
import random

import keras
import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder, write_classroom_folder
from helpers.training import REPLICAS, interrupt_after_epoch, train_step_traces

from dltrain.config.loading import load_config
from dltrain.core.errors import UsageError
from dltrain.networks import MODELS
from dltrain.networks.cnn import CnnConfig
from dltrain.training.resolution import Machine, Pinned, check_batch, resolve
from dltrain.training.session import resume_run, train_run

MACHINES = {
    "cpu": Machine(),
    "cpu-2": Machine(cpu_devices=2),  # two logical CPU devices, as every test process has (conftest)
    "gpu-6.1": Machine.with_gpus("6.1"),
    "gpu-7.0": Machine.with_gpus("7.0"),
    "gpu-8.0": Machine.with_gpus("8.0"),
    "gpu-9.0": Machine.with_gpus("9.0"),
    "4-gpus-8.0": Machine.with_gpus("8.0", 4),
    "jax-cpu": Machine("jax", cpu_devices=2),
    "jax-gpu-6.1": Machine.with_gpus("6.1", backend="jax"),
    "jax-gpu-9.0": Machine.with_gpus("9.0", backend="jax"),
    "jax-2-processes-of-4-gpus": Machine("jax", Machine.with_gpus("8.0", 4).gpus, processes=2),
}
# What the image models get: (precision, XLA, augmentation, strategy, replicas).
EXPECTED = {
    "cpu": ("float32", False, "pipeline", "default", 1),
    "cpu-2": ("float32", False, "pipeline", "default", 1),
    "gpu-6.1": ("float32", True, "model", "default", 1),
    "gpu-7.0": ("mixed_float16", True, "model", "default", 1),
    "gpu-8.0": ("mixed_float16", True, "model", "default", 1),
    "gpu-9.0": ("mixed_float16", True, "model", "default", 1),
    "4-gpus-8.0": ("mixed_float16", False, "model", "mirrored", 4),
    "jax-cpu": ("float32", True, "pipeline", "default", 1),
    "jax-gpu-6.1": ("float32", True, "model", "default", 1),
    "jax-gpu-9.0": ("mixed_float16", True, "model", "default", 1),
    "jax-2-processes-of-4-gpus": ("mixed_float16", True, "model", "data-parallel", 8),
}
PRESETS = {
    "har-gru": [],
    "retina-cnn": [],
    "retina-512": [],
    "backbone": ["model.name=backbone", "model.backbone=EfficientNetV2S"],
}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("machine", MACHINES)
def test_what_auto_becomes_on_each_machine(machine, preset):
    config = load_config("retina-cnn" if preset == "backbone" else preset, PRESETS[preset])
    resolution = resolve(MACHINES[machine], config)
    precision, xla, augmentation, strategy, replicas = EXPECTED[machine]
    tensorflow_gpu = MACHINES[machine].backend == "tensorflow" and bool(MACHINES[machine].gpus)
    if preset == "har-gru" and tensorflow_gpu:
        xla = False  # XLA cannot compile cuDNN's GRU kernel, the faster of the two
    assert (resolution.precision, resolution.xla, resolution.augmentation) == (precision, xla, augmentation)
    assert (resolution.strategy, resolution.replicas) == (strategy, replicas)
    assert resolution.cudnn_gru == (preset == "har-gru" and tensorflow_gpu)  # JAX's GRU is a scan


@pytest.mark.parametrize(
    ("machine", "preset", "settings", "fragment"),
    [
        ("cpu-2", "retina-cnn", ["train.strategy=mirrored", "train.jit_compile=true"], "under train.strategy=mirrored"),
        ("4-gpus-8.0", "retina-cnn", ["train.jit_compile=true"], "under train.strategy=mirrored"),
        ("cpu", "retina-cnn", ["train.deterministic=true", "train.jit_compile=true"], "deterministic ops"),
        ("gpu-8.0", "har-gru", ["train.jit_compile=true"], "cuDNN's GRU kernel"),
    ],
)
def test_combinations_a_machine_cannot_run_are_refused_naming_what_to_set(machine, preset, settings, fragment):
    with pytest.raises(UsageError, match=fragment) as refused:
        resolve(MACHINES[machine], load_config(preset, settings))
    assert "; set train." in str(refused.value)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_mirrored_on_one_device_trains_without_a_strategy(backend):
    """A one-replica strategy changes nothing but costs: on JAX (measured on an H200 and here) the step
    is compiled a second time under the distribution, so one device gets no strategy at all."""
    for machine in (Machine(backend), Machine.with_gpus("9.0", backend=backend)):
        resolution = resolve(machine, load_config("retina-cnn", ["train.strategy=mirrored"]))
        assert (resolution.strategy, resolution.replicas) == ("default", 1)
        assert any("found one device only" in note for note in resolution.notes)
    two = resolve(Machine(backend, cpu_devices=2), load_config("retina-cnn", ["train.strategy=mirrored"]))
    assert (two.strategy, two.replicas) == ("mirrored" if backend == "tensorflow" else "data-parallel", 2)


def test_xla_with_a_gru_on_a_gpu_is_possible_without_cudnn_and_several_processes_need_jax():
    without_cudnn = load_config("har-gru", ["model.recurrent_dropout=0.1", "train.jit_compile=true"])
    assert resolve(MACHINES["gpu-8.0"], without_cudnn).xla
    with pytest.raises(UsageError, match="--backend jax"):
        resolve(Machine(processes=2), load_config("har-gru", []))


@pytest.mark.parametrize("machine", [name for name, machine in MACHINES.items() if machine.processes == 1])
def test_a_resolution_forced_on_this_cpu_gives_the_same_choices(machine):
    for preset in ("har-gru", "retina-cnn"):
        chosen = resolve(MACHINES[machine], load_config(preset, []))
        here = Machine(MACHINES[machine].backend, cpu_devices=REPLICAS)
        forced = resolve(here, load_config(preset, chosen.settings()))
        assert (forced.precision, forced.xla, forced.augmentation) == (
            chosen.precision,
            chosen.xla,
            chosen.augmentation,
        )
        assert forced.strategy == chosen.strategy and forced.deterministic == chosen.deterministic


def test_a_resumed_run_keeps_its_precision_augmentation_and_global_batch():
    pinned = Pinned(precision="mixed_float16", augmentation="model", global_batch=128)
    resolution = resolve(Machine(), load_config("retina-cnn", []), pinned)
    assert (resolution.precision, resolution.augmentation) == ("mixed_float16", "model")
    assert check_batch(64, 1, 1000, pinned.global_batch) == (128, 128)  # two replicas' batch, now on one
    assert check_batch(64, 2, 100) == (50, 100)  # clamped counting replicas
    with pytest.raises(UsageError, match="3 replicas"):
        check_batch(8, 3, 2)


# ----- every combination trains here ------------------------------------------------------------

TINY = {  # by model: the smallest of each, batches of 11 windows or 7 photographs
    "gru": ["model.units=4", "model.layers=1", "model.conv_layers=1", "model.conv_filters=4", "train.batch_size=11"],
    "resnet1d": ["model.block_filters=[4,8]", "model.kernel_sizes=[5,3]", "train.batch_size=11"],
    "inception": [
        "model.filters=2",
        "model.depth=3",
        "model.bottleneck=2",
        "model.kernel_sizes=[5,3]",
        "train.batch_size=11",
    ],
    "cnn": ["model.conv_layers=2", "model.conv_filters=4", "model.dense_units=4", "train.batch_size=7"],
}
BUDGET = ["train.epochs=1", "early_stopping.patience=0", "early_stopping.start_from_epoch=0", "train.tensorboard=false"]
# (task, preset, settings): every model the registry builds, both heads and each pooling of the CNN.
POOLINGS = CnnConfig.model_fields["pooling"].annotation.__args__
MODEL_VARIANTS = {
    "gru": ("har", "har-gru", ["model.bidirectional=true", "model.dropout=0.3", "augment.signal_time_warp=0.1"]),
    "resnet1d": ("har", "har-resnet1d", ["model.dropout=0.3", "model.dense_units=4"]),
    "inception": ("har", "har-inception", ["model.residual_every=1"]),
    **{
        f"cnn-{head}-{pooling}": ("retina", "retina-cnn", [f"model.head={head}", f"model.pooling={pooling}"])
        for pooling, head in zip(POOLINGS, itertools.cycle(["classification", "regression"]))
    },
    # retina-512's parts (strided stem, overlapping pooling, leaky ReLU, filters per block) at 32 px;
    # retina-512 itself, narrowed, trains below as one GPU would run it (its 6 blocks need 253 px).
    "cnn-winners-parts": (
        "retina",
        "retina-512",
        ["model.stem_filters=4", "model.conv_layers=2", "model.block_filters=[4,8]", "model.dense_units=8"],
    ),
}
RETINA_512_NARROW = ["model.block_filters=[4,4,8,8,8,8]", "model.dense_units=8"]
FACTORS = {
    "model": list(MODEL_VARIANTS),
    "precision": ["float32", "mixed"],
    "xla": [False, True],
    "augmentation": ["pipeline", "model"],
    "strategy": ["default", "mirrored"],
    "deterministic": [False, True],
}


def runs_on_tensorflow(combination: dict) -> bool:
    """TensorFlow runs no XLA step under mirrored or deterministic ops (refused: the test below)."""
    return not (combination["xla"] and (combination["strategy"] == "mirrored" or combination["deterministic"]))


def pairwise(factors: dict, allowed, attempts: int = 100) -> list[dict]:
    """A covering: allowed combinations until every pair of two factors' values that some allowed
    combination has is in one of them. Greedy (the combination covering most pairs still uncovered
    next), ties broken in a seeded random order; the smallest of `attempts` such coverings (each row
    is a training, so every row saved is seconds of every test run)."""
    every = [dict(zip(factors, values)) for values in itertools.product(*factors.values())]
    every = [combination for combination in every if allowed(combination)]
    pairs = [set(itertools.combinations(sorted(combination.items(), key=str), 2)) for combination in every]
    rng, smallest = random.Random(0), None
    for _ in range(attempts):
        order, uncovered, chosen = rng.sample(range(len(every)), len(every)), set().union(*pairs), []
        while uncovered:
            best = max(order, key=lambda index: len(pairs[index] & uncovered))
            chosen.append(best)
            uncovered -= pairs[best]
        smallest = chosen if smallest is None or len(chosen) < len(smallest) else smallest
    return [every[index] for index in smallest]


COMBINATIONS = pairwise(FACTORS, runs_on_tensorflow)


def combination_id(combination: dict) -> str:
    return "-".join(
        str(value) if not isinstance(value, bool) else f"{key}={value}" for key, value in combination.items()
    )


def variant_settings(variant: str) -> tuple[str, str, list[str]]:
    """(DATA_DIR name, preset, settings) of a model variant at the tiny budget, nothing forced."""
    task, preset, model_settings = MODEL_VARIANTS[variant]
    return task, preset, [*TINY[variant.split("-")[0]], *model_settings, *BUDGET]


def forced_settings(combination: dict) -> list[str]:
    return [
        f"train.mixed_precision={combination['precision'] == 'mixed'}",
        f"train.jit_compile={combination['xla']}",
        f"augment.placement={combination['augmentation']}",
        f"train.strategy={combination['strategy']}",
        f"train.deterministic={combination['deterministic']}",
    ]


def sets(settings: list[str]) -> list[str]:
    return [part for setting in settings for part in ("--set", setting)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Training sets of 45 windows (batches of 11 per replica) and 15 photographs (7 per replica): with
    2 replicas the last batch of an epoch holds 1 sample, which used to leave one replica empty."""
    root = tmp_path_factory.mktemp("devices")
    har = write_classroom_folder(root / "classroom", per_class=(15, 5), with_test=False)
    assert invoke("prepare", "har", har, "--out", root / "har").exit_code == 0
    kaggle = kaggle_folder(root / "kaggle", patients=12)
    assert invoke("prepare", "retina", kaggle, "--out", root / "whole", "--size", 32, "--workers", 1).exit_code == 0
    alone = pd.read_csv(root / "whole" / "train.csv")["image"].iloc[0]  # one eye of a training patient goes
    (kaggle / "train" / f"{alone}.jpeg").unlink()
    labels = pd.read_csv(kaggle / "trainLabels.csv")
    labels[labels["image"] != alone].to_csv(kaggle / "trainLabels.csv", index=False)
    paths = {"har": root / "har"}
    for name, size in (("retina", 32), ("retina-256", 256)):
        result = invoke("prepare", "retina", kaggle, "--out", root / name, "--size", size, "--workers", 1)
        assert result.exit_code == 0, result.output
        paths[name] = root / name
    sizes = {name: json.loads((path / "meta.json").read_text())["splits"]["train"] for name, path in paths.items()}
    assert sizes == {"har": 45, "retina": 15, "retina-256": 15}
    return paths


def test_the_covering_holds_every_pair_and_every_model_and_what_one_gpu_gives_the_cnn():
    assert {combination["model"] for combination in COMBINATIONS} == set(MODEL_VARIANTS)
    assert set(MODELS.names()) - {"backbone"} <= {name.split("-")[0] for name in MODEL_VARIANTS}  # test_backbone
    assert {pooling for pooling in POOLINGS} <= {name.split("-")[-1] for name in MODEL_VARIANTS if "cnn" in name}
    gpu = resolve(MACHINES["gpu-8.0"], load_config("retina-cnn", []))
    as_row = {"precision": "mixed", "xla": True, "augmentation": "model", "strategy": "default", "deterministic": False}
    assert (gpu.precision, gpu.xla, gpu.augmentation, gpu.strategy) == ("mixed_float16", True, "model", "default")
    assert any(row["model"].startswith("cnn-") and row.items() >= as_row.items() for row in COMBINATIONS)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_each_combination_trains_and_scores_here(combination, data, tmp_path, monkeypatch):
    traces = train_step_traces(monkeypatch)
    task, preset, settings = variant_settings(combination["model"])
    run = tmp_path / "run"
    provenance = train_run(data[task], run, load_config(preset, settings + forced_settings(combination)), preset)
    assert provenance.status == "complete"
    assert provenance.precision == ("mixed_float16" if combination["precision"] == "mixed" else "float32")
    assert provenance.xla is combination["xla"] and provenance.deterministic_ops is combination["deterministic"]
    replicas = REPLICAS if combination["strategy"] == "mirrored" else 1
    placement = "model" if task == "har" else combination["augmentation"]  # activity signals: a layer, always
    assert provenance.replicas == replicas and provenance.augmentation == placement
    assert len(traces) == replicas  # one trace, which runs the step once per replica
    history = pd.read_csv(run / "history.csv")
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["val_loss"]).all()
    assert all(np.isfinite(weight).all() for weight in keras.saving.load_model(run / "model.keras").get_weights())
    assert keras.config.dtype_policy().name == "float32"  # the process-wide policy is put back


@pytest.mark.parametrize("preset", ["har-gru", "retina-512"])
def test_what_one_gpu_resolves_to_trains_and_evaluates_here(preset, data, tmp_path):
    """What `auto` becomes on a GPU of compute capability 8.0, forced on this CPU, through the command
    line (retina-cnn's: a row of the covering above is exactly it, and the JAX test of test_multihost)."""
    task = {"har-gru": "har", "retina-cnn": "retina", "retina-512": "retina-256"}[preset]
    variant = {"har-gru": "gru", "retina-cnn": "cnn-regression-global_max", "retina-512": "cnn-winners-parts"}
    _, _, settings = variant_settings(variant[preset])
    if preset == "retina-512":  # its own six blocks, narrowed
        own = ("model.conv_", "model.block_", "model.stem")
        settings = [setting for setting in settings if not setting.startswith(own)] + RETINA_512_NARROW
    gpu = resolve(MACHINES["gpu-8.0"], load_config(preset, settings)).settings()
    run = tmp_path / "run"
    result = invoke("train", data[task], "--out", run, "--config", preset, *sets(settings + gpu))
    assert result.exit_code == 0, result.output
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["precision"] == "mixed_float16" and provenance["xla"] is (preset != "har-gru")
    scored = invoke("evaluate", run, "--split", "val" if task == "har" else "test", "--json")  # classroom: no test
    assert scored.exit_code == 0, scored.output
    assert 0 <= json.loads(scored.stdout)["accuracy"] <= 1


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_mirrored_with_batch_norm_and_a_last_batch_of_one_sample_trains_finite(precision, data, tmp_path):
    """15 photographs in batches of 7 per replica: the epoch's last sample goes (it would have left a
    replica an empty batch: NaN batch-norm statistics), and under mixed precision a step that
    overflows on either replica is skipped on both (Keras's loss scaling asked the first replica only)."""
    _, _, settings = variant_settings("cnn-regression-gem")
    combination = {**dict(zip(FACTORS, (values[0] for values in FACTORS.values()))), "strategy": "mirrored"}
    combination.update(precision=precision, augmentation="model")
    config = load_config("retina-cnn", [*settings, *forced_settings(combination), "train.epochs=2"])
    provenance = train_run(data["retina"], tmp_path / "run", config, "retina-cnn")
    assert provenance.replicas == REPLICAS and provenance.input["steps_per_epoch"] == 1  # 14 draws of 15
    assert config.model.batch_norm
    model = keras.saving.load_model(tmp_path / "run" / "last.keras")
    assert all(np.isfinite(weight).all() for weight in model.get_weights())
    assert np.isfinite(pd.read_csv(tmp_path / "run" / "history.csv")[["loss", "val_loss"]].to_numpy()).all()


def test_a_combination_tensorflow_cannot_run_is_refused_before_any_data_is_read(data, tmp_path):
    result = invoke(
        "train",
        data["retina"],
        "--out",
        tmp_path / "run",
        "--set",
        "train.strategy=mirrored",
        "--set",
        "train.jit_compile=true",
    )
    assert (
        result.exit_code == 2 and "train.jit_compile=true does not run under train.strategy=mirrored" in result.output
    )
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_resume_across_a_change_of_machine_keeps_what_the_run_started_with(data, tmp_path):
    """A run started on a GPU (mixed precision, augmentation in the model) resumed on this CPU, and a
    run started on two replicas resumed on one: each continues as it began."""
    _, _, settings = variant_settings("cnn-classification-global_average")
    settings += ["train.epochs=2", "train.jit_compile=false"]  # XLA would only cost compiling time here
    config = load_config("retina-cnn", settings)
    gpu_run = tmp_path / "gpu"
    with pytest.raises(KeyboardInterrupt):
        train_run(
            data["retina"],
            gpu_run,
            config,
            "retina-cnn",
            machine=MACHINES["gpu-8.0"],
            extra_callbacks=[interrupt_after_epoch(1)],
        )
    resumed = resume_run(gpu_run)  # this machine: auto would be float32 and the pipeline
    assert resumed.status == "complete" and resumed.precision == "mixed_float16" and resumed.augmentation == "model"

    mirrored = load_config("retina-cnn", [*settings, "train.strategy=mirrored"])
    two = tmp_path / "two-replicas"
    with pytest.raises(KeyboardInterrupt):
        train_run(data["retina"], two, mirrored, "retina-cnn", extra_callbacks=[interrupt_after_epoch(1)])
    started = json.loads((two / "provenance.json").read_text())
    resumed = resume_run(two, machine=Machine(cpu_devices=1))
    assert resumed.status == "complete" and resumed.replicas == 2  # provenance keeps the start's record
    assert resumed.global_batch == started["global_batch"] == 2 * 7
    assert resumed.input["steps_per_epoch"] == started["input"]["steps_per_epoch"]


def test_each_replica_draws_its_own_dropout_masks_and_augmentation():
    """Under mirrored every replica starts its random generators from the same state: on identical
    images, both replicas drew identical masks and augmentations until the draws were made distinct."""
    import tensorflow as tf

    from dltrain.config.schema import AugmentConfig
    from dltrain.networks.augmentation import RetinaAugmentation
    from dltrain.training.devices import DeviceSetup, distinct_replica_draws, mirrored_strategy

    resolution = resolve(Machine(cpu_devices=REPLICAS), load_config("retina-cnn", ["train.strategy=mirrored"]))
    strategy = mirrored_strategy(tuple(device.name for device in tf.config.list_logical_devices("CPU")))
    with strategy.scope():
        inputs = keras.Input((16, 16, 3))
        augmented = RetinaAugmentation(AugmentConfig().model_dump(exclude={"placement"}), seed=3)(inputs)
        model = keras.Model(inputs, keras.layers.Dropout(0.5, seed=4)(augmented))
    images = np.repeat(np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype(np.float32), REPLICAS, 0)
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(images).batch(REPLICAS))

    def replicas_outputs():
        step = tf.function(lambda batch: strategy.run(lambda x: model(x, training=True), args=(batch,)))
        outputs = strategy.experimental_local_results(step(next(iter(batches))))
        return [np.asarray(output) for output in outputs]

    first, second = replicas_outputs()
    np.testing.assert_array_equal(first, second)  # the same draws: what mirrored did before
    distinct_replica_draws(model, DeviceSetup(resolution, Machine(cpu_devices=REPLICAS), strategy))
    first, second = replicas_outputs()
    assert not np.allclose(first, second)
