"""One typed configuration: defaults < preset or YAML file < `--set key=value`, validated on load."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dltrain.core.errors import UsageError

logger = logging.getLogger("dltrain")

class Section(BaseModel):
    # Unknown keys are errors, and assignment re-validates so nothing slips in after loading.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Initializer = Literal[
    "zeros", "normal", "uniform_fan_in", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "orthogonal"
]


class ModelConfig(Section):
    name: str = "gru"
    units: int = Field(64, gt=0, description="units per recurrent layer")
    layers: int = Field(2, gt=0, description="number of stacked recurrent layers")
    bidirectional: bool = False
    conv_layers: int = Field(0, ge=0, description="convolution blocks: before the GRU (0: none), or the CNN's depth")
    conv_filters: int = Field(64, gt=0, description="filters per block (the CNN doubles them every block)")
    conv_kernel: int = Field(5, gt=0, description="kernel size of the convolutions")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout between layers and before the head")
    recurrent_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="GRU: dropout on the recurrent state; any value above 0 rules out the fast cuDNN kernel on a GPU"
    )
    batch_norm: bool = False
    activation: Literal["relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid"] = "relu"
    initializer: Initializer = Field("glorot_uniform", description="kernels of convolutions, GRUs and dense layers")
    recurrent_initializer: Initializer = Field("orthogonal", description="the GRUs' recurrent kernels")
    input_noise: float = Field(0.0, ge=0.0, description="standard deviation of Gaussian noise on the (scaled) inputs, training only")
    pooling: Literal["global_average", "flatten"] = Field("global_average", description="CNN: how the last feature map becomes a vector")
    dense_units: int = Field(0, ge=0, description="units of a dense layer before the head (0: none)")
    head: Literal["classification", "regression"] = Field(
        "classification", description="softmax over the classes, or one output regressed on the grade (MSE) with thresholds tuned on validation"
    )

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        from dltrain.networks import MODELS

        return MODELS.check(name)


class RegularizationConfig(Section):
    """Penalties on the kernels of convolutions, GRUs and dense layers, added to the loss.

    Keras adds `l2 * sum(w**2)` to each batch's mean loss; the lecture's `lambda / (2n) * ||w||^2`
    with n training samples is `l2 = lambda / (2n)`."""

    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)


Switch = Union[Literal["auto"], bool]


class TrainConfig(Section):
    epochs: int = Field(40, gt=0)
    batch_size: int = Field(64, gt=0, description="per replica; the global batch is batch_size x replicas")
    seed: int = Field(42, ge=0)
    class_weight: Literal["none", "balanced"] = Field("none", description="'balanced' weighs each class by the inverse of its share")
    loss: Literal["crossentropy", "mse"] = Field(
        "crossentropy",
        description="classification head: softmax cross-entropy (computed from the logits), or the squared error between "
        "the softmax and the one-hot label (the lecture's comparison); the regression head always uses MSE",
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross-entropy only: targets (1-e) one-hot + e/classes")
    tensorboard: bool = Field(True, description="write TensorBoard logs (loss, metrics, learning rate per epoch) to RUN_DIR/tensorboard")
    tensorboard_histograms: bool = Field(False, description="also weight histograms per epoch in the TensorBoard logs (larger files)")
    tracking: Literal["none", "mlflow"] = Field(
        "none", description="mlflow: the config, metrics per epoch and the run's files to MLflow (MLFLOW_TRACKING_URI, else ./mlruns); needs the mlflow extra"
    )
    tracking_experiment: str = Field("dltrain", min_length=1, description="the MLflow experiment that runs are tracked in")
    mixed_precision: Switch = Field("auto", description="float16 compute with float32 weights; auto: on for GPUs with tensor cores")
    jit_compile: Switch = Field("auto", description="XLA compilation; auto: Keras decides (on for a single GPU, off on CPU)")
    deterministic: bool = Field(False, description="TensorFlow's deterministic ops: bit-identical reruns, at some cost in speed")
    strategy: Literal["default", "mirrored"] = Field(
        "default", description="mirrored: data-parallel over every GPU of the host (tf.distribute.MirroredStrategy)"
    )


class AugmentConfig(Section):
    """On-the-fly image augmentation (retina); never applied to validation, test or predict."""

    flip: bool = True
    rotation: bool = Field(True, description="any angle, 0-360 degrees: a fundus has no up")
    zoom: float = Field(0.1, ge=0.0, lt=1.0)
    brightness: float = Field(0.1, ge=0.0, lt=1.0)
    contrast: float = Field(0.1, ge=0.0, lt=1.0)


class OptimizerConfig(Section):
    """The optimizer and its own parameters, passed through to Keras where the optimizer has them."""

    name: str = "adam"
    learning_rate: float = Field(1e-3, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="momentum and nesterov only")
    beta_1: float = Field(0.9, ge=0.0, lt=1.0, description="adam, adamw, nadam")
    beta_2: float = Field(0.999, ge=0.0, lt=1.0, description="adam, adamw, nadam")
    rho: float = Field(0.9, ge=0.0, lt=1.0, description="rmsprop: decay of the squared-gradient average")
    epsilon: float = Field(1e-7, gt=0.0)
    weight_decay: Optional[float] = Field(None, ge=0.0, description="decoupled weight decay (adamw default 0.004)")
    clipnorm: Optional[float] = Field(None, gt=0.0, description="clip each gradient to this norm")

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, name: str) -> str:
        from dltrain.training.optimizers import OPTIMIZERS

        return OPTIMIZERS.check(name)


class ScheduleConfig(Section):
    """Learning-rate annealing; parameters are in epochs and converted to optimizer steps.

    step: lr0 * factor ** floor(t / every); exponential: lr0 * exp(-decay_rate * t);
    inverse_time: lr0 / (1 + decay_rate * t); linear: from lr0 to final_learning_rate over training;
    cosine: linear warm-up over warmup_epochs, then cosine to 0; plateau: multiply by factor after
    patience epochs without improvement of early_stopping.monitor. t is the epoch (0-based)."""

    name: Literal["constant", "step", "exponential", "inverse_time", "linear", "cosine", "plateau"] = "constant"
    factor: float = Field(0.5, gt=0.0, lt=1.0, description="step and plateau: the multiplier")
    every: int = Field(10, ge=1, description="step: epochs between cuts")
    decay_rate: float = Field(0.1, gt=0.0, description="exponential and inverse_time: k, per epoch")
    final_learning_rate: float = Field(0.0, ge=0.0, description="linear: the rate at the end of training")
    warmup_epochs: int = Field(0, ge=0, description="cosine: epochs of linear warm-up from 0")
    patience: int = Field(3, ge=1, description="plateau: epochs without improvement before the rate is cut")
    min_learning_rate: float = Field(1e-5, ge=0.0, description="plateau: the floor")


class EarlyStoppingConfig(Section):
    monitor: Literal["val_loss", "val_accuracy", "val_kappa"] = Field(
        "val_loss", description="also what the best checkpoint and the plateau schedule follow"
    )
    patience: int = Field(8, ge=0, description="epochs without improvement before stopping; 0 disables")
    min_delta: float = Field(0.0, ge=0.0, description="smallest change of the monitor that counts as an improvement")
    start_from_epoch: int = Field(0, ge=0, description="warm-up epochs that are neither checkpointed nor judged")
    restore_best: bool = Field(True, description="model.keras is the best epoch (true) or the last one (false); last.keras is always the last")


class Config(Section):
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    augment: AugmentConfig = AugmentConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()

    @model_validator(mode="after")
    def _schedule_fits_training(self) -> "Config":
        if self.schedule.name == "cosine" and self.schedule.warmup_epochs >= self.train.epochs:
            raise ValueError(f"schedule.warmup_epochs ({self.schedule.warmup_epochs}) must be below train.epochs ({self.train.epochs})")
        if self.schedule.name == "linear" and self.schedule.final_learning_rate > self.optimizer.learning_rate:
            raise ValueError("schedule.final_learning_rate must not exceed optimizer.learning_rate (linear decay)")
        return self

    @model_validator(mode="after")
    def _warm_up_shorter_than_training(self) -> "Config":
        if self.early_stopping.start_from_epoch >= self.train.epochs:
            raise ValueError(
                f"early_stopping.start_from_epoch ({self.early_stopping.start_from_epoch}) must be below "
                f"train.epochs ({self.train.epochs}), or no epoch could be kept as the best model "
                f"(lower it with --set early_stopping.start_from_epoch=...)"
            )
        return self

    @model_validator(mode="after")
    def _loss_fits_head(self) -> "Config":
        if self.train.label_smoothing and (self.train.loss != "crossentropy" or self.model.head != "classification"):
            raise ValueError("train.label_smoothing applies to the cross-entropy loss of the classification head only")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def preset_names() -> list[str]:
    folder = resources.files("dltrain.config") / "presets"
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def _read_yaml_mapping(text: str, origin: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"{origin}: not valid YAML ({str(error).splitlines()[0]})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"{origin}: expected a mapping of sections (model:, train:, ...), got {type(loaded).__name__}")
    return loaded


def read_config_source(name_or_file: str) -> dict[str, Any]:
    """A preset shipped with the package, or a YAML file on disk."""
    path = Path(name_or_file)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist (presets: {', '.join(preset_names())})")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not a text file (a YAML config must be UTF-8 text)") from None
        return _read_yaml_mapping(text, str(path))
    if name_or_file not in preset_names():
        raise UsageError(f"unknown config {name_or_file!r}: not a file, and not a preset ({', '.join(preset_names())})")
    text = (resources.files("dltrain.config") / "presets" / f"{name_or_file}.yaml").read_text()
    return _read_yaml_mapping(text, f"preset {name_or_file}")


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """`model.units=128` -> (["model", "units"], 128); the value is read as YAML (numbers, booleans)."""
    key, separator, raw_value = assignment.partition("=")
    if not separator or not key.strip():
        raise UsageError(f"--set {assignment!r}: expected key=value, e.g. --set train.epochs=10")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return key.strip().split("."), value


def _apply_override(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"--set {'.'.join(path)}: {'.'.join(path[: depth + 1])} is not a section")
        node = child
    node[path[-1]] = value


def valid_keys() -> list[str]:
    keys = []
    for section_name, section_field in Config.model_fields.items():
        for key in section_field.annotation.model_fields:
            keys.append(f"{section_name}.{key}")
    return keys


def _describe_validation_error(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown config key {key!r}; valid keys: {', '.join(valid_keys())}"
    message = first["msg"].removeprefix("Value error, ")
    if not key:  # a rule across keys: the message names them
        return f"{origin}: {message}"
    return f"{origin}: {key} = {first.get('input')!r}: {message}"


# Warm-ups counted in epochs: (section, key, the schedule it applies to or None for any).
WARM_UPS = (("early_stopping", "start_from_epoch", None), ("schedule", "warmup_epochs", "cosine"))


def _default(section: str, key: str) -> Any:
    return Config.model_fields[section].annotation.model_fields[key].default


def fit_warm_ups_to_epochs(tree: dict[str, Any], explicit: set[str]) -> None:
    """A preset's warm-up that is as long as the whole run (e.g. 10 warm-up epochs with
    `--set train.epochs=2`) is shortened to a quarter of the run, with one logged line; the value
    used is what config.yaml records. A warm-up the user set with --set is kept, and a conflict
    with it is refused by validation as before."""
    epochs = tree.get("train", {}).get("epochs", _default("train", "epochs")) if isinstance(tree.get("train", {}), dict) else None
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        return  # validation reports the bad value itself
    for section, key, schedule in WARM_UPS:
        values = tree.get(section, {})
        if not isinstance(values, dict) or f"{section}.{key}" in explicit:
            continue
        schedule_name = tree.get("schedule", {}).get("name", _default("schedule", "name")) if isinstance(tree.get("schedule"), dict) else None
        warm_up = values.get(key, _default(section, key))
        if schedule is not None and schedule_name != schedule or not isinstance(warm_up, int) or warm_up < epochs:
            continue
        tree.setdefault(section, {})[key] = epochs // 4
        logger.info("%s.%s %d is not below train.epochs %d: using %d (a quarter of the run)", section, key, warm_up, epochs, epochs // 4)


def load_config(name_or_file: str | None, overrides: list[str] | None = None) -> Config:
    """Layer the defaults, a preset or file, then `--set` overrides; validate once at the end."""
    tree: dict[str, Any] = read_config_source(name_or_file) if name_or_file else {}
    origin = f"config {name_or_file}" if name_or_file else "config"
    explicit = set()
    for assignment in overrides or []:
        path, value = parse_override(assignment)
        _apply_override(tree, path, value)
        explicit.add(".".join(path))
    fit_warm_ups_to_epochs(tree, explicit)
    if overrides:
        origin = f"{origin} with --set"
    try:
        return Config.model_validate(tree)
    except ValidationError as error:
        raise UsageError(_describe_validation_error(error, origin)) from None
