"""What an exact batch device update must pay per weight on this CPU, and where devsim's goes.

    PYTHONPATH=. python benchmarks/update_floor.py          # ~1 minute, 1 thread; writes update_floor.json

The issue's speed target (devsim + C2C at most 1.25 x a plain float PyTorch
epoch) leaves the device update about a quarter of torch's whole training
step. Every step, stochastic rounding must decide, for every weight, whether
it gets a pulse: devsim draws a uniform per weight, two rounds of the
lowbias32 hash of (weight index, key) (`devsim.noise`), and compares it with
``|dw| / dw_min``. This script times, on the 668,672 weights of
784-512-512-10 (its three kernels in one program, gradients of a real batch
of the 4000-image MNIST subset at Glorot initialization), one thread:

- ``float_sgd``: ``w - lr g``, the float optimizer's own pass over the weights;
- ``rounding_draws``: the uniforms alone (`devsim.noise.uniform`);
- ``pulse_decision``: the uniforms and the stochastic rule
  (`devsim.pulses.stochastic_pulses`), the pulses of every weight written out:
  what any exact update with these draws evaluates for every weight;
- ``dense_update``: the whole update of every device (`ExpDevice.apply_pulses`
  with its C2C normals, then the read-back), devsim's dense path;

each as one XLA program on JAX (``jax.jit``, the backend where devsim is
fastest), ns per weight, the median of interleaved rounds. Then
``rounding_draws_c``: the same hash compiled by the system C compiler
(``cc -O3 -march=native``, vectorized, checked to give `devsim.noise`'s bits),
which tells what the draws cost on this CPU without XLA. And, when torch is
importable, ``torch_step``: a float PyTorch training step of the same network
and batch (forward, backward, SGD), the reference of the issue's ratios.

``--native`` (needs a C++ compiler and jaxlib's XLA FFI headers) then times
whole training steps of the network over the subset (batch 32, interleaved
rounds of 125 steps, median): float SGD, devsim's dense update (its XLA
functions), and the same update as one XLA FFI kernel in C++
(``benchmarks/native/device_update.cc``: the pulses of a chunk of 256 weights
in one vectorized loop, then only the weights that get a pulse programmed,
in place), checked against devsim's XLA update on one step. It tells how far
a kernel outside XLA would take devsim with its per-weight draws.

It changes nothing in devsim. Writes benchmarks/update_floor.json.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peer_tools"))

SIZES = (784, 512, 512, 10)
BATCH, LR = 32, 0.1
DEVICE = dict(a_p=0.8, a_d=0.8, states=101, c2c=0.02)  # benchmarks/peers.py's devsim-c2c device

NATIVE = HERE / "native"
"""C sources: devsim's draws (draws.h), the rounding draws alone (uniforms.c), the whole update (device_update.cc)."""


def one_thread():
    """Pin this process to one core and keep every library on one thread (before they load)."""
    import common

    common.pin_thread_env(1)
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {common.JAX_ONE_THREAD_FLAGS}".strip()
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pin = common.pin_cores(1)
    if pin is not None:
        pin()


def network(seed=0):
    """Glorot-uniform kernels of 784-512-512-10 and one batch of the MNIST subset (numpy)."""
    import numpy as np

    from devsim.data import load_dataset

    rng = np.random.default_rng(seed)
    kernels = [rng.uniform(-1, 1, (i, o)).astype("float32") * np.float32(np.sqrt(6.0 / (i + o)))
               for i, o in zip(SIZES[:-1], SIZES[1:])]
    data = load_dataset("mnist-5k")
    x = data.x_train.reshape(len(data.y_train), -1).astype("float32")
    return kernels, x, data.y_train.astype("int32"), data.info()


def loss(ws, xb, yb):
    """Cross-entropy of the network (jax)."""
    import jax
    import jax.numpy as jnp

    h = xb
    for w in ws[:-1]:
        h = jax.nn.relu(h @ w)
    return jnp.mean(-jax.nn.log_softmax(h @ ws[-1])[jnp.arange(xb.shape[0]), yb])


class Update:
    """devsim's batch update of one kernel, written with its public functions: the SGD proposal, the rounding
    draws and stochastic rule, the device step with its C2C normals, the read-back (`DeviceTile`'s dense update
    for these settings)."""

    def __init__(self):
        import devsim
        from devsim.mapping import ReferenceMapping

        self.device = devsim.ExpDevice(**DEVICE)
        self.mapping = ReferenceMapping()
        self.dw_min = self.mapping.dw_min(self.device)

    @staticmethod
    def keys(step, index):
        """The (rounding, C2C) keys of kernel ``index`` at ``step``: `DeviceTile`'s streams 3 index + 0 / 1."""
        from devsim import noise

        return noise.key(0, step, 3 * index), noise.key(0, step, 3 * index + 1)

    def pulses(self, w, gr, u_key):
        from devsim import noise
        from devsim.pulses import stochastic_pulses

        dw = (w - LR * gr) - w
        return stochastic_pulses(dw, self.dw_min, self.device.num_pulses, u=noise.uniform(w.shape, u_key))

    def __call__(self, w, g, gr, u_key, c2c_key):
        """``(w_new, g_new)``."""
        from devsim import noise

        g_new, _ = self.device.apply_pulses(g, self.pulses(w, gr, u_key), xi=noise.normal(g.shape, c2c_key))
        return self.mapping.weights(g_new), g_new


def jax_programs(kernels, x, y):
    """The four XLA programs (jitted) with their arguments, the fraction of weights pulsed, the draws and keys."""
    import jax
    import jax.numpy as jnp

    from devsim import noise

    update = Update()
    ws = [jnp.asarray(k) for k in kernels]
    grads = jax.grad(loss)(ws, x, y)
    gs = [update.mapping.conductances(w) for w in ws]
    keys = [Update.keys(7, i) for i in range(len(ws))]
    u_keys = [k[0] for k in keys]

    def decide(ws, grads, u_keys):
        return [update.pulses(*a) for a in zip(ws, grads, u_keys)]

    programs = {
        "float_sgd": (jax.jit(lambda ws, grads: [w - LR * gr for w, gr in zip(ws, grads)]), (ws, grads)),
        "rounding_draws": (jax.jit(lambda u_keys: [noise.uniform(w.shape, k) for w, k in zip(ws, u_keys)]),
                           (u_keys,)),
        "pulse_decision": (jax.jit(decide), (ws, grads, u_keys)),
        "dense_update": (jax.jit(lambda ws, gs, grads, keys: [update(w, g, gr, *k) for w, g, gr, k
                                                              in zip(ws, gs, grads, keys)]), (ws, gs, grads, keys)),
    }
    pulses = programs["pulse_decision"][0](ws, grads, u_keys)
    pulsed = sum(float(jnp.sum(n != 0)) for n in pulses) / sum(int(w.size) for w in ws)
    return programs, pulsed, programs["rounding_draws"][0](u_keys), u_keys


def time_rounds(calls: dict, rounds: int, reps: int) -> dict:
    """Median over interleaved rounds of the seconds per call of each zero-argument callable."""
    for call in calls.values():
        call()
    per = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                call()
            per[name].append((time.perf_counter() - t0) / reps)
    return {name: statistics.median(ts) for name, ts in per.items()}


def c_uniforms():
    """The rounding hash compiled by the system C compiler (a ctypes function), or (None, why)."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        return None, "no C compiler (cc) found"
    lib = Path(tempfile.mkdtemp(prefix="devsim_floor_")) / "uniforms.so"
    flags = ["-O3", "-march=native", "-fno-trapping-math", "-shared", "-fPIC"]
    done = subprocess.run([cc, *flags, str(NATIVE / "uniforms.c"), "-o", str(lib)], capture_output=True, text=True)
    if done.returncode:
        return None, f"cc failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    fn = ctypes.CDLL(str(lib)).uniforms
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint32]
    fn.restype = None
    return fn, " ".join([os.path.basename(cc), *flags])


def torch_step(kernels, x, y):
    """A zero-argument float PyTorch training step of the same network and batch, or (None, why)."""
    try:
        import torch
    except ImportError as e:
        return None, f"torch not importable ({e})"
    torch.set_num_threads(1)
    ws = [torch.tensor(k, requires_grad=True) for k in kernels]
    xt, yt = torch.tensor(x), torch.tensor(y, dtype=torch.int64)
    opt = torch.optim.SGD(ws, lr=LR)

    def step():
        opt.zero_grad()
        h = xt
        for w in ws[:-1]:
            h = torch.relu(h @ w)
        torch.nn.functional.cross_entropy(h @ ws[-1], yt).backward()
        opt.step()

    return step, torch.__version__


def native_kernel():
    """Compile benchmarks/native/device_update.cc and register it with XLA: (target name, compile line) or
    (None, why)."""
    import jax

    cxx = shutil.which(os.environ.get("CXX", "c++"))
    if cxx is None:
        return None, "no C++ compiler (c++) found"
    include = jax.ffi.include_dir()
    lib = Path(tempfile.mkdtemp(prefix="devsim_native_")) / "device_update.so"
    # no FMA contraction: the weight change must round as devsim's (w - lr g) - w does
    flags = ["-O3", "-march=native", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off", "-std=c++17",
             "-shared", "-fPIC"]
    done = subprocess.run([cxx, *flags, f"-I{include}", str(NATIVE / "device_update.cc"), "-o", str(lib)],
                          capture_output=True, text=True)
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        return None, f"c++ failed: {lines[-1] if lines else done.returncode}"
    jax.ffi.register_ffi_target("devsim_device_update", jax.ffi.pycapsule(ctypes.CDLL(str(lib)).DevsimDeviceUpdate),
                                platform="cpu")
    return "devsim_device_update", " ".join([os.path.basename(cxx), *flags])


def native_section(kernels, x, y, rounds: int) -> dict:
    """Training steps of 784-512-512-10 in one jitted JAX program each: float SGD, devsim's dense update, the
    native kernel; ms per step (median of interleaved rounds of one epoch) and the check of the kernel."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from devsim import curves

    target, info = native_kernel()
    if target is None:
        return {"note": info}
    update = Update()
    device = update.device
    if device.a_p != device.a_d or device.states_ltd != device.states:
        raise SystemExit("the native kernel takes one curve for both directions")
    constants = curves.Constants.of(device.a_p, device.num_pulses)
    attrs = dict(lr=np.float32(LR), dw_min=np.float32(update.dw_min), max_pulses=np.float32(device.num_pulses),
                 rate=np.float32(constants.rate), s=np.float32(constants.s), c2c=np.float32(device.c2c))

    def native_update(w, g, gr, u_key, c2c_key):
        shapes = (jax.ShapeDtypeStruct(w.shape, w.dtype), jax.ShapeDtypeStruct(g.shape, g.dtype))
        call = jax.ffi.ffi_call(target, shapes, input_output_aliases={0: 0, 1: 1})
        return call(w, g, gr, jnp.stack([u_key, c2c_key]).astype(jnp.uint32), **attrs)

    def make(kind):
        def step(state, xb, yb, t):
            ws, gs = state
            grads = jax.grad(loss)(ws, xb, yb)
            if kind == "float":
                return [w - LR * gr for w, gr in zip(ws, grads)], gs
            fn = native_update if kind == "native" else update
            out = [fn(w, g, gr, *Update.keys(t, i)) for i, (w, g, gr) in enumerate(zip(ws, gs, grads))]
            return [o[0] for o in out], [o[1] for o in out]
        return jax.jit(step, donate_argnums=0)

    steps = len(y) // BATCH
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    fns = {kind: make(kind) for kind in ("float", "xla_dense", "native")}

    def fresh():
        ws = [jnp.asarray(k) for k in kernels]
        return ws, [update.mapping.conductances(w) for w in ws]

    # the check: one step from the same state, the kernel against devsim's XLA update
    (w_x, g_x), (w_n, g_n) = (fns[k](fresh(), xs[:BATCH], ys[:BATCH], jnp.int32(3)) for k in ("xla_dense", "native"))
    g0 = fresh()[1]
    moved_x = sum(int(jnp.sum(a != b)) for a, b in zip(g_x, g0))
    moved_n = sum(int(jnp.sum(a != b)) for a, b in zip(g_n, g0))
    same_set = all(bool(jnp.all((a != c) == (b != c))) for a, b, c in zip(g_x, g_n, g0))
    differ = sum(int(jnp.sum(a != b)) for a, b in zip(g_x, g_n))
    largest = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(g_x, g_n))

    states = {kind: fresh() for kind in fns}
    per = {kind: [] for kind in fns}
    counter = 0
    for r in range(rounds + 1):  # the first round compiles and warms up
        for kind, fn in fns.items():
            t0 = time.perf_counter()
            for i in range(steps):
                states[kind] = fn(states[kind], xs[i * BATCH:(i + 1) * BATCH], ys[i * BATCH:(i + 1) * BATCH],
                                  jnp.int32(counter + i))
            jax.block_until_ready(states[kind])
            if r:
                per[kind].append((time.perf_counter() - t0) / steps)
        counter += steps
    ms = {kind: statistics.median(ts) * 1e3 for kind, ts in per.items()}
    return {"compile": info, "ms_per_step": ms, "steps_per_round": steps, "rounds": rounds,
            "check": {"devices_programmed_xla": moved_x, "devices_programmed_native": moved_n,
                      "same_devices_programmed": same_set, "conductances_differing": differ,
                      "largest_difference": largest}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    p.add_argument("--reps", type=int, default=50, help="calls per round")
    p.add_argument("--native", action="store_true", help="also time devsim's update as an XLA FFI kernel in C++")
    p.add_argument("--native-rounds", type=int, default=3, help="interleaved one-epoch rounds of --native")
    p.add_argument("--out", default=str(HERE / "update_floor.json"))
    args = p.parse_args()
    one_thread()
    try:
        import jax
    except ImportError:
        raise SystemExit("update_floor.py needs JAX: pip install -e '.[test]' (jax[cpu])") from None
    import numpy as np

    import common

    import devsim
    from devsim import backends, io

    kernels, x, y, data_info = network()
    weights = sum(k.size for k in kernels)
    programs, pulsed, draws, u_keys = jax_programs(kernels, x[:BATCH], y[:BATCH])
    calls = {name: (lambda f=f, a=a: jax.block_until_ready(f(*a))) for name, (f, a) in programs.items()}
    notes = {}
    c_fn, c_info = c_uniforms()
    if c_fn is not None:
        outs = [np.empty(k.shape, np.float32) for k in kernels]
        key_ints = [int(np.asarray(k)) for k in u_keys]

        def c_call():
            for out, key in zip(outs, key_ints):
                c_fn(out.ctypes.data, out.size, key)

        c_call()
        same = all(np.array_equal(out, np.asarray(d)) for out, d in zip(outs, draws))
        if not same:
            raise SystemExit("the C hash does not give devsim.noise.uniform's bits")
        calls["rounding_draws_c"] = c_call
        notes["rounding_draws_c"] = f"{c_info}; the same bits as devsim.noise.uniform"
    else:
        notes["rounding_draws_c"] = c_info
    t_fn, t_info = torch_step(kernels, x[:BATCH], y[:BATCH])
    if t_fn is not None:
        calls["torch_step"] = t_fn
        notes["torch_step"] = f"torch {t_info}, 1 thread"
    else:
        notes["torch_step"] = t_info
    seconds = time_rounds(calls, args.rounds, args.reps)

    print(f"784-512-512-10: {weights:,} weights, batch {BATCH}, 1 thread; {pulsed:.2%} of the weights get a pulse")
    rows = {}
    torch_s = seconds.get("torch_step")
    for name, s in seconds.items():
        row = {"ms_per_step": s * 1e3}
        if name != "torch_step":
            row["ns_per_weight"] = s * 1e9 / weights
        if torch_s:
            row["fraction_of_torch_step"] = s / torch_s
        rows[name] = row
        extra = f"{row['ns_per_weight']:6.2f} ns/weight" if "ns_per_weight" in row else " " * 16
        share = f"  {row['fraction_of_torch_step']:.2f} x torch's step" if torch_s else ""
        print(f"  {name:18s} {row['ms_per_step']:7.3f} ms {extra}{share}")
    if torch_s:
        print(f"  the issue's budget for the device update: about 0.25 x torch's step = {0.25 * torch_s * 1e3:.3f} ms")
    for name, note in notes.items():
        print(f"  {name}: {note}")

    native = None
    if args.native:
        native = native_section(kernels, x, y, args.native_rounds)
        if "note" in native:
            print(f"  native: {native['note']}")
        else:
            ms, check = native["ms_per_step"], native["check"]
            print(f"training step, ms (median of {args.native_rounds} interleaved epochs): float {ms['float']:.3f}, "
                  f"devsim's XLA dense update {ms['xla_dense']:.3f} ({ms['xla_dense'] / ms['float']:.2f} x float), "
                  f"native kernel {ms['native']:.3f} ({ms['native'] / ms['float']:.2f} x float)")
            if torch_s:
                print(f"  against torch's step: float x{ms['float'] / (torch_s * 1e3):.2f}, "
                      f"native x{ms['native'] / (torch_s * 1e3):.2f}")
            print(f"  check (one step): {check['devices_programmed_native']} devices programmed by the kernel, "
                  f"{check['devices_programmed_xla']} by XLA, the same devices: {check['same_devices_programmed']}; "
                  f"{check['conductances_differing']} conductances differ, "
                  f"by at most {check['largest_difference']:.2g}")

    result = {
        "network": "784-512-512-10", "weights": int(weights), "batch": BATCH, "lr": LR, "device": DEVICE,
        "pulsed_fraction": pulsed, "threads": 1, "rounds": args.rounds, "reps": args.reps,
        "seconds_per_call": seconds, "rows": rows, "notes": notes, "native": native, "dataset": data_info,
        "versions": {**backends.backend_versions(), "devsim": devsim.__version__, "numpy": np.__version__},
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "machine": common.machine_info(),
    }
    io.write_json(args.out, result)  # atomic, strict JSON
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
