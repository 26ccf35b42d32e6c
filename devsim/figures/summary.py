"""Reading saved results and grouping their rows: what the figures are drawn from.

- `load_config`, `load_history` (a run folder), `load_sweep`, `load_summary` (a
  sweep folder): the files, checked, with numbers converted; a file that is not
  what devsim writes raises `ResultsError` naming it.
- `read_sweep`: a sweep's rows without failed runs, its swept parameters and notes.
- `group_runs`, `run_metric`, `seed_means`, `group_means`: rows grouped per run,
  a run's final or best accuracy, means per seed.

No matplotlib here: the figures import it, reading the results does not.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

__all__ = ["ResultsError", "STANDARD_COLUMNS", "parse_value", "is_number", "sort_key", "to_number", "param_names",
           "load_config", "load_history", "load_sweep", "load_summary", "read_sweep", "swept_params", "group_runs",
           "run_metric", "check_param", "seed_means", "group_means"]


class ResultsError(ValueError):
    """A results file that cannot be drawn from: a one-line message naming the file (or ``--out``)."""


STANDARD_COLUMNS = {"run", "model", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                    "seconds", "status"}
"""Columns of summary.csv and history.csv that are not parameters (besides ``pulses_*``)."""

_TEXT_COLUMNS = {"run", "model", "status"}
_NUMBER_COLUMNS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")


# --------------------------------------------------------------------------- values

def parse_value(value):
    """A summary/sweep cell as a Python value.

    Integers stay int, other numbers (including "inf", "-inf", "Infinity") become float,
    lists become comma-joined text ("256,128"), empty or None give None, and any other
    text is kept as a string.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(parse_value(v)) for v in value)
    text = str(value).strip()
    if not text:
        return None
    if text.startswith("[") and text.endswith("]"):  # a list written by csv: "[256, 128]"
        return ",".join(p.strip() for p in text[1:-1].split(",") if p.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def is_number(v) -> bool:
    """True for an int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sort_key(v):
    """Numbers ascending (inf last), then text; None at the very end."""
    if is_number(v):
        return (0, float(v), "")
    return (2, 0.0, "") if v is None else (1, 0.0, str(v))


def to_number(value):
    """Float from a CSV cell or number; None for missing, empty or NaN."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def param_names(rows) -> list[str]:
    """The parameter columns of summary rows: everything but the standard and pulse columns."""
    names = {}
    for row in rows:
        names.update(dict.fromkeys(k for k in row if k not in STANDARD_COLUMNS and not k.startswith("pulses_")))
    return list(names)


# --------------------------------------------------------------------------- files

def _read_text(path) -> str:
    try:
        return Path(path).read_text()
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a text file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _load_object(path, what) -> dict:
    """A JSON file that must hold one object (``{...}``)."""
    text = _read_text(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ResultsError(f"{path}: must be a JSON object {{...}} ({what}), got {type(obj).__name__} "
                           f"{json.dumps(obj)[:40]}")
    return obj


def _check_types(path, obj, fields):
    for key, kind, name in fields:
        if key in obj and obj[key] is not None and not isinstance(obj[key], kind):
            raise ResultsError(f"{path}: {key!r} must be {name}, got {type(obj[key]).__name__}")


def load_config(folder) -> dict:
    """A run's config.json (the record `devsim run` writes), checked.

    Args:
        folder: the run folder (or the config.json itself).

    Raises:
        ResultsError: not JSON, not an object, or without the ``device`` object.
    """
    path = Path(folder)
    path = path / "config.json" if path.is_dir() else path
    config = _load_object(path, "a run's record")
    if not isinstance(config.get("device"), dict):
        raise ResultsError(f"{path}: no 'device' object (the config.json of a run folder has one)")
    _check_types(path, config, [("devsim_run", dict, "an object"), ("models", list, "a list of model names"),
                                ("dataset", dict, "an object"), ("final", dict, "an object")])
    return config


def load_sweep(folder) -> dict:
    """A sweep's sweep.json, checked (an object whose parameters, fixed, ties and runs are objects)."""
    path = Path(folder)
    path = path / "sweep.json" if path.is_dir() else path
    meta = _load_object(path, "a sweep's grid")
    _check_types(path, meta, [(key, dict, "an object") for key in ("parameters", "fixed", "ties", "runs")])
    return meta


def _read_rows(path, required, what, epoch_required):
    path = Path(path)
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if not header:
            raise ResultsError(f"{path}: empty, not a {what}")
        missing = [c for c in required if c not in header]
        if missing:
            shown = ", ".join(repr(h) for h in header[:4]) + (", ..." if len(header) > 4 else "")
            raise ResultsError(f"{path}: not a {what} (no {', '.join(missing)} column; the header is {shown})")
        rows = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise ResultsError(f"{path} line {line}: {len(header) + len(row[None])} cells, the header has "
                                   f"{len(header)}")
            row = {k: (v if k in _TEXT_COLUMNS else parse_value(v)) for k, v in row.items()}
            epoch = row.get("epoch")
            if isinstance(epoch, float) and epoch.is_integer():
                row["epoch"] = epoch = int(epoch)
            if not (isinstance(epoch, int) and epoch >= 0) and (epoch is not None or epoch_required):
                raise ResultsError(f"{path} line {line}: epoch {row.get('epoch')!r} is not a whole number")
            for key in _NUMBER_COLUMNS:
                if row.get(key) is not None and not is_number(row[key]):
                    raise ResultsError(f"{path} line {line}: {key} {row[key]!r} is not a number")
            rows.append(row)
    except csv.Error as exc:
        raise ResultsError(f"{path} line {reader.line_num}: not CSV ({exc})") from None
    return rows


def load_summary(folder) -> list[dict]:
    """Rows of a sweep's summary.csv with numbers converted.

    Args:
        folder: the sweep folder (or the summary.csv itself).

    Returns:
        One dict per row: ``run``, ``model`` and ``status`` stay text; ``epoch`` and
        integer parameters are int; other numbers float ("inf" is ``math.inf``); empty
        cells None; other text (e.g. a device preset) is kept.

    Raises:
        ResultsError: not a summary.csv (columns missing, a number that is not one).
    """
    path = Path(folder)
    return _read_rows(path / "summary.csv" if path.is_dir() else path, ("run", "model", "epoch", "test_accuracy"),
                      "devsim summary.csv", epoch_required=False)  # a failed run's row has no epoch


def load_history(folder) -> list[dict]:
    """Rows of a run's history.csv with numbers converted (as `load_summary`).

    Raises:
        ResultsError: not a history.csv (columns missing, a number that is not one).
    """
    path = Path(folder)
    return _read_rows(path / "history.csv" if path.is_dir() else path, ("model", "epoch", "test_accuracy"),
                      "devsim history.csv", epoch_required=True)


def swept_params(meta, rows):
    """The swept parameters (sweep.json order; not the seed, not tied fields) and the parameter columns."""
    parameters = meta.get("parameters") or {}
    ties = meta.get("ties") or {}
    columns = param_names(rows)
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
        if p != "seed" and len({parse_value(v) for v in values}) > 1:
            swept.append(p)
    return swept, params


def read_sweep(folder):
    """A sweep folder's results: ``(sweep.json, rows without failed runs, swept parameters,
    parameter columns, notes)``; the notes say which runs were skipped or diverged."""
    folder = Path(folder)
    meta = load_sweep(folder)
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
    swept, params = swept_params(meta, rows)
    if not rows:
        notes.append("no usable rows in summary.csv; no figures")
    return meta, rows, swept, params, notes


# --------------------------------------------------------------------------- grouping

def group_runs(rows, model, params=None, what="plot"):
    """Per run of one model: {"params": {p: value}, "acc": {epoch: test accuracy}, "status"}.

    Rows with status "failed" are dropped, as are runs without any test accuracy. With
    ``model=None`` every model of every run is one entry, with "model" as a parameter.

    Returns:
        ``(runs, params)``: the runs by key and the parameter names (with "model" for
        ``model=None``).
    """
    rows = list(rows)
    params = param_names(rows) if params is None else [p for p in params if p != "model"]
    runs = {}
    for row in rows:
        if (model is not None and str(row.get("model")) != model) or row.get("model") in (None, ""):
            continue
        if str(row.get("status") or "complete") == "failed":
            continue
        values = {p: parse_value(row.get(p)) for p in params}
        key = row.get("run") or tuple(values.values())
        if model is None:
            values["model"] = str(row["model"])
            key = (key, values["model"])
        run = runs.setdefault(key, {"params": values, "acc": {}, "status": str(row.get("status") or "complete")})
        epoch, acc = to_number(row.get("epoch")), to_number(row.get("test_accuracy"))
        if epoch is not None and acc is not None:
            run["acc"][int(epoch)] = acc
    runs = {k: r for k, r in runs.items() if r["acc"]}
    if not runs:
        raise ValueError(f"{what}: no test accuracies for model {model!r} (failed runs are skipped)")
    return runs, params + (["model"] if model is None else [])


def run_metric(run, metric):
    """A run's "final" (last epoch) or "best" test accuracy."""
    if metric == "final":
        return run["acc"][max(run["acc"])]
    if metric == "best":
        return max(run["acc"].values())
    raise ValueError(f"metric: must be 'final' or 'best', got {metric!r}")


def check_param(params, name, what):
    """ValueError unless `name` is one of the parameter columns."""
    if name not in params:
        raise ValueError(f"{what}: no parameter column {name!r} (have: {', '.join(params) or 'none'})")


def seed_means(items):
    """Per-seed means of ``(seed, value)`` pairs, in seed order: what a band or error bar spans.

    Averaging over the other pooled parameters first keeps their effect (e.g. the spread
    over A_d) out of the band, which then shows the seed-to-seed variation of the mean.
    """
    by_seed = {}
    for seed, value in items:
        by_seed.setdefault(seed, []).append(value)
    return np.array([np.mean(by_seed[k]) for k in sorted(by_seed, key=sort_key)])


def group_means(runs, x, line, metric):
    """{line value: {x value: per-seed means of the metric}} and {(line value, x value): runs}."""
    groups, counts = {}, {}
    for r in runs.values():
        key = r["params"][line] if line else None
        item = (r["params"].get("seed"), run_metric(r, metric))
        groups.setdefault(key, {}).setdefault(r["params"][x], []).append(item)
        counts[key, r["params"][x]] = counts.get((key, r["params"][x]), 0) + 1
    return {k: {v: seed_means(a) for v, a in g.items()} for k, g in groups.items()}, counts
