"""Accuracy against epoch: a run's models, test (solid) and train (dashed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from devsim.figures.style import legend_above, paper_style, save_figure
from devsim.figures.summary import to_number

__all__ = ["plot_accuracy", "accuracy_ylim"]


def accuracy_ylim(ax, values):
    """Zoom to high accuracies (0.05 steps), else the full 0..1."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if values and min(values) >= 0.5:
        lo = max(0.0, round(math.floor((min(values) - 0.01) / 0.05) * 0.05, 2))
        hi = min(1.0, round(math.ceil((max(values) + 0.005) / 0.05) * 0.05, 2))
        ax.set_ylim(lo, max(hi, lo + 0.05))
    else:
        ax.set_ylim(0, 1)


def _accuracy_figure(rows, labels=None, title=None) -> Figure:
    """Build the accuracy-against-epoch figure (call inside `paper_style()`). See plot_accuracy."""
    labels = labels or {}
    curves = {}  # model -> {"test": [(epoch, acc)], "train": [...]}, in order of first appearance
    for row in rows:
        c = curves.setdefault(str(row["model"]), {"test": [], "train": []})
        epoch = int(float(row["epoch"]))
        for key in ("test", "train"):
            acc = to_number(row.get(f"{key}_accuracy"))
            if acc is not None:
                c[key].append((epoch, acc))
    if not curves:
        raise ValueError("plot_accuracy: no rows")
    fig = Figure()
    ax = fig.add_subplot()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    lw = matplotlib.rcParams["lines.linewidth"]
    values, has_train = [], False
    for i, (model, c) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        if c["train"]:
            x, y = zip(*sorted(c["train"]))
            ax.plot(x, y, ls="--", lw=0.75 * lw, color=color, alpha=0.9)
            values += y
            has_train = True
        if c["test"]:
            x, y = zip(*sorted(c["test"]))
            ax.plot(x, y, ls="-", marker="o", markevery=max(1, len(x) // 20), color=color, zorder=3)
            values += y
        label = str(labels.get(model, model))
        ax.plot([], [], ls="-", marker="o", color=color, label=label if not label.startswith("_") else " " + label)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    accuracy_ylim(ax, values)  # all curves high: zoom in, round to 0.05
    # Line-style hint (solid = test, dashed = train): small second legend inside, at the emptiest spot.
    hint = [Line2D([], [], ls="-", marker="o", color="0.45", label="test")]
    if has_train:
        hint.append(Line2D([], [], ls="--", lw=0.75 * lw, color="0.45", label="train"))
    ax.add_artist(Legend(ax, hint, [h.get_label() for h in hint], loc="best", handlelength=1.8))
    legend_above(ax)
    if title:
        fig.suptitle(title, fontsize=matplotlib.rcParams["axes.titlesize"])
    return fig


def plot_accuracy(rows, stem, labels=None, title=None) -> list[Path]:
    """Plot test (solid, markers) and train (dashed, thinner) accuracy against epoch.

    Args:
        rows: Iterable of dicts (e.g. `csv.DictReader` rows of history.csv; values may be
            strings or numbers) with keys "model", "epoch", "test_accuracy" and optionally
            "train_accuracy" (missing or empty -> no train line). Epochs start at 1.
        stem: Output path without suffix; writes stem.png and stem.pdf.
        labels: Optional {model: legend label}; models keep their order of first appearance.
        title: Optional axes title.

    Returns:
        The paths written, ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_accuracy_figure(rows, labels, title), stem)
