"""Regenerate ``examples/kinked_example.csv``: a made-up device with a kink (GENERATED, not measured).

A piecewise-linear response that the exponential model cannot represent: LTP
steps of 3 % of the range below mid-range and 1 % above (a kink at g = 0.5),
LTD the mirror image; at every LTP -> LTD turn-around the conductance drops
by 5 % of the range; C2C noise 0.4 % of the range per pulse. Gmin = 100 uS,
Gmax = 200 uS (written in siemens), 66 pulses per branch, 12 cycles, seed 0.
Run ``python examples/make_kinked_example.py`` from the repository root.
"""

import csv
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("kinked_example.csv")


def simulate(cycles=12, n=66, c2c=0.004, drop=0.05, seed=0):
    rng = np.random.default_rng(seed)
    rows, g = [], 0.0
    for c in range(1, cycles + 1):
        for d in (1, -1):
            if d < 0:
                g = max(0.0, g - drop)  # the drop at the turn-around
            rows.append((c, d, 0, g))
            for p in range(1, n + 1):
                h = g if d > 0 else 1 - g
                step = 0.03 if h < 0.5 else 0.01
                g = float(np.clip(g + d * step + c2c * rng.standard_normal(), 0.0, 1.0))
                rows.append((c, d, p, g))
    return rows


def write(path=OUT):
    with open(path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["cycle", "direction", "pulse", "conductance"])
        for c, d, p, g in simulate():
            out.writerow([c, "ltp" if d > 0 else "ltd", p, f"{1e-4 + 1e-4 * g:.6e}"])
    return Path(path)


if __name__ == "__main__":
    print(write())
