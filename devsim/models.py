"""The networks devsim trains: the study's MLP, LeNet-5, DNN+NeuroSim V2.1's VGG-8, or a user's builder.

`build_network(model, input_shape, ...)` is the one entry point: ``devsim run
--model``, the stacked sweeps' plain twin and the prediction figures all build
through it, so a network named in a config.json is rebuilt exactly.

Every kernel (Dense and Conv2D) goes on devices; biases and normalization stay
float (`devsim.optimizer.is_kernel`). Layers with kernels are named stably
(``conv_1``, ``conv_2``, ..., ``dense_1``, ...) so results name them.

The constants import nothing heavy (the option table reads them); Keras loads in the builders.
"""

from __future__ import annotations

import dataclasses
import importlib
import re

MODELS = ("mlp", "lenet5", "vgg8")
"""The built-in networks of ``--model``; ``package.module:function`` names a user's builder."""

BUILDER_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

DEFAULT_HIDDEN = {"cifar10": (256, 128, 64, 32)}
"""Hidden layers per dataset when none are given; others use the study's (128,)."""

KERNEL_LAYERS = {"lenet5": 5, "vgg8": 8}
"""Layers with a kernel (on devices) in each built-in CNN."""

VGG8_CONV = (128, 128, "M", 256, 256, "M", 512, 512, "M")
"""VGG-8's convolutions (3x3, same padding, ReLU, no bias) and 2x2 max pools: DNN+NeuroSim V2.1's
Training_pytorch/cifar/model.py ``cfg_list['cifar10']``; its classifier is 8192 -> 1024 -> 10."""
VGG8_DENSE = 1024


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
    import keras

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


def build_lenet5(input_shape, classes=10, activation="relu", use_bias=False, crop=None, binarize=None,
                 output_activation="softmax", name="lenet5"):
    """LeNet-5 (LeCun et al. 1998) with max pooling::

        Conv2D(6, 5x5, same) -> MaxPool 2 -> Conv2D(16, 5x5, valid) -> MaxPool 2
        -> Flatten -> Dense(120) -> Dense(84) -> Dense(classes, softmax)

    61,470 kernel weights on 28x28x1 inputs (5 kernels: ``conv_1``, ``conv_2``,
    ``dense_1`` .. ``dense_3``). Grey images (28, 28) get a channel axis.
    """
    import keras

    layers = input_layers(input_shape, crop, binarize, flatten=False)
    layers += [
        keras.layers.Conv2D(6, 5, padding="same", activation=activation, use_bias=use_bias, name="conv_1"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 5, padding="valid", activation=activation, use_bias=use_bias, name="conv_2"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(120, activation=activation, use_bias=use_bias, name="dense_1"),
        keras.layers.Dense(84, activation=activation, use_bias=use_bias, name="dense_2"),
        keras.layers.Dense(classes, activation=output_activation, use_bias=use_bias, name="dense_3"),
    ]
    return keras.Sequential(layers, name=name)


def build_vgg8(input_shape, classes=10, activation="relu", use_bias=False, crop=None, binarize=None,
               output_activation="softmax", width=1.0, name="vgg8"):
    """DNN+NeuroSim V2.1's VGG-8 for CIFAR-10 (`VGG8_CONV`, no normalization, no bias)::

        [Conv2D(c, 3x3, same, ReLU) for c in 128, 128] -> MaxPool 2
        [... 256, 256] -> MaxPool 2 -> [... 512, 512] -> MaxPool 2
        -> Flatten (8192 on 32x32 inputs) -> Dense(1024, ReLU) -> Dense(classes, softmax)

    12,973,440 kernel weights on 32x32x3 inputs (8 kernels: ``conv_1`` .. ``conv_6``,
    ``dense_1``, ``dense_2``).

    Args:
        width: multiplies every channel count and the 1024 hidden units (0.5: about
            3.2 million weights), for scaling studies on a CPU.
    """
    import keras

    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    layers = input_layers(input_shape, crop, binarize, flatten=False)
    conv = 0
    for c in VGG8_CONV:
        if c == "M":
            layers.append(keras.layers.MaxPooling2D(2))
            continue
        conv += 1
        layers.append(keras.layers.Conv2D(max(1, round(c * width)), 3, padding="same", activation=activation,
                                          use_bias=use_bias, name=f"conv_{conv}"))
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(max(1, round(VGG8_DENSE * width)), activation=activation, use_bias=use_bias,
                           name="dense_1"),
        keras.layers.Dense(classes, activation=output_activation, use_bias=use_bias, name="dense_2"),
    ]
    return keras.Sequential(layers, name=name)


class BuilderError(ValueError):
    """``--model package.module:function`` that cannot be imported or does not build a Keras model."""


def load_builder(spec: str):
    """The function named by ``package.module:function`` (imported now).

    Raises:
        BuilderError: one line saying what is wrong.
    """
    if not BUILDER_PATTERN.match(spec):
        raise BuilderError(f"must be one of {', '.join(MODELS)} or package.module:function, got {spec!r}")
    module_name, function = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a user's module: any import failure is a bad value
        raise BuilderError(f"cannot import {module_name} ({type(exc).__name__}: {exc})") from None
    builder = getattr(module, function, None)
    if not callable(builder):
        raise BuilderError(f"{module_name} has no function {function}")
    return builder


def build_network(model, input_shape, *, hidden=(128,), activation="relu", use_bias=False, crop=None,
                  output_activation="softmax", binarize=None, reads=None, io=None, w_max=1.0, seed=0, classes=10,
                  name=None):
    """The network ``model`` names (``--model``), for ``input_shape`` (without the batch axis).

    Args:
        model: ``"mlp"`` (`build_mlp` with ``hidden``, the periphery ``reads`` and ``io``),
            ``"lenet5"`` (`build_lenet5`), ``"vgg8"`` (`build_vgg8`), or
            ``"package.module:function"``: a user's builder called as
            ``function(input_shape, classes)`` that returns a Keras model; its
            variables named ``kernel`` go on devices, the rest stay float.
        name: the Keras model's name (default: ``model``).

    Raises:
        BuilderError: a user's builder that cannot be imported or returns no Keras model.
    """
    import keras

    common = dict(activation=activation, use_bias=use_bias, crop=crop, binarize=binarize,
                  output_activation=output_activation)
    if model == "mlp":
        return build_mlp(input_shape, tuple(hidden), classes=classes, name=name or "mlp", reads=reads, io=io,
                         w_max=w_max, seed=seed, **common)
    if model == "lenet5":
        return build_lenet5(input_shape, classes, name=name or "lenet5", **common)
    if model == "vgg8":
        return build_vgg8(input_shape, classes, name=name or "vgg8", **common)
    try:
        network = load_builder(model)(tuple(input_shape), classes)
    except BuilderError:
        raise
    except Exception as exc:  # a user's code: whatever it raises is a bad --model
        raise BuilderError(f"{model}{tuple(input_shape), classes} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(network, keras.Model):
        raise BuilderError(f"{model} returned {type(network).__name__}, not a keras.Model")
    if not network.built:
        network.build((None, *input_shape))
    return network


def kernel_shapes(network) -> list:
    """The shapes of a network's device kernels (variables named ``kernel``), in layer order."""
    return [tuple(v.shape) for v in network.weights if v.name == "kernel"]


def input_layers(input_shape, crop=None, binarize=None, flatten=True):
    """Input, the optional central crop, the optional binarization and (``flatten``) Flatten: the layers
    before the first Dense or, without ``flatten``, an image with a channel axis for the first Conv2D."""
    import keras

    layers = [keras.Input(shape=tuple(input_shape))]
    grey = len(input_shape) == 2
    if grey and (crop or not flatten):
        h, w = input_shape
        layers.append(keras.layers.Reshape((h, w, 1)))
    if crop:
        h, w = input_shape[:2]
        top, left = (h - crop) // 2, (w - crop) // 2
        layers.append(keras.layers.Cropping2D(((top, h - crop - top), (left, w - crop - left)), name="crop"))
    if binarize is not None:
        from devsim.periphery import Binarize

        layers.append(Binarize(binarize, name="binarize"))
    if flatten:
        layers.append(keras.layers.Flatten())
    return layers
