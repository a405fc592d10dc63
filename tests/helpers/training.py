"""What tests that train share: a stand-in for Ctrl-C and the tiny budgets of each task."""

from __future__ import annotations

REPLICAS = 2  # logical CPU devices of every test process (conftest): train.strategy=mirrored runs 2 replicas


def interrupt_after_epoch(epoch: int):
    """A Keras callback that stands in for Ctrl-C once epoch `epoch`'s checkpoints are written."""
    import keras

    class InterruptAfterEpoch(keras.callbacks.Callback):
        """Stands in for Ctrl-C: raised once the epoch's checkpoints are written."""

        def __init__(self, epoch: int) -> None:
            super().__init__()
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == self.epoch:
                raise KeyboardInterrupt

    return InterruptAfterEpoch(epoch)


TINY_CNN = [
    "--set",
    "model.conv_layers=2",
    "--set",
    "model.conv_filters=4",
    "--set",
    "model.dense_units=8",
    "--set",
    "train.epochs=2",
    "--set",
    "train.batch_size=4",
    "--set",
    "early_stopping.patience=0",
]
