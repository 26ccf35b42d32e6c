"""The paper style every figure is drawn in, its colours, and saving a figure as PNG + PDF.

Figures are built with the object-oriented API (`matplotlib.figure.Figure`), so no
pyplot global state or backend switch is involved, and every file is written through
`devsim.io.atomic_path`, so a reader never sees a half-written PNG or PDF.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
from cycler import cycler

from devsim.io import atomic_path

__all__ = ["OKABE_ITO", "PAPER_STYLE", "BLUE", "RED", "GREY", "paper_style", "save_figure", "legend_above",
           "text_color"]

# Okabe-Ito colour-blind-safe palette.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

BLUE, RED, GREY = OKABE_ITO[0], OKABE_ITO[1], "#BBBBBB"
"""Right (blue), wrong (vermillion red) and everything else (grey) in the prediction figures."""

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


def legend_above(ax):
    """Legend above the axes (never covers data), in as many columns as fit one paper column."""
    lines = [t for t in ax.get_lines() if not t.get_label().startswith("_")]
    names = [_wrap(t.get_label()) for t in lines]  # a long device description on several lines, not off the page
    widths = [max(map(_visible_length, name.splitlines())) for name in names]
    ncols = next((n for n in range(len(names), 0, -1)
                  if sum(max(widths[i::n]) + 6 for i in range(n)) <= LEGEND_WIDTH), 1)
    return ax.legend(lines, names, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=ncols, frameon=False,
                     borderaxespad=0, columnspacing=1.2, handlelength=1.8)


LEGEND_WIDTH = 56
"""Characters of legend text that fit one paper column (with handles)."""


def _visible_length(text: str) -> int:
    """Characters a legend label shows: mathtext like ``$A_\\mathrm{p}$`` counts as its letters."""
    return len(re.sub(r"\$([^$]*)\$", lambda m: re.sub(r"\\mathrm|[{}_^\\]", "", m.group(1)), text))


def _wrap(label: str) -> str:
    """``label`` broken at spaces into lines that fit a paper column (mathtext never split)."""
    width = LEGEND_WIDTH - 8
    if _visible_length(label) <= width:
        return label
    lines, line = [], ""
    for word in label.split(" "):
        if line and _visible_length(f"{line} {word}") > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def _luminance(rgba):
    """Relative luminance (WCAG) of an RGB(A) colour."""
    c = np.asarray(matplotlib.colors.to_rgb(rgba))
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def text_color(rgba):
    """Black or white, whichever contrasts more with a cell colour (heatmaps, confusion matrices)."""
    return "black" if _luminance(rgba) > 0.179 else "white"
