"""Every registered model's test input shape, and variants that exercise its options (timm-style)."""

from __future__ import annotations

# Each model's input, and variants that exercise its options.
INPUTS = {"gru": (24, 5), "resnet1d": (24, 5), "inception": (24, 5), "cnn": (32, 32, 3), "backbone": (32, 32, 3)}
VARIANTS = {
    "gru": [
        {},
        {"bidirectional": True, "layers": 1},
        {"batch_norm": True, "dropout": 0.0},
        {"conv_layers": 2, "conv_filters": 8, "conv_kernel": 3, "activation": "leaky_relu"},
    ],
    "resnet1d": [
        {},
        {"block_filters": [4, 4], "kernel_sizes": [3], "batch_norm": False, "dense_units": 8, "dropout": 0.5},
        {"block_filters": [8], "activation": "elu", "initializer": "he_normal", "input_noise": 0.1},
    ],
    "inception": [
        {},
        {"filters": 4, "depth": 2, "bottleneck": 0, "residual_every": 0, "batch_norm": False},
        {"filters": 4, "depth": 4, "kernel_sizes": [9, 3], "residual_every": 2, "dense_units": 8, "dropout": 0.2},
    ],
    "cnn": [
        {"conv_layers": 2, "conv_filters": 4},
        {"conv_layers": 1, "batch_norm": True, "pooling": "flatten", "dense_units": 8},
        {"conv_layers": 2, "conv_filters": 4, "activation": "leaky_relu", "dropout": 0.0},
        {
            "stem_filters": 4,
            "stem_kernel": 5,
            "conv_layers": 2,
            "block_filters": [4, 8],
            "convs_per_block": 1,
            "pool_size": 3,
            "block_pooling": "average",
            "pooling": "average_max",
        },
        {"conv_layers": 1, "conv_filters": 4, "pooling": "gem"},
        {"conv_layers": 1, "conv_filters": 4, "pooling": "global_max"},
    ],
    "backbone": [
        {"backbone": "EfficientNetB0", "head": "classification"},
        {"backbone": "ResNet50V2", "head": "classification", "pooling": "gem", "dense_units": 8},
    ],
}
