"""Optimizer and learning-rate schedule registries.

Optimizers: build(config, learning_rate) -> keras optimizer, where `learning_rate` is a number or
a Keras schedule. Schedules: build(config, learning_rate, steps_per_epoch, epochs) -> a number
(constant rate, or one the plateau callback will cut) or a Keras schedule, which counts optimizer
steps: every parameter given in epochs is converted here. Keras is imported inside the builders so
that validating a config stays instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from dltrain.core.registry import Registry

OPTIMIZERS: Registry[Callable] = Registry("optimizer")
SCHEDULES: Registry[Callable] = Registry("schedule")


def current_learning_rate(optimizer) -> float:
    """The rate the optimizer uses now: a schedule's value at the current step, or the plain number."""
    learning_rate = optimizer.learning_rate
    return float(learning_rate.numpy() if hasattr(learning_rate, "numpy") else learning_rate)


def _common(config) -> dict:
    """Arguments every Keras optimizer takes; unset ones keep Keras's defaults."""
    arguments = {}
    if config.weight_decay is not None:
        arguments["weight_decay"] = config.weight_decay
    if config.clipnorm is not None:
        arguments["clipnorm"] = config.clipnorm
    return arguments


@OPTIMIZERS.register("sgd")
def build_sgd(config, learning_rate):
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, **_common(config))


@OPTIMIZERS.register("momentum")
def build_momentum(config, learning_rate):
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum, **_common(config))


@OPTIMIZERS.register("nesterov")
def build_nesterov(config, learning_rate):
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum, nesterov=True, **_common(config))


@OPTIMIZERS.register("adagrad")
def build_adagrad(config, learning_rate):
    import keras

    return keras.optimizers.Adagrad(learning_rate=learning_rate, epsilon=config.epsilon, **_common(config))


@OPTIMIZERS.register("rmsprop")
def build_rmsprop(config, learning_rate):
    import keras

    return keras.optimizers.RMSprop(
        learning_rate=learning_rate, rho=config.rho, epsilon=config.epsilon, **_common(config)
    )


def _adam_family(optimizer_class, config, learning_rate):
    return optimizer_class(
        learning_rate=learning_rate,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
        **_common(config),
    )


@OPTIMIZERS.register("adam")
def build_adam(config, learning_rate):
    import keras

    return _adam_family(keras.optimizers.Adam, config, learning_rate)


@OPTIMIZERS.register("adamw")
def build_adamw(config, learning_rate):
    import keras

    return _adam_family(keras.optimizers.AdamW, config, learning_rate)


@OPTIMIZERS.register("nadam")
def build_nadam(config, learning_rate):
    import keras

    return _adam_family(keras.optimizers.Nadam, config, learning_rate)


@SCHEDULES.register("constant")
@SCHEDULES.register("plateau")  # a constant rate that the ReduceLROnPlateau callback cuts
def build_constant(config, learning_rate, steps_per_epoch, epochs):
    return learning_rate


@SCHEDULES.register("step")
def build_step(config, learning_rate, steps_per_epoch, epochs):
    import keras

    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, config.every * steps_per_epoch, config.factor, staircase=True
    )


@SCHEDULES.register("exponential")
def build_exponential(config, learning_rate, steps_per_epoch, epochs):
    import keras

    # lr0 * exp(-k t) with t = step / steps_per_epoch, i.e. a factor of exp(-k) per epoch.
    return keras.optimizers.schedules.ExponentialDecay(learning_rate, steps_per_epoch, math.exp(-config.decay_rate))


@SCHEDULES.register("inverse_time")
def build_inverse_time(config, learning_rate, steps_per_epoch, epochs):
    import keras

    return keras.optimizers.schedules.InverseTimeDecay(learning_rate, steps_per_epoch, config.decay_rate)


@SCHEDULES.register("linear")
def build_linear(config, learning_rate, steps_per_epoch, epochs):
    import keras

    return keras.optimizers.schedules.PolynomialDecay(
        learning_rate, epochs * steps_per_epoch, config.final_learning_rate, power=1.0
    )


@SCHEDULES.register("recorded")
def build_recorded(config, learning_rate, steps_per_epoch, epochs):
    """Each epoch's rate as listed (optimizer.learning_rate unused), constant within the epoch."""
    import keras

    if len(config.rates) == 1:
        return config.rates[0]
    # The rate of a step comes from the optimizer's count of steps taken before it: epoch e's first step
    # sees e x steps_per_epoch, and PiecewiseConstantDecay gives values[i] up to and including boundaries[i].
    boundaries = [epoch * steps_per_epoch - 1 for epoch in range(1, len(config.rates))]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, list(config.rates))


@SCHEDULES.register("cosine")
def build_cosine(config, learning_rate, steps_per_epoch, epochs):
    import keras

    warmup_steps = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else learning_rate,
        (epochs - config.warmup_epochs) * steps_per_epoch,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
