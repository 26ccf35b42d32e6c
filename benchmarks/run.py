"""devsim's speed, as ratios measured in one process (they hold on a noisy machine).

    python benchmarks/run.py            # about 5 minutes on 2 CPU cores
    python benchmarks/run.py --quick    # about 1 minute, fewer repeats

The original study's network (784-128-10, no biases) on the 4000-image MNIST
subset (the same data everywhere, no download), batch 32, SGD:

1. per-epoch training time of device-aware training / float Keras, for
   --update epoch (sign) and --update batch (sign, proportional, stochastic),
   with C2C noise off and on (c2c = 0.02), and with the opt-in pulse counts;
2. the original post's per-epoch Python loop over the weights (reimplemented
   here, on the same weights) against devsim's update of the same epoch;
3. samples per second of batch-mode training at batch sizes 1, 32 and 256;
4. a sweep of K = 8 device configurations trained stacked as one model against
   K runs one by one (devsim.stacked);
5. the memory of the device state, in floats per weight.

Models are trained in an interleaved order and the first epoch (tracing and
compiling) is excluded. Prints a table and writes benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import devsim  # noqa: F401 - first: sets TensorFlow's log level before it loads
import keras
import numpy as np

from devsim import DeviceOptimizer, ExpDevice, ProgramDevices, io
from devsim.data import load_dataset
from devsim.models import build_mlp

DEVICE = dict(a_p=0.8, a_d=0.8, states=101)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def model_and_optimizer(mode, c2c=0.0, lr=0.01, count_pulses=None):
    keras.utils.set_random_seed(0)
    model = build_mlp((28, 28), (128,))
    inner = keras.optimizers.SGD(lr)
    if mode == "float":
        return model, inner, []
    update, pulses = mode.split("/")
    optimizer = DeviceOptimizer(inner, ExpDevice(**DEVICE, c2c=c2c), pulses=pulses, update=update, seed=0,
                                count_pulses=count_pulses)
    return model, optimizer, [ProgramDevices()]


def epoch_seconds(mode, data, epochs, batch_size=32, c2c=0.0, n=None, count_pulses=None):
    model, optimizer, callbacks = model_and_optimizer(mode, c2c, count_pulses=count_pulses)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    timer = EpochTimer()
    x, y = (data.x_train, data.y_train) if n is None else (data.x_train[:n], data.y_train[:n])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[*callbacks, timer])
    return timer.seconds[1:]


def mode_name(mode, c2c, count_pulses):
    return f"{mode} c2c={c2c:g}" + (" +counts" if count_pulses else "")


def ratios(data, repeats, epochs):
    modes = [(m, c, None) for m in ("epoch/sign", "batch/sign", "batch/proportional", "batch/stochastic") for c in (0.0, 0.02)]
    modes.append(("batch/stochastic", 0.02, True))  # with the (opt-in) pulse counts
    times = {"float c2c=0": [], **{mode_name(*mode): [] for mode in modes}}
    for _ in range(repeats):
        for m, c, count in modes:  # float before every device mode: the reference sees the same machine state
            times["float c2c=0"] += epoch_seconds("float", data, epochs)
            times[mode_name(m, c, count)] += epoch_seconds(m, data, epochs, c2c=c, count_pulses=count)
    base = float(np.median(times["float c2c=0"]))
    return {k: {"seconds_per_epoch": float(np.median(v)), "ratio_to_float": float(np.median(v)) / base} for k, v in times.items()}


def original_loop(w_old, w_new, p, num=100, a=-0.8):
    """The post's update (its loop, with its own states per layer): one pulse per weight
    toward the change, stopped at the bounds, weight = 2 (G(P) - 0.5)."""
    w = np.empty_like(w_new)
    for i in range(w_new.shape[0]):
        for j in range(w_new.shape[1]):
            if w_new[i, j] > w_old[i, j] and p[i, j] < num:
                p[i, j] += 1
            elif w_new[i, j] < w_old[i, j] and p[i, j] > 0:
                p[i, j] -= 1
            w[i, j] = 2 * ((1 - math.exp(p[i, j] / num / a)) / (1 - math.exp(1 / a)) - 0.5)
    return w


def update_step(data, repeats):
    """Time of the epoch-end update alone: the post's loop vs devsim's program()."""
    model, optimizer, callbacks = model_and_optimizer("epoch/sign")
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.fit(data.x_train[:256], data.y_train[:256], epochs=1, verbose=0, callbacks=callbacks)  # build, trace
    kernels = optimizer.device_variables
    rng = np.random.default_rng(0)
    loop_times, devsim_times = [], []
    for _ in range(repeats):
        old = [k.numpy() for k in kernels]
        new = [w + rng.normal(0, 0.01, w.shape).astype(np.float32) for w in old]
        p = [rng.integers(0, 101, w.shape) for w in old]
        t = time.perf_counter()
        for w0, w1, pk in zip(old, new, p):
            original_loop(w0, w1, pk)
        loop_times.append(time.perf_counter() - t)
        for k, w1 in zip(kernels, new):
            k.assign(w1)
        t = time.perf_counter()
        optimizer.program()
        _ = [k.numpy() for k in kernels]  # wait for the result
        devsim_times.append(time.perf_counter() - t)
    weights = sum(int(np.prod(k.shape)) for k in kernels)
    loop, fast = float(np.median(loop_times)), float(np.median(devsim_times))
    return {"weights": weights, "python_loop_seconds": loop, "devsim_seconds": fast, "speedup": loop / fast}


def samples_per_second(data, repeats):
    out = {}
    for batch_size, n in ((1, 1000), (32, 4000), (256, 4000)):
        seconds = []
        for _ in range(repeats):
            seconds += epoch_seconds("batch/stochastic", data, 3, batch_size=batch_size, c2c=0.02, n=n)
        float_seconds = []
        for _ in range(repeats):
            float_seconds += epoch_seconds("float", data, 3, batch_size=batch_size, n=n)
        out[str(batch_size)] = {
            "device_samples_per_second": n / float(np.median(seconds)),
            "float_samples_per_second": n / float(np.median(float_seconds)),
        }
    return out


def stacked(epochs, k=8):
    """K = 8 values of A: stacked as one model vs one run each (same results)."""
    import tempfile

    from devsim.run import RunConfig, run
    from devsim.stacked import run_stacked

    values = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, math.inf][:k]
    with tempfile.TemporaryDirectory() as tmp:
        configs = [RunConfig(dataset="mnist-5k", ltp=a, ltd=a, update="batch", epochs=epochs, baselines=False,
                             out=tmp, name=f"a{i}") for i, a in enumerate(values)]
        run(RunConfig(**{**configs[0].to_dict(), "name": "warmup", "epochs": 1}), echo=lambda m: None)
        t = time.perf_counter()
        for c in configs:
            run(c, echo=lambda m: None)
        one_by_one = time.perf_counter() - t
        t = time.perf_counter()
        run_stacked([RunConfig(**{**c.to_dict(), "out": os.path.join(tmp, "s")}) for c in configs], echo=lambda m: None)
        together = time.perf_counter() - t
    one_run = one_by_one / k
    return {"k": k, "epochs": epochs, "one_by_one_seconds": one_by_one, "stacked_seconds": together,
            "stacked_over_one_run": together / one_run, "speedup_over_one_by_one": one_by_one / together}


def memory():
    model, optimizer, _ = model_and_optimizer("batch/stochastic")
    optimizer.build(model.trainable_variables)
    weights = sum(int(np.prod(v.shape)) for v in optimizer.device_variables)
    device_floats = sum(int(np.prod(v.shape)) for v in optimizer.variables if "conductance" in v.name)
    return {"weights_on_devices": weights, "device_state_floats": device_floats,
            "floats_per_weight": device_floats / weights}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()
    repeats, epochs = (1, 3) if args.quick else (2, 5)
    data = load_dataset("mnist-5k")
    started = time.perf_counter()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": {"tensorflow": __import__("tensorflow").__version__, "keras": keras.__version__},
        "dataset": data.info(),
        "epoch_ratios": ratios(data, repeats, epochs),
        "update_step": update_step(data, 3),
        "samples_per_second": samples_per_second(data, repeats),
        "stacked_sweep": stacked(2 if args.quick else 3),
        "memory": memory(),
    }
    result["seconds"] = time.perf_counter() - started
    print(f"machine: {result['machine']}")
    print("\nper-epoch time / float Keras (784-128-10, 4000 images, batch 32):")
    for k, v in result["epoch_ratios"].items():
        print(f"  {k:<38} {v['seconds_per_epoch']:.3f} s   x{v['ratio_to_float']:.2f}")
    u = result["update_step"]
    print(f"\nepoch update of {u['weights']} weights: post's Python loop {u['python_loop_seconds']:.3f} s, "
          f"devsim {u['devsim_seconds'] * 1e3:.2f} ms ({u['speedup']:.0f}x)")
    print("\nbatch-mode training (stochastic, c2c 0.02), samples/s:")
    for b, v in result["samples_per_second"].items():
        print(f"  batch {b:>3}: device {v['device_samples_per_second']:.0f}, float {v['float_samples_per_second']:.0f}")
    s = result["stacked_sweep"]
    print(f"\nK = {s['k']} configurations: one by one {s['one_by_one_seconds']:.1f} s, stacked {s['stacked_seconds']:.1f} s "
          f"= {s['stacked_over_one_run']:.2f} x one run ({s['speedup_over_one_by_one']:.1f}x faster)")
    m = result["memory"]
    print(f"\ndevice state: {m['floats_per_weight']:.2f} floats per weight ({m['device_state_floats']} for {m['weights_on_devices']} weights)")
    io.write_json(args.out, result)
    print(f"\nwritten: {args.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
