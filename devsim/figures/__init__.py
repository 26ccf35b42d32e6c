"""Every figure of a results folder, drawn from the saved results (never retraining).

- `run_figures(run_folder)`: accuracy and conductance, and for every trained model
  with a ``states_<model>.npz``: the network rebuilt from its saved kernels, its
  predictions on the test set (``predictions_<model>``) and its confusion matrix
  with per-class metrics (``confusion_<model>``). `devsim run` draws accuracy and
  conductance with it at the end of a run, `devsim plot` every figure later: the
  same function on the same saved results, so the same figures.
- `sweep_figures(sweep_folder)`: chosen from what was swept: accuracy curves and
  final accuracy per swept parameter, heatmaps of (ltp, ltd) or (nl_ltp, nl_ltd),
  accuracy against the number of states.
- `make_figures(folder)`: either, by what the folder holds.

The modules, one figure or concern each:

=================  ==========================================================
`style`            paper style, palette, `save_figure` (atomic PNG + PDF)
`labels`           axis labels, legend symbols, value formatting, model names
`summary`          reading and grouping config.json, history.csv, summary.csv
`accuracy`         accuracy against epoch
`conductance`      conductance against pulse number (a device's response)
`sweep`            sweep figures and which ones a sweep gets
`classification`   metrics, predictions grid, confusion matrix
`fit`              the fit figure of ``devsim fit``
=================  ==========================================================

Every figure is a PNG (300 dpi) and a PDF, written atomically. matplotlib and Keras
are imported only when a figure is drawn (`summary` and `labels` need neither).
"""

from __future__ import annotations

import errno
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

from devsim.figures.labels import CLASS_NAMES, model_labels
from devsim.figures.summary import ResultsError, load_config, load_history, read_sweep

__all__ = ["FigureList", "ResultsError", "run_figures", "sweep_figures", "make_figures"]


class FigureList(list):
    """The paths written (a list of `Path`), with ``notes``: what was skipped and why."""

    def __init__(self, paths=(), notes=()):
        super().__init__(paths)
        self.notes = list(notes)


def _default_warn(message):
    warnings.warn(message, stacklevel=3)


class _Out:
    """The folder figures go to (`out`, else `default`): checked at once, created only when drawing starts."""

    def __init__(self, out, default):
        self.path, self.what = (Path(out), "--out") if out is not None else (Path(default), "folder")
        if self.path.exists() and not self.path.is_dir():
            raise ResultsError(f"{self.what}: {self.path} is a file, not a folder")
        here = self.path
        while not here.exists() and here != here.parent:
            here = here.parent  # the folder the missing ones will be created in
        try:
            if not here.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            fd, probe = tempfile.mkstemp(dir=here, prefix=".devsim-write-test-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc):
        raise ResultsError(f"{self.what}: cannot write to {self.path} ({exc.strerror or exc})") from None

    def create(self) -> Path:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail(exc)
        return self.path


def _predict(folder, config, models, data):
    """{model: class probabilities on the test set} from each model's saved kernels.

    One network for all models (same architecture): its predict function is traced once.
    """
    import numpy as np

    from devsim.models import BuilderError, build_network
    from devsim.tiles import layer_name

    cfg = config.get("devsim_run") or {}
    # the float forward pass of the saved weights (a protocol's periphery reads are not replayed)
    try:
        model = build_network(cfg.get("model") or "mlp", data.x_test.shape[1:], hidden=tuple(cfg.get("hidden") or (128,)),
                              activation=cfg.get("activation", "relu"), use_bias=bool(cfg.get("bias")),
                              crop=cfg.get("crop"), output_activation=cfg.get("output_activation") or "softmax",
                              binarize=cfg.get("binarize"))
    except BuilderError as exc:
        raise ResultsError(f"{folder / 'config.json'}: 'model': {exc}") from None
    batch = int(cfg.get("eval_batch_size") or 2048)
    probabilities = {}
    for m in models:
        path = folder / f"states_{m}.npz"
        if not zipfile.is_zipfile(path):
            raise ResultsError(f"{path}: not a NumPy .npz file of saved states")
        try:
            with np.load(path) as arrays:
                saved = {key: arrays[key] for key in arrays.files if key.startswith(("w_", "f_"))}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ResultsError(f"{path}: cannot read it ({exc})") from None
        kernels = [k for k in saved if k.startswith("w_")]
        for v in model.weights:
            key = f"w_{layer_name(v)}" if v.name == "kernel" else f"f_{layer_name(v)}/{v.name}"
            if key not in saved:
                if v.name != "kernel":
                    continue  # a states file from before float weights were saved: they keep their initial values
                raise ResultsError(f"{path}: no {key} (has {', '.join(kernels) or 'no kernels'})")
            if tuple(saved[key].shape) != tuple(v.shape):
                raise ResultsError(f"{path}: {key} has shape {saved[key].shape}, the network from config.json "
                                   f"needs {tuple(v.shape)}")
            v.assign(saved[key])
        probabilities[m] = np.asarray(model.predict(data.x_test, batch_size=batch, verbose=0))
    return probabilities


def run_figures(run_folder, out=None, n=16, warn=None, predictions=True) -> FigureList:
    """All figures of one run folder, from its saved results (nothing is retrained).

    Writes ``accuracy``, ``conductance`` and, for each model in config["models"] with a
    ``states_<model>.npz``, ``predictions_<model>`` (the first `n` test images) and
    ``confusion_<model>`` (all test images). The network is rebuilt with
    `devsim.models.build_network` from config["devsim_run"] (its ``model``) and its
    kernels set from the ``w_<layer>`` arrays, its float weights (biases, normalization)
    from the ``f_<layer>/<name>`` arrays; the test set is the dataset actually used
    (config["dataset"]["name"], the same subset). States files from before float weights
    were saved predict a run with ``bias`` true with zero biases, and a warning says so. If the data cannot be loaded, the
    prediction figures are skipped with a warning. An unfinished run (config.json status
    "running", a ``.partial`` folder) is drawn as far as it got, with one warning saying so.

    Every file is read and checked, and every prediction made, before the first figure
    is written: a bad file leaves no figures behind.

    Args:
        run_folder: a folder written by ``devsim run``.
        out: where the figures go (default: the run folder).
        n: images in the predictions figure.
        warn: called with each warning message (default: `warnings.warn`).
        predictions: False: only accuracy and conductance, without loading the data or
            Keras models (what `devsim run` draws at the end of a run).

    Returns:
        The paths written, a `FigureList` whose ``notes`` repeat the warnings.

    Raises:
        ResultsError: config.json, history.csv or a states file that cannot be read, or an
            `out` that cannot be written; one line naming it.
    """
    folder = Path(run_folder)
    config = load_config(folder)
    history = load_history(folder)
    if not history:
        raise ResultsError(f"{folder / 'history.csv'}: no rows (not one epoch finished)")
    from devsim.devices import device_from_config

    try:
        device = device_from_config(config["device"])
    except (TypeError, ValueError) as exc:
        raise ResultsError(f"{folder / 'config.json'}: 'device': {exc}") from None
    target = _Out(out, folder)
    paths = FigureList()
    user_warn = warn or _default_warn

    def note(message):
        paths.notes.append(message)
        user_warn(message)

    cfg = config.get("devsim_run") or {}
    models = list(config.get("models") or dict.fromkeys(r["model"] for r in history))
    labels = model_labels(device)
    labels = {m: labels.get(m, m) for m in models}
    trained = [m for m in models if (folder / f"states_{m}.npz").is_file()] if predictions else []
    if config.get("status") == "running":
        done = {}
        for r in history:
            done[r["model"]] = max(done.get(r["model"], 0), r["epoch"])
        total = f"/{cfg['epochs']}" if cfg.get("epochs") else ""
        waiting = [m for m in models if m not in trained] if predictions else []
        note(f"{folder}: unfinished run (config.json status 'running'); the figures show the epochs saved so far ("
             + ", ".join(f"{m} {e}{total}" for m, e in done.items()) + ")"
             + (f"; no predictions yet for {', '.join(waiting)}" if waiting else ""))
    else:
        for m in models:
            if predictions and m not in trained:
                note(f"{folder}: no states_{m}.npz; no predictions or confusion figure for the {m} model")
    probabilities = {}
    data = _load_test_set(folder, config, note) if trained else None
    if data is not None:
        if cfg.get("bias") and not _saves_float_weights(folder, trained):
            note(f"{folder}: the run has biases but they are not saved; predictions use zero biases")
        probabilities = _predict(folder, config, trained, data)

    from devsim.figures.accuracy import plot_accuracy
    from devsim.figures.conductance import plot_device_response

    out = target.create()
    paths += plot_accuracy(history, out / "accuracy", labels=labels)
    paths += plot_device_response(device, out / "conductance")
    if not probabilities:
        return paths

    import numpy as np

    from devsim.figures.classification import plot_confusion, plot_predictions

    names = CLASS_NAMES.get(data.name)
    final = config.get("final") or {}
    for m, probs in probabilities.items():
        y_pred = probs.argmax(axis=1)
        accuracy = float(np.mean(y_pred == data.y_test))
        recorded = (final.get(m) or {}).get("test_accuracy")
        if recorded is not None and abs(recorded - accuracy) > 0.005 and not device.read_noise and not (
                cfg.get("bias") and not _saves_float_weights(folder, trained)):
            note(f"{folder}: the saved {m} kernels give test accuracy {accuracy:.4f}, the run recorded {recorded:.4f}")
        label = labels.get(m, m)
        paths += plot_predictions(data.x_test[:n], data.y_test[:n], probs[:n], out / f"predictions_{m}", n=n,
                                  class_names=names, title=f"{label}: first {min(n, len(probs))} test images")
        paths += plot_confusion(data.y_test, y_pred, out / f"confusion_{m}", class_names=names, title=label,
                                num_classes=probs.shape[1])
    return paths


def _saves_float_weights(folder, models):
    """Whether the states files hold the float weights (``f_*``: biases, normalization) too."""
    import numpy as np

    with np.load(folder / f"states_{models[0]}.npz") as arrays:
        return any(k.startswith("f_") for k in arrays.files)


def _load_test_set(folder, config, note):
    """The dataset the run used (None, with a note, if it cannot be loaded)."""
    from devsim.data import DataError, load_dataset

    cfg = config.get("devsim_run") or {}
    dataset = (config.get("dataset") or {}).get("name") or cfg.get("dataset", "mnist")
    try:
        data = load_dataset(dataset, cfg.get("data_dir"), warn=note, train_size=cfg.get("train_size"),
                            test_size=cfg.get("test_size"))
    except DataError as exc:
        note(f"{folder}: cannot load the test set ({exc}); predictions and confusion figures skipped")
        return None
    expected = (config.get("dataset") or {}).get("sha256")
    digest = data.info()["sha256"] if expected else None
    if expected and digest != expected:
        note(f"{folder}: the {dataset} data loaded now differ from the data the run used "
             f"(sha256 {digest} vs {expected}); the figures use the data loaded now")
    return data


def sweep_figures(sweep_folder, out=None, echo=print) -> FigureList:
    """The figures a sweep calls for, chosen from what was swept (see `devsim.figures.sweep.sweep_plan`).

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

    Raises:
        ResultsError: sweep.json or summary.csv that cannot be read, or an `out` that cannot
            be written; one line naming it.
    """
    folder = Path(sweep_folder)
    meta, rows, swept, params, notes = read_sweep(folder)
    paths = FigureList(notes=notes)
    if rows:
        out = _Out(out, folder / "figures").create()
        from devsim.figures.sweep import sweep_plan

        for stem, plot, kwargs in sweep_plan(swept, params, meta.get("ties"), meta.get("fixed")):
            paths += plot(rows, stem=out / stem, **kwargs)
    if echo:
        for message in paths.notes:
            echo(f"{folder.name}: {message}")
    return paths


def make_figures(folder, out=None, warn=None) -> FigureList:
    """Figures of a sweep folder (sweep.json + summary.csv) or a run folder (config.json + history.csv).

    Args:
        folder: the results folder.
        out: where the figures go (default: the run folder, or ``<sweep>/figures``).
        warn: called with each note (default: `warnings.warn` for a run, print for a sweep).

    Raises:
        ValueError: one line starting "folder: " naming what is missing; `ResultsError`
            (a ValueError) for a file that cannot be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder: {folder} does not exist or is not a folder")
    sweep = {f: (folder / f).is_file() for f in ("sweep.json", "summary.csv")}
    run = {f: (folder / f).is_file() for f in ("config.json", "history.csv")}
    if all(sweep.values()):
        return sweep_figures(folder, out, echo=warn or print)
    if all(run.values()):
        return run_figures(folder, out, warn=warn)
    if any(sweep.values()):
        missing = [f for f, ok in sweep.items() if not ok]
        raise ValueError(f"folder: {folder} looks like a sweep but has no {' or '.join(missing)}")
    if any(run.values()):
        missing = [f for f, ok in run.items() if not ok]
        raise ValueError(f"folder: {folder} looks like a run folder but has no {' or '.join(missing)}")
    raise ValueError(f"folder: {folder} has neither sweep.json and summary.csv (a sweep) nor config.json and "
                     "history.csv (a run folder)")
