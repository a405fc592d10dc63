"""Optimizer registry: name -> builder(config) returning a Keras optimizer.

Keras is imported inside the builders so that validating a config stays instant.
"""

from __future__ import annotations

from typing import Callable

from dltrain.registry import Registry

OPTIMIZERS: Registry[Callable] = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def build_sgd(config):
    import keras

    return keras.optimizers.SGD(learning_rate=config.learning_rate)


@OPTIMIZERS.register("momentum")
def build_momentum(config):
    import keras

    return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9)


@OPTIMIZERS.register("nesterov")
def build_nesterov(config):
    import keras

    return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9, nesterov=True)


@OPTIMIZERS.register("adagrad")
def build_adagrad(config):
    import keras

    return keras.optimizers.Adagrad(learning_rate=config.learning_rate)


@OPTIMIZERS.register("rmsprop")
def build_rmsprop(config):
    import keras

    return keras.optimizers.RMSprop(learning_rate=config.learning_rate)


@OPTIMIZERS.register("adam")
def build_adam(config):
    import keras

    return keras.optimizers.Adam(learning_rate=config.learning_rate)
