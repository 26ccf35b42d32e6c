"""What devsim's random draws cost inside XLA, and cheaper exact normal draws (a prototype).

    PYTHONPATH=. python benchmarks/noise_draws.py            # ~3 minutes, 1 thread
    PYTHONPATH=. python benchmarks/noise_draws.py --threads 2

devsim (devsim/noise.py) draws its C2C normals as ``sqrt(2) erfinv(2u - 1)`` of
a 23-bit uniform from two rounds of the lowbias32 hash of (index, key). This
script does not change devsim: it swaps `devsim.noise.normal` (and, for one
variant, `devsim.noise.uniform`) for prototypes, in this process only.

1. Micro: ns per draw of each variant for the 668,672 weights of
   784-512-512-10 (three draws of the layer shapes in one XLA program, summed
   so nothing is optimized away), interleaved rounds, median; and the same
   draws feeding devsim's C2C term inside `ExpDevice.apply_pulses` (where the
   fusion decides what a draw costs).
2. Quality: 2^22 draws of each variant against N(0, 1): mean, sd, skew,
   excess kurtosis, Kolmogorov-Smirnov distance, the largest |z|, the
   correlation of neighbouring elements and of the same element at
   consecutive keys.
3. End to end, 784-512-512-10, batch 32: seconds per step of float Keras,
   devsim stochastic without C2C, and devsim stochastic + C2C 0.02 with the
   normal variants that were not already slower in 1, trained (a) by model.fit(jit_compile=True,
   steps_per_execution=whole epoch) and (b) by a whole-epoch XLA program
   (benchmarks/peer_tools/keras_worker.py's epoch loop); the models live in
   one process and train one epoch each in turn (rounds), the median per
   model. Also the fraction of devices a step programs (n != 0).

Writes benchmarks/noise_draws.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peer_tools"))


def setup_threads(threads):
    import common

    common.pin_thread_env(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


# ---------------------------------------------------------------- the variants

def variants():
    import tensorflow as tf
    from keras import ops

    from devsim import noise

    u32 = noise._u32

    def bits_1round(shape, key):
        size = int(math.prod(shape)) if len(shape) else 1
        index = ops.cast(ops.reshape(ops.arange(size, dtype="int32"), shape), "uint32")
        return noise._mix(index * u32(noise._GOLDEN) + key)

    def to_uniform(bits):  # devsim's: 23 bits, (b + 0.5) / 2^23, in (0, 1)
        return (ops.cast(ops.right_shift(bits, u32(9)), "float32") + 0.5) * (1.0 / 2**23)

    def flat_bits(size, key, rounds=2, offset=0):
        index = ops.cast(ops.arange(size, dtype="int32"), "uint32") + u32(offset)
        x = noise._mix(index * u32(noise._GOLDEN) + key)
        return noise._mix(x ^ key) if rounds == 2 else x

    def inverse_cdf_1round(shape, key):
        return noise._inverse_normal_cdf(to_uniform(bits_1round(shape, key)))

    def xla_erfinv(shape, key):
        return math.sqrt(2.0) * tf.math.erfinv(2.0 * noise.uniform(shape, key) - 1.0)

    # sin and cos of 2 pi t, t in [0, 1): quarter turns, minimax polynomials on [0, pi/2]
    # (float32 error ~1e-7, the same as libm's sinf/cosf to within an ulp or two)
    _S = (1.0, -1.6666667e-01, 8.3333310e-03, -1.9840874e-04, 2.7525562e-06, -2.3889859e-08)
    _C = (1.0, -0.5, 4.1666638e-02, -1.3888378e-03, 2.4760495e-05, -2.6051615e-07)

    def sincos_turns(t):
        q = ops.floor(4.0 * t)
        x = (4.0 * t - q) * (math.pi / 2)  # in [0, pi/2)
        x2 = x * x
        s = _S[-1]
        for c in reversed(_S[:-1]):
            s = c + s * x2
        s = s * x
        c_ = _C[-1]
        for c in reversed(_C[:-1]):
            c_ = c + c_ * x2
        qi = ops.cast(q, "int32")
        # quadrant 0: (s, c), 1: (c, -s), 2: (-s, -c), 3: (-c, s)
        sin = ops.where(qi == 0, s, ops.where(qi == 1, c_, ops.where(qi == 2, -s, -c_)))
        cos = ops.where(qi == 0, c_, ops.where(qi == 1, -s, ops.where(qi == 2, -c_, s)))
        return sin, cos

    def box_muller(rounds=2, poly=True):
        def normal(shape, key):
            size = int(math.prod(shape)) if len(shape) else 1
            half = (size + 1) // 2
            u1 = to_uniform(flat_bits(half, key, rounds))
            u2 = to_uniform(flat_bits(half, key, rounds, offset=half))
            r = ops.sqrt(-2.0 * ops.log(u1))
            if poly:
                sin, cos = sincos_turns(u2)
            else:
                theta = (2.0 * math.pi) * u2
                sin, cos = ops.sin(theta), ops.cos(theta)
            z = ops.concatenate([r * cos, r * sin])
            return ops.reshape(z[:size], shape)

        return normal

    def splitmix_box_muller(shape, key):
        """One 64-bit splitmix64 hash per pair: its two 32-bit halves are u1 and u2."""
        size = int(math.prod(shape)) if len(shape) else 1
        half = (size + 1) // 2
        c = lambda v: tf.constant(v, tf.uint64)  # noqa: E731
        shr, xor = tf.bitwise.right_shift, tf.bitwise.bitwise_xor
        k64 = tf.cast(key, tf.uint64)
        z = (tf.cast(tf.range(half), tf.uint64) + tf.bitwise.bitwise_or(tf.bitwise.left_shift(k64, c(32)), k64))
        z = z * c(0x9E3779B97F4A7C15)
        z = xor(z, shr(z, c(30))) * c(0xBF58476D1CE4E5B9)
        z = xor(z, shr(z, c(27))) * c(0x94D049BB133111EB)
        z = xor(z, shr(z, c(31)))
        u1 = to_uniform(tf.cast(shr(z, c(32)), tf.uint32))
        u2 = to_uniform(tf.cast(tf.bitwise.bitwise_and(z, c(0xFFFFFFFF)), tf.uint32))
        r = tf.sqrt(-2.0 * tf.math.log(u1))
        sin, cos = sincos_turns(u2)
        return tf.reshape(tf.concat([r * cos, r * sin], 0)[:size], shape)

    def stateless(alg):
        def normal(shape, key):
            seed = tf.stack([tf.cast(key, tf.int32), tf.constant(0x5DEECE6, tf.int32)])
            return tf.random.stateless_normal(shape, seed=tf.bitcast(tf.cast(seed, tf.uint32), tf.int32), alg=alg)

        return normal

    return {
        "inverse-cdf (devsim)": noise.normal,
        "inverse-cdf, XLA erfinv": xla_erfinv,
        "inverse-cdf, 1 hash round": inverse_cdf_1round,
        "box-muller, sin/cos": box_muller(2, poly=False),
        "box-muller, poly sincos": box_muller(2, poly=True),
        "box-muller, poly sincos, 1 round": box_muller(1, poly=True),
        "box-muller, splitmix64 (1 hash/pair)": splitmix_box_muller,
        "stateless_normal philox": stateless("philox"),
        "stateless_normal threefry": stateless("threefry"),
    }, {"uniform, 1 hash round": lambda shape, key: to_uniform(bits_1round(shape, key))}


# Slower than devsim's own already in the micro benchmarks: libm sin/cos are not vectorized by XLA;
# every Box-Muller layout (pairs concatenated into the weight's shape) breaks the fusion of the
# device update (2.4-4x devsim's draw inside it, `in_update`, and 17-25x end to end when measured).
E2E_SKIP = ("inverse-cdf, XLA erfinv", "box-muller, sin/cos", "stateless_normal threefry", "box-muller, poly sincos",
            "box-muller, poly sincos, 1 round", "box-muller, splitmix64 (1 hash/pair)")
SHAPES = ((784, 512), (512, 512), (512, 10))  # 784-512-512-10: 668,672 weights


def micro(normals, rounds):
    import tensorflow as tf

    from devsim import noise

    size = sum(math.prod(s) for s in SHAPES)
    fns = {}
    for name, normal in {**normals, "uniform (devsim, for scale)": noise.uniform,
                         "hash bits only (devsim, 2 rounds)": noise._bits}.items():
        def f(step, normal=normal):
            total = tf.constant(0.0)
            for i, shape in enumerate(SHAPES):
                z = normal(shape, noise.key(0, step, 3 * i + 1))
                total += tf.reduce_sum(tf.cast(z, tf.float32))
            return total

        fns[name] = tf.function(f, jit_compile=True, autograph=False)
    times = {k: [] for k in fns}
    walls = {k: [] for k in fns}
    for name, fn in fns.items():  # compile
        fn(tf.constant(0, tf.int64)).numpy()
    for r in range(rounds):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            for s in range(10):
                fn(tf.constant(r * 10 + s, tf.int64))
            fn(tf.constant(0, tf.int64)).numpy()
            times[name].append((time.process_time() - c) / 11 / size * 1e9)
            walls[name].append((time.perf_counter() - t) / 11 / size * 1e9)
    return {k: {"ns_per_draw": statistics.median(v), "min": min(v), "max": max(v),
                "wall_ns_per_draw": statistics.median(walls[k])} for k, v in times.items()}


def in_update(normals, rounds, density=0.004):
    """ms per call of devsim's ExpDevice.apply_pulses on the 668,672 devices of 784-512-512-10 with each
    normal variant feeding its C2C term (``density`` of the devices pulsed, as in training): the draw's
    cost where it matters, inside the device update's XLA fusion."""
    import numpy as np
    import tensorflow as tf

    from devsim import ExpDevice, noise

    device = ExpDevice(0.8, 0.8, 101, c2c=0.02)
    rng = np.random.default_rng(0)
    gs = [tf.Variable(rng.random(s).astype(np.float32)) for s in SHAPES]
    ns = [tf.constant(np.where(rng.random(s) < density, rng.choice([-1.0, 1.0], s), 0.0).astype(np.float32))
          for s in SHAPES]
    fns = {}
    for name, normal in {"no C2C (noise-free update)": None, **normals}.items():
        def f(step, normal=normal):
            for i, (g, n) in enumerate(zip(gs, ns)):
                if normal is None:
                    g_new, _ = device._noiseless.apply_pulses(g.read_value(), n)
                else:
                    xi = normal(tuple(g.shape), noise.key(0, step, 3 * i + 1))
                    g_new, _ = device.apply_pulses(g.read_value(), n, xi=xi)
                g.assign(g_new)
            return tf.constant(0)

        fns[name] = tf.function(f, jit_compile=True, autograph=False)
    for fn in fns.values():
        fn(tf.constant(0, tf.int64))
    times = {k: [] for k in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            c = time.process_time()
            for s in range(10):
                fn(tf.constant(r * 10 + s, tf.int64))
            fn(tf.constant(0, tf.int64)).numpy()
            times[name].append((time.process_time() - c) / 11 * 1e3)
    base = statistics.median(times["no C2C (noise-free update)"])
    return {k: {"ms_per_update": statistics.median(v), "min": min(v), "max": max(v),
                "c2c_ms": statistics.median(v) - base,
                "c2c_ns_per_device": (statistics.median(v) - base) * 1e6 / sum(math.prod(s) for s in SHAPES)}
            for k, v in times.items()}


def quality(normals):
    import numpy as np
    import tensorflow as tf
    from scipy import stats

    from devsim import noise

    n = 1 << 22
    out = {}
    for name, normal in normals.items():
        fn = tf.function(lambda step, normal=normal: normal((n,), noise.key(0, step, 1)), jit_compile=True, autograph=False)
        z = fn(tf.constant(0, tf.int64)).numpy().astype(np.float64)
        z2 = fn(tf.constant(1, tf.int64)).numpy().astype(np.float64)
        out[name] = {
            "mean": float(z.mean()), "sd": float(z.std()), "skew": float(stats.skew(z)),
            "excess_kurtosis": float(stats.kurtosis(z)), "ks_distance": float(stats.kstest(z, "norm").statistic),
            "ks_pvalue": float(stats.kstest(z, "norm").pvalue), "max_abs": float(np.abs(z).max()),
            "corr_neighbours": float(np.corrcoef(z[:-1], z[1:])[0, 1]),
            "corr_halves": float(np.corrcoef(z[: n // 2], z[n // 2:])[0, 1]),
            "corr_next_key": float(np.corrcoef(z, z2)[0, 1]),
        }
    return out


# ---------------------------------------------------------------- end to end

def end_to_end(normals, uniform_1round, rounds, epochs_per_round, net, threads):
    import keras
    import numpy as np
    import tensorflow as tf

    import devsim
    from devsim import noise
    from devsim.data import load_dataset

    data = load_dataset("mnist-5k")
    x, y = data.x_train.astype("float32"), data.y_train.astype("int64")
    n, b = len(y), 32
    steps = n // b
    hidden = [int(s) for s in net.split("-")[1:-1]]
    real_normal, real_uniform = noise.normal, noise.uniform
    current = {"normal": real_normal, "uniform": real_uniform}
    noise.normal = lambda shape, key: current["normal"](shape, key)  # the dispatcher the optimizer traces
    noise.uniform = lambda shape, key: current["uniform"](shape, key)

    def model_and_optimizer(kind):
        keras.utils.set_random_seed(0)
        layers = [keras.Input((28, 28)), keras.layers.Flatten()]
        layers += [keras.layers.Dense(h, activation="relu", use_bias=False) for h in hidden]
        layers.append(keras.layers.Dense(10, activation="softmax", use_bias=False))
        model = keras.Sequential(layers)
        inner = keras.optimizers.SGD(0.1)
        if kind == "float":
            return model, inner
        device = devsim.ExpDevice(0.8, 0.8, 101, c2c=0.0 if kind == "device" else 0.02)
        return model, devsim.DeviceOptimizer(inner, device, pulses="stochastic", update="batch", seed=0)

    configs = {"float": ("float", None, None), "devsim, no C2C": ("device", None, None)}
    for name, fn in normals.items():
        if name in E2E_SKIP:
            continue
        configs[f"devsim + C2C: {name}"] = ("c2c", fn, None)
    configs["devsim + C2C: inverse-cdf 1 round; uniform 1 round"] = (
        "c2c", normals["inverse-cdf, 1 hash round"], uniform_1round)
    configs["devsim, no C2C; uniform 1 round"] = ("device", None, uniform_1round)

    trainers = {}
    for path in ("fit jit spe", "epoch program"):
        for name, (kind, normal, uniform) in configs.items():
            model, optimizer = model_and_optimizer(kind)
            model.compile(optimizer, "sparse_categorical_crossentropy", jit_compile=True, steps_per_execution=steps)
            cbs = [] if kind == "float" else [devsim.ProgramDevices()]
            if path == "fit jit spe":
                def train(model=model, cbs=cbs):
                    model.fit(x, y, batch_size=b, epochs=1, shuffle=True, verbose=0, callbacks=cbs)
            else:
                train = epoch_program(model, x, y, b)
            trainers[(path, name)] = (train, normal or real_normal, uniform or real_uniform, model)

    def run(key):
        train, normal, uniform, _ = trainers[key]
        current["normal"], current["uniform"] = normal, uniform
        t, c = time.perf_counter(), time.process_time()
        for _ in range(epochs_per_round):
            train()
        return ((time.process_time() - c) / epochs_per_round / steps,
                (time.perf_counter() - t) / epochs_per_round / steps)

    for key in trainers:  # trace, compile, warm
        run(key)
    times = {k: [] for k in trainers}  # CPU seconds per step (wall clock: below)
    walls = {k: [] for k in trainers}
    keys = list(trainers)
    for r in range(rounds):
        k = r % len(keys)
        for key in keys[k:] + keys[:k]:
            cpu, wall = run(key)
            times[key].append(cpu)
            walls[key].append(wall)
    result = {}
    for path in ("fit jit spe", "epoch program"):
        rows = {name: times[(path, name)] for (p, name) in trainers if p == path}
        float_step = statistics.median(rows["float"])
        device_steps = {base: statistics.median(rows[base]) for base in ("devsim, no C2C", "devsim, no C2C; uniform 1 round")}
        out = {}
        for name, ts in rows.items():
            step = statistics.median(ts)
            device_step = device_steps["devsim, no C2C; uniform 1 round" if "uniform 1 round" in name else "devsim, no C2C"]
            row = {"ms_per_step": step * 1e3, "min_ms": min(ts) * 1e3, "max_ms": max(ts) * 1e3,
                   "x_float_step": step / float_step, "wall_ms_per_step": statistics.median(walls[(path, name)]) * 1e3}
            if name.startswith("devsim + C2C"):
                row["c2c_ms"] = (step - device_step) * 1e3
                row["c2c_fraction_of_step"] = (step - device_step) / step
                row["c2c_x_float_step"] = (step - device_step) / float_step
            out[name] = row
        result[path] = out
    # how many devices a step programs (n != 0): the weights that moved in one step
    _, _, _, model = trainers[("fit jit spe", "devsim, no C2C")]
    before = [w.numpy() for w in model.trainable_variables]
    current["normal"], current["uniform"] = real_normal, real_uniform
    model.fit(x[:b], y[:b], batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[devsim.ProgramDevices()])
    moved = sum(int(np.sum(w.numpy() != w0)) for w, w0 in zip(model.trainable_variables, before))
    total = sum(w0.size for w0 in before)
    result["programmed_fraction_one_step"] = moved / total
    noise.normal, noise.uniform = real_normal, real_uniform
    return result


def epoch_program(model, x, y, b):
    import keras
    import numpy as np
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    n = len(y)
    steps = n // b
    x_all, y_all = tf.constant(x), tf.constant(y)
    model.optimizer.build(model.trainable_variables)
    variables = model.trainable_variables

    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        model.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    @tf.function(jit_compile=True)
    def epoch_fn(perm):
        def body(i, total):
            idx = tf.slice(perm, [i * b], [b])
            return i + 1, total + step(tf.gather(x_all, idx), tf.gather(y_all, idx))

        return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), tf.constant(0.0)))[1]

    rng = np.random.default_rng(0)
    return lambda: float(epoch_fn(tf.constant(rng.permutation(n).astype("int32"))))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--net", default="784-512-512-10")
    p.add_argument("--skip", default="", help="comma list of: micro, in_update, quality, e2e")
    p.add_argument("--out", default=str(HERE / "noise_draws.json"))
    args = p.parse_args()
    setup_threads(args.threads)
    import common
    import tensorflow as tf

    normals, uniforms = variants()
    skip = set(args.skip.split(","))
    result = {"threads": args.threads, "net": args.net, "tensorflow": tf.__version__}
    if "micro" not in skip:
        result["micro_ns_per_draw"] = micro(normals, max(args.rounds, 5))
        print("\nns per draw (process CPU time), 668,672 draws in one XLA program (median [min-max]; wall):")
        for k, v in result["micro_ns_per_draw"].items():
            print(f"  {k:<40} {v['ns_per_draw']:6.2f} [{v['min']:.2f}-{v['max']:.2f}]  wall {v['wall_ns_per_draw']:.2f}")
    if "in_update" not in skip:
        result["in_update"] = in_update(normals, max(args.rounds, 5))
        print("\ninside the device update (ExpDevice.apply_pulses, 668,672 devices, 0.4 % pulsed), CPU ms per update:")
        for k, v in result["in_update"].items():
            print(f"  {k:<40} {v['ms_per_update']:6.3f} [{v['min']:.3f}-{v['max']:.3f}]  C2C {v['c2c_ms']:.3f} ms "
                  f"= {v['c2c_ns_per_device']:.2f} ns per device")
    if "quality" not in skip:
        result["quality"] = quality(normals)
        print("\nquality, 2^22 draws:")
        for k, v in result["quality"].items():
            print(f"  {k:<40} mean {v['mean']:+.4f} sd {v['sd']:.4f} skew {v['skew']:+.4f} kurt {v['excess_kurtosis']:+.4f} "
                  f"KS {v['ks_distance']:.5f} (p {v['ks_pvalue']:.2f}) max|z| {v['max_abs']:.2f} "
                  f"r1 {v['corr_neighbours']:+.4f} r_key {v['corr_next_key']:+.4f}")
    if "e2e" not in skip:
        e2e = end_to_end(normals, uniforms["uniform, 1 hash round"], args.rounds, 1, args.net, args.threads)
        result["end_to_end"] = e2e
        print(f"\nend to end, {args.net}, batch 32, {args.threads} thread(s), CPU ms per step (median [min-max] of "
              f"{args.rounds} rounds); programmed per step: {e2e['programmed_fraction_one_step']:.1%} of the devices")
        for path in ("fit jit spe", "epoch program"):
            print(f" {path}:")
            for k, v in e2e[path].items():
                extra = (f"  C2C {v['c2c_ms']:.3f} ms = {v['c2c_fraction_of_step']:.0%} of the step, "
                         f"{v['c2c_x_float_step']:.2f} x float step") if "c2c_ms" in v else ""
                print(f"  {k:<62} {v['ms_per_step']:.3f} [{v['min_ms']:.3f}-{v['max_ms']:.3f}] (wall {v['wall_ms_per_step']:.3f}) "
                      f"x{v['x_float_step']:.2f}{extra}")
    Path(args.out).write_text(json.dumps(common.finite(result), indent=1, allow_nan=False) + "\n")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
