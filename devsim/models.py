"""Networks of the original study and tutorial."""

from __future__ import annotations

import keras

DEFAULT_HIDDEN = {"cifar10": (256, 128, 64, 32)}
"""Hidden layers per dataset when none are given; others use the study's (128,)."""


def build_mlp(input_shape, hidden=(128,), activation="relu", classes=10, use_bias=False, name="mlp"):
    """Flatten -> Dense(h, activation) for each h in `hidden` -> Dense(classes, softmax).

    The original study: ``build_mlp((28, 28), (128,), "relu", use_bias=False)``.
    Layers are named ``dense_1``, ``dense_2``, ... so results name them stably.
    """
    layers = [keras.Input(shape=tuple(input_shape)), keras.layers.Flatten()]
    for i, units in enumerate(hidden, start=1):
        layers.append(keras.layers.Dense(units, activation=activation, use_bias=use_bias, name=f"dense_{i}"))
    layers.append(keras.layers.Dense(classes, activation="softmax", use_bias=use_bias, name=f"dense_{len(hidden) + 1}"))
    return keras.Sequential(layers, name=name)
