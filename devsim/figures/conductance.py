"""Conductance against pulse number: a device's LTP/LTD cycle (conductance.png/pdf)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator

from devsim.figures.labels import MODEL_NAMES, device_label
from devsim.figures.style import legend_above, paper_style, save_figure

__all__ = ["plot_conductance", "plot_device_response"]


def _conductance_figure(responses, title=None, symmetry_point=None) -> Figure:
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
    if symmetry_point is not None and np.isfinite(symmetry_point) and 0.0 <= symmetry_point <= 1.0:
        ax.axhline(symmetry_point, color="0.35", lw=0.8, ls=(0, (1, 1.5)), zorder=0)
        ax.annotate(f"$g^*$ = {symmetry_point:.2f}", xy=(1.0, symmetry_point), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", ha="left", va="center", fontsize=7, color="0.3",
                    annotation_clip=False)
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
        legend_above(ax)
    if title:
        fig.suptitle(title, fontsize=matplotlib.rcParams["axes.titlesize"])
    return fig


def plot_conductance(responses, stem, title=None, symmetry_point=None) -> list[Path]:
    """Plot conductance against pulse number over a full LTP/LTD cycle.

    Args:
        responses: List of dicts {"label": str, "pulse": 1-D array, "g": 1-D array,
            "style": optional "solid" | "dashed"}. Each is a full cycle over pulses 0..2N:
            g rises over the first N pulses (LTP) and falls back over the next N (LTD).
            The turning point is the first response's argmax of g. Markers are drawn
            only for responses with <= 64 pulses per branch.
        stem: Output path without suffix; writes stem.png and stem.pdf.
        title: Optional axes title.
        symmetry_point: Optional conductance drawn as a dashed horizontal line (the first
            device's symmetry point, where one LTP and one LTD pulse are equal).

    Returns:
        The paths written, ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_conductance_figure(responses, title, symmetry_point), stem)


def _device_curves(device):
    """The responses `plot_device_response` draws: the device, then the linear device dashed."""
    pulse, g = device.response()
    curves = [{"label": device_label(device), "pulse": pulse, "g": g}]
    if not device.is_linear:
        p_lin, g_lin = device.linear_twin().response()
        curves.append({"label": MODEL_NAMES["linear"], "pulse": p_lin, "g": g_lin, "style": "dashed"})
    return curves


def plot_device_response(device, stem) -> list[Path]:
    """conductance.png/pdf: a device's noise-free LTP/LTD cycle, and the linear device dashed.

    The linear device has the device's levels with ``A_p = A_d = inf`` (the run's
    ``linear`` reference); it is left out when the device is linear itself.

    Args:
        device: a device model (`devsim.devices.Device`).
        stem: output path without suffix.

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    return plot_conductance(_device_curves(device), stem, symmetry_point=_symmetry_point(device))


def _symmetry_point(device):
    """The device's symmetry point when it has one on the device (`devsim.symmetry`), else None."""
    from devsim import symmetry

    try:
        g = symmetry.symmetry_point(device)
    except Exception:  # a device kind whose response cannot be probed: no line rather than no figure
        return None
    return float(g) if np.ndim(g) == 0 and np.isfinite(g) and 0.0 <= g <= 1.0 else None
