"""Helpers of the figure tests: synthetic sweep folders and checks of written figures."""

import csv
import hashlib
import itertools
import json
import math

PNG, PDF = b"\x89PNG\r\n\x1a\n", b"%PDF-"
INF = math.inf


def _penalty(param, v):
    """A plausible accuracy loss for one device parameter value."""
    if param in ("ltp", "ltd"):
        return 0.0 if math.isinf(v) else 0.3 / (1 + v / 0.2)
    if param in ("nl_ltp", "nl_ltd"):
        return 0.04 * abs(v)
    if param == "states":
        return 0.5 * math.exp(-v / 16)
    return 0.0


def make_sweep(folder, parameters, epochs=5, failed=(), diverged=(), json_inf="inf",
               models=("device", "linear", "float"), ties=None, fixed=None):
    """Write sweep.json and summary.csv of a synthetic sweep (every value of `parameters` crossed).

    Accuracies follow ``final * (1 - 0.5 exp(-epoch / 1.5))`` with ``final`` from `_penalty`
    and a seed offset of ``0.01 * seed``. Runs whose index is in `failed` get one row
    with status "failed" and empty numbers. Values are written as strings ("inf").
    `ties` ({field: source}) adds tied columns, as ``devsim sweep --tie`` does.
    Returns {run hash: params}.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ties = ties or {}
    names = list(parameters) + list(ties)
    runs = {}
    for combo in itertools.product(*parameters.values()):
        params = dict(zip(parameters, combo))
        params.update({field: params[source] for field, source in ties.items()})
        runs[hashlib.sha1(json.dumps(params, default=str).encode()).hexdigest()[:10]] = params
    fields = ["run", *names, "model", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
              "seconds", "status"]
    rows = []
    for i, (run, params) in enumerate(runs.items()):
        cells = {p: ("inf" if v == INF else v) for p, v in params.items()}
        if i in failed:
            rows.append({"run": run, **cells, "model": "device", "status": "failed"})
            continue
        final = 0.92 - sum(_penalty(p, v) for p, v in params.items()) + 0.01 * params.get("seed", 0)
        final -= 0.03 * (params.get("update") == "batch")
        for model in models:
            linear = all(params.get(p, INF) == INF for p in ("ltp", "ltd") if p in params) and "ltp" in params
            if model == "linear" and linear:
                continue  # a linear device has no separate linear reference
            linear_top = 0.92 - _penalty("states", params.get("states", 1e9))
            top = {"device": final, "linear": linear_top, "float": 0.95}[model]
            for epoch in range(1, epochs + 1):
                acc = top * (1 - 0.5 * math.exp(-epoch / 1.5))
                status = "diverged" if i in diverged else "complete"
                rows.append({"run": run, **cells, "model": model, "epoch": epoch, "train_loss": 1 - acc,
                             "train_accuracy": acc + 0.01, "test_loss": 1.1 - acc, "test_accuracy": f"{acc:.6g}",
                             "seconds": 0.5, "status": status})
    with open(folder / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    as_json = {p: [json_inf if v == INF else v for v in values] for p, values in parameters.items()}
    meta = {"name": folder.name, "parameters": as_json,
            "fixed": {"dataset": "mnist-5k", "epochs": epochs, **(fixed or {})}, "ties": ties,
            "runs": {r: {p: (json_inf if v == INF else v) for p, v in ps.items()} for r, ps in runs.items()}}
    (folder / "sweep.json").write_text(json.dumps(meta, indent=2))
    return runs


def valid(paths):
    for p in paths:
        assert p.is_file(), p
        head = p.read_bytes()[:8]
        assert head == PNG if p.suffix == ".png" else head[:5] == PDF, p
    assert all(not p.name.startswith(".") for p in paths)


def names(paths):
    return sorted({p.stem for p in paths})
