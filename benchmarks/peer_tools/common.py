"""What every worker shares: arguments, thread pinning, the result line.

A worker is started by `benchmarks/peers.py` in a fresh process (its own
interpreter, possibly another venv), trains one tool on one network, and
prints one line ``PEERS_RESULT <json>`` on stdout. Only numpy and the
standard library here: torch workers import this in the comparison venv.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

RESULT_PREFIX = "PEERS_RESULT "

JAX_ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""XLA_FLAGS that keep JAX's CPU computations on one thread (its client has no thread-count setting)."""


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS")
"""Environment variables that bound the threads of the numeric libraries, all set to the worker's thread count."""


def pin_thread_env(threads: int) -> None:
    """Environment of every worker, set before any numeric library loads (the driver sets it too)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def worker_env(threads: int, backend: str = "tensorflow", root=None) -> dict:
    """The environment a driver starts a worker with: ``KERAS_BACKEND``, the thread variables, the
    one-thread XLA flags for JAX at 1 thread, quiet TF logs, a fixed hash seed, and ``root`` (the devsim
    checkout) first on PYTHONPATH."""
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    if backend == "jax" and threads == 1:  # JAX's XLA CPU client has no thread-count setting but these flags
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {JAX_ONE_THREAD_FLAGS}".strip()
    return env


def pin_cores(threads: int):
    """A ``preexec_fn`` for `subprocess.run` that restricts the worker to its first ``threads`` cores
    (``os.sched_setaffinity``), or None where that is not possible. Thread-count settings alone do not
    bound every library: JAX's CPU client sizes its pools from the cores it may run on."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))[: max(1, int(threads))]

    def pin():
        os.sched_setaffinity(0, cores)

    return pin


def machine_info() -> dict:
    """The machine a driver runs on: platform, CPU model, cores, Python, load average at the start."""
    info = {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": sys.version.split()[0]}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--tool", required=True)
    p.add_argument("--net", required=True, help="e.g. 784-128-10; a comma list trains each in turn")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", required=True, help=".npz with x (n, 28, 28) float32 and y (n,) int64")
    p.add_argument("--n", default="0", help="images per epoch (0: all); a comma list pairs with --batch")
    p.add_argument("--batch", default="32", help="batch size; a comma list trains each in turn")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=20, help="steps trained before timing (compilation, caches)")
    p.add_argument("--warmup-epochs", type=int, default=0, help="full epochs trained before timing (instead of steps)")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs")
    p.add_argument("--large-epochs", type=int, default=0, help="timed epochs of networks >= 1M weights (0: --epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps-per-execution", type=int, default=1, help="Keras only; 0: the whole epoch")
    p.add_argument("--jit", default="auto", help="Keras only: auto, true, false")
    p.add_argument("--data-pipeline", default="numpy", help="Keras only: numpy (fit defaults) or tfdata (prefetch)")
    p.add_argument("--sparse-update", default="true",
                   help="devsim only: true (the default sparse batch update) or false (the dense update of every device)")
    p.add_argument("--xla-vector-width", type=int, default=0,
                   help="Keras only: XLA's CPU vector width in bits (0: devsim's default, devsim.backends.use_wide_vectors)")
    return p.parse_args(argv)


def configs(args):
    """One namespace per (network, batch size) of the comma lists, each with a single net, batch and n."""
    import copy

    batches = [int(b) for b in str(args.batch).split(",")]
    ns = [int(v) for v in str(args.n).split(",")]
    if len(ns) == 1:
        ns = ns * len(batches)
    if len(ns) != len(batches):
        raise SystemExit("--n needs one value or one per --batch")
    for net in args.net.split(","):
        for batch, n in zip(batches, ns):
            one = copy.copy(args)
            one.net, one.batch, one.n = net, batch, n
            if args.large_epochs and weights_of(net) >= 1_000_000:
                one.epochs = args.large_epochs
            yield one


def hidden_sizes(net: str):
    sizes = [int(s) for s in net.split("-")]
    if sizes[0] != 784 or sizes[-1] != 10:
        raise SystemExit(f"--net must be 784-...-10, got {net}")
    return sizes[1:-1]


def weights_of(net: str) -> int:
    sizes = [int(s) for s in net.split("-")]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def load_data(args):
    import numpy as np

    with np.load(args.data) as f:
        x, y = f["x"].astype("float32"), f["y"].astype("int64")
    if args.n:
        x, y = x[: args.n], y[: args.n]
    return x, y


class Clock:
    """Wall and process CPU time of a stretch of work: cpu/wall tells how many cores it kept busy."""

    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def epoch_timer():
    """A Keras callback that records each epoch's wall and CPU seconds and its loss (Keras workers only:
    keras is imported here, not at the top, so torch workers can import this module)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.cpu, self.loss = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._clock = Clock().__enter__()

        def on_epoch_end(self, epoch, logs=None):
            self._clock.__exit__()
            self.seconds.append(self._clock.wall)
            self.cpu.append(self._clock.cpu)
            self.loss.append(float((logs or {}).get("loss", float("nan"))))

    return EpochTimer()


def finite(x):
    """Strict JSON: NaN and infinities become None (recursively)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x


def emit(result: dict) -> None:
    result = finite(result)
    result.setdefault("python", sys.version.split()[0])
    if hasattr(os, "sched_getaffinity"):
        result.setdefault("cores_allowed", len(os.sched_getaffinity(0)))
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, allow_nan=False) + "\n")
    sys.stdout.flush()
