"""Networks of the original study and tutorial."""

from __future__ import annotations

import dataclasses

import keras

DEFAULT_HIDDEN = {"cifar10": (256, 128, 64, 32)}
"""Hidden layers per dataset when none are given; others use the study's (128,)."""


def build_mlp(input_shape, hidden=(128,), activation="relu", classes=10, use_bias=False, crop=None, name="mlp",
              periphery=None, w_max=1.0, seed=0):
    """[center crop] -> Flatten -> Dense(h, activation) for each h in `hidden` -> Dense(classes, softmax).

    The original study: ``build_mlp((28, 28), (128,), "relu", use_bias=False)``;
    NeuroSim's benchmark MLP (400-100-10) is ``build_mlp((28, 28), (100,),
    "sigmoid", crop=20)``: the central 20x20 pixels, where MNIST's digits lie.
    Layers are named ``dense_1``, ``dense_2``, ... so results name them stably.
    With ``periphery`` (`devsim.periphery.IOParameters`) the layers are
    `devsim.periphery.AnalogDense`: forward and backward passes through it
    (the backward without bound management), draws keyed by ``seed``.
    """
    layers = input_layers(input_shape, crop)
    widths = [*hidden, classes]
    for i, units in enumerate(widths, start=1):
        activation_i = activation if i < len(widths) else "softmax"
        if periphery is None:
            layers.append(keras.layers.Dense(units, activation=activation_i, use_bias=use_bias, name=f"dense_{i}"))
        else:
            from devsim.periphery import AnalogDense

            backward = dataclasses.replace(periphery, bound_management="none")
            layers.append(AnalogDense(units, forward=periphery, backward=backward, w_max=w_max, seed=seed, index=i,
                                      activation=activation_i, use_bias=use_bias, name=f"dense_{i}"))
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
