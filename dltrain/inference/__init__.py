"""Using a trained run: evaluate, predict, export, and exported models."""
