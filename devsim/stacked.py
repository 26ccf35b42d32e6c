"""Train K device configurations of one network together, as one stacked model.

A sweep over device curvatures (say K = 8 values of A) trains K networks that
differ only in the device parameters, which broadcast: stacking the K copies of
every kernel into a ``(K, inputs, units)`` tensor lets one compiled training
step train all of them. Each copy is trained exactly as it would be alone:

- the loss is the sum of the copies' losses, so each copy gets its own gradient;
- the inner optimizer's update is elementwise (SGD, Adam, ...);
- every random draw (device-to-device variation and stuck devices, stochastic
  rounding, C2C and read noise) has the shape of one copy and is shared, which
  is what each copy draws alone with the same seed
  (`DeviceOptimizer(stack_axes=1)`);
- each layer runs one matrix product per copy, the very op the run alone runs;
- the data order depends on the seed alone;
- each copy is evaluated by a plain network holding its weights, with the
  evaluation reads its run makes alone (`StackedRecorder`).

So the results equal those of the K runs one by one, bit for bit (a test
checks every history value and state with every kind of noise). Runs can be
stacked when they differ only in ``ltp``/``ltd``/``nl_ltp``/``nl_ltd``/``linear``
and have a reference mapping and no baselines (`stack_key` says which runs go
together).
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
from keras import ops

from devsim.callbacks import ProgramDevices
from devsim.data import load_dataset
from devsim.mapping import ReferenceMapping
from devsim.models import build_mlp, input_layers
from devsim.optimizer import DeviceOptimizer
from devsim.run import RunFolder, initial_pulse_states

CURVATURE_FIELDS = ("ltp", "ltd", "nl_ltp", "nl_ltd", "linear")


class StackedDense(keras.layers.Layer):
    """``stack`` independent Dense layers applied together.

    Inputs ``(batch, features)`` (shared) or ``(batch, stack, features)``;
    outputs ``(batch, stack, units)``. The kernel has shape
    ``(stack, features, units)`` and is named ``kernel``, so it goes on devices.

    Args:
        stack: number of copies K.
        units: output units of each copy.
        activation: activation of each copy.
        use_bias: give each copy a (float) bias.
    """

    def __init__(self, stack, units, activation=None, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.stack, self.units, self.use_bias = int(stack), int(units), use_bias
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(shape=(self.stack, features, self.units), initializer="zeros", name="kernel")
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.stack, self.units), initializer="zeros", name="bias")

    def call(self, x):
        # One matmul per copy, the very op a Dense layer runs: each copy's
        # forward and backward pass is then bit-identical to training it alone
        # (one batched matmul rounds differently, and training with large
        # logits amplifies round-off into different runs).
        # Unstacked, not sliced: the gradient of K slices would be K zero-padded
        # full-size tensors summed, that of an unstack is one stack.
        xs = [x] * self.stack if len(x.shape) == 2 else ops.unstack(x, self.stack, axis=1)
        kernels = ops.unstack(self.kernel, self.stack, axis=0)
        y = ops.stack([ops.matmul(xk, wk) for xk, wk in zip(xs, kernels)], axis=1)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.stack, self.units)

    def get_config(self):
        return {**super().get_config(), "stack": self.stack, "units": self.units,
                "activation": keras.activations.serialize(self.activation), "use_bias": self.use_bias}


def build_stacked_mlp(stack, input_shape, hidden=(128,), activation="relu", classes=10, use_bias=False, crop=None):
    """`devsim.models.build_mlp`, K times at once: outputs the logits ``(batch, K, classes)``.

    The softmax is left to `StackedCrossEntropy` (from logits), which is what
    Keras computes for a plain ``Dense(softmax)`` output too: exact, unclipped.
    """
    layers = input_layers(input_shape, crop)
    for i, units in enumerate(hidden, start=1):
        layers.append(StackedDense(stack, units, activation, use_bias, name=f"dense_{i}"))
    layers.append(StackedDense(stack, classes, None, use_bias, name=f"dense_{len(hidden) + 1}"))
    return keras.Sequential(layers, name="stacked_mlp")


class StackedCrossEntropy(keras.losses.Loss):
    """Sum over the K copies of each copy's sparse categorical cross-entropy (from logits)."""

    def call(self, y_true, y_pred):
        stack = ops.shape(y_pred)[1]
        y = ops.repeat(ops.reshape(ops.cast(y_true, "int32"), (-1, 1)), stack, axis=1)
        return ops.sum(keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True), axis=1)


def stack_key(config) -> tuple | None:
    """Runs with the same key can train as one stacked model; None: never stacked (CNNs; also on a Keras
    backend other than TensorFlow: stacked copies equal their runs alone bit for bit only where
    XLA compiles the TensorFlow step, so other backends train every run alone)."""
    if keras.backend.backend() != "tensorflow":
        return None
    return compatible_key(config)


def compatible_key(config) -> tuple | None:
    """`stack_key` on TensorFlow: runs with the same key could be stacked; None: never (whatever the backend)."""
    if config.model != "mlp" or config.baselines or config.mapping != "reference" or config.make_device().kind != "exp" \
            or config.algorithm != "sgd" or config.make_periphery() is not None:
        return None
    from devsim.config import IDENTITY

    if any(getattr(config, k) != v for k, v in IDENTITY.items() if k not in ("r_on", "cell", "nl_table", "preset_levels")):
        return None  # protocols, periphery reads, other losses and loops: trained alone
    d = {k: v for k, v in config.to_dict().items() if k not in (*CURVATURE_FIELDS, "out", "name")}
    # copies share the curve math's code path (linear branches, symmetry), so each is computed as alone
    return (*sorted((k, repr(v)) for k, v in d.items()), ("curve", config.make_device().curve_kind))


class _CopyWeights(keras.callbacks.Callback):
    """Puts copy ``k``'s weights into the plain network before each evaluation batch.

    Under read noise every batch first reads the stacked devices afresh, drawing
    from read counter ``start + batch`` for every copy: the reads the copy's run
    makes alone (`ProgramDevices`), replayed once per copy.
    """

    def __init__(self, recorder, k, start):
        super().__init__()
        self.recorder, self.k, self.start = recorder, k, start

    def on_test_begin(self, logs=None):
        self.recorder.copy_weights(self.k)

    def on_test_batch_begin(self, batch, logs=None):
        optimizer = self.recorder.model.optimizer
        if optimizer.has_read_noise:
            optimizer.read_devices(noisy=True, reads=self.start + batch)
            self.recorder.copy_weights(self.k)


class StackedRecorder(keras.callbacks.Callback):
    """Per epoch: evaluate every copy as its run alone would, and hand its history row to its run folder.

    Each copy is evaluated by a plain (unstacked) network holding that copy's
    weights, with Keras' ``evaluate`` at the run's evaluation batch size, so its
    metrics are the numbers the run records alone (`devsim.run.EpochRecorder`),
    read noise included (`_CopyWeights`).
    """

    def __init__(self, folders, data, eval_batch_size, plain):
        super().__init__()
        self.folders, self.data, self.eval_batch_size, self.plain = folders, data, eval_batch_size, plain
        self.status = ["complete"] * len(folders)

    def copy_weights(self, k):
        stacked = [layer for layer in self.model.layers if isinstance(layer, StackedDense)]
        plain = [layer for layer in self.plain.layers if hasattr(layer, "kernel")]
        for s_layer, p_layer in zip(stacked, plain):
            p_layer.kernel.assign(s_layer.kernel.value[k])
            if s_layer.use_bias:
                p_layer.bias.assign(s_layer.bias.value[k])

    def _evaluate(self, x, y):
        optimizer = self.model.optimizer
        start = optimizer.read_counter
        results = [
            self.plain.evaluate(x, y, batch_size=self.eval_batch_size, verbose=0, return_dict=True,
                                callbacks=[_CopyWeights(self, k, start)])
            for k in range(len(self.folders))
        ]
        if optimizer.has_read_noise:  # as `ProgramDevices.on_test_end`: training goes on from a fresh read
            optimizer.read_devices(noisy=optimizer.update == "batch")
        return results

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = (time.perf_counter() - self._start) / len(self.folders)  # the copies share the time
        logs = logs or {}
        train = self._evaluate(self.data.x_train, self.data.y_train)
        test = self._evaluate(self.data.x_test, self.data.y_test)
        for k, folder in enumerate(self.folders):
            row = {
                "model": "device", "epoch": epoch + 1,
                "train_loss": train[k]["loss"], "train_accuracy": train[k]["accuracy"],
                "test_loss": test[k]["loss"], "test_accuracy": test[k]["accuracy"],
                "seconds": seconds,
            }
            row.update({key: int(v[k]) for key, v in logs.items() if key.startswith("pulses_")})
            if self.status[k] == "complete" and not math.isfinite(row["train_loss"]):
                self.status[k] = f"stopped: loss became NaN in epoch {epoch + 1}"
            folder.add_row(row, self.status[k])


def run_stacked(configs, echo=print, warn=None) -> list:
    """Train runs that share a `stack_key` as one stacked model; write each run's folder.

    Args:
        configs: `RunConfig` objects with equal `stack_key` (not None).

    Returns:
        The run folders, in the order of ``configs``.
    """
    from devsim import backends

    backends.require_tensorflow("--stack", "stacked training (bit-identical to runs alone under XLA)")
    keys = {stack_key(c) for c in configs}
    if None in keys or len(keys) != 1:
        raise ValueError("run_stacked: the configurations must share one stack_key (differ only in the device curvature)")
    config = configs[0]
    stack = len(configs)
    devices = [c.make_device() for c in configs]
    data = load_dataset(config.dataset, config.data_dir, warn=warn or (lambda m: None), train_size=config.train_size,
                        test_size=config.test_size)
    quiet = lambda line: None  # noqa: E731 - per-run epoch lines would interleave
    folders = [
        RunFolder(c, d, data, {"device": d}, quiet, warn, extra={"stacked_with": [o.run_name() for o in configs]})
        for c, d in zip(configs, devices)
    ]
    keras.utils.set_random_seed(config.seed)
    model = build_stacked_mlp(stack, data.x_train.shape[1:], config.hidden, config.activation, use_bias=config.bias, crop=config.crop)
    per_copy = [initial_pulse_states(c, d, data.x_train.shape[1:]) for c, d in zip(configs, devices)]
    mapping = ReferenceMapping(config.wmax)
    kernels = [layer for layer in model.layers if isinstance(layer, StackedDense)]
    for i, layer in enumerate(kernels):
        g = np.stack([ops.convert_to_numpy(d.level(p[i].astype(np.float32))) for d, p in zip(devices, per_copy)])
        layer.kernel.assign(mapping.weights(g))
    shape = (stack, 1, 1)
    stacked_device = dataclasses.replace(
        devices[0],
        a_p=np.reshape([float(d.a_p) for d in devices], shape),
        a_d=np.reshape([float(d.a_d) for d in devices], shape),
        name=None, source=None,
    )
    inner = keras.optimizers.get({"class_name": config.optimizer, "config": {"learning_rate": config.lr}})
    optimizer = DeviceOptimizer(
        inner, stacked_device, mapping, pulses=config.pulses, max_pulses=config.max_pulses, update=config.update,
        seed=config.seed, stack_axes=1, count_pulses=config.count_pulses,
    )
    steps = -(-len(data.y_train) // config.batch_size)  # an epoch per call into the step, as `run` (bit-identical)
    model.compile(optimizer=optimizer, loss=StackedCrossEntropy(), steps_per_execution=steps)
    keras.utils.set_random_seed(config.seed)  # the data order depends on the seed alone, as in `run`
    plain = build_mlp(data.x_train.shape[1:], config.hidden, config.activation, use_bias=config.bias, crop=config.crop,
                      name="mlp_device")
    plain.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = StackedRecorder(folders, data, config.eval_batch_size, plain)
    echo(f"training {stack} stacked device models on {data.name}: " + "; ".join(d.describe() for d in devices))
    model.fit(data.x_train, data.y_train, epochs=config.epochs, batch_size=config.batch_size, shuffle=True, verbose=0,
              callbacks=[ProgramDevices(), recorder])
    states = optimizer.device_states()
    for k, folder in enumerate(folders):
        arrays = {f"w_{layer.name}": layer.kernel.numpy()[k] for layer in kernels}
        arrays.update({f"g_{name}": g[k] for name, g in states.items()})
        folder.save_states("device", recorder.status[k], arrays)
    return [folder.finish() for folder in folders]
