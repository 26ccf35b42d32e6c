"""Train NeuroSim's benchmark MLP on every preset device; compare with NeuroSim's accuracies.

    python experiments/neurosim_presets.py [--dataset mnist] [--epochs 10] [--seed 0]

The network is the nearest devsim builds to MLP+NeuroSim's 400-100-10: the
central 20x20 MNIST pixels, 100 sigmoid hidden units, 10 softmax outputs, no
biases, weights on one device per weight against a mid-range reference.
Training is online-like: SGD (lr 1.0) on mini-batches of 8, each update
programmed right away as round(|dw|/dw_min) pulses (NeuroSim's rule), with
every preset's levels, NL labels, on/off ratio and C2C noise. Initial states
are uniform, weights in [-0.5, 0.5]. The same settings on a linear device
and in float give the references.

Finished runs are reused when the script runs again (delete the folder to
retrain). Writes results/neurosim_presets/<device>/ (one devsim run each) and
results/neurosim_presets/table.csv and table.md: devsim's final and best test
accuracy beside the accuracy NeuroSim reports (neurosim_benchmark_devices.csv,
MLP+NeuroSim V3.0 manual, Table II), and the rank correlation of the two.
"""

from __future__ import annotations

import argparse
import csv
import io as _io
import json
import time
from pathlib import Path

from scipy.stats import spearmanr

from devsim import io
from devsim.presets import PRESETS
from devsim.run import RunConfig, run
from devsim.sweep import FINISHED, run_status

HERE = Path(__file__).resolve().parent
SETTINGS = dict(
    crop=20, hidden=(100,), activation="sigmoid", update="batch", pulses="proportional",
    batch_size=8, lr=1.0, wmax=0.5, init="uniform", baselines=False,
)


def neurosim_table():
    """Published accuracies of Table II (V3.0), keyed by device name."""
    with open(HERE / "neurosim_benchmark_devices.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["source_table"].endswith("Table II") or "Table II" in r["source_table"]]
    return {r["device"]: r["online_accuracy_MNIST"] for r in rows}


def train(config):
    """Run `config` unless its folder already holds a finished run (so the script resumes)."""
    folder = Path(config.out) / config.name
    if run_status(folder) in FINISHED:
        print(f"{config.name}: reusing {folder}")
        return folder
    return run(config, echo=lambda line: print(line, flush=True))


def final(folder):
    record = json.loads((folder / "config.json").read_text())
    return record, record["final"]["device"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/neurosim_presets")
    args = parser.parse_args()
    out = Path(args.out)
    published = neurosim_table()
    rows = []
    started = time.perf_counter()
    runs = [(key, dict(device=key)) for key in PRESETS] + [("linear", dict(linear=True, states=64))]
    for key, device in runs:
        config = RunConfig(**device, **SETTINGS, dataset=args.dataset, epochs=args.epochs, seed=args.seed, out=str(out), name=key)
        folder = train(config)
        record, acc = final(folder)
        preset = PRESETS.get(key)
        rows.append({
            "device": preset.device if preset else "linear (64 levels, reference)",
            "levels": preset.levels if preset else 64,
            "nl_ltp": preset.nl_ltp if preset else 0,
            "nl_ltd": preset.nl_ltd if preset else 0,
            "on_off": preset.on_off if preset else "inf",
            "c2c": preset.c2c if preset else 0,
            "neurosim_accuracy": published.get(preset.device, "") if preset else "",
            "devsim_final": round(acc["test_accuracy"], 4),
            "devsim_best": round(acc["best_test_accuracy"], 4),
            "dataset": record["dataset"]["name"],
        })
    float_config = RunConfig(linear=True, states=64, **{**SETTINGS, "baselines": True}, dataset=args.dataset,
                             epochs=args.epochs, seed=args.seed, out=str(out), name="float")
    record, _ = final(train(float_config))
    rows.append({"device": "float (ideal)", "devsim_final": round(record["final"]["float"]["test_accuracy"], 4),
                 "devsim_best": round(record["final"]["float"]["best_test_accuracy"], 4), "dataset": record["dataset"]["name"]})

    presets = [r for r in rows if r.get("neurosim_accuracy")]
    ns = [float(r["neurosim_accuracy"].strip("~%").split("/")[0]) for r in presets]
    rho, p = spearmanr(ns, [r["devsim_final"] for r in presets])
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    io.write_text(out / "table.csv", buf.getvalue())
    lines = [
        f"devsim vs NeuroSim (MLP+NeuroSim V3.0, Table II), 400-100-10 MLP, {rows[0]['dataset']}, "
        f"{args.epochs} epochs, seed {args.seed}",
        "",
        "| device | levels | NL LTP | NL LTD | on/off | C2C | NeuroSim | devsim final | devsim best |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for k in
                     ("device", "levels", "nl_ltp", "nl_ltd", "on_off", "c2c", "neurosim_accuracy", "devsim_final", "devsim_best")) + " |")
    lines += ["", f"Spearman rank correlation with NeuroSim (7 devices): {rho:.2f} (p = {p:.2f}).",
              f"Total time: {time.perf_counter() - started:.0f} s."]
    io.write_text(out / "table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
