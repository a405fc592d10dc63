"""Model training: the session, callbacks, checkpoints, optimizers, devices, several hosts, tracking."""
