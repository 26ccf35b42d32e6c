"""Time per training image of the NeuroSim protocol (400-100-10, one image per update) against NeuroSim's.

    python benchmarks/neurosim_speed.py [--device ag-si] [--images 8000] [--repeats 3] [--threads 0]

Builds the device model exactly as ``devsim run --protocol neurosim`` does
(mnist-5k data, hardware forward pass with the 8-bit ADC, reference and
series resistance, SSE error signal, per-image NeuroSim write with C2C and
pulse counting), compiles one epoch's loop, then times whole epochs of
``--images`` single-image updates. Prints microseconds per image (best and
median of the repeats) and the ratio to NeuroSim's ~0.045 s per image
(docs/neurosim.md, section 14: MLP+NeuroSim V3.0 on one core). Writes
benchmarks/neurosim_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NEUROSIM_SECONDS_PER_IMAGE = 0.045


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="ag-si")
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-count-pulses", action="store_true", help="time without the per-epoch pulse counters")
    parser.add_argument("--threads", type=int, default=None, help="instead of the protocol's --threads 1 (0: all cores)")
    args = parser.parse_args()

    import numpy as np

    from devsim.config import RunConfig
    from devsim.data import load_dataset
    from devsim.online import CompiledLoop, epoch_indices
    from devsim.run import build_model, initial_pulse_states

    extra = {"count_pulses": False} if args.no_count_pulses else {}
    if args.threads:
        extra["threads"] = args.threads
    config = RunConfig(protocol="neurosim", device=args.device, dataset="mnist-5k", images_per_epoch=args.images, **extra)
    from devsim import backends

    # as devsim run does (the protocol's --threads 1); --threads 0 leaves TensorFlow's default (all cores)
    note = backends.set_threads(config.threads) if args.threads != 0 else None
    if note:
        print(note)
    threads = backends.threads()
    device = config.make_device()
    data = load_dataset("mnist-5k")
    states = initial_pulse_states(config, device, data.x_train.shape[1:])
    results = {}
    for name, dev in (("device", device), ("float", None)):
        model, loss, _ = build_model(name, dev, device, config, data, states)
        model.optimizer.build(model.trainable_variables)
        loop = CompiledLoop(model, loss, data.x_train, data.y_train, 1)
        start = time.perf_counter()
        loop.run_epoch(epoch_indices(len(data.y_train), 0, 0, args.images))  # traces and compiles
        compile_s = time.perf_counter() - start
        times = []
        for r in range(args.repeats):
            idx = epoch_indices(len(data.y_train), r + 1, 0, args.images)
            start = time.perf_counter()
            loop.run_epoch(idx)
            times.append((time.perf_counter() - start) / args.images)
        best, median = min(times), float(np.median(times))
        results[name] = {"us_per_image_best": best * 1e6, "us_per_image_median": median * 1e6,
                         "neurosim_ratio_best": NEUROSIM_SECONDS_PER_IMAGE / best, "first_epoch_s": compile_s}
        print(f"{name:>6} ({args.device if dev else 'software mode'}, threads {threads or 'all'}): {best * 1e6:7.1f} us/image best, "
              f"{median * 1e6:7.1f} median over {args.repeats} epochs of {args.images}; "
              f"{NEUROSIM_SECONDS_PER_IMAGE / best:,.0f} x faster than NeuroSim's 0.045 s; first epoch (with compile) {compile_s:.1f} s")
    results["threads"] = threads
    results["cpu_count"] = os.cpu_count()
    results["load_average"] = os.getloadavg()
    out = Path(__file__).with_name("neurosim_speed.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
