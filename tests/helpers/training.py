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


def train_step_traces(monkeypatch) -> list[int]:
    """A list that grows by one each time a Keras train step runs in Python: once per trace (and replica),
    since a traced step runs as a graph. Patched on keras.Model, the class every dltrain model inherits it from."""
    import keras

    traces, original = [], keras.Model.train_step

    def counted(model, data):
        traces.append(1)
        return original(model, data)

    monkeypatch.setattr(keras.Model, "train_step", counted)
    return traces


# A tiny har-gru run (conftest's shared activity run; test_cli trains more with it), as `--set` values
TINY_GRU = ["model.units=8", "model.layers=1", "model.conv_layers=0", "train.epochs=2", "train.batch_size=8"]
TINY_GRU += ["early_stopping.start_from_epoch=0", "train.min_steps_per_epoch=0"]  # one pass an epoch, not 50 steps
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
