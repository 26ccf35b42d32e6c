"""devsim's device training on every Keras 3 backend: seconds per epoch, TensorFlow vs JAX vs PyTorch.

    python benchmarks/backends.py                     # ~10 minutes on 2 idle cores: 2 repeats, 1 thread
    python benchmarks/backends.py --quick             # ~3 minutes: 784-128-10 only, 1 repeat
    python benchmarks/backends.py --threads 1,2 --repeats 3
    python benchmarks/backends.py --accelerator gpu   # on a machine with a GPU (each backend's CUDA build)

The job (benchmarks/peers.py's): the 4000-image MNIST subset (devsim's mnist-5k
training split, written once to an .npz that every worker reads), batch 32,
SGD lr 0.1, cross-entropy (from logits), ReLU hidden layers, no biases, on
784-128-10 (101,632 weights) and 784-512-512-10 (668,672). Tools, each on
every installed backend:

    keras       float Keras, model.fit (the backend's reference)
    devsim      DeviceOptimizer(SGD(0.1), ExpDevice(0.8, 0.8, 101), pulses="stochastic", update="batch")
                + ProgramDevices()
    devsim-c2c  the same with c2c=0.02 (a normal draw per device and step)

Every model.fit runs with Keras's defaults for the backend (TensorFlow: the
step as a tf.function, devsim's device update inside it as one XLA program;
JAX: the whole step jax.jit-ted, XLA; PyTorch: eager), one step per call
(PyTorch's Keras trainer has no other), the same numpy initial weights.

How it measures (as peers.py): one subprocess per (backend, tool), with
``KERAS_BACKEND`` set before Keras loads, trains every network in turn (a
fresh model for each, warm-up steps first: tracing, compilation, caches), then
its timed epochs. Threads are pinned the same for every backend:
OMP/MKL/OPENBLAS_NUM_THREADS, TF's intra- and inter-op threads,
torch.set_num_threads and set_num_interop_threads, and for JAX XLA's CPU
thread pool (``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``
at 1 thread), all = --threads, and every worker restricted to that many cores
(sched_setaffinity; without it JAX's CPU client still uses every core). Within a repeat every (backend, tool) runs once,
back to back, in an order rotated each repeat; the ratios to TensorFlow are
taken per repeat (minutes apart at most), their median over repeats reported.

``--accelerator``: auto (each backend's default device: a GPU when its CUDA build
sees one), cpu (GPUs hidden: CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS=cpu) or
gpu (a worker without a GPU fails, recorded). Each result records the device
that ran (tf.config.list_physical_devices, jax.devices(), torch.cuda).

Writes benchmarks/backends.json atomically (strict JSON: machine, versions,
every epoch of every run, the table).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "peer_tools"))
sys.path.insert(0, str(ROOT))  # this checkout's devsim

import common  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
NETS = ("784-128-10", "784-512-512-10")
TOOLS = ("keras", "devsim", "devsim-c2c")
DEVICE = dict(a_p=0.8, a_d=0.8, states=101)  # benchmarks/run.py's and peers.py's device
C2C = 0.02
RESULT = common.RESULT_PREFIX
ACCELERATORS = ("auto", "cpu", "gpu")


# ---------------------------------------------------------------------------- worker


def device_info(backend):
    """``(accelerator, device)``: "gpu" or "cpu", and the device the backend computes on."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return ("gpu", gpus[0].name) if gpus else ("cpu", tf.config.list_physical_devices("CPU")[0].name)
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return ("cpu" if device.platform == "cpu" else "gpu"), f"{device.platform}:{device.id} {device.device_kind}"
    import torch

    if torch.cuda.is_available():
        return "gpu", f"cuda:0 {torch.cuda.get_device_name(0)}"
    return "cpu", "cpu"


def pin_threads(backend, threads):
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)


def build(net, tool, seed=0):
    """The network (numpy Glorot-uniform kernels: the same start on every backend) and its optimizer."""
    import keras
    import numpy as np

    sizes = [int(s) for s in net.split("-")]
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(units, activation="relu", use_bias=False) for units in sizes[1:-1]]
    layers.append(keras.layers.Dense(sizes[-1], use_bias=False))
    model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            fan_in, fan_out = layer.kernel.shape
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            layer.kernel.assign(rng.uniform(-limit, limit, (fan_in, fan_out)).astype("float32"))
    optimizer, callbacks = keras.optimizers.SGD(0.1), []
    if tool != "keras":
        import devsim

        device = devsim.ExpDevice(**DEVICE, c2c=C2C if tool == "devsim-c2c" else 0.0)
        optimizer = devsim.DeviceOptimizer(optimizer, device, pulses="stochastic", update="batch", seed=seed)
        callbacks = [devsim.ProgramDevices()]
    return model, optimizer, callbacks


def worker(args):
    """One backend and tool: every network in turn, one result line each."""
    import keras
    import numpy as np

    from devsim import backends

    backend = keras.backend.backend()
    pin_threads(backend, args.threads)
    accelerator, device = device_info(backend)
    if args.accelerator == "gpu" and accelerator != "gpu":
        raise SystemExit(f"--accelerator gpu: {backend} sees no GPU (install its CUDA build)")
    with np.load(args.data) as f:
        x, y = f["x"].astype("float32"), f["y"].astype("int64")
    b, n = 32, len(y)
    for net in args.nets.split(","):
        keras.backend.clear_session()
        model, optimizer, callbacks = build(net, args.tool)
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        with common.Clock() as warm:
            m = min(n, args.warmup_steps * b)
            model.fit(x[:m], y[:m], batch_size=b, epochs=1, shuffle=True, verbose=0, callbacks=callbacks)
        timer = common.epoch_timer()
        model.fit(x, y, batch_size=b, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[*callbacks, timer])
        logits = model.predict(x[:1000], batch_size=1000, verbose=0)  # a sanity check, not timed
        common.emit({
            "backend": backend, "tool": args.tool, "net": net, "threads": args.threads, "batch": b, "images": n,
            "accelerator": accelerator, "device": device, "epoch_seconds": timer.seconds, "epoch_cpu_seconds": timer.cpu,
            "warmup_seconds": warm.wall, "loss": timer.loss,
            "train_accuracy": float(np.mean(np.argmax(np.asarray(logits), 1) == y[:1000])),
            "versions": {**backends.backend_versions(), "keras": keras.__version__, "numpy": np.__version__},
        })


# ---------------------------------------------------------------------------- driver


def worker_env(backend, threads, accelerator):
    env = common.worker_env(threads, backend, ROOT)
    if accelerator == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    return env


def run_worker(args, backend, tool, threads):
    """Results of one worker process (one dict per network), and its error if it failed."""
    import peers

    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--tool", tool, "--nets", ",".join(args.nets),
               "--threads", str(threads), "--data", args.data, "--epochs", str(args.epochs),
               "--warmup-steps", str(args.warmup_steps), "--accelerator", args.accelerator]
    busy = peers.busy_cores()
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=worker_env(backend, threads, args.accelerator), capture_output=True,
                              text=True, timeout=args.timeout, cwd=ROOT, preexec_fn=common.pin_cores(threads))
        stdout, error = done.stdout, None
        if done.returncode:
            error = f"exit {done.returncode}: {((done.stderr or '').strip().splitlines() or ['(no output)'])[-1][:300]}"
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        error = f"timed out after {args.timeout} s"
    results = []
    for line in stdout.splitlines():
        if line.startswith(RESULT):
            result = json.loads(line[len(RESULT):])
            result.update(process_seconds=time.perf_counter() - started, busy_cores_before=busy)
            results.append(result)
    return results, error


def median(xs):
    return float(statistics.median(xs)) if xs else None


def summarize(cells, backends):
    """Per (net, threads) and tool, per backend: seconds per epoch (median over every timed epoch, min,
    max), the ratio to TensorFlow (median, min, max over repeats of the per-repeat ratio) and, for the
    devsim tools, the ratio to the same backend's float Keras."""
    table = {}
    for (net, threads), by_tool in cells.items():
        rows = {}
        for tool, by_backend in by_tool.items():
            row = {}
            tf_runs = by_backend.get("tensorflow", {})
            for backend in backends:
                runs = by_backend.get(backend, {})
                ok = {r: x for r, x in runs.items() if "epoch_seconds" in x}
                if not ok:
                    errors = sorted({x.get("error", "no result") for x in runs.values()})
                    if errors:
                        row[backend] = {"error": errors[0]}
                    continue
                epochs = [s for x in ok.values() for s in x["epoch_seconds"]]
                cpu = [c for x in ok.values() for c in x["epoch_cpu_seconds"]]
                ratios = [median(x["epoch_seconds"]) / median(tf_runs[r]["epoch_seconds"])
                          for r, x in ok.items() if "epoch_seconds" in tf_runs.get(r, {})]
                cpu_ratios = [median(x["epoch_cpu_seconds"]) / median(tf_runs[r]["epoch_cpu_seconds"])
                              for r, x in ok.items() if "epoch_seconds" in tf_runs.get(r, {})]
                floats = by_tool.get("keras", {}).get(backend, {})
                to_float = [median(x["epoch_seconds"]) / median(floats[r]["epoch_seconds"])
                            for r, x in ok.items() if tool != "keras" and "epoch_seconds" in floats.get(r, {})]
                first = next(iter(ok.values()))
                row[backend] = {
                    "seconds_per_epoch": median(epochs), "min": min(epochs), "max": max(epochs),
                    "epochs_timed": len(epochs), "repeats": len(ok), "cores_busy": sum(cpu) / sum(epochs),
                    "ratio_to_tensorflow": median(ratios), "ratio_min": min(ratios) if ratios else None,
                    "ratio_max": max(ratios) if ratios else None, "ratio_to_float_keras": median(to_float),
                    "cpu_seconds_per_epoch": median(cpu), "cpu_ratio_to_tensorflow": median(cpu_ratios),
                    "warmup_seconds": median([x["warmup_seconds"] for x in ok.values()]),
                    "train_accuracy": median([x["train_accuracy"] for x in ok.values()]),
                    "accelerator": first["accelerator"], "device": first["device"],
                    "others_busy_cores": median([x["busy_cores_before"] for x in ok.values()
                                                 if x.get("busy_cores_before") is not None]),
                }
            rows[tool] = row
        table[f"{net} @{threads}t"] = rows
    return table


def print_table(table, backends, out=print):
    out("\nseconds per epoch (median of every timed epoch [min-max]; x tf: median over repeats of the per-repeat "
        "ratio to TensorFlow, and of process CPU time; x float: to the same backend's float Keras)")
    for cell, rows in table.items():
        out(f"\n{cell}")
        for tool, row in rows.items():
            parts = []
            for backend in backends:
                r = row.get(backend)
                if r is None:
                    continue
                if "error" in r:
                    parts.append(f"{backend} failed: {r['error']}")
                    continue
                ratio = "" if r["ratio_to_tensorflow"] is None else (
                    f" x{r['ratio_to_tensorflow']:.2f} tf (cpu x{r['cpu_ratio_to_tensorflow']:.2f})")
                to_float = "" if r["ratio_to_float_keras"] is None else f" x{r['ratio_to_float_keras']:.1f} float"
                parts.append(f"{backend} {r['seconds_per_epoch']:.3f} s [{r['min']:.3f}-{r['max']:.3f}]{ratio}{to_float}"
                             f" on {r['accelerator']}")
            out(f"  {tool:<11} " + "; ".join(parts))


def write_data(path):
    import numpy as np

    from devsim.data import load_dataset

    data = load_dataset("mnist-5k")
    np.savez(path, x=data.x_train.astype("float32"), y=data.y_train.astype("int64"))
    return data.info()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default=",".join(BACKENDS), help="the installed ones of these (default: all three)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"any of {', '.join(TOOLS)}")
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--threads", default="1", help="thread counts, e.g. 1,2 (default 1)")
    p.add_argument("--repeats", type=int, default=2, help="processes per (backend, tool) and thread count")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per network and process")
    p.add_argument("--warmup-steps", type=int, default=10, help="steps trained before timing, per network")
    p.add_argument("--accelerator", choices=ACCELERATORS, default="auto",
                   help="auto: each backend's default device (a GPU when present); cpu: GPUs hidden; gpu: required")
    p.add_argument("--quick", action="store_true", help="784-128-10 only, 1 repeat, 1 timed epoch")
    p.add_argument("--timeout", type=int, default=1200, help="seconds per worker process")
    p.add_argument("--out", default=str(HERE / "backends.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tool", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)
    if args.quick:
        args.nets, args.repeats, args.epochs = "784-128-10", 1, 1
    args.nets = [n for n in args.nets.split(",") if n]
    tools = [t for t in args.tools.split(",") if t]
    if any(t not in TOOLS for t in tools):
        p.error(f"--tools: choose from {', '.join(TOOLS)}")
    wanted = [b for b in args.backends.split(",") if b]
    if any(b not in BACKENDS for b in wanted):
        p.error(f"--backends: choose from {', '.join(BACKENDS)}")
    backends = [b for b in wanted if importlib.util.find_spec(b) is not None]
    skipped = [b for b in wanted if b not in backends]
    for b in skipped:
        print(f"note: {b} is not installed: skipped", flush=True)
    threads = [int(t) for t in args.threads.split(",") if t]

    started = time.perf_counter()
    machine = common.machine_info()
    workdir = tempfile.mkdtemp(prefix="devsim-backends-")
    args.data = os.path.join(workdir, "mnist4000.npz")
    dataset = write_data(args.data)
    jobs = [(b, t) for t in tools for b in backends]
    cells, raw = {}, []
    total, done = args.repeats * len(threads) * len(jobs), 0
    for rep in range(args.repeats):
        for th in threads:
            k = (rep * len(threads) + threads.index(th)) % len(jobs)
            for backend, tool in jobs[k:] + jobs[:k]:  # rotated: no job always first or after the same one
                results, error = run_worker(args, backend, tool, th)
                by_net = {r["net"]: r for r in results}
                for net in args.nets:
                    result = by_net.get(net, {"error": error or "no result"})
                    result.update(repeat=rep, backend=backend, tool=tool, net=net, threads=th)
                    raw.append(result)
                    cells.setdefault((net, th), {}).setdefault(tool, {}).setdefault(backend, {})[rep] = result
                done += 1
                status = ", ".join(f"{r['net']} {median(r['epoch_seconds']):.3f}" for r in results) or error
                print(f"[{done}/{total} {time.perf_counter() - started:5.0f} s] rep {rep} {th}t {backend} {tool}: "
                      f"{status} s/epoch" + (f"; {error}" if error and results else ""), flush=True)
    order = [(n, t) for n in args.nets for t in threads]
    table = summarize({key: cells[key] for key in order if key in cells}, backends)
    versions = {"driver_python": sys.version.split()[0]}
    for r in raw:
        for key, value in r.get("versions", {}).items():
            if key != "backend" and key != "accelerator":
                versions.setdefault(key, value)
    try:
        machine["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    result = {
        "job": {"dataset": dataset, "batch": 32, "lr": 0.1, "loss": "cross-entropy from logits", "biases": False,
                "device": {**DEVICE, "c2c (devsim-c2c)": C2C, "pulses": "stochastic", "update": "batch"},
                "warmup_steps": args.warmup_steps, "timed_epochs": args.epochs, "repeats": args.repeats,
                "threads": threads, "nets": {n: common.weights_of(n) for n in args.nets}, "tools": tools,
                "backends": backends, "skipped": skipped, "accelerator": args.accelerator,
                "thread_pinning": "OMP/MKL/OPENBLAS_NUM_THREADS, TF_NUM_INTRA/INTEROP_THREADS, tf.config.threading "
                                  "intra and inter op, torch.set_num_threads and set_num_interop_threads = threads; "
                                  "JAX at 1 thread: XLA_FLAGS --xla_cpu_multi_thread_eigen=false "
                                  "intra_op_parallelism_threads=1; every worker restricted to that many cores "
                                  "(sched_setaffinity)"},
        "machine": machine, "versions": versions, "table": table, "runs": raw,
        "seconds": time.perf_counter() - started,
    }
    print(f"\nmachine: {machine.get('cpu', '?')}, {machine['cpus']} cores; {versions}")
    print_table(table, backends)
    from devsim import io

    io.write_json(args.out, common.finite(result))  # atomic (a temporary file renamed onto it)
    print(f"\nwritten: {args.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
