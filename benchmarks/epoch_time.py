"""Per-epoch training time of device-aware training against float Keras, in one process.

    python benchmarks/epoch_time.py [--epochs 6] [--batch-size 32] [--out benchmarks/epoch_time.json]

Trains the original study's network (784-128-10, no biases) on the 4000-image
MNIST subset with plain float Keras and with each device update mode, and
reports the median per-epoch time (first epoch, which traces and compiles,
excluded) and its ratio to float. Ratios, not seconds, are what hold on a
noisy machine; models are trained in an interleaved order for the same reason.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import keras
import numpy as np

from devsim import DeviceOptimizer, ExpDevice, ProgramDevices, io
from devsim.data import load_dataset
from devsim.models import build_mlp

MODES = {
    "float": None,
    "epoch/sign": ("epoch", "sign"),
    "batch/sign": ("batch", "sign"),
    "batch/proportional": ("batch", "proportional"),
    "batch/stochastic": ("batch", "stochastic"),
}


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def epoch_seconds(mode, data, epochs, batch_size):
    keras.utils.set_random_seed(0)
    model = build_mlp((28, 28), (128,))
    inner = keras.optimizers.SGD(0.01)
    timer = EpochTimer()
    callbacks = []
    if MODES[mode] is None:
        optimizer = inner
    else:
        update, pulses = MODES[mode]
        optimizer = DeviceOptimizer(inner, ExpDevice(0.8, 0.8, 101), pulses=pulses, update=update, seed=0)
        callbacks.append(ProgramDevices())
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[*callbacks, timer])
    return timer.seconds[1:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/epoch_time.json")
    args = parser.parse_args()
    data = load_dataset("mnist-5k")
    times = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            times[mode] += epoch_seconds(mode, data, args.epochs, args.batch_size)
    base = float(np.median(times["float"]))
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
        "dataset": data.info(),
        "batch_size": args.batch_size,
        "epochs_measured": args.repeats * (args.epochs - 1),
        "median_epoch_seconds": {m: float(np.median(t)) for m, t in times.items()},
        "ratio_to_float": {m: float(np.median(t)) / base for m, t in times.items()},
    }
    for mode in MODES:
        print(f"{mode:>20}: {result['median_epoch_seconds'][mode]:.3f} s/epoch  x{result['ratio_to_float'][mode]:.2f} of float")
    io.write_json(args.out, result)


if __name__ == "__main__":
    main()
