"""The largest values `prepare` options take, declared once for the commands and the library checks."""

MAX_SEED = 2**32 - 1  # NumPy and TensorFlow take 32-bit seeds
MAX_READINGS = 1_000_000  # activity windows: readings in a window, or between window starts
