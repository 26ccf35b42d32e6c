"""Paper-ready figures: accuracy against epoch and conductance response (LTP/LTD).

Figures are built with the object-oriented API (`matplotlib.figure.Figure`), so no
pyplot global state or backend switch is involved, and every file is written through
`devsim.io.atomic_path`, so a reader never sees a half-written PNG or PDF.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, MultipleLocator

from devsim.io import atomic_path

__all__ = ["PAPER_STYLE", "OKABE_ITO", "paper_style", "save_figure", "plot_accuracy", "plot_conductance"]

# Okabe-Ito colour-blind-safe palette.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

PAPER_STYLE = {
    "figure.figsize": (3.4, 2.6), "figure.constrained_layout.use": True,
    "font.size": 8.5, "axes.labelsize": 9, "axes.titlesize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 7.5,
    "legend.framealpha": 0.9, "legend.edgecolor": "0.85", "legend.borderaxespad": 0.4,
    "legend.handlelength": 2.2, "legend.labelspacing": 0.3,
    "lines.linewidth": 1.4, "lines.markersize": 3.5, "axes.linewidth": 0.8,
    "xtick.major.width": 0.8, "ytick.major.width": 0.8, "xtick.major.size": 3, "ytick.major.size": 3,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "0.9", "grid.linewidth": 0.5,
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "pdf.fonttype": 42, "ps.fonttype": 42, "savefig.dpi": 300,
}


def paper_style():
    """Return a context manager that applies PAPER_STYLE (build and save figures inside it)."""
    return matplotlib.rc_context(PAPER_STYLE)


def save_figure(fig, stem) -> list[Path]:
    """Write a figure to ``stem.png`` (300 dpi) and ``stem.pdf`` atomically.

    Both files go to temporary names first and are renamed only after both were
    written, so a failure leaves neither a partial file nor a new/old mismatched pair.

    Args:
        fig: A `matplotlib.figure.Figure`.
        stem: Destination path without suffix (a trailing .png/.pdf is dropped; other dots are kept).

    Returns:
        The paths ``[stem.png, stem.pdf]``.
    """
    stem = Path(stem)
    if stem.suffix.lower() in (".png", ".pdf"):
        stem = stem.with_suffix("")
    png, pdf = (stem.parent / (stem.name + ext) for ext in (".png", ".pdf"))  # keeps dots: "acc_A0.8"
    with atomic_path(png) as tmp_png, atomic_path(pdf) as tmp_pdf:
        with matplotlib.rc_context({"pdf.fonttype": 42}):
            fig.savefig(tmp_png, format="png", dpi=300)
            fig.savefig(tmp_pdf, format="pdf", metadata={"CreationDate": None})
    return [png, pdf]


def _num(value):
    """Float from a CSV cell or number; None for missing, empty or NaN."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _legend_above(ax):
    """Legend above the axes (never covers data), in as many columns as fit one paper column."""
    names = [t.get_label() for t in ax.get_lines() if not t.get_label().startswith("_")]
    ncols = next((n for n in range(len(names), 0, -1)
                  if sum(max(map(len, names[i::n])) + 6 for i in range(n)) <= 56), 1)
    return ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=ncols, frameon=False,
                     borderaxespad=0, columnspacing=1.2, handlelength=1.8)


def _accuracy_figure(rows, labels=None, title=None) -> Figure:
    """Build the accuracy-against-epoch figure (call inside `paper_style()`). See plot_accuracy."""
    labels = labels or {}
    curves = {}  # model -> {"test": [(epoch, acc)], "train": [...]}, in order of first appearance
    for row in rows:
        c = curves.setdefault(str(row["model"]), {"test": [], "train": []})
        epoch = int(float(row["epoch"]))
        for key in ("test", "train"):
            acc = _num(row.get(f"{key}_accuracy"))
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
    if values and min(values) >= 0.5:  # all curves high: zoom in, round to 0.05
        lo = max(0.0, round(math.floor((min(values) - 0.01) / 0.05) * 0.05, 2))
        hi = min(1.0, round(math.ceil((max(values) + 0.005) / 0.05) * 0.05, 2))
        ax.set_ylim(lo, max(hi, lo + 0.05))
    else:
        ax.set_ylim(0, 1)
    # Line-style hint (solid = test, dashed = train): small second legend inside, at the emptiest spot.
    hint = [Line2D([], [], ls="-", marker="o", color="0.45", label="test")]
    if has_train:
        hint.append(Line2D([], [], ls="--", lw=0.75 * lw, color="0.45", label="train"))
    ax.add_artist(Legend(ax, hint, [h.get_label() for h in hint], loc="best", handlelength=1.8))
    _legend_above(ax)
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


def _conductance_figure(responses, title=None) -> Figure:
    """Build the conductance-response figure (call inside `paper_style()`). See plot_conductance."""
    if not responses:
        raise ValueError("plot_conductance: no responses")
    fig = Figure()
    ax = fig.add_subplot()
    xmax = 0.0
    for r in responses:
        x, g = np.asarray(r["pulse"], float), np.asarray(r["g"], float)
        if x.shape != g.shape or x.ndim != 1:
            raise ValueError(f"response {r.get('label')!r}: pulse and g must be 1-D arrays of equal length")
        few = (len(x) - 1) / 2 <= 64
        ax.plot(x, g, ls="--" if r.get("style") == "dashed" else "-", label=r.get("label"),
                marker="o" if few else None, markersize=2.5 if few else None,
                clip_on=not (few and g.min() >= 0 and g.max() <= 1))  # whole end markers, data stays inside
        xmax = max(xmax, x.max())
    first = responses[0]
    turn = float(np.asarray(first["pulse"], float)[int(np.argmax(first["g"]))])
    ax.axvline(turn, color="0.5", lw=0.6, ls=":", zorder=0)
    ax.axvspan(turn, xmax, color="0.94", lw=0, zorder=-1)  # shade the LTD half
    ax.set_xlim(0, xmax)
    ax.set_ylim(-0.03, 1.16)  # headroom above g = 1 for the LTP/LTD tags
    ax.yaxis.set_major_locator(MultipleLocator(0.2))
    ax.spines["left"].set_bounds(0, 1)
    text = dict(transform=ax.get_xaxis_transform(), ha="center", va="center", fontsize=8, color="0.3")
    ax.text(turn / 2, 0.94, "LTP", **text)
    ax.text((turn + xmax) / 2, 0.94, "LTD", **text)
    ax.set_xlabel("Pulse number")
    ax.set_ylabel("Normalized conductance $g$")
    if any(r.get("label") for r in responses):
        _legend_above(ax)
    if title:
        fig.suptitle(title, fontsize=matplotlib.rcParams["axes.titlesize"])
    return fig


def plot_conductance(responses, stem, title=None) -> list[Path]:
    """Plot conductance against pulse number over a full LTP/LTD cycle.

    Args:
        responses: List of dicts {"label": str, "pulse": 1-D array, "g": 1-D array,
            "style": optional "solid" | "dashed"}. Each is a full cycle over pulses 0..2N:
            g rises over the first N pulses (LTP) and falls back over the next N (LTD).
            The turning point is the first response's argmax of g. Markers are drawn
            only for responses with <= 64 pulses per branch.
        stem: Output path without suffix; writes stem.png and stem.pdf.
        title: Optional axes title.

    Returns:
        The paths written, ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_conductance_figure(responses, title), stem)
