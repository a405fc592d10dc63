"""The configuration's schema: every section and key, its type, bounds, default and description."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator

from dltrain.core.sections import Section
from dltrain.networks import MODELS
from dltrain.networks.backbone import BackboneConfig
from dltrain.networks.settings import ModelBase

# Derived from the model registry: a network is its own module (config class and builder) plus one import.
MODEL_CONFIGS: dict[str, type[ModelBase]] = {name: MODELS.get(name).config for name in MODELS.names()}
DEFAULT_MODEL = "gru"
ModelConfig = Annotated[Union[tuple(MODEL_CONFIGS.values())], Field(discriminator="name")]  # noqa: UP007


def model_section(values: Any, info: ValidationInfo) -> Any:
    """Before the union picks its member: a key of another model is refused naming that model.
    Saved run configs (validation context `saved_run`) written when the section was one flat
    union of every model's keys drop those keys instead: they never had an effect."""
    if not isinstance(values, dict):
        return values
    values = {"name": DEFAULT_MODEL, **values}  # the union needs its tag even where the default model is meant
    name = values["name"]
    if name not in MODEL_CONFIGS:
        raise ValueError(MODELS.unknown_message(str(name)))
    own = MODEL_CONFIGS[name].model_fields
    foreign = {
        key: owner
        for key in values
        if key not in own
        for owner, config in MODEL_CONFIGS.items()
        if key in config.model_fields
    }
    if foreign and (info.context or {}).get("saved_run"):
        return {key: value for key, value in values.items() if key not in foreign}
    for key, owner in foreign.items():
        raise ValueError(f"model.{key} is a key of model {owner}, not of model {name}")
    return values


class RegularizationConfig(Section):
    """Penalties on the kernels of convolutions, GRUs and dense layers, added to the loss.

    Keras adds `l2 * sum(w**2)` to each batch's mean loss; the lecture's `lambda / (2n) * ||w||^2`
    with n training samples is `l2 = lambda / (2n)`."""

    # A penalty weight above 1 outweighs any loss these tasks have: the weights go to 0 or diverge.
    l1: float = Field(0.0, ge=0.0, le=1.0, description="weight of the sum of absolute kernel weights added to the loss")
    l2: float = Field(0.0, ge=0.0, le=1.0, description="weight of the sum of squared kernel weights added to the loss")


Switch = Literal["auto"] | bool


class TrainConfig(Section):
    epochs: int = Field(40, gt=0, le=100_000, description="most epochs to train (early stopping may end sooner)")
    batch_size: int = Field(
        64, gt=0, le=1_000_000, description="per replica; the global batch is batch_size x replicas"
    )
    min_steps_per_epoch: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="an epoch repeats passes over the training set, each freshly shuffled, until it has at least "
        "this many optimizer steps, so that epoch counts (budget, warm-up, patience, schedules) mean as much "
        "training on a small set as on a large one; 0: one pass",
    )
    seed: int = Field(42, ge=0, lt=2**32, description="seeds Python, NumPy and the backend (which take 32-bit seeds)")
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="'balanced' weighs each class by the inverse of its share"
    )
    freeze_backbone_epochs: int = Field(
        0,
        ge=0,
        le=100_000,
        description="model backbone: epochs with the backbone frozen (only the head learns, at the constant "
        "optimizer.frozen_learning_rate), before it is unfrozen at optimizer.learning_rate and the schedule",
    )
    sampling: Literal["natural", "balanced", "decay"] = Field(
        "natural",
        description="the order of each epoch: every sample once (natural); as many draws with each class equally "
        "likely (balanced); or balanced at first, moving towards the natural shares each epoch (decay)",
    )
    sampling_decay: float = Field(
        0.975,
        gt=0.0,
        le=1.0,
        description="decay: each sample's weight is a * (balancing weight, 1 / its class's share) + (1 - a) * (its "
        "class's final weight), a = sampling_decay ** epoch (team o_O: 0.975)",
    )
    sampling_final_weights: list[Annotated[float, Field(gt=0.0, le=1e6)]] | None = Field(
        None,
        min_length=2,
        max_length=1000,
        description="decay: each class's per-sample weight at the end, one per class (default: all 1, the natural "
        "shares; team o_O: [1, 2, 2, 2, 2])",
    )
    fit_on: Literal["train", "train+val"] = Field(
        "train",
        description="the splits the model trains on; train+val, for a final model once the epochs are chosen: "
        "nothing may then be chosen on validation (no early stopping, the last epoch kept; 'dltrain refit' sets it)",
    )
    loss: Literal["crossentropy", "mse"] = Field(
        "crossentropy",
        description="classification head: softmax cross-entropy (computed from the logits), or the squared error "
        "between "
        "the softmax and the one-hot label (the lecture's comparison); the regression head always uses MSE",
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="cross-entropy only: targets (1-e) one-hot + e/classes"
    )
    tensorboard: bool = Field(
        True, description="write TensorBoard logs (loss, metrics, learning rate per epoch) to RUN_DIR/tensorboard"
    )
    tensorboard_histograms: bool = Field(
        False, description="also weight histograms per epoch in the TensorBoard logs (larger files)"
    )
    tracking: Literal["none", "mlflow"] = Field(
        "none",
        description="mlflow: the config, metrics per epoch and the run's files to MLflow (MLFLOW_TRACKING_URI, else "
        "./mlruns); needs the mlflow extra",
    )
    tracking_experiment: str = Field(
        "dltrain", min_length=1, description="the MLflow experiment that runs are tracked in"
    )
    mixed_precision: Switch = Field(
        "auto",
        description="float16 compute with float32 weights (outputs, loss, augmentation and input standardisation "
        "stay float32); auto: on when every GPU has tensor cores (compute capability 7.0 or above), else off",
    )
    jit_compile: Switch = Field(
        "auto",
        description="XLA compilation; auto: on TensorFlow on for one GPU without deterministic ops or a cuDNN GRU, off "
        "on a CPU and under mirrored; always on JAX ('dltrain train --print-config' shows what auto becomes here)",
    )
    deterministic: bool = Field(
        False,
        description="deterministic ops (TensorFlow's switch; on JAX, XLA's GPU flag): bit-identical reruns, at some "
        "cost in speed",
    )
    cache: Literal["auto", "memory", "disk", "none"] = Field(
        "auto",
        description="decoded images (retina): memory, or a file in the run folder (disk), or decoded again every "
        "epoch (none); auto: memory when they take at most half of the memory available, else none",
    )
    strategy: Literal["auto", "default", "mirrored"] = Field(
        "auto",
        description="mirrored: data-parallel over every device of the host (TensorFlow's MirroredStrategy; on JAX "
        "keras.distribution); default: one device; auto: mirrored when the host has several GPUs",
    )


class AugmentConfig(Section):
    """On-the-fly augmentation, never applied to validation, test or predict: the winners' set for
    photographs (retina), time warping, rotation and scaling of inertial signals (activity, off by default). Each
    amount is the largest change drawn, uniformly, per image or window."""

    flip: bool = Field(True, description="mirror left-right and up-down, each with probability 1/2")
    rotation: bool = Field(True, description="any angle, 0-360 degrees: a fundus has no up")
    zoom: float = Field(0.1, ge=0.0, lt=1.0, description="scale by 1 +/- zoom (o_O: 1/1.15 to 1.15, about 0.15)")
    stretch: float = Field(
        0.0, ge=0.0, lt=1.0, description="aspect ratio: width x (1 +/- stretch), height / (1 +/- stretch)"
    )
    translation: float = Field(0.0, ge=0.0, lt=0.5, description="shift by up to this share of the image side")
    brightness: float = Field(0.1, ge=0.0, lt=1.0, description="add up to this share of the 0-255 range")
    contrast: float = Field(0.1, ge=0.0, lt=1.0, description="scale each channel about its mean by 1 +/- contrast")
    colour: float = Field(0.0, ge=0.0, lt=1.0, description="scale each colour channel by its own 1 +/- colour")
    signal_rotation: float = Field(
        0.0,
        ge=0.0,
        le=180.0,
        description="activity: rotate every sensor triad (channels <sensor>_x, _y, _z) of a window by one random "
        "rotation of up to this many degrees about a random axis, as if the phone sat differently; 0: off",
    )
    signal_scaling: float = Field(
        0.0, ge=0.0, lt=1.0, description="activity: scale each channel of a window by its own 1 +/- this; 0: off"
    )
    signal_time_warp: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="activity: warp a window's time, its pace drawn at 4 points within 1 +/- this and varying "
        "smoothly between them, its first and last readings kept (Um et al., 2017); 0: off",
    )
    placement: Literal["auto", "pipeline", "model"] = Field(
        "auto",
        description="pipeline: in tf.data on the CPU; model: a layer at the model's input, run on the accelerator in "
        "the training graph (the choice at 512 px on a GPU); auto: model on a GPU, pipeline on a CPU",
    )


def optimizer_names() -> list[str]:
    from dltrain.networks.optimizers import OPTIMIZERS

    return OPTIMIZERS.names()


class OptimizerConfig(Section):
    """The optimizer and its own parameters, passed through to Keras where the optimizer has them."""

    name: str = Field("adam", description="the optimizer (momentum and nesterov: SGD with that momentum)")
    learning_rate: float = Field(1e-3, gt=0.0, description="the rate at the start (the schedule changes it)")
    frozen_learning_rate: float = Field(
        1e-3, gt=0.0, description="train.freeze_backbone_epochs: the constant rate while the backbone is frozen"
    )
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="momentum and nesterov only")
    beta_1: float = Field(0.9, ge=0.0, lt=1.0, description="adam, adamw, nadam")
    beta_2: float = Field(0.999, ge=0.0, lt=1.0, description="adam, adamw, nadam")
    rho: float = Field(0.9, ge=0.0, lt=1.0, description="rmsprop: decay of the squared-gradient average")
    epsilon: float = Field(1e-7, gt=0.0, le=10.0, description="added to denominators for numerical stability")
    weight_decay: float | None = Field(None, ge=0.0, le=1.0, description="decoupled weight decay (adamw default 0.004)")
    clipnorm: float | None = Field(None, gt=0.0, description="clip each gradient to this norm")

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, name: str) -> str:
        from dltrain.networks.optimizers import OPTIMIZERS

        return OPTIMIZERS.check(name)


class ScheduleConfig(Section):
    """Learning-rate annealing; parameters are in epochs and converted to optimizer steps.

    step: lr0 * factor ** floor(t / every); exponential: lr0 * exp(-decay_rate * t);
    inverse_time: lr0 / (1 + decay_rate * t); linear: from lr0 to final_learning_rate over training;
    cosine: linear warm-up over warmup_epochs, then cosine to 0; plateau: multiply by factor after
    patience epochs without improvement of early_stopping.monitor; recorded: rates[t] (the last one
    after the list), as a run's history.csv recorded them (what `dltrain refit` replays of a plateau
    run). t is the epoch (0-based)."""

    name: Literal["constant", "step", "exponential", "inverse_time", "linear", "cosine", "plateau", "recorded"] = Field(
        "constant", description="how the rate changes over training (see the section's formulas in schema.py)"
    )
    factor: float = Field(0.5, gt=0.0, lt=1.0, description="step and plateau: the multiplier")
    every: int = Field(10, ge=1, le=100_000, description="step: epochs between cuts")
    decay_rate: float = Field(0.1, gt=0.0, le=100.0, description="exponential and inverse_time: k, per epoch")
    final_learning_rate: float = Field(0.0, ge=0.0, description="linear: the rate at the end of training")
    warmup_epochs: int = Field(0, ge=0, le=100_000, description="cosine: epochs of linear warm-up from 0")
    patience: int = Field(3, ge=1, le=100_000, description="plateau: epochs without improvement before the rate is cut")
    min_learning_rate: float = Field(1e-5, ge=0.0, description="plateau: the floor")
    rates: list[Annotated[float, Field(ge=0.0, le=1e3)]] | None = Field(
        None, min_length=1, max_length=100_000, description="recorded: the learning rate of each epoch, in order"
    )

    @model_validator(mode="after")
    def _rates_for_recorded(self) -> ScheduleConfig:
        if (self.name == "recorded") != (self.rates is not None):
            raise ValueError("schedule.rates is the recorded schedule's, and that schedule needs it")
        return self


class EarlyStoppingConfig(Section):
    monitor: Literal["val_loss", "val_accuracy", "val_kappa"] = Field(
        "val_loss", description="also what the best checkpoint and the plateau schedule follow"
    )
    patience: int = Field(8, ge=0, le=100_000, description="epochs without improvement before stopping; 0 disables")
    min_delta: float = Field(0.0, ge=0.0, description="smallest change of the monitor that counts as an improvement")
    start_from_epoch: int = Field(
        0, ge=0, le=100_000, description="warm-up epochs that are neither checkpointed nor judged"
    )
    restore_best: bool = Field(
        True, description="model.keras is the best epoch (true) or the last one (false); last.keras is always the last"
    )


class Config(Section):
    model: ModelConfig = MODEL_CONFIGS[DEFAULT_MODEL]()
    train: TrainConfig = TrainConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    augment: AugmentConfig = AugmentConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()

    _model_section = field_validator("model", mode="before")(model_section)

    @model_validator(mode="after")
    def _backbone_phases_fit_training(self) -> Config:
        frozen = self.train.freeze_backbone_epochs
        if frozen and not isinstance(self.model, BackboneConfig):
            raise ValueError("train.freeze_backbone_epochs applies to model backbone only (set model.name=backbone)")
        if frozen >= self.train.epochs:
            raise ValueError(
                f"train.freeze_backbone_epochs ({frozen}) must be below train.epochs ({self.train.epochs}), "
                "or the backbone would never be fine-tuned"
            )
        return self

    @model_validator(mode="after")
    def _nothing_chosen_on_trained_data(self) -> Config:
        if self.train.fit_on == "train":
            return self
        stopping = self.early_stopping
        chosen = [
            *(["early_stopping.patience=0"] if stopping.patience else []),
            *(["early_stopping.restore_best=false"] if stopping.restore_best else []),
            *(["a schedule other than plateau"] if self.schedule.name == "plateau" else []),
        ]
        if chosen:
            raise ValueError(
                "train.fit_on=train+val trains on the validation split, so nothing may be chosen on it: set "
                f"{', '.join(chosen)} (dltrain refit RUN_DIR sets them, with the epochs its run kept)"
            )
        return self

    @model_validator(mode="after")
    def _schedule_fits_training(self) -> Config:
        scheduled = self.train.epochs - self.train.freeze_backbone_epochs  # the frozen epochs run at a constant rate
        if self.schedule.name == "cosine" and self.schedule.warmup_epochs >= scheduled:
            span = (
                f"the {scheduled} epochs after the frozen ones (train.epochs {self.train.epochs} - "
                f"train.freeze_backbone_epochs {self.train.freeze_backbone_epochs})"
                if self.train.freeze_backbone_epochs
                else f"train.epochs ({self.train.epochs})"
            )
            raise ValueError(f"schedule.warmup_epochs ({self.schedule.warmup_epochs}) must be below {span}")
        if self.schedule.name == "linear" and self.schedule.final_learning_rate > self.optimizer.learning_rate:
            raise ValueError("schedule.final_learning_rate must not exceed optimizer.learning_rate (linear decay)")
        return self

    @model_validator(mode="after")
    def _warm_up_shorter_than_training(self) -> Config:
        if self.early_stopping.start_from_epoch >= self.train.epochs:
            raise ValueError(
                f"early_stopping.start_from_epoch ({self.early_stopping.start_from_epoch}) must be below "
                f"train.epochs ({self.train.epochs}), or no epoch could be kept as the best model "
                f"(lower it with --set early_stopping.start_from_epoch=...)"
            )
        return self

    @model_validator(mode="after")
    def _one_balancing(self) -> Config:
        if self.train.class_weight == "balanced" and self.train.sampling != "natural":
            raise ValueError(
                f"train.class_weight=balanced with train.sampling={self.train.sampling} would favour the rare classes "
                "twice; choose one of them"
            )
        if self.train.sampling_final_weights is not None and self.train.sampling != "decay":
            raise ValueError("train.sampling_final_weights applies to train.sampling=decay (the weights it decays to)")
        return self

    @model_validator(mode="after")
    def _loss_fits_head(self) -> Config:
        if self.train.label_smoothing and (self.train.loss != "crossentropy" or self.model.head != "classification"):
            raise ValueError("train.label_smoothing applies to the cross-entropy loss of the classification head only")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
