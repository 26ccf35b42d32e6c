"""Prototype: C2C normals drawn only for the devices a step programs, inside the same XLA program.

    PYTHONPATH=. python benchmarks/sparse_c2c.py          # ~3 minutes, 1 thread

A batch-mode step of stochastic rounding programs few devices: 0.8 % of
784-128-10's, 0.4 % of 784-512-512-10's and 0.2 % of 784-1400-1400-10's per
step on the issue's job (measured here, see the report). devsim draws a normal
for every device and throws away the rest (`ops.where(k == 0, g, ...)`), and
the draw costs more than the device update itself. Because devsim's noise is
a counter-based function of (element index, key), the draws of just the
programmed devices are the very same numbers, so this prototype gives the
same bits with the cost of the draws proportional to the programmed blocks:

1. flags: which blocks of B consecutive devices hold a programmed one (one
   vectorized pass over the pulse counts);
2. the rank of every flagged block, as prefix sums computed by two small
   matmuls with triangular ones (XLA's cumsum costs 5 ms for 670k elements on
   this CPU, `tf.searchsorted` far more);
3. a list of fixed capacity of the flagged blocks (a binary search of the
   ranks for every slot at once: ~15 gathers of the list's length), gathers
   of those blocks' pulse counts and conductances, the normals of their
   devices (devsim's hash and inverse CDF on the element indices), and one
   gather back by rank (XLA's scatter is a serial loop on CPU);
4. when more blocks are flagged than the capacity (e.g. a first step with
   large gradients), a `tf.cond` takes devsim's dense path instead, which
   computes the same numbers.

It is installed in this process only, by swapping `devsim.noise.normal` for
a lazy stand-in and wrapping `ExpDevice.apply_pulses`; devsim/ is unchanged.
Checks bit-identity with devsim's dense draws after training, and measures
per-step CPU time of float Keras, devsim without C2C, devsim with dense C2C
and with the sparse prototype, by model.fit(jit_compile=True,
steps_per_execution=epoch) and by a whole-epoch XLA program. Writes
benchmarks/sparse_c2c.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "peer_tools"))

SETTINGS = {"block": 16, "capacity": 0.12}  # devices per block; list capacity, fraction of the blocks


class LazyNormal:
    """What the optimizer gets instead of dense draws: the shape and key, for `apply_pulses`."""

    def __init__(self, shape, key):
        self.shape, self.key = tuple(shape), key


def _prefix_sums(f):
    """Inclusive prefix sums of a 1-D float32 vector of 0/1 (exact below 2^24) by two matmuls."""
    import tensorflow as tf

    n = int(f.shape[0])
    cols = max(1, int(math.ceil(math.sqrt(n))))
    rows = -(-n // cols)
    m = tf.reshape(tf.pad(f, [[0, rows * cols - n]]), [rows, cols])
    within = m @ tf.constant(_triangle(cols, inclusive=True))  # prefix inside each row
    before = tf.reduce_sum(m, axis=1)[None, :] @ tf.constant(_triangle(rows, inclusive=False))  # rows before
    return tf.reshape(within + tf.transpose(before), [-1])[:n]


def _triangle(n, inclusive):
    import numpy as np

    return np.triu(np.ones((n, n), np.float32), 0 if inclusive else 1)


def _normals_at(index, key):
    """devsim.noise.normal's numbers at the given flat element indices (uint32)."""
    from keras import ops

    from devsim import noise

    bits = noise._mix(noise._mix(index * noise._u32(noise._GOLDEN) + key) ^ key)
    u = (ops.cast(ops.right_shift(bits, noise._u32(9)), "float32") + 0.5) * (1.0 / 2**23)
    return noise._inverse_normal_cdf(u)


def sparse_c2c(g_det, k, key, c2c, dense_normal, block, capacity):
    """``g_det`` (noise-free update, ``g`` where ``k == 0``) plus C2C noise on the devices with ``k > 0``."""
    import tensorflow as tf

    shape = tuple(g_det.shape)
    n = int(math.prod(shape))
    pad = (-n) % block
    nb = (n + pad) // block
    cap = max(1, int(math.ceil(capacity * nb)))
    k2 = tf.reshape(tf.pad(tf.reshape(k, [-1]), [[0, pad]]), [nb, block])
    g2 = tf.reshape(tf.pad(tf.reshape(g_det, [-1]), [[0, pad]]), [nb, block])
    flags = tf.reduce_max(k2, axis=1) > 0
    rank = tf.cast(_prefix_sums(tf.cast(flags, tf.float32)), tf.int32)  # 1.. for flagged blocks
    count = rank[-1]

    def dense():
        xi = dense_normal(shape, key)
        noisy = tf.clip_by_value(g_det + c2c * tf.sqrt(k) * xi, 0.0, 1.0)
        return tf.where(k == 0, g_det, noisy)

    def sparse():
        # slot s holds the block whose rank is s + 1: a binary search of the (sorted) ranks, all slots at once
        target = tf.range(1, cap + 1, dtype=tf.int32)
        lo, hi = tf.zeros([cap], tf.int32), tf.fill([cap], nb)
        for _ in range(max(1, int(math.ceil(math.log2(nb + 1))))):
            mid = (lo + hi) // 2
            right = tf.gather(rank, tf.minimum(mid, nb - 1)) < target
            lo, hi = tf.where(right, mid + 1, lo), tf.where(right, hi, mid)
        blocks = tf.minimum(lo, nb - 1)  # slots past the count point at junk blocks, never read back
        kb, gb = tf.gather(k2, blocks), tf.gather(g2, blocks)
        index = tf.cast(blocks[:, None] * block + tf.range(block)[None, :], tf.uint32)
        xi = _normals_at(index, key)
        gb_new = tf.where(kb == 0, gb, tf.clip_by_value(gb + c2c * tf.sqrt(kb) * xi, 0.0, 1.0))
        # back: every flagged block reads its slot (a gather, not a scatter: XLA's CPU scatter is serial)
        back = tf.gather(gb_new, tf.clip_by_value(rank - 1, 0, cap - 1))
        out = tf.where(flags[:, None], back, g2)
        return tf.reshape(tf.reshape(out, [-1])[:n], shape)

    return tf.cond(count > cap, dense, sparse)


def install():
    """Swap devsim's dense C2C draws for the sparse prototype in this process; returns an undo."""
    from keras import ops

    from devsim import noise
    from devsim.devices import ExpDevice

    real_normal, real_apply = noise.normal, ExpDevice.apply_pulses

    def lazy_normal(shape, key):
        return LazyNormal(shape, key)

    def apply_pulses(self, g, n, seed=None, noise_shape=None, xi=None):
        if not isinstance(xi, LazyNormal):
            return real_apply(self, g, n, seed=seed, noise_shape=noise_shape, xi=xi)
        if self.c2c_mode != "sqrt" or self.stuck is not None or noise_shape is not None:
            return real_apply(self, g, n, xi=real_normal(xi.shape, xi.key))
        g_det, lost = real_apply(self._noiseless, g, n)
        k = ops.abs(ops.cast(n, g_det.dtype))
        return sparse_c2c(g_det, k, xi.key, self.c2c, real_normal, SETTINGS["block"], SETTINGS["capacity"]), lost

    noise.normal, ExpDevice.apply_pulses = lazy_normal, apply_pulses

    def undo():
        noise.normal, ExpDevice.apply_pulses = real_normal, real_apply

    return undo


def build(hidden, kind, seed=0):
    import keras

    import devsim

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(h, activation="relu", use_bias=False, name=f"d{i}") for i, h in enumerate(hidden)]
    layers.append(keras.layers.Dense(10, activation="softmax", use_bias=False, name="out"))
    model = keras.Sequential(layers)
    inner = keras.optimizers.SGD(0.1)
    if kind == "float":
        return model, inner
    device = devsim.ExpDevice(0.8, 0.8, 101, c2c=0.0 if kind == "device" else 0.02)
    return model, devsim.DeviceOptimizer(inner, device, pulses="stochastic", update="batch", seed=seed)


def identity(x, y, hidden, epochs, path):
    """Train with dense and with sparse draws; are weights and device states bit-identical?"""
    import numpy as np

    import devsim
    from noise_draws import epoch_program

    out = {}
    for name in ("dense", "sparse"):
        undo = install() if name == "sparse" else (lambda: None)
        try:
            model, optimizer = build(hidden, "c2c")
            model.compile(optimizer, "sparse_categorical_crossentropy", jit_compile=True, steps_per_execution=len(y) // 32)
            if path == "fit":
                model.fit(x, y, batch_size=32, epochs=epochs, shuffle=True, verbose=0, callbacks=[devsim.ProgramDevices()])
            else:
                train = epoch_program(model, x, y, 32)
                for _ in range(epochs):
                    train()
            out[name] = [w.numpy() for w in model.trainable_variables] + list(optimizer.device_states().values())
        finally:
            undo()
    same = all(np.array_equal(a, b) for a, b in zip(out["dense"], out["sparse"]))
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(out["dense"], out["sparse"]))
    return {"bit_identical": same, "largest_difference": worst}


def timing(x, y, hidden, rounds):
    import devsim
    from noise_draws import epoch_program

    steps = len(y) // 32
    configs = ("float", "devsim, no C2C", "devsim + C2C, dense draws (devsim)", "devsim + C2C, sparse draws (prototype)")
    trainers = {}
    for path in ("fit jit spe", "epoch program"):
        for name in configs:
            kind = "float" if name == "float" else "device" if "no C2C" in name else "c2c"
            sparse = "sparse" in name
            undo = install() if sparse else (lambda: None)
            try:
                model, optimizer = build(hidden, kind)
                model.compile(optimizer, "sparse_categorical_crossentropy", jit_compile=True, steps_per_execution=steps)
                cbs = [] if kind == "float" else [devsim.ProgramDevices()]
                if path == "fit jit spe":
                    def train(model=model, cbs=cbs):
                        model.fit(x, y, batch_size=32, epochs=1, shuffle=True, verbose=0, callbacks=cbs)
                else:
                    train = epoch_program(model, x, y, 32)
                train()  # trace and compile with the prototype installed; the traced program keeps it
            finally:
                undo()
            trainers[(path, name)] = train
    cpu = {k: [] for k in trainers}
    wall = {k: [] for k in trainers}
    keys = list(trainers)
    for r in range(rounds):
        k = r % len(keys)
        for key in keys[k:] + keys[:k]:
            t, c = time.perf_counter(), time.process_time()
            trainers[key]()
            cpu[key].append((time.process_time() - c) / steps)
            wall[key].append((time.perf_counter() - t) / steps)
    result = {}
    for path in ("fit jit spe", "epoch program"):
        f = statistics.median(cpu[(path, "float")])
        d = statistics.median(cpu[(path, "devsim, no C2C")])
        rows = {}
        for name in configs:
            s = statistics.median(cpu[(path, name)])
            row = {"ms_per_step": s * 1e3, "min_ms": min(cpu[(path, name)]) * 1e3, "max_ms": max(cpu[(path, name)]) * 1e3,
                   "wall_ms_per_step": statistics.median(wall[(path, name)]) * 1e3, "x_float_step": s / f}
            if "C2C," in name:
                row.update(c2c_ms=(s - d) * 1e3, c2c_fraction_of_step=(s - d) / s, c2c_x_float_step=(s - d) / f)
            rows[name] = row
        result[path] = rows
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--nets", default="784-512-512-10")
    p.add_argument("--block", type=int, default=SETTINGS["block"])
    p.add_argument("--capacity", type=float, default=SETTINGS["capacity"])
    p.add_argument("--out", default=str(HERE / "sparse_c2c.json"))
    args = p.parse_args()
    SETTINGS.update(block=args.block, capacity=args.capacity)
    from noise_draws import setup_threads

    setup_threads(args.threads)
    import common

    from devsim.data import load_dataset

    data = load_dataset("mnist-5k")
    x, y = data.x_train.astype("float32"), data.y_train.astype("int64")
    result = {"threads": args.threads, "settings": dict(SETTINGS), "identity": {}, "timing": {}}
    small = [128]
    for path in ("fit", "epoch program"):
        r = identity(x[:640], y[:640], small, 2, path)
        result["identity"][f"784-128-10, 640 images, 2 epochs, {path}"] = r
        print(f"identity 784-128-10 ({path}): {'bit-identical' if r['bit_identical'] else 'DIFFERENT'} "
              f"(largest difference {r['largest_difference']:.3g})", flush=True)
    for net in args.nets.split(","):
        hidden = [int(s) for s in net.split("-")[1:-1]]
        r = identity(x, y, hidden, 1, "fit")
        result["identity"][f"{net}, 4000 images, 1 epoch, fit"] = r
        print(f"identity {net} (fit): {'bit-identical' if r['bit_identical'] else 'DIFFERENT'} "
              f"(largest difference {r['largest_difference']:.3g})", flush=True)
        t = timing(x, y, hidden, args.rounds)
        result["timing"][net] = t
        print(f"\n{net}, batch 32, {args.threads} thread(s), CPU ms per step (median [min-max] of {args.rounds} rounds):")
        for path, rows in t.items():
            print(f" {path}:")
            for name, v in rows.items():
                extra = (f"  C2C {v['c2c_ms']:.3f} ms = {v['c2c_fraction_of_step']:.0%} of the step, "
                         f"{v['c2c_x_float_step']:.2f} x float step") if "c2c_ms" in v else ""
                print(f"  {name:<40} {v['ms_per_step']:.3f} [{v['min_ms']:.3f}-{v['max_ms']:.3f}] "
                      f"(wall {v['wall_ms_per_step']:.3f}) x{v['x_float_step']:.2f}{extra}")
    Path(args.out).write_text(json.dumps(common.finite(result), indent=1, allow_nan=False) + "\n")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
