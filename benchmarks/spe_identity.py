"""Does devsim train to the same bits with steps_per_execution > 1 (and with jit_compile=True)?

    PYTHONPATH=. python benchmarks/spe_identity.py     # ~1 minute

Small cases (784-128-10, 640 images = 20 steps of 32, 2 epochs, seed 0):
devsim batch-mode training (stochastic, C2C 0.02, pulse counts on) and epoch
mode (sign), each with steps_per_execution 1, 7 (does not divide 20: a short
last execution), 20 (the epoch) and 50 (more than the epoch), without and with
jit_compile=True. Every final kernel, device state and pulse count is
compared bit for bit with steps_per_execution=1 of the same jit setting; the
jit settings are compared with each other by their largest difference.
"""

from __future__ import annotations

import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def train(update, pulses, spe, jit, x, y):
    import keras

    import devsim

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(128, activation="relu", use_bias=False, name="hidden"),
                              keras.layers.Dense(10, activation="softmax", use_bias=False, name="out")])
    optimizer = devsim.DeviceOptimizer(keras.optimizers.SGD(0.1), devsim.ExpDevice(0.8, 0.8, 101, c2c=0.02),
                                       pulses=pulses, update=update, seed=0, count_pulses=True)
    model.compile(optimizer, "sparse_categorical_crossentropy", steps_per_execution=spe, jit_compile=jit)
    history = model.fit(x, y, batch_size=32, epochs=2, shuffle=True, verbose=0, callbacks=[devsim.ProgramDevices()])
    out = {f"w_{i}": w.numpy() for i, w in enumerate(model.trainable_variables)}
    out.update({f"g_{k}": v for k, v in optimizer.device_states().items()})
    out.update({k: np.asarray(v) for k, v in history.history.items() if k.startswith("pulses_")})
    out["loss"] = np.asarray(history.history["loss"])
    return out


def main():
    from devsim.data import load_dataset

    data = load_dataset("mnist-5k")
    x, y = data.x_train[:640], data.y_train[:640]
    failures = 0
    for update, pulses in (("batch", "stochastic"), ("epoch", "sign")):
        results = {}
        for jit in (False, True):
            base = None
            for spe in (1, 7, 20, 50):
                r = train(update, pulses, spe, jit, x, y)
                results[(jit, spe)] = r
                if base is None:
                    base = r
                    print(f"{update}/{pulses} jit={jit} spe=1: loss {r['loss'].round(5).tolist()}, "
                          f"pulses applied per epoch (hidden) {r['pulses_applied_hidden'].tolist()}")
                    continue
                same = all(np.array_equal(base[k], r[k]) for k in base)
                failures += not same
                worst = max(float(np.max(np.abs(base[k].astype(np.float64) - r[k]))) for k in base)
                print(f"{update}/{pulses} jit={jit} spe={spe}: {'bit-identical' if same else 'DIFFERENT'} "
                      f"to spe=1 (largest difference {worst:.3g})")
        a, b = results[(False, 1)], results[(True, 1)]
        worst = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a if k.startswith(("w_", "g_")))
        differ = [k for k in a if not np.array_equal(a[k], b[k])]
        print(f"{update}/{pulses}: jit_compile=True vs Keras's default (no XLA around the step): "
              f"{'bit-identical' if not differ else 'these differ: ' + ', '.join(differ)}; "
              f"largest weight/state difference {worst:.3g}; losses {a['loss'].tolist()} vs {b['loss'].tolist()}")
    print("all steps_per_execution results bit-identical" if not failures else f"{failures} differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
