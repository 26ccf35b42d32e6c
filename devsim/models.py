"""Networks of the original study and tutorial."""

from __future__ import annotations

import keras

DEFAULT_HIDDEN = {"cifar10": (256, 128, 64, 32)}
"""Hidden layers per dataset when none are given; others use the study's (128,)."""


def build_mlp(input_shape, hidden=(128,), activation="relu", classes=10, use_bias=False, crop=None, name="mlp"):
    """[center crop] -> Flatten -> Dense(h, activation) for each h in `hidden` -> Dense(classes, softmax).

    The original study: ``build_mlp((28, 28), (128,), "relu", use_bias=False)``;
    NeuroSim's benchmark MLP (400-100-10) is ``build_mlp((28, 28), (100,),
    "sigmoid", crop=20)``: the central 20x20 pixels, where MNIST's digits lie.
    Layers are named ``dense_1``, ``dense_2``, ... so results name them stably.
    """
    layers = input_layers(input_shape, crop)
    for i, units in enumerate(hidden, start=1):
        layers.append(keras.layers.Dense(units, activation=activation, use_bias=use_bias, name=f"dense_{i}"))
    layers.append(keras.layers.Dense(classes, activation="softmax", use_bias=use_bias, name=f"dense_{len(hidden) + 1}"))
    return keras.Sequential(layers, name=name)


def input_layers(input_shape, crop=None):
    """Input, the optional central crop, and Flatten: the layers before the first Dense."""
    layers = [keras.Input(shape=tuple(input_shape))]
    if crop:
        h, w = input_shape[:2]
        top, left = (h - crop) // 2, (w - crop) // 2
        if len(input_shape) == 2:
            layers.append(keras.layers.Reshape((h, w, 1)))
        layers.append(keras.layers.Cropping2D(((top, h - crop - top), (left, w - crop - left)), name="crop"))
    layers.append(keras.layers.Flatten())
    return layers
