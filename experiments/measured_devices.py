"""Training on a measured device: the fitted exponential against the measured-table device.

    python experiments/measured_devices.py [--epochs 5] [--seeds 0,1,2] [--out results/measured_devices]

For each pulse file -- examples/pulses_example.csv (made up: a simulated
exponential device, examples/make_pulses_example.py) and
examples/kinked_example.csv (made up: a device with a kink and a drop at the
turn-around, examples/make_kinked_example.py) -- `devsim fit --table` makes
both devices from the same data: (a) the fitted exponential (`ExpDevice`,
exponential.json) and (b) the measured table (`TableDevice`, device.json),
each with its measured C2C noise. Both train the same network from the same
seeds: the 5000-digit MNIST subset (mnist-5k: 4000 train, 1000 test), 784-32-10
relu MLP, SGD lr 0.05, batch 32, batch updates with stochastic pulse rounding,
uniform initial states, no baselines. Finished runs are reused (delete the
folder to retrain).

Writes OUT/<device>/{exponential,table}_s<seed>/ (one devsim run each),
OUT/accuracy.png/pdf (test accuracy against epoch: mean and min-max band over
seeds, one panel per device, both models), OUT/table.md and table.csv (final
test accuracy, mean +- standard deviation over seeds) and OUT/fit_<device>/
(the fits, with measured.png/pdf).
"""

from __future__ import annotations

import argparse
import csv
import io as _io
import time
from pathlib import Path

import numpy as np

from devsim import io
from devsim.run import RunConfig, run
from devsim.sweep import FINISHED, run_status

ROOT = Path(__file__).resolve().parents[1]
DEVICES = {"pulses_example": ROOT / "examples" / "pulses_example.csv",
           "kinked_example": ROOT / "examples" / "kinked_example.csv"}
MODELS = {"exponential": "exponential.json", "table": "device.json"}
LABELS = {"exponential": "fitted exponential", "table": "measured table"}
SETTINGS = dict(dataset="mnist-5k", hidden=(32,), update="batch", pulses="stochastic", lr=0.05, batch_size=32,
                init="uniform", baselines=False)


def fit_devices(out: Path):
    from devsim.cli import main

    for name, csv_path in DEVICES.items():
        folder = out / f"fit_{name}"
        if not (folder / "device.json").exists():
            try:
                main(["fit", str(csv_path), "--table", "--unit", "S", "--out", str(folder)])  # both written in S
            except SystemExit as exc:
                if exc.code:
                    raise


def history(folder: Path):
    with open(folder / "history.csv") as f:
        return [r for r in csv.DictReader(f) if r["model"] == "device"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="results/measured_devices")
    args = parser.parse_args(argv)
    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    fit_devices(out)
    curves, rows = {}, []
    start = time.perf_counter()
    for name in DEVICES:
        for model, file in MODELS.items():
            finals = []
            for seed in seeds:
                run_name = f"{model}_s{seed}"
                folder = out / name / run_name
                if run_status(folder) not in FINISHED:
                    config = RunConfig(device=str(out / f"fit_{name}" / file), epochs=args.epochs, seed=seed,
                                       out=str(out / name), name=run_name, **SETTINGS)
                    run(config, echo=lambda m: None)
                rows_h = history(folder)
                curves.setdefault((name, model), []).append([float(r["test_accuracy"]) for r in rows_h])
                finals.append(float(rows_h[-1]["test_accuracy"]))
            rows.append({"device": name, "model": model, "seeds": len(seeds), "epochs": args.epochs,
                         "final_test_accuracy_mean": float(np.mean(finals)),
                         "final_test_accuracy_std": float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0,
                         "min": float(np.min(finals)), "max": float(np.max(finals))})
            print(f"{name:>15} {model:>11}: {np.mean(finals):.4f} +- {rows[-1]['final_test_accuracy_std']:.4f}")
    print(f"{time.perf_counter() - start:.0f} s")
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    io.write_text(out / "table.csv", buf.getvalue())
    lines = ["| device | model | final test accuracy (mean +- sd) | min | max |", "|---|---|---|---|---|"]
    lines += [f"| {r['device']} | {LABELS[r['model']]} | {r['final_test_accuracy_mean']:.4f} +- "
              f"{r['final_test_accuracy_std']:.4f} | {r['min']:.4f} | {r['max']:.4f} |" for r in rows]
    lines.append(f"\n{len(seeds)} seeds, {args.epochs} epochs, mnist-5k, 784-32-10 relu, SGD lr 0.05, batch 32, "
                 "batch updates, stochastic pulses.")
    io.write_text(out / "table.md", "\n".join(lines) + "\n")
    print(plot(curves, out / "accuracy"))


def plot(curves, stem):
    from matplotlib.figure import Figure

    from devsim.figures import style as plots

    with plots.paper_style():
        fig = Figure(figsize=(3.4, 2.4))
        axes = fig.subplots(1, len(DEVICES), sharey=True)
        for ax, name in zip(axes, DEVICES):
            for (model, color) in zip(MODELS, (plots.OKABE_ITO[2], plots.OKABE_ITO[0])):
                acc = np.asarray(curves[(name, model)]) * 100
                epochs = np.arange(1, acc.shape[1] + 1)
                ax.fill_between(epochs, acc.min(axis=0), acc.max(axis=0), color=color, alpha=0.2, lw=0)
                ax.plot(epochs, acc.mean(axis=0), color=color, marker="o", ms=2.5, label=LABELS[model])
            ax.set_title(name.replace("_example", " (made up)"), fontsize=7.5)
            ax.set_xlabel("Epoch")
            ax.set_xticks(epochs)
        axes[0].set_ylabel("Test accuracy (%)")
        axes[0].legend(fontsize=6.5, frameon=False, loc="lower right")
        return plots.save_figure(fig, stem)


if __name__ == "__main__":
    main()
