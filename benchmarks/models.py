"""Time per epoch and peak memory of devsim's CNNs, per model size and Keras backend.

    python benchmarks/models.py                      # ~10 minutes on 2 cores: LeNet-5, VGG-8 at 3 widths, TF
    python benchmarks/models.py --backends tensorflow,jax,torch
    python benchmarks/models.py --quick              # ~2 minutes: LeNet-5 and the quarter-width VGG-8

Every cell (model, backend, float or device) is a fresh subprocess with its
threads pinned (OMP/MKL/OpenBLAS/TF threads = --threads) and KERAS_BACKEND
set, so its peak resident memory (``ru_maxrss``) is its own. A worker builds
the network (`devsim.models`), random inputs of the dataset's shape (the time
does not depend on the pixel values), compiles it as ``devsim run --update batch``
does (`DeviceOptimizer` with stochastic pulses, C2C 0.02, ``steps_per_execution``
= the timed steps; 1 on torch, which allows no other), trains warm-up steps, then times ``--images`` images at
batch 32 for ``--epochs`` passes. It reports seconds per 1000 images, the
seconds of a full epoch (60,000 images for LeNet-5 on MNIST/Fashion-MNIST,
50,000 for VGG-8 on CIFAR-10: extrapolated linearly from the timed images),
peak RSS, and the devices' state per kernel weight (float32 optimizer variables
and device-to-device draws: 1 for the conductance, plus the inner SGD's none),
with the same for every training algorithm (`devsim.algorithms`), with and
without variation, from a build without training.

Cells run in an order rotated every repeat; the device/float ratio is taken
within a repeat. Writes strict JSON (`benchmarks/models.json`) atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFIX = "MODELS_RESULT "
sys.path.insert(0, str(HERE / "peer_tools"))

import common  # noqa: E402

# name: (model, width, input shape, images of a full epoch)
MODELS = {
    "lenet5": ("lenet5", 1.0, (28, 28), 60_000),
    "vgg8-w0.25": ("vgg8", 0.25, (32, 32, 3), 50_000),
    "vgg8-w0.5": ("vgg8", 0.5, (32, 32, 3), 50_000),
    "vgg8": ("vgg8", 1.0, (32, 32, 3), 50_000),
}


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _accelerator(backend: str) -> str:
    """Which device ran the worker: "gpu" when the backend sees one, else "cpu"."""
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return jax.default_backend()
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def state_numbers(optimizer) -> int:
    """Numbers the devices keep besides the weights: float32 optimizer variables (conductances, the
    algorithms' arrays, the inner optimizer's slots) and each tile's device-to-device draws."""
    import dataclasses

    import numpy as np

    total = sum(int(np.prod(v.shape)) for v in optimizer.variables if "float" in str(v.dtype))
    populations = [p for tile in optimizer.tiles for p in vars(tile).values() if type(p).__name__ == "DevicePopulation"]
    for population in populations:
        for obj in (population, population.model):
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                if isinstance(value, np.ndarray) and value.size > 1:
                    total += value.size
    return total


def worker(spec: dict) -> dict:
    """One cell: build, compile, warm up, time. Runs in its own process."""
    rss_start = _rss_mb()
    import keras
    import numpy as np

    import devsim
    from devsim.models import build_lenet5, build_vgg8, kernel_shapes

    model_name, width, shape, _ = MODELS[spec["model"]]
    keras.utils.set_random_seed(0)
    build = build_lenet5 if model_name == "lenet5" else lambda s: build_vgg8(s, width=width)
    model = build(tuple(shape))
    weights = sum(int(np.prod(s)) for s in kernel_shapes(model))
    batch, images = spec["batch"], spec["images"]
    steps = images // batch
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (steps * batch, *shape)).astype(np.float32)
    y = rng.integers(0, 10, steps * batch)
    inner = keras.optimizers.SGD(0.01)
    state_floats = None
    if spec["kind"] == "device":
        device = devsim.ExpDevice(a_p=0.8, a_d=0.8, states=101, c2c=0.02)
        optimizer = devsim.DeviceOptimizer(inner, device, pulses="stochastic", update="batch", seed=0)
        optimizer.build(model.trainable_variables)
        state_floats = state_numbers(optimizer) / weights
    else:
        optimizer = inner
    spe = 1 if keras.backend.backend() == "torch" else steps  # Keras's torch trainer runs one step per call
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", steps_per_execution=spe)
    callbacks = [devsim.ProgramDevices()] if spec["kind"] == "device" else []
    warm = spec["warmup"] * batch
    model.fit(x[:warm], y[:warm], batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", steps_per_execution=spe)
    model.fit(x[:batch * steps], y[:batch * steps], batch_size=batch, epochs=1, verbose=0, shuffle=False,
              callbacks=callbacks)  # traces the timed program once
    seconds = []
    for _ in range(spec["epochs"]):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
        seconds.append(time.perf_counter() - t0)
    per_image = statistics.median(seconds) / (steps * batch)
    return {
        "kernel_weights": weights, "seconds_per_1000_images": 1000 * per_image,
        "seconds_per_full_epoch": per_image * MODELS[spec["model"]][3], "timed_images": steps * batch,
        "epoch_seconds": seconds, "peak_rss_mb": _rss_mb(), "rss_after_import_mb": rss_start,
        "state_floats_per_weight": state_floats, "accelerator": _accelerator(keras.backend.backend()),
        "backend": keras.backend.backend(),
    }


def algorithm_state(backend_env) -> dict:
    """Float32 optimizer state per kernel weight for every training algorithm, LeNet-5, built only."""
    code = (
        "import json, keras, numpy as np, devsim\n"
        "from devsim.algorithms import ALGORITHMS\n"
        "from devsim.models import build_lenet5, kernel_shapes\n"
        "from models import state_numbers\n"
        "out = {}\n"
        "for name in ALGORITHMS:\n"
        "    for c2c in (0.0, 0.02):\n"
        "        model = build_lenet5((28, 28))\n"
        "        n = sum(int(np.prod(s)) for s in kernel_shapes(model))\n"
        "        device = devsim.ExpDevice(a_p=0.8, a_d=0.8, states=101, c2c=c2c, d2d=0.1 if c2c else 0.0)\n"
        "        opt = devsim.DeviceOptimizer('sgd', device, update='batch', algorithm=name, seed=0)\n"
        "        opt.build(model.trainable_variables)\n"
        "        out[f'{name}' + (' (C2C, D2D)' if c2c else '')] = state_numbers(opt) / n\n"
        f"print({PREFIX!r} + json.dumps(out))\n"
    )
    env = {**backend_env, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    return _parse(done)


def _parse(done):
    for line in done.stdout.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX):])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": tail[:300]}


def main(argv=None):
    from devsim import io

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--backends", default="tensorflow", help="comma list of Keras backends (tensorflow, jax, torch)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--images", type=int, default=0, help="timed images per pass (0: 2048 LeNet-5, 512 VGG-8)")
    p.add_argument("--epochs", type=int, default=2, help="timed passes (median)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up steps")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(HERE / "models.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.epochs = "lenet5,vgg8-w0.25", 1
    models = [m for m in args.models.split(",") if m]
    backends = [b for b in args.backends.split(",") if b]
    unknown = [m for m in models if m not in MODELS] + [b for b in backends if b not in ("tensorflow", "jax", "torch")]
    if unknown:
        p.error(f"unknown model or backend: {', '.join(unknown)}")
    cells = [(m, b, k) for m in models for b in backends for k in ("float", "device")]
    results = {"machine": common.machine_info(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "threads": args.threads,
               "batch": args.batch, "device": "ExpDevice(a_p=0.8, a_d=0.8, states=101, c2c=0.02), stochastic pulses, "
               "update=batch", "runs": []}
    for rep in range(args.repeats):
        start = rep % len(cells)
        for i, (m, b, k) in enumerate(cells[start:] + cells[:start]):
            images = args.images or (2048 if m == "lenet5" else 512)
            spec = {"model": m, "kind": k, "batch": args.batch, "images": images, "epochs": args.epochs,
                    "warmup": args.warmup}
            env = common.worker_env(args.threads, b, ROOT)
            print(f"[{rep + 1}/{args.repeats}] {i + 1}/{len(cells)} {m} {b} {k} ...", end=" ", flush=True)
            done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                                  capture_output=True, text=True, cwd=ROOT, preexec_fn=common.pin_cores(args.threads))
            result = _parse(done)
            result.update(repeat=rep, model=m, backend_requested=b, kind=k)
            results["runs"].append(result)
            print(f"{result.get('seconds_per_1000_images', float('nan')):.2f} s/1000 images, "
                  f"{result.get('peak_rss_mb', float('nan')):.0f} MB" if "error" not in result else result["error"])
            io.write_json(args.out, results)
    results["algorithm_state_floats_per_weight"] = algorithm_state(
        {**os.environ, "KERAS_BACKEND": backends[0], "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    results["table"] = summarize(results["runs"])
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    io.write_json(args.out, results)
    print_table(results["table"])


def summarize(runs) -> list:
    """One row per (model, backend): medians over repeats, device/float ratio within a repeat."""
    rows = []
    keys = dict.fromkeys((r["model"], r["backend_requested"]) for r in runs)
    for m, b in keys:
        mine = [r for r in runs if r["model"] == m and r["backend_requested"] == b and "error" not in r]
        dev = [r for r in mine if r["kind"] == "device"]
        flt = [r for r in mine if r["kind"] == "float"]
        if not dev:
            continue
        ratios = [d["seconds_per_1000_images"] / f["seconds_per_1000_images"] for d in dev for f in flt
                  if f["repeat"] == d["repeat"]]
        med = lambda rs, k: statistics.median(r[k] for r in rs) if rs else None  # noqa: E731
        rows.append({
            "model": m, "backend": b, "kernel_weights": dev[0]["kernel_weights"], "accelerator": dev[0]["accelerator"],
            "device_s_per_1000_images": med(dev, "seconds_per_1000_images"),
            "float_s_per_1000_images": med(flt, "seconds_per_1000_images"),
            "device_s_per_full_epoch": med(dev, "seconds_per_full_epoch"),
            "device_over_float": statistics.median(ratios) if ratios else None,
            "device_peak_rss_mb": med(dev, "peak_rss_mb"), "float_peak_rss_mb": med(flt, "peak_rss_mb"),
            "state_floats_per_weight": dev[0]["state_floats_per_weight"],
        })
    return rows


def print_table(rows, out=print):
    out("| model | backend | kernel weights | device s/1000 img | float s/1000 img | device/float | device s/epoch "
        "(full) | peak RSS device / float (MB) | state floats/weight |")
    out("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        out(f"| {r['model']} | {r['backend']} | {r['kernel_weights']:,} | {fmt(r['device_s_per_1000_images'], '.2f')} | "
            f"{fmt(r['float_s_per_1000_images'], '.2f')} | x{fmt(r['device_over_float'], '.2f')} | "
            f"{fmt(r['device_s_per_full_epoch'], ',.0f')} | {fmt(r['device_peak_rss_mb'], ',.0f')} / "
            f"{fmt(r['float_peak_rss_mb'], ',.0f')} | {fmt(r['state_floats_per_weight'], '.2f')} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(PREFIX + json.dumps(worker(json.loads(sys.argv[2]))))
    else:
        main()
