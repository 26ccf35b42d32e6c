"""Train small device models on the Keras backend of this process and print the results as JSON.

Run by tests/test_backends.py once per installed backend, in a subprocess (the
backend is chosen by ``KERAS_BACKEND`` before Keras is imported), with the
repository root as working directory so that it imports this checkout's devsim::

    KERAS_BACKEND=jax python tests/backend_worker.py sgd ttv2 epoch

Every case starts from the same numpy weights and data (no Keras random draws,
no shuffling), so the backends differ only in how they compute. Cases:

- ``sgd``: batch updates, stochastic pulses, C2C noise, device-to-device
  variation of the curvatures and ranges, read noise, pulse counts;
- ``ttv2``: Tiki-Taka v2 on the same device (arrays A and C, buffer H);
- ``epoch``: epoch updates (float steps, `program()` at each epoch end), sign
  pulses, C2C noise, and a noisy read (`read_devices`);
- ``c-ttv2``, ``agad``, ``mixed-precision``, ``zero-shift`` (with stuck devices),
  ``differential`` (two devices per weight, proportional pulses): the slow test's.

``refusals`` (not on TensorFlow) also tries the TensorFlow-only parts of the
Python API and the run options, and prints their messages (None where the
backend runs them).

Output: one JSON object ``{"backend", "versions", "cases": {case: {...}}}``; each
case has the loss per epoch, the pulse counts per epoch and layer, the final
kernels and every tile's state arrays (nested lists), and its seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.getcwd())  # this checkout's devsim (the working directory), not an installed one

import keras  # noqa: E402

import devsim  # noqa: E402
from devsim import backends  # noqa: E402

INPUTS, HIDDEN, CLASSES, IMAGES, BATCH, EPOCHS = 784, 16, 10, 256, 32, 2


def data(seed=0):
    """Synthetic images in [0, 1] with labels of a random linear teacher (learnable)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (IMAGES, INPUTS)).astype(np.float32) * (rng.uniform(size=(IMAGES, INPUTS)) < 0.3)
    teacher = rng.normal(size=(INPUTS, CLASSES)).astype(np.float32)
    y = np.argmax(x @ teacher, axis=1).astype(np.int64)
    return x.astype(np.float32), y


def model(seed=1):
    """784-16-10 without biases (logits out), its kernels set from numpy (the same on every backend)."""
    rng = np.random.default_rng(seed)
    net = keras.Sequential([
        keras.Input((INPUTS,)),
        keras.layers.Dense(HIDDEN, activation="relu", use_bias=False, name="hidden"),
        keras.layers.Dense(CLASSES, use_bias=False, name="out"),
    ])
    for layer in net.layers:
        fan_in, fan_out = layer.kernel.shape
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        layer.kernel.assign(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
    return net


DEVICE = devsim.ExpDevice(a_p=0.6, a_d=0.3, states=64, c2c=0.02, d2d=0.3, d2d_range=0.05, read_noise=0.01)

QUIET = dataclasses.replace(DEVICE, read_noise=0.0)

CASES = {
    "sgd": dict(optimizer=0.2, device=DEVICE, pulses="stochastic", update="batch", count_pulses=True),
    "ttv2": dict(optimizer=0.2, device=QUIET, pulses="stochastic", update="batch", count_pulses=True, algorithm="ttv2"),
    "epoch": dict(optimizer=0.05, device=dataclasses.replace(DEVICE, d2d_range=0.0), pulses="sign",
                  update="epoch"),
    # the slow test's further cases: every other algorithm, stuck devices, another mapping and pulse rule
    "c-ttv2": dict(optimizer=0.2, device=QUIET, update="batch", count_pulses=True, algorithm="c-ttv2"),
    "agad": dict(optimizer=0.2, device=QUIET, update="batch", count_pulses=True, algorithm="agad"),
    "mixed-precision": dict(optimizer=0.2, device=QUIET, update="batch", count_pulses=True,
                            algorithm="mixed-precision"),
    "zero-shift": dict(optimizer=0.2, device=dataclasses.replace(QUIET, stuck_gmin=0.02, stuck_gmax=0.02),
                       update="batch", count_pulses=True, algorithm="zero-shift"),
    "differential": dict(optimizer=0.2, device=QUIET, mapping=devsim.DifferentialMapping(0.5), pulses="proportional",
                         update="batch", count_pulses=True),
}


def listed(x):
    return np.asarray(x).tolist()


def run_case(name):
    spec = dict(CASES[name])
    lr = spec.pop("optimizer")
    x, y = data()
    net = model()
    optimizer = devsim.DeviceOptimizer(keras.optimizers.SGD(lr), seed=5, **spec)
    net.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    history = net.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0,
                      callbacks=[devsim.ProgramDevices()])
    seconds = time.perf_counter() - start
    out = {
        "loss": [float(v) for v in history.history["loss"]],
        "pulses": {k: [int(n) for n in v] for k, v in history.history.items() if k.startswith("pulses_")},
        "kernels": {layer.name: listed(layer.kernel.numpy()) for layer in net.layers},
        "states": {tile.layer: {k: listed(v) for k, v in tile.state().items()} for tile in optimizer.tiles},
        "steps": int(optimizer._program_steps.numpy()),
        "seconds": seconds,
    }
    if optimizer.has_read_noise:  # a fresh device read before every evaluation batch
        out["evaluate"] = float(net.evaluate(x, y, batch_size=64, verbose=0, callbacks=[devsim.ProgramDevices()]))
    if optimizer.has_read_noise or name == "epoch":
        optimizer.read_devices(noisy=True)  # one evaluation read, drawn from the read stream
        out["read"] = {layer.name: listed(layer.kernel.numpy()) for layer in net.layers}
        out["reads"] = optimizer.read_counter
    return out


def refusals():
    """The refusals of TensorFlow-only parts on this backend (not TensorFlow, where they would
    run): ``{what: message, or None where the backend runs it}``; RunConfig's are the CLI's lines."""
    from devsim.config import RunConfig
    from devsim.online import CompiledLoop
    from devsim.periphery import AnalogDense, IOParameters
    from devsim.stacked import run_stacked, stack_key

    if backends.name() == "tensorflow":
        raise SystemExit("refusals: run on another backend (on TensorFlow these would train)")
    out = {}
    for what, call in (
        ("compiled_loop", lambda: CompiledLoop(model(), None, *data(), batch_size=32)),
        ("run_stacked", lambda: run_stacked([RunConfig(baselines=False)])),
        ("analog_dense", lambda: AnalogDense(4, forward=IOParameters.aihwkit()).build((None, 8))),
        ("--train-loop", lambda: RunConfig(train_loop="compiled")),
        ("--protocol", lambda: RunConfig(protocol="neurosim")),
        ("--periphery", lambda: RunConfig(periphery="aihwkit")),
        ("--out-noise", lambda: RunConfig(out_noise=0.1)),
    ):
        try:
            call()
            out[what] = None
        except ValueError as exc:  # ConfigError is a ValueError
            out[what] = str(exc)
    out["neurosim_with_keras_loop"] = RunConfig(protocol="neurosim", train_loop="keras").train_loop
    out["stack_key"] = stack_key(RunConfig(baselines=False))
    return out


def main(names):
    result = {"backend": backends.name(), "versions": backends.backend_versions()}
    result["cases"] = {name: run_case(name) for name in names if name != "refusals"}
    if "refusals" in names:
        result["refusals"] = refusals()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:] or ["sgd", "ttv2", "epoch"])
