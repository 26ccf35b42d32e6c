"""Figures from finished results: a run folder or a sweep folder, without retraining.

- `run_figures(run_folder)`: accuracy and conductance again, and for every trained
  model with a ``states_<model>.npz``: the network rebuilt from its saved kernels,
  its predictions on the test set (``predictions_<model>``) and its confusion
  matrix with per-class metrics (``confusion_<model>``).
- `sweep_figures(sweep_folder)`: chosen from what was swept: accuracy curves and
  final accuracy per swept parameter, heatmaps of (ltp, ltd) or (nl_ltp, nl_ltd),
  accuracy against the number of states.
- `make_figures(folder)`: either, by what the folder holds.

Every figure is a PNG (300 dpi) and a PDF, written atomically (`devsim.plots`).
Keras and the datasets are imported only for run folders.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np

from devsim import plots

__all__ = ["CLASS_NAMES", "FigureList", "load_summary", "load_history", "run_figures", "sweep_figures",
           "sweep_plan", "make_figures"]

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "mnist-5k": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
"""Class names per dataset, in label order."""

HEATMAP_PAIRS = (("ltp", "ltd"), ("nl_ltp", "nl_ltd"))
"""Swept parameter pairs drawn as a heatmap (x, y) when both are swept."""

_TEXT_COLUMNS = {"run", "model", "status"}


class FigureList(list):
    """The paths written (a list of `Path`), with ``notes``: what was skipped and why."""

    def __init__(self, paths=(), notes=()):
        super().__init__(paths)
        self.notes = list(notes)


def _read_rows(path):
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            row = {k: (v if k in _TEXT_COLUMNS else plots.parse_value(v)) for k, v in row.items() if k is not None}
            if isinstance(row.get("epoch"), float) and row["epoch"].is_integer():
                row["epoch"] = int(row["epoch"])
            rows.append(row)
    return rows


def load_summary(folder) -> list[dict]:
    """Rows of a sweep's summary.csv with numbers converted.

    Args:
        folder: the sweep folder (or the summary.csv itself).

    Returns:
        One dict per row: ``run``, ``model`` and ``status`` stay text; ``epoch`` and
        integer parameters are int; other numbers float ("inf" is ``math.inf``); empty
        cells None; other text (e.g. a device preset) is kept.
    """
    path = Path(folder)
    return _read_rows(path / "summary.csv" if path.is_dir() else path)


def load_history(folder) -> list[dict]:
    """Rows of a run's history.csv with numbers converted (as `load_summary`)."""
    path = Path(folder)
    return _read_rows(path / "history.csv" if path.is_dir() else path)


def _default_warn(message):
    warnings.warn(message, stacklevel=3)


def run_figures(run_folder, out=None, n=16, warn=None) -> FigureList:
    """All figures of one run folder, from its saved results (nothing is retrained).

    Writes ``accuracy``, ``conductance`` and, for each model in config["models"] with a
    ``states_<model>.npz``, ``predictions_<model>`` (the first `n` test images) and
    ``confusion_<model>`` (all test images). The network is rebuilt with
    `devsim.models.build_mlp` from config["devsim_run"] and its kernels set from the
    ``w_<layer>`` arrays; the test set is the dataset actually used
    (config["dataset"]["name"]). Biases are not saved: a run with ``bias`` true is
    predicted with zero biases, and a warning says so. If the data cannot be loaded, the
    prediction figures are skipped with a warning.

    Args:
        run_folder: a folder written by ``devsim run``.
        out: where the figures go (default: the run folder).
        n: images in the predictions figure.
        warn: called with each warning message (default: `warnings.warn`).

    Returns:
        The paths written, a `FigureList` whose ``notes`` repeat the warnings.
    """
    from devsim import run as devsim_run
    from devsim.data import DataError, load_dataset
    from devsim.devices import device_from_config
    from devsim.models import build_mlp

    folder = Path(run_folder)
    config = json.loads((folder / "config.json").read_text())
    out = Path(out) if out is not None else folder
    out.mkdir(parents=True, exist_ok=True)
    paths = FigureList()
    user_warn = warn or _default_warn

    def note(message):
        paths.notes.append(message)
        user_warn(message)

    cfg = config.get("devsim_run", {})
    history = load_history(folder)
    device = device_from_config(config["device"])
    models = list(config.get("models") or dict.fromkeys(r["model"] for r in history))
    labels = {"device": devsim_run.legend_label(device), **devsim_run.MODEL_LABELS}
    paths += plots.plot_accuracy(history, out / "accuracy", labels={m: labels.get(m, m) for m in models})
    paths += devsim_run.plot_device_response(device, out / "conductance")

    trained = [m for m in models if (folder / f"states_{m}.npz").is_file()]
    for m in models:
        if m not in trained:
            note(f"{folder}: no states_{m}.npz; no predictions or confusion figure for the {m} model")
    if not trained:
        return paths
    dataset = (config.get("dataset") or {}).get("name") or cfg.get("dataset", "mnist")
    try:
        data = load_dataset(dataset, cfg.get("data_dir"), warn=note)
    except DataError as exc:
        note(f"{folder}: cannot load the test set ({exc}); predictions and confusion figures skipped")
        return paths
    expected = (config.get("dataset") or {}).get("sha256")
    digest = data.info()["sha256"] if expected else None
    if expected and digest != expected:
        note(f"{folder}: the {dataset} data loaded now differ from the data the run used "
             f"(sha256 {digest} vs {expected}); the figures use the data loaded now")
    if cfg.get("bias"):
        note(f"{folder}: the run has biases but they are not saved; predictions use zero biases")
    names = CLASS_NAMES.get(data.name)
    batch = int(cfg.get("eval_batch_size") or 2048)
    final = config.get("final") or {}
    # One network for all models (same architecture): its predict function is traced once.
    model = build_mlp(data.x_test.shape[1:], tuple(cfg.get("hidden") or (128,)), cfg.get("activation", "relu"),
                      use_bias=bool(cfg.get("bias")), crop=cfg.get("crop"), name="mlp")
    for m in trained:
        with np.load(folder / f"states_{m}.npz") as arrays:
            for layer in model.layers:
                if not hasattr(layer, "kernel"):
                    continue
                key = f"w_{layer.name}"
                if key not in arrays:
                    raise ValueError(f"{folder / f'states_{m}.npz'}: no {key} (has {', '.join(arrays.files)})")
                if tuple(arrays[key].shape) != tuple(layer.kernel.shape):
                    raise ValueError(f"{folder / f'states_{m}.npz'}: {key} has shape {arrays[key].shape}, the "
                                     f"network from config.json needs {tuple(layer.kernel.shape)}")
                layer.kernel.assign(arrays[key])
        probs = np.asarray(model.predict(data.x_test, batch_size=batch, verbose=0))
        y_pred = probs.argmax(axis=1)
        accuracy = float(np.mean(y_pred == data.y_test))
        recorded = (final.get(m) or {}).get("test_accuracy")
        if recorded is not None and abs(recorded - accuracy) > 0.005 and not device.read_noise and not cfg.get("bias"):
            note(f"{folder}: the saved {m} kernels give test accuracy {accuracy:.4f}, the run recorded {recorded:.4f}")
        label = labels.get(m, m)
        paths += plots.plot_predictions(data.x_test[:n], data.y_test[:n], probs[:n], out / f"predictions_{m}", n=n,
                                        class_names=names, title=f"{label}: first {min(n, len(probs))} test images")
        paths += plots.plot_confusion(data.y_test, y_pred, out / f"confusion_{m}", class_names=names, title=label,
                                      num_classes=probs.shape[1])
    return paths


def _swept(meta, rows):
    """The swept parameters (sweep.json order; not the seed, not tied fields) and the parameter columns."""
    parameters = meta.get("parameters") or {}
    ties = meta.get("ties") or {}
    columns = plots._param_names(rows)
    params = [p for p in parameters if p in columns] + [p for p in columns if p not in parameters]
    swept = []
    for p in params:
        if p in ties:
            continue
        values = parameters.get(p)
        if values is None:
            values = [r.get(p) for r in rows]
        elif not isinstance(values, (list, tuple)):
            values = [values]
        if p != "seed" and len({plots.parse_value(v) for v in values}) > 1:
            swept.append(p)
    return swept, params


def sweep_plan(swept, params, ties=None, fixed=None) -> list[tuple[str, object, dict]]:
    """Which figures a sweep gets: ``[(stem, plot function, keyword arguments), ...]``.

    Args:
        swept: the swept parameters other than the seed and tied fields, in sweep order.
        params: every parameter column of the summary (seed and tied fields included).
        ties: {field: source} from sweep.json: fields that take another's value.
        fixed: the fixed fields from sweep.json (names the device of a seeds-only sweep).

    Returns:
        For a sweep of seeds only, ``curves_models`` (every model, mean over seeds).
    """
    ties = dict(ties or {})
    if not swept:
        device = [plots.value_label(p, plots.parse_value(v)) for p, v in (fixed or {}).items()
                  if p in ("device", "ltp", "ltd", "nl_ltp", "nl_ltd", "states") and v is not None]
        labels = {"device": "device: " + ", ".join(device)} if device else None
        return [("curves_models", plots.plot_sweep_curves,
                 {"param": "model", "model": None, "params": params, "labels": labels})]
    plan = []
    pairs = [(a, b) for a, b in HEATMAP_PAIRS if a in swept and b in swept]
    for p in swept:
        plan.append((f"curves_{p}", plots.plot_sweep_curves, {"param": p, "params": params, "ties": ties}))
    for p in swept:
        others = [q for q in swept if q != p]
        line = None
        if len(swept) == 2 and not any({p, others[0]} == set(pair) for pair in pairs):
            line = others[0]
        if p in ("states", "states_ltd"):
            kwargs = {"param": p, "line": line, "params": params, "ties": ties}
            plan.append((f"final_{p}", plots.plot_vs_states, kwargs))
        else:
            kwargs = {"x": p, "line": line, "params": params, "ties": ties}
            plan.append((f"final_{p}", plots.plot_final_vs_param, kwargs))
    for a, b in pairs:
        plan.append((f"heatmap_{a}_{b}", plots.plot_heatmap, {"x": a, "y": b, "params": params, "ties": ties}))
    return plan


def _read_sweep(folder):
    """(sweep.json, rows without failed runs, swept parameters, parameter columns, notes)."""
    meta = json.loads((folder / "sweep.json").read_text())
    rows = load_summary(folder)
    status, notes = {}, []
    for r in rows:
        status.setdefault(r.get("run"), set()).add(str(r.get("status") or "complete"))
    failed = sorted(run for run, s in status.items() if "failed" in s)
    diverged = sorted(run for run, s in status.items() if "diverged" in s and "failed" not in s)
    missing = sorted(set(meta.get("runs") or {}) - set(status))
    if failed:
        notes.append(f"skipped {len(failed)} failed run(s) of {len(status)}: {', '.join(map(str, failed))}")
    if diverged:
        notes.append(f"{len(diverged)} diverged run(s) included with their last recorded epoch")
    if missing:
        notes.append(f"{len(missing)} run(s) listed in sweep.json have no rows in summary.csv")
    rows = [r for r in rows if str(r.get("status") or "complete") != "failed"]
    swept, params = _swept(meta, rows)
    if not rows:
        notes.append("no usable rows in summary.csv; no figures")
    return meta, rows, swept, params, notes


def sweep_figures(sweep_folder, out=None, echo=print) -> FigureList:
    """The figures a sweep calls for, chosen from what was swept (see `sweep_plan`).

    For every swept parameter other than the seed: ``curves_<p>`` (test accuracy against
    epoch, one colour per value) and ``final_<p>`` (final test accuracy against the
    parameter; with exactly two swept parameters that are not a heatmap pair, one line per
    value of the other). ``final_states`` is drawn against a log2 axis (`plot_vs_states`).
    ``heatmap_ltp_ltd`` / ``heatmap_nl_ltp_nl_ltd`` when both of a pair are swept. Fields
    tied to another (sweep.json "ties", e.g. ltd = ltp) are not axes of their own; their
    symbol joins the source's ("A_p = A_d"). A sweep of seeds only gets ``curves_models``
    (device, linear and float, mean over the seeds). Failed runs are skipped; a note
    (printed with `echo` and kept in ``notes``) says how many.

    Args:
        sweep_folder: a folder written by ``devsim sweep`` (sweep.json, summary.csv).
        out: where the figures go (default: ``<sweep>/figures/``).
        echo: called with each note (None: silent).

    Returns:
        The paths written, a `FigureList` with ``notes``.
    """
    folder = Path(sweep_folder)
    meta, rows, swept, params, notes = _read_sweep(folder)
    out = Path(out) if out is not None else folder / "figures"
    paths = FigureList(notes=notes)
    if rows:
        out.mkdir(parents=True, exist_ok=True)
        for stem, plot, kwargs in sweep_plan(swept, params, meta.get("ties"), meta.get("fixed")):
            paths += plot(rows, stem=out / stem, **kwargs)
    if echo:
        for message in paths.notes:
            echo(f"{folder.name}: {message}")
    return paths


def make_figures(folder, out=None) -> FigureList:
    """Figures of a sweep folder (sweep.json + summary.csv) or a run folder (config.json + history.csv).

    Raises:
        ValueError: one line starting "folder: " naming what is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder: {folder} does not exist or is not a folder")
    sweep = {f: (folder / f).is_file() for f in ("sweep.json", "summary.csv")}
    run = {f: (folder / f).is_file() for f in ("config.json", "history.csv")}
    if all(sweep.values()):
        return sweep_figures(folder, out)
    if all(run.values()):
        return run_figures(folder, out)
    if any(sweep.values()):
        missing = [f for f, ok in sweep.items() if not ok]
        raise ValueError(f"folder: {folder} looks like a sweep but has no {' or '.join(missing)}")
    if any(run.values()):
        missing = [f for f, ok in run.items() if not ok]
        raise ValueError(f"folder: {folder} looks like a run folder but has no {' or '.join(missing)}")
    raise ValueError(f"folder: {folder} has neither sweep.json and summary.csv (a sweep) nor config.json and "
                     "history.csv (a run folder)")
