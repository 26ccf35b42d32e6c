"""The fit figure of `devsim fit`: measured pulse data and the fitted LTP/LTD curves (fit.png/pdf)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D

from devsim.figures.style import OKABE_ITO, paper_style, save_figure
from devsim.fitting import pulse_arrays
from devsim.options import CONDUCTANCE_UNITS

__all__ = ["plot_fit"]


def _scale(values, unit=None):
    """Factor (a power of 1000) and the axis-label suffix for conductances of this size, given in
    ``unit`` (one of `devsim.options.CONDUCTANCE_UNITS`, e.g. ``"S"``: the suffix names the prefixed
    unit, `` (µS)``) or in the CSV's unnamed unit (None: `` (x 10^-6, CSV unit)``)."""
    top = float(np.max(np.abs(values)))
    if unit is not None:
        top *= CONDUCTANCE_UNITS[unit]  # in siemens
        exponent = 0 if top == 0 else max(-12, min(0, 3 * math.floor(math.log10(top) / 3)))
        prefix = {0: "", -3: "m", -6: "\u00b5", -9: "n", -12: "p"}[exponent]
        return 10.0**exponent / CONDUCTANCE_UNITS[unit], f" ({prefix}S)"
    if top == 0 or 0.1 <= top < 1e4:
        return 1.0, " (CSV unit)"
    exponent = 3 * math.floor(math.log10(top) / 3)
    return 10.0**exponent, rf" ($\times 10^{{{exponent}}}$, CSV unit)"


def _pm(value, err):
    """``value \\pm err`` (mathtext) with the value rounded to the error's precision."""
    if not (math.isfinite(err) and err > 0):
        return f"{value:.3g}"
    if err > abs(value):  # an error larger than the value: both to two figures, never 14 digits
        return f"{value:.2g} \\pm {err:.2g}".replace("e+", "e")
    digits = max(0, 1 - math.floor(math.log10(err)))
    return f"{value:.{digits}f} \\pm {err:.{digits}f}"


def _fit_figure(data, result) -> Figure:
    """Build the fit figure (call inside `paper_style()`). See plot_fit."""
    pulse, g, direction, cycle, _ = pulse_arrays(data, result.source)
    n_p, n_d = result.states - 1, result.states_ltd - 1
    factor, suffix = _scale(np.r_[g, result.g_min, result.g_max], result.unit)
    up = direction > 0
    x_axis = np.where(up, pulse, n_p + pulse)
    n_cycles = np.unique(cycle).size
    alpha = float(np.clip(1.6 / (1 + n_cycles), 0.2, 0.9))
    fig = Figure()
    ax = fig.add_subplot()
    lw = matplotlib.rcParams["lines.linewidth"]
    handles, labels = [], []
    marker_size = 2.2 if g.size <= 2000 else 1.2
    for d, color, n, a, nl, sym in ((1, OKABE_ITO[0], n_p, result.a_p, result.nl_ltp, "p"),
                                     (-1, OKABE_ITO[1], n_d, result.a_d, result.nl_ltd, "d")):
        sel = direction == d
        ax.plot(x_axis[sel], g[sel] / factor, ls="none", marker="o", ms=marker_size, mew=0,
                color=color, alpha=alpha, zorder=2, clip_on=False, rasterized=g.size > 5000)
        q = np.linspace(0, n, max(200, 4 * n + 1))
        curve = result.curve(q / n, np.full(q.shape, d > 0))
        ax.plot(np.where(d > 0, q, n_p + q), curve / factor, color=color, lw=lw, zorder=4)
        err = result.a_p_err if d > 0 else result.a_d_err
        a_text = "\\infty" if math.isinf(a) else _pm(a, err)
        nl_text = f"{nl:+.2f}".replace("-", "\u2212")
        labels.append(f"{'LTP' if d > 0 else 'LTD'} fit: $A_{sym} = {a_text}$ (NL {nl_text})")
        handles.append((Line2D([], [], ls="none", marker="o", ms=3, mew=0, color=color, alpha=max(alpha, 0.6)),
                        Line2D([], [], color=color, lw=lw)))
    ax.axvline(n_p, color="0.5", lw=0.6, ls=":", zorder=0)
    ax.axvspan(n_p, n_p + n_d, color="0.95", lw=0, zorder=-1)
    ax.set_xlim(0, n_p + n_d)
    lo, hi = (min(g.min(), result.g_min) / factor, max(g.max(), result.g_max) / factor)
    ax.set_ylim(lo - 0.04 * (hi - lo), hi + 0.14 * (hi - lo))  # headroom for the LTP/LTD tags
    text = dict(transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8, color="0.3")
    ax.text(n_p / 2, 0.98, "LTP", **text)
    ax.text(n_p + n_d / 2, 0.98, "LTD", **text)
    ax.set_xlabel("Pulse number")
    ax.set_ylabel("Conductance" + suffix)
    ax.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.6)},
              loc="lower left", bbox_to_anchor=(0, 1.01), ncols=1, frameon=False, borderaxespad=0,
              handlelength=2.4)
    return fig


def plot_fit(data, result, stem) -> list[Path]:
    """Plot the data and the fitted LTP/LTD curves against a cumulative pulse axis.

    LTP points sit at their pulse number (0..N_p), LTD points at ``N_p + q``;
    data are small translucent markers (more transparent with more cycles),
    fitted curves solid lines, one colour per direction; the legend gives A
    and the NeuroSim label of each branch. Paper style, Figure API.

    Args:
        data: the dict `devsim.fitting.read_pulse_csv` returns.
        result: the `devsim.fitting.FitResult` of that data.
        stem: output path without suffix.

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_fit_figure(data, result), stem)
