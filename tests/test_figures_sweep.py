"""Sweep figures (devsim.figures.sweep) and sweep_figures, from synthetic sweep folders."""

import numpy as np

from devsim import figures
from devsim.figures import style, summary, sweep
from figure_checks import INF, make_sweep, names, valid


def test_sweep_ltp_ltd_figures_and_failed_runs(tmp_path):
    folder = tmp_path / "sw"
    make_sweep(folder, {"ltp": [0.1, 0.5, INF], "ltd": [0.2, 1.0, INF], "seed": [0, 1]}, failed=(3,))
    notes = []
    paths = figures.sweep_figures(folder, echo=notes.append)
    valid(paths)
    assert all(p.parent == folder / "figures" for p in paths)
    assert names(paths) == ["curves_ltd", "curves_ltp", "final_ltd", "final_ltp", "heatmap_ltp_ltd"]
    assert any("skipped 1 failed run" in n for n in notes) and paths.notes


def test_heatmap_cells_are_the_means(tmp_path):
    folder = tmp_path / "sw"
    runs = make_sweep(folder, {"ltp": [0.1, 0.5, INF], "ltd": [0.2, INF], "seed": [0, 1]}, json_inf=INF)
    rows = summary.load_summary(folder)
    assert any(r["ltp"] == INF for r in rows) and all(isinstance(r["epoch"], int) for r in rows)
    expected = {}
    for run, p in runs.items():
        last = max((r for r in rows if r["run"] == run and r["model"] == "device"), key=lambda r: r["epoch"])
        expected.setdefault((p["ltd"], p["ltp"]), []).append(last["test_accuracy"])
    with style.paper_style():
        fig = sweep._heatmap_figure(rows, "ltp", "ltd")
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
    rows = summary.load_summary(tmp_path / "sw")
    with style.paper_style():
        fig = sweep._final_vs_param_figure(rows, "ltp")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"  # positive curvature over two decades
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["0.05", "0.5", "5", "∞"]
    assert ax.get_xticks()[-1] > 5 * 3  # ∞ sits to the right of the finite values
    assert ax.get_xlabel() == r"LTP curvature $A_\mathrm{p}$" and ax.get_ylabel() == "Final test accuracy"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["device", "float (ideal)"]
    assert "3 seeds" in legend.get_title().get_text()
    with style.paper_style():
        lin = sweep._final_vs_param_figure(rows, "ltp", references=())
    assert lin.axes[0].get_xscale() == "log"
    small = [r for r in rows if r["ltp"] in (0.5, INF)]
    with style.paper_style():
        assert sweep._final_vs_param_figure(small, "ltp").axes[0].get_xscale() == "linear"  # < a decade


def test_curves_legend_names_values_and_band(tmp_path):
    make_sweep(tmp_path / "sw", {"ltp": [0.5, INF], "ltd": [0.2, 1.0], "seed": [0, 1]})
    rows = summary.load_summary(tmp_path / "sw")
    with style.paper_style():
        fig = sweep._sweep_curves_figure(rows, "ltp")
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
    valid(paths)
    assert names(paths) == ["curves_states", "final_states"]
    rows = summary.load_summary(folder)
    with style.paper_style():
        ax = sweep._vs_states_figure(rows).axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "16", "32", "64", "128"]
    assert ax.get_xlabel() == "Number of states"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["device", "linear device", "float (ideal)"]


def test_single_nl_ltp_sweep(tmp_path):
    folder = tmp_path / "nl"
    make_sweep(folder, {"nl_ltp": [0, 1, 2.4, 5], "seed": [0, 1]}, diverged=(1,))
    paths = figures.sweep_figures(folder, echo=None)
    valid(paths)
    assert names(paths) == ["curves_nl_ltp", "final_nl_ltp"]
    assert any("1 diverged" in n for n in paths.notes)


def test_two_params_get_a_line_each(tmp_path):
    make_sweep(tmp_path / "sw", {"states": [16, 64], "ltp": [0.5, INF], "seed": [0]})
    _, rows, swept, params, notes = summary.read_sweep(tmp_path / "sw")
    assert swept == ["states", "ltp"] and params == ["states", "ltp", "seed"] and notes == []
    plan = [(stem, f.__name__, kw.get("line")) for stem, f, kw in sweep.sweep_plan(swept, params)]
    assert plan == [("curves_states", "plot_sweep_curves", None), ("curves_ltp", "plot_sweep_curves", None),
                    ("final_states", "plot_vs_states", "ltp"), ("final_ltp", "plot_final_vs_param", "states")]
    pairs = [stem for stem, _, kw in sweep.sweep_plan(["ltp", "ltd"], ["ltp", "ltd", "seed"])]
    assert pairs == ["curves_ltp", "curves_ltd", "final_ltp", "final_ltd", "heatmap_ltp_ltd"]
    assert all(kw.get("line") is None for _, _, kw in sweep.sweep_plan(["ltp", "ltd"], ["ltp", "ltd"]))
    with style.paper_style():
        legend = sweep._final_vs_param_figure(rows, "ltp", line="states").axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][:2] == ["states = 16", "states = 64"]


def test_symmetric_sweep_with_tied_ltd(tmp_path):
    folder = tmp_path / "sym"
    make_sweep(folder, {"ltp": [0.1, 1.0, INF], "update": ["epoch", "batch"], "seed": [0, 1]},
               ties={"ltd": "ltp"}, models=("device",))
    meta, rows, swept, params, _ = summary.read_sweep(folder)
    assert swept == ["ltp", "update"] and "ltd" in params  # ltd is a column but no axis of its own
    plan = [stem for stem, _, _ in sweep.sweep_plan(swept, params, meta["ties"])]
    assert plan == ["curves_ltp", "curves_update", "final_ltp", "final_update"]  # no heatmap of the diagonal
    with style.paper_style():
        fig = sweep._final_vs_param_figure(rows, "ltp", line="update", params=params, ties=meta["ties"])
        curves = sweep._sweep_curves_figure(rows, "ltp", params=params, ties=meta["ties"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"LTP curvature $A_\mathrm{p}$ = $A_\mathrm{d}$"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["update = batch", "update = epoch"]
    legend = curves.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][-1] == r"$A_\mathrm{p}$ = $A_\mathrm{d}$ = ∞ (linear)"
    assert "values of $A_\\mathrm{d}$" not in legend.get_title().get_text()  # tied, so not pooled over


def test_seeds_only_sweep_draws_the_models(tmp_path):
    make_sweep(tmp_path / "orig", {"seed": [0, 1, 2]}, fixed={"ltp": -0.8, "ltd": -0.8})
    paths = figures.sweep_figures(tmp_path / "orig", echo=None)
    valid(paths)
    assert names(paths) == ["curves_models"]
    _, rows, _, params, _ = summary.read_sweep(tmp_path / "orig")
    with style.paper_style():
        legend = sweep._sweep_curves_figure(rows, "model", model=None, params=params).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["device", "linear device", "float (ideal)"]
    assert "3 seeds" in legend.get_title().get_text()


def test_all_failed_sweep_writes_nothing(tmp_path):
    make_sweep(tmp_path / "sw", {"ltp": [0.5, 1.0], "seed": [0]}, failed=(0, 1))
    paths = figures.sweep_figures(tmp_path / "sw", echo=None)
    assert list(paths) == [] and any("skipped 2 failed" in n for n in paths.notes)


def test_device_names_on_the_x_axis_are_tilted_when_they_would_overlap(tmp_path):
    devices = ["ag-si", "taox-hfox", "pcmo", "alox-hfo2", "gst-pcm", "epiram", "hzo-fefet"]
    make_sweep(tmp_path / "sw", {"device": devices})
    rows = summary.load_summary(tmp_path / "sw")
    with style.paper_style():
        ax = sweep._final_vs_param_figure(rows, "device").axes[0]
    labels = ax.get_xticklabels()
    assert sorted(t.get_text() for t in labels) == sorted(devices)
    assert all(t.get_rotation() == 30 for t in labels)
    make_sweep(tmp_path / "few", {"update": ["batch", "epoch"]})
    with style.paper_style():
        ax = sweep._final_vs_param_figure(summary.load_summary(tmp_path / "few"), "update").axes[0]
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())  # short and few: level
