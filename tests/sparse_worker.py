"""Train small device models with the sparse and the dense batch update on this process's Keras backend
and print, as JSON, whether they computed the same numbers. Run by tests/test_sparse_update.py::

    KERAS_BACKEND=jax python tests/sparse_worker.py

Cases (784-64-10 without biases, 256 synthetic images, batch 32, 2 epochs): stochastic pulses with C2C and
pulse counts (lost included), proportional pulses, and one full-batch step of proportional pulses with a
large learning rate, which pulses devices in far more blocks than one pass of the sparse loop holds.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.getcwd())  # this checkout's devsim (the working directory)

import keras  # noqa: E402

import devsim  # noqa: E402
from devsim import tiles  # noqa: E402

DEVICE = devsim.ExpDevice(a_p=0.8, a_d=0.4, states=64, c2c=0.03)
CASES = {
    "stochastic-c2c": dict(lr=0.2, batch=32, epochs=2, device=DEVICE, pulses="stochastic", count_pulses=True),
    "proportional": dict(lr=1.0, batch=32, epochs=2, device=devsim.ExpDevice(a_p=0.8, a_d=0.8, states=64),
                         pulses="proportional", count_pulses=True, count_lost=False),
    "overflow": dict(lr=30.0, batch=256, epochs=1, device=DEVICE, pulses="proportional", count_pulses=True),
}


def train(case, sparse):
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(256, 784)) * (rng.uniform(size=(256, 784)) < 0.3)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(784, 10)), axis=1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation="relu", use_bias=False),
                              keras.layers.Dense(10, use_bias=False)])
    for layer in model.layers:
        layer.kernel.assign(rng.uniform(-0.3, 0.3, layer.kernel.shape).astype(np.float32))
    fields = dict(CASES[case])
    lr, batch, epochs = fields.pop("lr"), fields.pop("batch"), fields.pop("epochs")
    optimizer = devsim.DeviceOptimizer(keras.optimizers.SGD(lr), seed=5, sparse_update=sparse, **fields)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    optimizer.build(model.trainable_variables)
    g0 = [t.state()["g"] for t in optimizer.tiles]
    history = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[devsim.ProgramDevices()])
    g = [t.state()["g"] for t in optimizer.tiles]
    # per layer in build order (the layer names differ between the two models of a case)
    pulses = [[int(v) for v in vs] for k, vs in history.history.items() if k.startswith("pulses")]
    # blocks of the hidden kernel whose devices moved: more than a pass holds means the loop took several
    moved = np.any((g[0] != g0[0]).reshape(-1, tiles.SPARSE_BLOCK), axis=1)
    return {"g": g, "w": [layer.kernel.numpy() for layer in model.layers], "pulses": pulses,
            "loss": history.history["loss"], "sparse": [t.updates_pulsed_blocks for t in optimizer.tiles],
            "moved_blocks": float(np.mean(moved))}


def main():
    out = {"backend": keras.backend.backend(), "cases": {}}
    for case in CASES:
        a, b = train(case, True), train(case, False)
        out["cases"][case] = {
            "same_g": all(np.array_equal(p, q) for p, q in zip(a["g"], b["g"])),
            "same_w": all(np.array_equal(p, q) for p, q in zip(a["w"], b["w"])),
            "same_pulses": a["pulses"] == b["pulses"], "same_loss": a["loss"] == b["loss"],
            "pulses": a["pulses"], "sparse": a["sparse"], "dense": b["sparse"],
            "moved_blocks": a["moved_blocks"],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
