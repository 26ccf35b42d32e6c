"""Regenerate ``examples/pulses_example.csv``, the sample input of ``devsim fit``.

The data are made up, not measured: a simulated device with Gmin = 2 uS and
Gmax = 20 uS (written in siemens), A_p = 0.4, A_d = 0.25, 64 LTP then 64 LTD
pulses per cycle, 3 cycles, cycle-to-cycle noise 1 % of the range per pulse
(a random walk around the curve, the noise model `devsim.fitting` assumes),
seed 0. Run ``python examples/make_pulses_example.py`` from the repository root.
"""

import csv
from pathlib import Path

from devsim.fitting import simulate_pulses

OUT = Path(__file__).with_name("pulses_example.csv")


def write(path=OUT):
    data = simulate_pulses(g_min=2e-6, g_max=2e-5, a_p=0.4, a_d=0.25, n_p=64, n_d=64, cycles=3, c2c=0.01, seed=0)
    with open(path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["cycle", "direction", "pulse", "conductance"])
        for c, d, p, g in zip(data["cycle"], data["direction"], data["pulse"], data["conductance"]):
            out.writerow([int(c), "ltp" if d > 0 else "ltd", int(p), f"{g:.6e}"])
    return Path(path)


if __name__ == "__main__":
    print(write())
