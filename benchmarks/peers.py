"""devsim against its peers: float PyTorch, aihwkit, float Keras, per epoch.

    python benchmarks/peers.py                 # 15-27 minutes on 2 idle cores (far more when they are busy)
    python benchmarks/peers.py --repeats 5 --epochs 2   # tighter medians
    python benchmarks/peers.py --quick         # ~2 minutes: 784-128-10 and 784-512-512-10, 1 thread, 1 repeat

One driver; every measurement is a fresh subprocess that trains one tool on
one network with its threads pinned (OMP/MKL/OpenBLAS_NUM_THREADS,
torch.set_num_threads + set_num_interop_threads, TF intra- and inter-op
threads, all = --threads) and the process restricted to that many cores
(sched_setaffinity: JAX's CPU client ignores thread settings and sizes its
pools from the cores it may use). The ``-jax`` tools run the same Keras and
devsim code with KERAS_BACKEND=jax. Within one repeat every tool runs once per
(network, threads) cell, back to back, in an order rotated every repeat; the
table gives, per cell, the median seconds per epoch over all timed epochs and
the median over repeats of (tool / torch float of the same repeat), so the
ratios are measured minutes apart at most, never across runs. Each worker
trains a few warm-up steps (tracing, XLA compilation, allocator caches)
before its timed epochs.

The job (the issue "Speed against the peers"): the 4000-image MNIST subset
(devsim's mnist-5k training split, written once to an .npz every worker
reads), batch 32, SGD lr 0.1, cross-entropy, no biases, ReLU hidden layers:

    torch                 plain loop: randperm, tensor slicing, F.cross_entropy, torch.optim.SGD
    aihwkit-constantstep  AnalogLinear tiles, SingleRPUConfig(ConstantStepDevice()), AnalogSGD
    aihwkit-expstep       the same with ExpStepDevice()
    keras                 model.fit with its defaults (numpy arrays; on a CPU-only machine no XLA)
    keras-jit-spe         model.compile(jit_compile=True, steps_per_execution=<whole epoch>)
    devsim                DeviceOptimizer(SGD(0.1), ExpDevice(0.8, 0.8, 101), pulses="stochastic",
                          update="batch") + ProgramDevices(), Keras defaults
    devsim-c2c            the same with c2c=0.02
    devsim-c2c-jit-spe    devsim-c2c with jit_compile=True, steps_per_execution=<whole epoch>
    keras-jax, devsim-jax, devsim-c2c-jax
                          keras, devsim, devsim-c2c with KERAS_BACKEND=jax (the whole step jit-ted)

torch and aihwkit run in a second venv (--peers-python, default
/work/peers-venv/bin/python; see benchmarks/README.md); tools that do not
import there are skipped with a note, and the issue's reference figures are
printed instead. Writes strict JSON (no NaN/Infinity) with the machine, the
versions, every epoch time and the table.
"""

from __future__ import annotations

import argparse
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
WORKERS = HERE / "peer_tools"
sys.path.insert(0, str(WORKERS))

import common  # noqa: E402

NETS = ("784-128-10", "784-512-512-10", "784-1400-1400-10")  # 101,632 / 668,672 / 3,073,600 weights
EPOCH = "0"  # --steps-per-execution 0: the whole epoch in one execution
JIT_SPE = ["--jit", "true", "--steps-per-execution", EPOCH]

# name: (worker, worker's --tool, extra worker arguments)
TOOLS = {
    "torch": ("torch", "torch", []),
    "aihwkit-constantstep": ("torch", "aihwkit-constantstep", []),
    "aihwkit-expstep": ("torch", "aihwkit-expstep", []),
    "keras": ("keras", "keras", []),
    "keras-jit": ("keras", "keras", ["--jit", "true"]),
    "keras-spe": ("keras", "keras", ["--steps-per-execution", EPOCH]),
    "keras-jit-spe": ("keras", "keras", JIT_SPE),
    "keras-jit-spe-tfdata": ("keras", "keras", JIT_SPE + ["--data-pipeline", "tfdata"]),
    "devsim": ("keras", "devsim", []),
    "devsim-c2c": ("keras", "devsim-c2c", []),
    "devsim-c2c-spe": ("keras", "devsim-c2c", ["--steps-per-execution", EPOCH]),  # `devsim run`'s default loop
    "devsim-spe": ("keras", "devsim", ["--steps-per-execution", EPOCH]),  # the same without C2C: C2C's share on TF
    "devsim-jit-spe": ("keras", "devsim", JIT_SPE),
    "devsim-c2c-jit-spe": ("keras", "devsim-c2c", JIT_SPE),
    # investigation (a): Keras's per-step overhead, and the floor of TF on this CPU
    "keras-spe10": ("keras", "keras", ["--steps-per-execution", "10"]),
    "keras-spe50": ("keras", "keras", ["--steps-per-execution", "50"]),
    "keras-jit-spe10": ("keras", "keras", ["--jit", "true", "--steps-per-execution", "10"]),
    "keras-jit-spe50": ("keras", "keras", ["--jit", "true", "--steps-per-execution", "50"]),
    "keras-tfdata": ("keras", "keras", ["--data-pipeline", "tfdata"]),
    "tf-step": ("keras", "tf-step", []),
    "tf-epoch": ("keras", "tf-epoch", []),
    # prototypes: devsim's optimizer trained by one XLA program per epoch (no model.fit)
    "keras-epoch": ("keras", "keras-epoch", []),
    "devsim-epoch": ("keras", "devsim-epoch", []),
    "devsim-c2c-epoch": ("keras", "devsim-c2c-epoch", []),
    # the same Keras and devsim tools on Keras's JAX backend (the whole train step jax.jit-ted, one step per call)
    "keras-jax": ("keras", "keras", []),
    "devsim-jax": ("keras", "devsim", []),
    "devsim-c2c-jax": ("keras", "devsim-c2c", []),
    # XLA's default 256-bit vectors instead of devsim's 512 on AVX-512 CPUs (devsim.backends.use_wide_vectors)
    "devsim-c2c-spe-256": ("keras", "devsim-c2c", ["--steps-per-execution", EPOCH, "--xla-vector-width", "256"]),
    "devsim-c2c-jax-256": ("keras", "devsim-c2c", ["--xla-vector-width", "256"]),
    # the dense device update of every device instead of the sparse one (DeviceOptimizer(sparse_update=False))
    "devsim-c2c-spe-dense": ("keras", "devsim-c2c", ["--steps-per-execution", EPOCH, "--sparse-update", "false"]),
    "devsim-c2c-jax-dense": ("keras", "devsim-c2c", ["--sparse-update", "false"]),
}
BACKEND = {tool: "jax" for tool in TOOLS if "-jax" in tool}
"""Tools that run on another Keras backend than TensorFlow (``KERAS_BACKEND`` of their worker)."""
DEFAULT_TOOLS = ("torch", "aihwkit-constantstep", "aihwkit-expstep", "keras", "keras-spe", "keras-jit-spe",
                 "devsim", "devsim-c2c", "devsim-spe", "devsim-c2c-spe", "devsim-c2c-jit-spe", "keras-jax",
                 "devsim-jax", "devsim-c2c-jax")
SAMPLE_TOOLS = ("torch", "aihwkit-expstep", "keras", "keras-jit-spe", "devsim-c2c", "devsim-c2c-jit-spe",
                "devsim-c2c-jax")
SAMPLE_BATCHES = {1: 500, 32: 4000, 256: 3840}  # batch: images per epoch (whole batches only)

# The figures (seconds per epoch, 1 thread, measured side by side earlier), for tools not importable here.
REFERENCE = {
    "784-128-10": {"torch": 0.24, "aihwkit-constantstep": 1.40, "aihwkit-expstep": 1.93, "keras": 0.58,
                   "devsim": 0.73, "devsim-c2c": 1.00},
    "784-512-512-10": {"torch": 0.83, "aihwkit-constantstep": 2.76, "aihwkit-expstep": 2.66, "keras": 1.30,
                       "devsim": 1.37, "devsim-c2c": 2.87},
}


def worker_command(args, tool, nets, threads, batch="32", images="0", epochs=None, warmup_steps=None):
    """One process of ``tool``: every network of ``nets`` (and batch size of ``batch``) in turn."""
    worker, name, extra = TOOLS[tool]
    python = args.peers_python if worker == "torch" else sys.executable
    epochs = ["--epochs", str(args.epochs), "--large-epochs", str(args.large_epochs)] if epochs is None else [
        "--epochs", str(epochs)]
    return [python, str(WORKERS / f"{worker}_worker.py"), "--tool", name, "--net", ",".join(nets), "--threads",
            str(threads), "--data", args.data, "--batch", str(batch), "--n", str(images), *epochs,
            "--warmup-steps", str(args.warmup_steps if warmup_steps is None else warmup_steps), *extra]


def worker_env(threads, backend="tensorflow"):
    return common.worker_env(threads, backend, ROOT)


def busy_cores(interval=0.5):
    """Cores kept busy by everything on the machine over ``interval`` s (between workers: by others)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    try:
        t0, i0 = read()
        time.sleep(interval)
        t1, i1 = read()
    except (OSError, ValueError):
        return None
    return (1 - (i1 - i0) / max(t1 - t0, 1)) * (os.cpu_count() or 1)


def wait_for_cores(threads, wait):
    """Wait up to ``wait`` s until the others leave ``threads`` cores free; returns the busy cores seen."""
    deadline = time.perf_counter() + wait
    while True:
        busy = busy_cores()
        if busy is None or busy <= (os.cpu_count() or 1) - threads + 0.25 or time.perf_counter() >= deadline:
            return busy
        time.sleep(2)


def run_worker(command, threads, timeout, wait=0.0, backend="tensorflow"):
    """Results of one worker process: one dict per network (and batch size) it trained."""
    busy = wait_for_cores(threads, wait)
    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    try:
        done = subprocess.run(command, env=worker_env(threads, backend), capture_output=True, text=True,
                              timeout=timeout, preexec_fn=common.pin_cores(threads))
        stdout, error = done.stdout, None
        if done.returncode:
            error = f"exit {done.returncode}: {((done.stderr or '').strip().splitlines() or ['(no output)'])[-1][:300]}"
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        error = f"timed out after {timeout} s"
    results = []
    for line in stdout.splitlines():
        if line.startswith(common.RESULT_PREFIX):
            result = json.loads(line[len(common.RESULT_PREFIX):])
            result["process_seconds"] = time.perf_counter() - started
            result["loadavg_1min_before"] = load
            result["busy_cores_before"] = busy  # by other processes, measured just before the worker started
            results.append(result)
    return results, error


def probe(python, code):
    """(ok, note): whether ``code`` runs in ``python``."""
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120,
                              env=worker_env(1))
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{python}: {e}"
    if done.returncode:
        return False, (done.stderr.strip().splitlines() or ["?"])[-1][:300]
    return True, done.stdout.strip()


def available_tools(args, wanted):
    notes, versions = {}, {}
    ok_torch, out = probe(args.peers_python, "import torch; print(torch.__version__)")
    if ok_torch:
        versions["torch"] = out
    else:
        notes["torch"] = f"torch not importable with {args.peers_python}: {out}"
    ok_aihw, out = (False, "needs torch")
    if ok_torch:
        # A tiny analog layer end to end: an aihwkit wheel built against another torch imports
        # but fails at its first tile ("Invalid weights dimensions").
        ok_aihw, out = probe(args.peers_python, (
            "import torch, aihwkit; from aihwkit.nn import AnalogLinear; "
            "from aihwkit.simulator.configs import SingleRPUConfig, ConstantStepDevice; "
            "m = AnalogLinear(4, 2, bias=False, rpu_config=SingleRPUConfig(device=ConstantStepDevice())); "
            "m(torch.ones(1, 4)); print(aihwkit.__version__)"))
    if ok_aihw:
        versions["aihwkit"] = out
    usable = []
    for tool in wanted:
        worker, name, _ = TOOLS[tool]
        if name == "torch" and not ok_torch:
            continue
        if name.startswith("aihwkit") and not ok_aihw:
            notes.setdefault("aihwkit", f"aihwkit not usable with {args.peers_python}: {out}")
            continue
        usable.append(tool)
    return usable, notes, versions


def write_data(path):
    import numpy as np

    from devsim.data import load_dataset

    data = load_dataset("mnist-5k")
    np.savez(path, x=data.x_train.astype("float32"), y=data.y_train.astype("int64"))
    return data.info()


def save_partial(out, raw):
    """Every run so far, in case the driver is stopped: ``<out>.partial`` (removed at the end)."""
    Path(out + ".partial").write_text(json.dumps(common.finite({"complete": False, "runs": raw}), allow_nan=False))


def median(xs):
    return float(statistics.median(xs)) if xs else None


def summarize(cells, tools):
    """Per (net, threads): seconds per epoch (median over every timed epoch, min, max) and the
    ratio to torch float (median, min and max over repeats of the per-repeat ratio)."""
    table = {}
    for (net, threads), runs in cells.items():
        row = {}
        torch_by_repeat = {r: median(x["epoch_seconds"]) for r, x in runs.get("torch", {}).items() if "epoch_seconds" in x}
        torch_cpu = {r: median(x["epoch_cpu_seconds"]) for r, x in runs.get("torch", {}).items() if "epoch_seconds" in x}
        for tool in tools:
            by_repeat = {r: x for r, x in runs.get(tool, {}).items() if "epoch_seconds" in x}
            errors = sorted({x["error"] for x in runs.get(tool, {}).values() if "error" in x})
            if not by_repeat:
                if errors:
                    row[tool] = {"error": errors[0]}
                continue
            epochs = [s for x in by_repeat.values() for s in x["epoch_seconds"]]
            cpu = [c for x in by_repeat.values() for c in x["epoch_cpu_seconds"]]
            ratios = [median(x["epoch_seconds"]) / torch_by_repeat[r] for r, x in by_repeat.items() if r in torch_by_repeat]
            cpu_ratios = [median(x["epoch_cpu_seconds"]) / torch_cpu[r] for r, x in by_repeat.items() if r in torch_cpu]
            row[tool] = {
                "seconds_per_epoch": median(epochs), "min": min(epochs), "max": max(epochs), "epochs_timed": len(epochs),
                "repeats": len(by_repeat), "cores_busy": sum(cpu) / sum(epochs),
                "ratio_to_torch": median(ratios), "ratio_min": min(ratios) if ratios else None,
                "ratio_max": max(ratios) if ratios else None,
                "cpu_seconds_per_epoch": median(cpu), "cpu_ratio_to_torch": median(cpu_ratios),
                "train_accuracy": median([x["train_accuracy"] for x in by_repeat.values()]),
                "others_busy_cores": median([x["busy_cores_before"] for x in by_repeat.values()
                                             if x.get("busy_cores_before") is not None]),
                **({"errors": errors} if errors else {}),
            }
        table[f"{net} @{threads}t"] = row
    return table


def print_table(table, tools, notes, out=print):
    for cell, row in table.items():
        out(f"\n{cell}  (wall s/epoch: median [min-max] of all timed epochs; x torch: median [min-max] over repeats "
            f"of the per-repeat ratio; cpu: process CPU s/epoch and its ratio; cores: cpu/wall; others: cores busy "
            f"with other processes just before)")
        for tool in tools:
            r = row.get(tool)
            if r is None:
                continue
            if "error" in r:
                out(f"  {tool:<22} failed: {r['error']}")
                continue
            ratio = "" if r["ratio_to_torch"] is None else (
                f"x{r['ratio_to_torch']:.2f} [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]")
            cpu = "" if r["cpu_ratio_to_torch"] is None else f"x{r['cpu_ratio_to_torch']:.2f}"
            out(f"  {tool:<22} {r['seconds_per_epoch']:7.3f} s [{r['min']:.3f}-{r['max']:.3f}]  {ratio:<20} "
                f"n={r['epochs_timed']:<2} cpu {r['cpu_seconds_per_epoch']:.3f} s {cpu:<6} cores {r['cores_busy']:.2f}  "
                f"acc {r['train_accuracy']:.3f}"
                + (f"  others {r['others_busy_cores']:.1f}" if r.get("others_busy_cores") is not None else ""))
        net = cell.split()[0]
        missing = [t for t in REFERENCE.get(net, {}) if t not in row and t in notes.get("_skipped", [])]
        if missing and cell.endswith("@1t"):
            ref = REFERENCE[net]
            out("  reference (the issue's figures, 1 thread): " + ", ".join(
                f"{t} {ref[t]:.2f} s (x{ref[t] / ref['torch']:.2f})" for t in missing))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2, help="processes per tool and cell (default 2)")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per process, networks < 1M weights")
    p.add_argument("--large-epochs", type=int, default=1, help="timed epochs per process, networks >= 1M weights")
    p.add_argument("--warmup-steps", type=int, default=10, help="steps trained before timing, per process")
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help=f"any of {', '.join(TOOLS)}")
    p.add_argument("--samples-nets", default="784-128-10",
                   help="networks for samples/s at batch 1/32/256 (1 thread); empty: skip")
    p.add_argument("--samples-repeats", type=int, default=1, help="processes per tool for samples/s")
    p.add_argument("--samples-tools", default=",".join(SAMPLE_TOOLS))
    p.add_argument("--peers-python", default=os.environ.get("DEVSIM_PEERS_PYTHON", "/work/peers-venv/bin/python"))
    p.add_argument("--quick", action="store_true", help="784-128-10 and 784-512-512-10 at 1 thread, 1 repeat, no samples/s")
    p.add_argument("--timeout", type=int, default=900, help="seconds per worker process")
    p.add_argument("--wait-idle", type=float, default=0.0,
                   help="before each worker, wait up to this many seconds until other processes leave its "
                        "threads free (the busy cores seen are recorded either way)")
    p.add_argument("--out", default=str(HERE / "peers_results.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.nets, args.threads, args.samples_nets, args.repeats = "784-128-10,784-512-512-10", "1", "", 1
    nets = [n for n in args.nets.split(",") if n]
    threads = [int(t) for t in args.threads.split(",") if t]
    wanted = [t for t in args.tools.split(",") if t]
    unknown = [t for t in wanted if t not in TOOLS]
    if unknown:
        p.error(f"unknown tools {unknown}; choose from {', '.join(TOOLS)}")
    if "torch" not in wanted:
        wanted.insert(0, "torch")  # the reference of every ratio
    started = time.perf_counter()
    machine = common.machine_info()
    tools, notes, peer_versions = available_tools(args, wanted)
    notes["_skipped"] = [t for t in wanted if t not in tools]
    for k, v in notes.items():
        if not k.startswith("_"):
            print(f"note: {v}; the issue's reference figures stand in for it", flush=True)
    workdir = tempfile.mkdtemp(prefix="devsim-peers-")
    args.data = os.path.join(workdir, "mnist4000.npz")
    dataset = write_data(args.data)

    cells, raw = {}, []
    total = args.repeats * len(threads) * len(tools)
    done = 0
    for rep in range(args.repeats):
        for t in threads:
            k = (rep * len(threads) + threads.index(t)) % len(tools)
            for tool in tools[k:] + tools[:k]:  # rotated: no tool always runs first or after the same one
                results, error = run_worker(worker_command(args, tool, nets, t), t, args.timeout, args.wait_idle,
                                            BACKEND.get(tool, "tensorflow"))
                by_net = {r["net"]: r for r in results}
                for net in nets:
                    result = by_net.get(net, {"error": error or "no result"})
                    result.update(repeat=rep, name=tool, net=net, threads=t)
                    raw.append(result)
                    cells.setdefault((net, t), {}).setdefault(tool, {})[rep] = result
                done += 1
                save_partial(args.out, raw)
                busy = results[0].get("busy_cores_before") if results else None
                status = ", ".join(f"{r['net']} {median(r['epoch_seconds']):.3f}" for r in results) or error
                print(f"[{done}/{total} {time.perf_counter() - started:5.0f} s] rep {rep} {t}t {tool}: {status} s/epoch"
                      + (f"; {error}" if error and results else "")
                      + (f"  (others busy: {busy:.1f} cores)" if busy is not None else ""), flush=True)
    table = summarize({k: cells[k] for k in [(n, t) for n in nets for t in threads] if k in cells}, tools)

    samples = {}
    sample_tools = [t for t in args.samples_tools.split(",") if t in tools]
    batches = ",".join(str(b) for b in SAMPLE_BATCHES)
    images = ",".join(str(v) for v in SAMPLE_BATCHES.values())
    sample_nets = [n for n in args.samples_nets.split(",") if n]
    for rep in range(args.samples_repeats if sample_nets and sample_tools else 0):
        k = rep % len(sample_tools)
        for tool in sample_tools[k:] + sample_tools[:k]:
            results, error = run_worker(worker_command(args, tool, sample_nets, 1, batches, images, epochs=args.epochs),
                                        1, args.timeout, args.wait_idle, BACKEND.get(tool, "tensorflow"))
            for r in results:
                r.update(repeat=rep, name=tool, threads=1, samples_run=True)
                raw.append(r)
                samples.setdefault(r["net"], {}).setdefault(str(r["batch"]), {}).setdefault(tool, []).extend(
                    r["images"] / s for s in r["epoch_seconds"])
            print(f"[samples/s {time.perf_counter() - started:5.0f} s] rep {rep} {tool}: "
                  + (", ".join(f"{r['net']} b{r['batch']} {r['images'] / median(r['epoch_seconds']):.0f}/s" for r in results)
                     or error), flush=True)
    samples = {net: {b: {t: median(v) for t, v in row.items()} for b, row in by_batch.items()}
               for net, by_batch in samples.items()}

    versions = {"driver_python": sys.version.split()[0], **peer_versions}
    for r in raw:
        for k, v in r.get("versions", {}).items():
            versions.setdefault(k, v)
    try:
        machine["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    result = {
        "job": {"dataset": dataset, "batch": 32, "lr": 0.1, "loss": "cross-entropy", "biases": False,
                "warmup_steps": args.warmup_steps, "timed_epochs": args.epochs, "timed_epochs_large": args.large_epochs,
                "repeats": args.repeats, "threads": threads, "nets": {n: common.weights_of(n) for n in nets},
                "thread_pinning": "OMP/MKL/OPENBLAS_NUM_THREADS, TF_NUM_INTRA/INTEROP_THREADS, torch.set_num_threads "
                                  "and set_num_interop_threads, tf.config.threading intra and inter op = threads; "
                                  "every worker restricted to that many cores (sched_setaffinity)",
                "tools": {t: " ".join([TOOLS[t][1], *TOOLS[t][2]]) + (f" (KERAS_BACKEND={BACKEND[t]})" if t in BACKEND else "")
                          for t in tools}},
        "machine": machine, "versions": versions,
        "notes": {k: v for k, v in notes.items() if not k.startswith("_")}, "skipped": notes["_skipped"],
        "reference_seconds_per_epoch_1_thread": REFERENCE,
        "table": table, "samples_per_second": samples, "runs": raw,
        "seconds": time.perf_counter() - started,
    }
    print(f"\nmachine: {machine.get('cpu', '?')}, {machine['cpus']} cores; {versions}")
    print_table(table, tools, notes)
    if samples:
        print("\nsamples/s at 1 thread (median over timed epochs):")
        for net, by_batch in samples.items():
            for b, row in by_batch.items():
                print(f"  {net:<18} batch {b:>3}: " + ", ".join(f"{t} {v:,.0f}" for t, v in row.items()))
    Path(args.out).write_text(json.dumps(common.finite(result), indent=1, allow_nan=False) + "\n")
    Path(args.out + ".partial").unlink(missing_ok=True)
    print(f"\nwritten: {args.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
