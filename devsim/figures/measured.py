"""The measured-device figure of `devsim fit --table` (measured.png/pdf).

Top: the measured ramps (translucent markers, one colour per direction), the
table device's simulated ramps over the same pulses (several seeds, with its
C2C noise) and the fitted exponential (dashed). Bottom: the goodness of fit,
`devsim.measured.goodness`: the mean one-pulse residual of each model against
the conductance before the pulse, with 3-standard-error bars.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from devsim import fitting
from devsim.figures.fit import _scale
from devsim.figures.style import OKABE_ITO, paper_style, save_figure

__all__ = ["plot_measured"]


def _measured_figure(data, table, fit, good, seeds=3):
    """Build the measured-device figure (call inside `plots.paper_style()`)."""
    pulse, conductance, direction, cycle, _ = fitting.pulse_arrays(data, table.source or "")
    n_p = int(pulse[direction > 0].max())
    n_d = int(pulse[direction < 0].max())
    factor, suffix = _scale(np.r_[conductance, table.g_min, table.g_max], fit.unit)
    span = table.g_max - table.g_min
    fig = Figure(figsize=(3.4, 4.6))
    ax, bx = fig.subplots(2, 1, height_ratios=(1.5, 1))
    lw = matplotlib.rcParams["lines.linewidth"]
    up = direction > 0
    n_cycles = np.unique(cycle).size
    alpha = float(np.clip(1.6 / (1 + n_cycles), 0.08, 0.9))
    x_axis = np.where(up, pulse, n_p + pulse)
    for d, color in ((1, OKABE_ITO[0]), (-1, OKABE_ITO[1])):
        sel = direction == d
        ax.plot(x_axis[sel], conductance[sel] / factor, ls="none", marker="o", ms=1.2 if sel.sum() > 2000 else 2,
                mew=0, color=color, alpha=alpha, zorder=2, rasterized=sel.sum() > 3000)
    # the table device over the same pulses: n_p LTP pulses from Gmin, then n_d LTD pulses
    events = np.r_[np.ones(n_p), -np.ones(n_d)]
    x_sim = np.arange(n_p + n_d + 1)
    for seed in range(seeds):
        g = np.r_[0.0, table.simulate(0.0, events, seed=seed)]
        ax.plot(x_sim, (table.g_min + span * g) / factor, color="0.15", lw=0.6 * lw, alpha=0.8, zorder=3)
    q_p, q_d = np.arange(n_p + 1), np.arange(n_d + 1)
    curve_p = fit.curve(q_p / (fit.states - 1), np.ones(q_p.size, bool))
    curve_d = fit.curve(q_d / (fit.states_ltd - 1), np.zeros(q_d.size, bool))
    ax.plot(q_p, curve_p / factor, color=OKABE_ITO[2], lw=lw, ls="--", zorder=4)
    ax.plot(n_p + q_d, curve_d / factor, color=OKABE_ITO[2], lw=lw, ls="--", zorder=4)
    ax.axvline(n_p, color="0.5", lw=0.6, ls=":", zorder=0)
    ax.set_xlim(0, n_p + n_d)
    ax.set_xlabel("Pulse number (LTP, then LTD)")
    ax.set_ylabel("Conductance" + suffix)
    handles = [Line2D([], [], ls="none", marker="o", ms=3, mew=0, color=OKABE_ITO[0]),
               Line2D([], [], ls="none", marker="o", ms=3, mew=0, color=OKABE_ITO[1]),
               Line2D([], [], color="0.15", lw=0.6 * lw),
               Line2D([], [], color=OKABE_ITO[2], lw=lw, ls="--")]
    labels = ["measured LTP", "measured LTD", f"table device ({seeds} seeds)", "fitted exponential"]
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=2, frameon=False, borderaxespad=0,
              fontsize=7, handlelength=1.8, columnspacing=1.0)
    # goodness of fit: mean one-pulse residual against G
    for (branch, entry), marker in zip(good["bias"].items(), ("o", "s")):
        g_axis = (table.g_min + span * np.asarray(entry["g"])) / factor
        se = np.asarray(entry["se"]) * 100
        color = OKABE_ITO[0] if branch == "ltp" else OKABE_ITO[1]
        bx.errorbar(g_axis, 100 * np.asarray(entry["exp"]), yerr=3 * se, color=color, marker=marker, ms=3, lw=lw,
                    capsize=1.5, label=f"{branch.upper()}, exponential")
        bx.plot(g_axis, 100 * np.asarray(entry["table"]), color=color, marker=marker, ms=3, mfc="white", lw=0.7 * lw,
                ls=":", label=f"{branch.upper()}, table")
    bx.axhline(0, color="0.5", lw=0.6, zorder=0)
    bx.set_xlabel("Conductance before the pulse" + suffix)
    bx.set_ylabel("Mean step residual\n(% of range)")
    bx.legend(fontsize=6.5, ncols=2, frameon=False, loc="best", handlelength=1.6, columnspacing=0.8)
    bx.set_title(f"rms {100 * good['rms_exp']:.2f} % (exponential), {100 * good['rms_table']:.2f} % (table): "
                 f"{'adequate' if good['adequate'] else 'inadequate'}", fontsize=6.5)
    return fig


def plot_measured(data, table, fit, good, stem) -> list:
    """``stem.png``/``.pdf``: measured ramps, the table device's simulated ramps over the same pulses
    (several seeds) and the fitted exponential; below, the mean one-pulse residual of each model
    against G with 3-SE bars (`goodness`). Paper style, atomic writes."""
    with paper_style():
        return save_figure(_measured_figure(data, table, fit, good), stem)
