"""dltrain: Keras baselines for retinopathy grading and activity recognition."""

__version__ = "0.1.0"
