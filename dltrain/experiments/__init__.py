"""Experiments over many trainings, above the training layer: grid sweeps and cross-validation
(`sweep`), the baselines re-run from scratch (`reproduce`, `baselines.yaml`) and the lecture's lab."""
