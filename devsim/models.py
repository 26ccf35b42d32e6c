"""Networks of the original study and tutorial."""

from __future__ import annotations

import dataclasses

import keras

DEFAULT_HIDDEN = {"cifar10": (256, 128, 64, 32)}
"""Hidden layers per dataset when none are given; others use the study's (128,)."""


def build_mlp(input_shape, hidden=(128,), activation="relu", classes=10, use_bias=False, crop=None, name="mlp",
              output_activation="softmax", reads=None, binarize=None, io=None, w_max=1.0, seed=0):
    """[center crop] -> [binarize] -> Flatten -> Dense(h, activation) for each h in `hidden` -> Dense(classes, softmax).

    The original study: ``build_mlp((28, 28), (128,), "relu", use_bias=False)``;
    NeuroSim's benchmark MLP (400-100-10) is ``build_mlp((28, 28), (100,),
    "sigmoid", crop=20, output_activation="sigmoid", binarize=0.5,
    reads=...)``: the central 20x20 pixels, where MNIST's digits lie.
    Layers are named ``dense_1``, ``dense_2``, ... so results name them stably.

    Args:
        reads: a `devsim.periphery.ArrayReads` (NeuroSim's reads of the arrays); unless
            it is the identity, the layers are `devsim.periphery.AnalogDense` read
            through it (the first without its hidden threshold).
        binarize: a 1-bit input DAC (`devsim.periphery.Binarize`) at this threshold.
        io: `devsim.periphery.IOParameters` (aihwkit's IO non-idealities) of the forward
            pass; the backward pass uses them without bound management; draws keyed by
            ``seed``. None: plain ``keras.layers.Dense`` (when ``reads`` is off too).
        w_max: the weight range (``io`` acts on ``W / w_max``).
    """
    layers = input_layers(input_shape, crop, binarize)
    sizes = [*hidden, classes]
    for i, units in enumerate(sizes):
        kwargs = dict(activation=activation if i < len(hidden) else output_activation, use_bias=use_bias,
                      name=f"dense_{i + 1}")
        analog = {}
        if reads is not None and not reads.is_identity:
            analog["reads"] = reads.layer(i)
        if io is not None and not io.is_identity:
            analog.update(forward=io, backward=dataclasses.replace(io, bound_management="none"), w_max=w_max,
                          seed=seed, index=i + 1)
        if not analog:
            layers.append(keras.layers.Dense(units, **kwargs))
        else:
            from devsim.periphery import AnalogDense

            layers.append(AnalogDense(units, **analog, **kwargs))
    return keras.Sequential(layers, name=name)


def input_layers(input_shape, crop=None, binarize=None):
    """Input, the optional central crop, the optional binarization and Flatten: the layers before the first Dense."""
    layers = [keras.Input(shape=tuple(input_shape))]
    if crop:
        h, w = input_shape[:2]
        top, left = (h - crop) // 2, (w - crop) // 2
        if len(input_shape) == 2:
            layers.append(keras.layers.Reshape((h, w, 1)))
        layers.append(keras.layers.Cropping2D(((top, h - crop - top), (left, w - crop - left)), name="crop"))
    if binarize is not None:
        from devsim.periphery import Binarize

        layers.append(Binarize(binarize, name="binarize"))
    layers.append(keras.layers.Flatten())
    return layers
