"""Figures from run and sweep folders (devsim.figures) and the sweep/prediction plots behind them."""

import csv
import hashlib
import itertools
import json
import math

import numpy as np
import pytest
from matplotlib.image import imread

from devsim import figures, plots

PNG, PDF = b"\x89PNG\r\n\x1a\n", b"%PDF-"
INF = math.inf


# ---------------------------------------------------------------- synthetic sweeps

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


def _valid(paths):
    for p in paths:
        assert p.is_file(), p
        head = p.read_bytes()[:8]
        assert head == PNG if p.suffix == ".png" else head[:5] == PDF, p
    assert all(not p.name.startswith(".") for p in paths)


def _names(paths):
    return sorted({p.stem for p in paths})


# ---------------------------------------------------------------- a real run folder

@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from devsim.run import RunConfig, run

    tmp = tmp_path_factory.mktemp("runs")
    return run(RunConfig(dataset="mnist-5k", epochs=2, hidden=(16,), ltp=0.5, ltd=0.5, out=str(tmp), name="r"),
               echo=lambda m: None, warn=lambda m: None)


def test_run_figures_writes_predictions_and_confusion(run_folder, tmp_path):
    messages = []
    paths = figures.run_figures(run_folder, out=tmp_path, n=8, warn=messages.append)
    _valid(paths)
    assert _names(paths) == sorted(["accuracy", "conductance", "predictions_device", "predictions_linear",
                                    "predictions_float", "confusion_device", "confusion_linear", "confusion_float"])
    assert {p.suffix for p in paths} == {".png", ".pdf"} and len(paths) == 16
    assert messages == [] and paths.notes == []  # saved kernels reproduce the recorded accuracies
    h, w = imread(tmp_path / "predictions_device.png").shape[:2]
    assert w == 7 * 300 and 2 * 300 < h < 4 * 300  # 2 rows of 4 image/bar pairs, full page width


def test_run_figures_default_out_bias_and_missing_states(run_folder, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(run_folder, folder)
    for f in folder.glob("*.p*"):
        f.unlink()  # figures go back into the run folder
    (folder / "states_linear.npz").unlink()
    config = json.loads((folder / "config.json").read_text())
    config["devsim_run"]["bias"] = True
    config["models"] = ["linear", "float"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning) as record:
        paths = figures.make_figures(folder)
    messages = [str(w.message) for w in record]
    assert any("no states_linear.npz" in m for m in messages)
    assert any("predictions use zero biases" in m for m in messages)
    assert all(p.parent == folder for p in paths)
    assert _names(paths) == ["accuracy", "conductance", "confusion_float", "predictions_float"]


# ---------------------------------------------------------------- metrics

def test_classification_metrics_by_hand():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0, 1]
    m = plots.classification_metrics(y_true, y_pred, num_classes=5)
    cm = np.array([[2, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 3, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(m["confusion"], cm)
    # class 0: TP 2, FP 1, FN 1; class 1: TP 1, FP 2, FN 1; class 2: TP 3, FP 1, FN 1; class 3: TP 0, FN 1
    np.testing.assert_allclose(m["precision"][:4], [2 / 3, 1 / 3, 3 / 4, np.nan])
    np.testing.assert_allclose(m["recall"][:4], [2 / 3, 1 / 2, 3 / 4, 0])
    np.testing.assert_allclose(m["f1"][:4], [2 / 3, 0.4, 0.75, 0])
    assert np.isnan(m["precision"][4]) and np.isnan(m["recall"][4]) and np.isnan(m["f1"][4])  # class never seen
    np.testing.assert_array_equal(m["support"], [3, 2, 4, 1, 0])
    assert m["accuracy"] == 0.6 and m["n"] == 10
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.4 + 0.75 + 0) / 4)


def test_classification_metrics_match_numpy_random():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    m = plots.classification_metrics(y_true, y_pred)
    for c in range(10):
        tp = np.sum((y_true == c) & (y_pred == c))
        assert m["precision"][c] == pytest.approx(tp / np.sum(y_pred == c))
        assert m["recall"][c] == pytest.approx(tp / np.sum(y_true == c))
        p, r = m["precision"][c], m["recall"][c]
        assert m["f1"][c] == pytest.approx(2 * p * r / (p + r))
    assert m["confusion"].sum() == 500 and m["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    with pytest.raises(ValueError, match="length"):
        plots.classification_metrics([0, 1], [0])


def test_confusion_figure_shows_counts_metrics_and_accuracy(tmp_path):
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0, 1]
    with plots.paper_style():
        fig = plots._confusion_figure(y_true, y_pred, class_names=["a", "b", "c", "d"])
    ax, tab = fig.axes[0], fig.axes[2]
    assert [t.get_text() for t in ax.texts][:4] == ["2", "1", "0", "0"]  # counts, row by row
    table = [t.get_text() for t in tab.texts]
    assert table[:4] == ["0.67", "0.33", "0.75", "–"] and table[8:12] == ["0.67", "0.40", "0.75", "0.00"]
    assert "Accuracy 0.600 (n = 10)" in fig._suptitle.get_text()
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    assert fig.axes[1].get_ylabel() == "Fraction of true class"
    _valid(plots.plot_confusion(y_true, y_pred, tmp_path / "c", class_names=list("abcd")))


def test_predictions_figure_marks_wrong_in_red(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((6, 28, 28))
    probs = np.full((6, 10), 0.02)
    probs[np.arange(6), [3, 1, 4, 1, 5, 9]] = 0.82
    labels = np.array([3, 1, 4, 7, 5, 9])  # image 3 is wrong
    with plots.paper_style():
        fig = plots._predictions_figure(images, labels, probs, n=6)
    image_axes = fig.axes[0::2]
    titles = [ax.texts[0] for ax in image_axes]
    assert [t.get_text() for t in titles] == ["3 82%", "1 82%", "4 82%", "1 82% (true 7)", "5 82%", "9 82%"]
    assert [t.get_color() for t in titles] == [plots._BLUE] * 3 + [plots._RED] + [plots._BLUE] * 2
    bars = fig.axes[7].patches  # bar chart of the wrong prediction
    assert bars[1].get_facecolor()[:3] == pytest.approx(plots.matplotlib.colors.to_rgb(plots._RED))
    assert bars[7].get_facecolor()[:3] == pytest.approx(plots.matplotlib.colors.to_rgb(plots._BLUE))
    _valid(plots.plot_predictions(rng.random((3, 32, 32, 3)) * 2 - 1, [0, 1, 2], probs[:3], tmp_path / "c",
                                  class_names=figures.CLASS_NAMES["cifar10"]))


# ---------------------------------------------------------------- sweeps

def test_sweep_ltp_ltd_figures_and_failed_runs(tmp_path):
    folder = tmp_path / "sw"
    make_sweep(folder, {"ltp": [0.1, 0.5, INF], "ltd": [0.2, 1.0, INF], "seed": [0, 1]}, failed=(3,))
    notes = []
    paths = figures.sweep_figures(folder, echo=notes.append)
    _valid(paths)
    assert all(p.parent == folder / "figures" for p in paths)
    assert _names(paths) == ["curves_ltd", "curves_ltp", "final_ltd", "final_ltp", "heatmap_ltp_ltd"]
    assert any("skipped 1 failed run" in n for n in notes) and paths.notes


def test_heatmap_cells_are_the_means(tmp_path):
    folder = tmp_path / "sw"
    runs = make_sweep(folder, {"ltp": [0.1, 0.5, INF], "ltd": [0.2, INF], "seed": [0, 1]}, json_inf=INF)
    rows = figures.load_summary(folder)
    assert any(r["ltp"] == INF for r in rows) and all(isinstance(r["epoch"], int) for r in rows)
    expected = {}
    for run, p in runs.items():
        last = max((r for r in rows if r["run"] == run and r["model"] == "device"), key=lambda r: r["epoch"])
        expected.setdefault((p["ltd"], p["ltp"]), []).append(last["test_accuracy"])
    with plots.paper_style():
        fig = plots._heatmap_figure(rows, "ltp", "ltd")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "0.5", "∞"]  # sorted, inf last
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.2", "∞"]
    texts = [t.get_text() for t in ax.texts]
    want = [f"{np.mean(expected[(y, x)]):.2f}" for y in (0.2, INF) for x in (0.1, 0.5, INF)]
    assert texts == want
    assert fig.axes[1].get_ylabel() == "Test accuracy"
    colors = {t.get_text(): t.get_color() for t in ax.texts}
    assert colors[want[0]] == "white" and colors[want[-1]] == "black"  # dark viridis low, yellow high


def test_final_vs_param_inf_and_log_axis(tmp_path):
    make_sweep(tmp_path / "sw", {"ltp": [0.05, 0.5, 5.0, INF], "seed": [0, 1, 2]})
    rows = figures.load_summary(tmp_path / "sw")
    with plots.paper_style():
        fig = plots._final_vs_param_figure(rows, "ltp")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"  # positive curvature over two decades
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["0.05", "0.5", "5", "∞"]
    assert ax.get_xticks()[-1] > 5 * 3  # ∞ sits to the right of the finite values
    assert ax.get_xlabel() == r"LTP curvature $A_\mathrm{p}$" and ax.get_ylabel() == "Final test accuracy"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["device", "float (ideal)"]
    assert "3 seeds" in legend.get_title().get_text()
    with plots.paper_style():
        lin = plots._final_vs_param_figure(rows, "ltp", references=())
    assert lin.axes[0].get_xscale() == "log"
    small = [r for r in rows if r["ltp"] in (0.5, INF)]
    with plots.paper_style():
        assert plots._final_vs_param_figure(small, "ltp").axes[0].get_xscale() == "linear"  # < a decade


def test_curves_legend_names_values_and_band(tmp_path):
    make_sweep(tmp_path / "sw", {"ltp": [0.5, INF], "ltd": [0.2, 1.0], "seed": [0, 1]})
    rows = figures.load_summary(tmp_path / "sw")
    with plots.paper_style():
        fig = plots._sweep_curves_figure(rows, "ltp")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [r"$A_\mathrm{p}$ = 0.5", r"$A_\mathrm{p}$ = ∞ (linear)"]
    title = legend.get_title().get_text()
    assert "2 seeds × 2 values of $A_\\mathrm{d}$" in title and "min–max" in title
    assert fig.axes[0].get_xlabel() == "Epoch" and fig.axes[0].get_ylabel() == "Test accuracy"
    assert len(fig.axes[0].collections) == 2  # one band per value


def test_states_sweep(tmp_path):
    folder = tmp_path / "st"
    make_sweep(folder, {"states": [8, 16, 32, 64, 128], "seed": [0, 1]})
    paths = figures.make_figures(folder)
    _valid(paths)
    assert _names(paths) == ["curves_states", "final_states"]
    rows = figures.load_summary(folder)
    with plots.paper_style():
        ax = plots._vs_states_figure(rows).axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "16", "32", "64", "128"]
    assert ax.get_xlabel() == "Number of states"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["device", "linear device", "float (ideal)"]


def test_single_nl_ltp_sweep(tmp_path):
    folder = tmp_path / "nl"
    make_sweep(folder, {"nl_ltp": [0, 1, 2.4, 5], "seed": [0, 1]}, diverged=(1,))
    paths = figures.sweep_figures(folder, echo=None)
    _valid(paths)
    assert _names(paths) == ["curves_nl_ltp", "final_nl_ltp"]
    assert any("1 diverged" in n for n in paths.notes)


def test_two_params_get_a_line_each(tmp_path):
    make_sweep(tmp_path / "sw", {"states": [16, 64], "ltp": [0.5, INF], "seed": [0]})
    _, rows, swept, params, notes = figures._read_sweep(tmp_path / "sw")
    assert swept == ["states", "ltp"] and params == ["states", "ltp", "seed"] and notes == []
    plan = [(stem, f.__name__, kw.get("line")) for stem, f, kw in figures.sweep_plan(swept, params)]
    assert plan == [("curves_states", "plot_sweep_curves", None), ("curves_ltp", "plot_sweep_curves", None),
                    ("final_states", "plot_vs_states", "ltp"), ("final_ltp", "plot_final_vs_param", "states")]
    pairs = [stem for stem, _, kw in figures.sweep_plan(["ltp", "ltd"], ["ltp", "ltd", "seed"])]
    assert pairs == ["curves_ltp", "curves_ltd", "final_ltp", "final_ltd", "heatmap_ltp_ltd"]
    assert all(kw.get("line") is None for _, _, kw in figures.sweep_plan(["ltp", "ltd"], ["ltp", "ltd"]))
    with plots.paper_style():
        legend = plots._final_vs_param_figure(rows, "ltp", line="states").axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][:2] == ["states = 16", "states = 64"]


def test_symmetric_sweep_with_tied_ltd(tmp_path):
    folder = tmp_path / "sym"
    make_sweep(folder, {"ltp": [0.1, 1.0, INF], "update": ["epoch", "batch"], "seed": [0, 1]},
               ties={"ltd": "ltp"}, models=("device",))
    meta, rows, swept, params, _ = figures._read_sweep(folder)
    assert swept == ["ltp", "update"] and "ltd" in params  # ltd is a column but no axis of its own
    plan = [stem for stem, _, _ in figures.sweep_plan(swept, params, meta["ties"])]
    assert plan == ["curves_ltp", "curves_update", "final_ltp", "final_update"]  # no heatmap of the diagonal
    with plots.paper_style():
        fig = plots._final_vs_param_figure(rows, "ltp", line="update", params=params, ties=meta["ties"])
        curves = plots._sweep_curves_figure(rows, "ltp", params=params, ties=meta["ties"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"LTP curvature $A_\mathrm{p}$ = $A_\mathrm{d}$"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["update = batch", "update = epoch"]
    legend = curves.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][-1] == r"$A_\mathrm{p}$ = $A_\mathrm{d}$ = ∞ (linear)"
    assert "values of $A_\\mathrm{d}$" not in legend.get_title().get_text()  # tied, so not pooled over


def test_seeds_only_sweep_draws_the_models(tmp_path):
    make_sweep(tmp_path / "orig", {"seed": [0, 1, 2]}, fixed={"ltp": -0.8, "ltd": -0.8})
    paths = figures.sweep_figures(tmp_path / "orig", echo=None)
    _valid(paths)
    assert _names(paths) == ["curves_models"]
    _, rows, _, params, _ = figures._read_sweep(tmp_path / "orig")
    with plots.paper_style():
        legend = plots._sweep_curves_figure(rows, "model", model=None, params=params).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["device", "linear device", "float (ideal)"]
    assert "3 seeds" in legend.get_title().get_text()


def test_parse_value():
    assert plots.parse_value("inf") == INF and plots.parse_value("Infinity") == INF
    assert plots.parse_value("-inf") == -INF and plots.parse_value(" 64 ") == 64 and plots.parse_value("") is None
    assert plots.parse_value("0.5") == 0.5 and plots.parse_value("ag-a-si") == "ag-a-si"
    assert plots.parse_value([256, 128]) == "256,128" == plots.parse_value("[256, 128]")


def test_make_figures_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^folder: .*neither sweep\.json") as err:
        figures.make_figures(tmp_path)
    assert "\n" not in str(err.value)
    (tmp_path / "sweep.json").write_text("{}")
    with pytest.raises(ValueError, match=r"^folder: .*has no summary\.csv"):
        figures.make_figures(tmp_path)
    with pytest.raises(ValueError, match=r"^folder: .*does not exist"):
        figures.make_figures(tmp_path / "nope")


def test_all_failed_sweep_writes_nothing(tmp_path):
    make_sweep(tmp_path / "sw", {"ltp": [0.5, 1.0], "seed": [0]}, failed=(0, 1))
    paths = figures.sweep_figures(tmp_path / "sw", echo=None)
    assert list(paths) == [] and any("skipped 2 failed" in n for n in paths.notes)
