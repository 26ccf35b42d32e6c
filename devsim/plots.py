"""Paper-ready figures: accuracy against epoch, conductance response (LTP/LTD),
parameter sweeps (curves, final accuracy against a parameter, heatmaps), predictions
and confusion matrices.

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
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, MaxNLocator, MultipleLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from devsim.io import atomic_path

__all__ = [
    "PAPER_STYLE", "OKABE_ITO", "PARAM_LABELS", "paper_style", "save_figure", "plot_accuracy", "plot_conductance",
    "plot_sweep_curves", "plot_final_vs_param", "plot_heatmap", "plot_vs_states", "plot_predictions",
    "plot_confusion", "classification_metrics", "parse_value", "param_label", "value_label",
]

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


# --------------------------------------------------------------------------------------
# Parameter sweeps
# --------------------------------------------------------------------------------------

PARAM_LABELS = {
    # RunConfig field -> (axis label with units, short symbol for legends "symbol = value")
    "ltp": (r"LTP curvature $A_\mathrm{p}$", r"$A_\mathrm{p}$"),
    "ltd": (r"LTD curvature $A_\mathrm{d}$", r"$A_\mathrm{d}$"),
    "nl_ltp": ("LTP nonlinearity (NL label)", r"NL$_\mathrm{LTP}$"),
    "nl_ltd": ("LTD nonlinearity (NL label)", r"NL$_\mathrm{LTD}$"),
    "states": ("Number of states", "states"),
    "states_ltd": ("Number of LTD states", "LTD states"),
    "on_off": (r"On/off ratio $G_\mathrm{max}/G_\mathrm{min}$", "on/off"),
    "c2c": ("Cycle-to-cycle σ (fraction of range)", "C2C σ"),
    "d2d": ("Device-to-device σ (NL label)", "D2D σ"),
    "d2d_range": ("Device-to-device range σ (relative)", "D2D range σ"),
    "stuck_gmin": (r"Devices stuck at $G_\mathrm{min}$ (fraction)", r"stuck at $G_\mathrm{min}$"),
    "stuck_gmax": (r"Devices stuck at $G_\mathrm{max}$ (fraction)", r"stuck at $G_\mathrm{max}$"),
    "read_noise": ("Read noise σ (relative)", "read σ"),
    "wmax": (r"Weight range $w_\mathrm{max}$", r"$w_\mathrm{max}$"),
    "max_pulses": ("Max. pulses per update", "max. pulses"),
    "lr": ("Learning rate", "lr"),
    "batch_size": ("Batch size", "batch"),
    "epochs": ("Epochs", "epochs"),
    "hidden": ("Hidden layer widths", "hidden"),
    "activation": ("Activation", "activation"),
    "optimizer": ("Optimizer", "optimizer"),
    "crop": ("Input crop (pixels)", "crop"),
    "device": ("Device", "device"),
    "mapping": ("Weight mapping", "mapping"),
    "update": ("Update", "update"),
    "pulses": ("Pulse rule", "pulses"),
    "init": ("Initial states", "init"),
    "dataset": ("Dataset", "dataset"),
    "seed": ("Seed", "seed"),
    "model": ("Model", "model"),
}
"""Axis label (with units where there are any) and legend symbol of each RunConfig field."""

MODEL_NAMES = {"device": "device", "linear": "linear device", "float": "float (ideal)"}

_CURVATURES = ("ltp", "ltd", "a_p", "a_d")  # log x axis when positive and spanning > a decade
_LINEAR_AT = {"ltp": math.inf, "ltd": math.inf, "a_p": math.inf, "a_d": math.inf, "nl_ltp": 0, "nl_ltd": 0}
_STANDARD_COLUMNS = {"run", "model", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                     "seconds", "status"}
_BLUE, _RED, _GREY = OKABE_ITO[0], OKABE_ITO[1], "#BBBBBB"
_VALUE_COLORS = OKABE_ITO[:6]  # without yellow (poor on white) and black (kept for the linear device)
_MARKERS = "osD^vP<>X*"
_REFERENCE_STYLES = {"float": ("0.55", ".", (0, (5, 2))), "linear": ("0.2", "x", ":")}  # colour, marker, dashes
_MINUS = "\u2212"


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


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _sort_key(v):
    """Numbers ascending (inf last), then text; None at the very end."""
    if _is_number(v):
        return (0, float(v), "")
    return (2, 0.0, "") if v is None else (1, 0.0, str(v))


def format_value(v) -> str:
    """Tick/legend text of a parameter value: "0.5", "64", "∞", "−0.8"."""
    if v is None:
        return "none"
    if _is_number(v):
        if math.isinf(v):
            return "∞" if v > 0 else _MINUS + "∞"
        return f"{v:g}".replace("-", _MINUS)
    return str(v)


def _tied_to(param, ties):
    """The fields tied to `param` (they take its value), e.g. ["ltd"] for ties {"ltd": "ltp"}."""
    return [field for field, source in (ties or {}).items() if source == param]


def param_label(param, ties=None) -> str:
    """Axis label of a swept parameter, e.g. "LTP curvature $A_\\mathrm{p}$", "Number of states".

    With `ties` ({field: source}, fields that take another's value), the tied symbols are
    added: "LTP curvature $A_\\mathrm{p}$ = $A_\\mathrm{d}$".
    """
    label = PARAM_LABELS.get(param, (param.replace("_", " ").capitalize(), param))[0]
    return " = ".join([label] + [param_symbol(f) for f in _tied_to(param, ties)])


def param_symbol(param, ties=None) -> str:
    """Legend symbol of a parameter, e.g. "$A_\\mathrm{p}$" (with ties: "$A_\\mathrm{p}$ = $A_\\mathrm{d}$")."""
    symbol = PARAM_LABELS.get(param, (None, param.replace("_", " ")))[1]
    return " = ".join([symbol] + [param_symbol(f) for f in _tied_to(param, ties)])


def value_label(param, v, ties=None) -> str:
    """Legend text of one value, e.g. "$A_\\mathrm{p}$ = 0.5" or "$A_\\mathrm{p}$ = ∞ (linear)"."""
    if param == "model":
        return MODEL_NAMES.get(v, str(v))
    return f"{param_symbol(param, ties)} = {_compact_label(param, v)}"


def _compact_label(param, v) -> str:
    """Legend text of a value when the parameter is named in the legend title: "0.5", "∞ (linear)"."""
    if param == "model":
        return MODEL_NAMES.get(v, str(v))
    text = format_value(v)
    if param in _LINEAR_AT and _is_number(v) and v == _LINEAR_AT[param]:
        text += " (linear)"
    return text


def _param_names(rows):
    """The parameter columns of summary rows: everything but the standard and pulse columns."""
    names = {}
    for row in rows:
        names.update(dict.fromkeys(k for k in row if k not in _STANDARD_COLUMNS and not k.startswith("pulses_")))
    return list(names)


def _runs(rows, model, params=None, what="plot"):
    """Per run of one model: {"params": {p: value}, "acc": {epoch: test accuracy}, "status"}.

    Rows with status "failed" are dropped, as are runs without any test accuracy. With
    ``model=None`` every model of every run is one entry, with "model" as a parameter.
    """
    rows = list(rows)
    params = _param_names(rows) if params is None else [p for p in params if p != "model"]
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
        epoch, acc = _num(row.get("epoch")), _num(row.get("test_accuracy"))
        if epoch is not None and acc is not None:
            run["acc"][int(epoch)] = acc
    runs = {k: r for k, r in runs.items() if r["acc"]}
    if not runs:
        raise ValueError(f"{what}: no test accuracies for model {model!r} (failed runs are skipped)")
    return runs, params + (["model"] if model is None else [])


def _metric(run, metric):
    if metric == "final":
        return run["acc"][max(run["acc"])]
    if metric == "best":
        return max(run["acc"].values())
    raise ValueError(f"metric: must be 'final' or 'best', got {metric!r}")


def _check_param(params, name, what):
    if name not in params:
        raise ValueError(f"{what}: no parameter column {name!r} (have: {', '.join(params) or 'none'})")


def _pooled(runs, keep, params, ties=None):
    """What a mean pools over besides the parameters kept: "3 seeds × 4 values of $A_\\mathrm{d}$"."""
    parts = []
    for p in sorted(params, key=lambda p: p != "seed"):
        if p in keep or p in (ties or {}):
            continue
        n = len({r["params"][p] for r in runs.values()})
        if n > 1:
            parts.append(f"{n} seeds" if p == "seed" else f"{n} values of {param_symbol(p, ties)}")
    return " × ".join(parts)


def _counts_note(counts, unit="point"):
    """["2–3 runs per point"] when groups hold different numbers of runs (e.g. a failed seed), else []."""
    counts = list(counts)
    if counts and min(counts) != max(counts):
        return [f"{min(counts)}–{max(counts)} runs per {unit}"]
    return []


def _enlarge_inf(labels):
    """The "∞" glyph is small next to digits: give its tick label a larger size."""
    for t in labels:
        if t.get_text() == "∞":
            t.set_fontsize(t.get_fontsize() * 1.2)


def _is_linear_value(param, v):
    """True for the value of a parameter that makes the device linear (A = ∞, NL = 0)."""
    if param in _LINEAR_AT:
        return _is_number(v) and v == _LINEAR_AT[param]
    return _is_number(v) and v == math.inf


def _value_styles(values, param=None):
    """Colour and marker per value: Okabe-Ito (viridis beyond 6), black for the linear device (A = ∞, NL = 0)."""
    finite = [v for v in values if not _is_linear_value(param, v)]
    if len(finite) <= len(_VALUE_COLORS):
        colors = _VALUE_COLORS[:len(finite)]
    else:
        colors = [matplotlib.colormaps["viridis"](t) for t in np.linspace(0, 0.88, len(finite))]
    styles, k = {}, 0
    for i, v in enumerate(values):
        if _is_linear_value(param, v):
            styles[v] = ("#000000", _MARKERS[i % len(_MARKERS)])
        else:
            styles[v] = (colors[k], _MARKERS[i % len(_MARKERS)])
            k += 1
    return styles


def _renderer(fig):
    """A renderer to measure text with (attaches an Agg canvas to a bare `Figure`)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _wrap(fig, parts, room, fontsize):
    """Join phrases with "; ", starting a new line where the next phrase would pass `room` pixels."""
    parts = [parts] if isinstance(parts, str) else list(parts or ())
    renderer = _renderer(fig)
    lines = []
    for part in parts:
        if lines:
            probe = fig.text(0, 0, lines[-1] + "; " + part, fontsize=fontsize)
            fits = probe.get_window_extent(renderer).width <= room
            probe.remove()
            if fits:
                lines[-1] += "; " + part
                continue
            lines[-1] += ";"
        lines.append(part)
    return "\n".join(lines) or None


def _legend_top(ax, handles, title=(), compact=None, compact_title=()):
    """Legend above the axes (never over data), in as many columns as fit the figure width.

    `title` is a list of phrases, joined by "; " and wrapped between phrases to fit. If
    the labels need more than two rows and `compact` labels are given, those are used
    instead, with `compact_title` (e.g. the values alone, with the parameter in the title).
    """
    fig = ax.figure
    renderer = _renderer(fig)
    room = (fig.get_figwidth() - 0.62) * fig.dpi  # the axes start about 0.6 in from the left edge

    def make(labels, ncols, title=None):
        legend = ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0, 1.02), ncols=ncols,
                           frameon=False, borderaxespad=0, columnspacing=1.2, handlelength=1.8, title=title,
                           alignment="left", title_fontproperties={"size": matplotlib.rcParams["legend.fontsize"]})
        if title:
            legend.get_title().set_color("0.3")
        return legend

    def fit(labels):
        for ncols in range(len(labels), 0, -1):
            legend = make(labels, ncols)
            width = legend.get_window_extent(renderer).width
            legend.remove()
            if width <= room or ncols == 1:
                return ncols

    def wrap(parts):
        return _wrap(fig, parts, room, matplotlib.rcParams["legend.fontsize"])

    labels = [h.get_label() for h in handles]
    ncols = fit(labels)
    if math.ceil(len(labels) / ncols) > 2 and compact:
        labels, title = list(compact), compact_title
        ncols = fit(labels)
    return make(labels, ncols, wrap(title))


def _accuracy_ylim(ax, values):
    """Zoom to high accuracies (0.05 steps), else the full 0..1."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if values and min(values) >= 0.5:
        lo = max(0.0, round(math.floor((min(values) - 0.01) / 0.05) * 0.05, 2))
        hi = min(1.0, round(math.ceil((max(values) + 0.005) / 0.05) * 0.05, 2))
        ax.set_ylim(lo, max(hi, lo + 0.05))
    else:
        ax.set_ylim(0, 1)


def _sweep_curves_figure(rows, param, model="device", band="minmax", params=None, ties=None, labels=None) -> Figure:
    """Build the sweep-curves figure (call inside `paper_style()`). See plot_sweep_curves."""
    if band not in ("minmax", "std"):
        raise ValueError(f"band: must be 'minmax' or 'std', got {band!r}")
    runs, params = _runs(rows, model, params, "plot_sweep_curves")
    _check_param(params, param, "plot_sweep_curves")
    values = sorted({r["params"][param] for r in runs.values()}, key=_sort_key)
    if param == "model":
        values.sort(key=lambda v: list(MODEL_NAMES).index(v) if v in MODEL_NAMES else len(MODEL_NAMES))
    styles = _value_styles(values, param)
    labels = labels or {}
    fig = Figure()
    ax = fig.add_subplot()
    handles, shown, banded = [], [], False
    for v in values:
        color, marker = styles[v]
        mine = [r for r in runs.values() if r["params"][param] == v]
        epochs = sorted(set().union(*(r["acc"] for r in mine)))
        acc = [_seed_means((r["params"].get("seed"), r["acc"][e]) for r in mine if e in r["acc"]) for e in epochs]
        mean = np.array([a.mean() for a in acc])
        if band == "std":
            lo = mean - np.array([a.std(ddof=1) if len(a) > 1 else 0.0 for a in acc])
            hi = 2 * mean - lo
        else:
            lo, hi = np.array([a.min() for a in acc]), np.array([a.max() for a in acc])
        if max(map(len, acc)) > 1:
            ax.fill_between(epochs, lo, hi, color=color, alpha=0.14, lw=0)
            banded = True
        (line,) = ax.plot(epochs, mean, color=color, marker=marker, markevery=max(1, len(epochs) // 10),
                          label=labels.get(v, value_label(param, v, ties)), zorder=3)
        handles.append(line)
        shown += [*lo, *hi, *mean]
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Test accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    _accuracy_ylim(ax, shown)
    pooled = _pooled(runs, {param}, params, ties)
    counts = [sum(r["params"][param] == v for r in runs.values()) for v in values]
    title = [f"mean over {pooled}" if pooled else "one run per value", *_counts_note(counts, "line")]
    if banded:
        title.append("band: " + ("min–max" if band == "minmax" else "mean ± s.d.") + " over seeds")
    if model not in ("device", None):
        title[0] = f"{MODEL_NAMES.get(model, model)}: {title[0]}"
    _legend_top(ax, handles, title=[title[0][0].upper() + title[0][1:], *title[1:]],
                compact=None if param == "model" else [labels.get(v, _compact_label(param, v)) for v in values],
                compact_title=[f"{param_symbol(param, ties)}: {title[0]}", *title[1:]])
    return fig


def plot_sweep_curves(rows, param, stem, model="device", band="minmax", params=None, ties=None,
                      labels=None) -> list[Path]:
    """Test accuracy against epoch, one colour per value of a swept parameter.

    Each line is the mean over every run with that value (over seeds and over any other
    swept parameter: the legend title says which). The band spans the seeds: each seed's
    mean over the other pooled parameters, min..max (``band="minmax"``) or mean ± s.d.
    (``band="std"``), so it shows seed-to-seed variation, not the spread over the other
    parameters. A single seed gives no band.

    Args:
        rows: summary.csv rows (dicts; values may be strings) with columns run, the
            parameters, model, epoch, test_accuracy and status. Failed runs are skipped.
        param: the swept parameter, e.g. "ltp".
        stem: output path without suffix.
        model: which model's curves ("device", "linear" or "float"); None with
            ``param="model"`` draws one colour per model (e.g. a sweep of seeds only).
        band: "minmax" or "std".
        params: the parameter columns (default: every non-standard column).
        ties: {field: source} of fields that take another swept field's value (e.g.
            {"ltd": "ltp"}, symmetric devices): legends read "A_p = A_d = 0.5".
        labels: optional {value: legend label}.

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_sweep_curves_figure(rows, param, model, band, params, ties, labels), stem)


def _x_layout(x, values, log2=False):
    """Axis scale and the position of each value: (scale, {value: position}, inf position or None)."""
    numeric = all(_is_number(v) for v in values) and not any(_is_number(v) and v == -math.inf for v in values)
    if not numeric:
        return "categorical", {v: float(i) for i, v in enumerate(values)}, None
    finite = [float(v) for v in values if math.isfinite(v)]
    has_inf = len(finite) < len(values)
    if log2 and finite and min(finite) > 0:
        scale = "log2"
    elif finite and min(finite) > 0 and max(finite) / min(finite) > 10 and (x in _CURVATURES or _geometric(finite)):
        scale = "log"
    else:
        scale = "linear"
    pos = {v: float(v) for v in values if math.isfinite(v)}
    x_inf = None
    if has_inf:
        if not finite:
            x_inf = 1.0
        elif scale in ("log", "log2"):
            base = 2.0 if scale == "log2" else 10.0
            decades = math.log(max(finite) / min(finite), base)
            x_inf = max(finite) * base ** max(0.6 if base == 10 else 1.0, 0.22 * decades)
        else:
            span = max(finite) - min(finite) or abs(max(finite)) or 1.0
            x_inf = max(finite) + 0.25 * span
        pos.update({v: x_inf for v in values if not math.isfinite(v)})
    return scale, pos, x_inf


def _geometric(values):
    """True when positive values look log-spaced (0.001, 0.01, 0.1) rather than evenly spaced."""
    v = np.sort(np.asarray(values, float))
    if len(v) < 3:
        return v[-1] / v[0] >= 100
    lin, log = np.diff(v), np.diff(np.log(v))
    return float(np.std(log) / np.mean(log)) < float(np.std(lin) / np.mean(lin))


def _dodge(scale, positions, i, k, span):
    """Shift line i of k sideways a little so that error bars do not hide each other."""
    if k < 2:
        return positions
    off = 0.015 * span * (i - (k - 1) / 2)
    if scale == "categorical":
        return [p + min(0.08, 0.5 / k) * (i - (k - 1) / 2) for p in positions]
    if scale in ("log", "log2"):
        return [p * 10 ** off for p in positions]
    return [p + off for p in positions]


def _break_marks(ax, scale, last, x_inf):
    """Broken-axis marks on the x axis between the last finite value and the ∞ position."""
    if scale in ("log", "log2"):
        mid = math.sqrt(last * x_inf)
        pair = [mid / (x_inf / last) ** 0.07, mid * (x_inf / last) ** 0.07]
    else:
        mid = (last + x_inf) / 2
        pair = [mid - 0.07 * (x_inf - last), mid + 0.07 * (x_inf - last)]
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot(pair, [0, 0], transform=trans, color="white", lw=2.5, clip_on=False, zorder=5, solid_capstyle="butt")
    ax.plot(pair, [0, 0], transform=trans, ls="", marker=[(-1, -2.2), (1, 2.2)], markersize=5, mew=0.8,
            color="black", clip_on=False, zorder=6)


def _seed_means(items):
    """Per-seed means of ``(seed, value)`` pairs, in seed order: what a band or error bar spans.

    Averaging over the other pooled parameters first keeps their effect (e.g. the spread
    over A_d) out of the band, which then shows the seed-to-seed variation of the mean.
    """
    by_seed = {}
    for seed, value in items:
        by_seed.setdefault(seed, []).append(value)
    return np.array([np.mean(by_seed[k]) for k in sorted(by_seed, key=_sort_key)])


def _group_means(runs, x, line, metric):
    """{line value: {x value: per-seed means of the metric}} and {(line value, x value): runs}."""
    groups, counts = {}, {}
    for r in runs.values():
        key = r["params"][line] if line else None
        item = (r["params"].get("seed"), _metric(r, metric))
        groups.setdefault(key, {}).setdefault(r["params"][x], []).append(item)
        counts[key, r["params"][x]] = counts.get((key, r["params"][x]), 0) + 1
    return {k: {v: _seed_means(a) for v, a in g.items()} for k, g in groups.items()}, counts


def _final_vs_param_figure(rows, x, line=None, metric="final", model="device", params=None,
                           references=("float",), log2=False, ties=None) -> Figure:
    """Build the final-accuracy-against-parameter figure (in `paper_style()`). See plot_final_vs_param."""
    what = "plot_vs_states" if log2 else "plot_final_vs_param"
    runs, params = _runs(rows, model, params, what)
    _check_param(params, x, what)
    if line is not None:
        _check_param(params, line, what)
        if line == x:
            raise ValueError(f"{what}: line must differ from x ({x!r})")
    _metric(next(iter(runs.values())), metric)  # validates metric
    groups, counts = _group_means(runs, x, line, metric)
    ref_groups = {}
    for ref in references or ():
        if ref != model and any(str(r.get("model")) == ref for r in rows):
            try:
                ref_runs, _ = _runs(rows, ref, params, what)
            except ValueError:
                continue
            ref_groups[ref] = _group_means(ref_runs, x, None, metric)[0][None]
    all_x = sorted({v for g in [*groups.values(), *ref_groups.values()] for v in g}, key=_sort_key)
    scale, pos, x_inf = _x_layout(x, all_x, log2)
    fig = Figure()
    ax = fig.add_subplot()
    if scale in ("log", "log2"):
        ax.set_xscale("log", base=2 if scale == "log2" else 10)
    finite_pos = [p for v, p in pos.items() if p != x_inf]
    span_pts = [*finite_pos] + ([x_inf] if x_inf is not None else [])
    if scale in ("log", "log2"):
        span = math.log10(max(span_pts) / min(span_pts)) if len(span_pts) > 1 else 1.0
    else:
        span = (max(span_pts) - min(span_pts)) if len(span_pts) > 1 else 1.0
    line_values = sorted(groups, key=_sort_key)
    styles = _value_styles(line_values, line) if line else {None: (_BLUE, "o")}
    handles, shown = [], []

    def draw(g, i, k, color, marker, label, errors=True, **kw):
        xs = [v for v in sorted(g, key=_sort_key)]
        mean = np.array([g[v].mean() for v in xs])
        err = np.array([g[v].std(ddof=1) if len(g[v]) > 1 else 0.0 for v in xs]) if errors else None
        p = _dodge(scale, [pos[v] for v in xs], i, k, span)
        fin = [j for j, v in enumerate(xs) if pos[v] != x_inf]
        inf = [j for j, v in enumerate(xs) if pos[v] == x_inf]
        style = dict(color=color, marker=marker, capsize=2, elinewidth=0.8, capthick=0.8, **kw)
        if scale == "categorical":
            style["ls"] = "none"  # categories have no order to draw a line through
        h = None
        if fin:
            h = ax.errorbar([p[j] for j in fin], mean[fin], yerr=None if err is None else err[fin], **style)
        if inf:
            hi = ax.errorbar([p[j] for j in inf], mean[inf], yerr=None if err is None else err[inf],
                             **{**style, "ls": "none"})
            h = h or hi
        h.set_label(label)
        shown.extend(mean - (err if err is not None else 0))
        shown.extend(mean + (err if err is not None else 0))
        return h

    for i, lv in enumerate(line_values):
        color, marker = styles[lv]
        label = value_label(line, lv, ties) if line else MODEL_NAMES.get(model, model)
        handles.append(draw(groups[lv], i, len(line_values), color, marker, label, zorder=3))
    for ref, g in ref_groups.items():
        color, marker, ls = _REFERENCE_STYLES.get(ref, ("0.45", ".", "-."))
        handles.append(draw(g, 0, 1, color, marker, MODEL_NAMES.get(ref, ref), errors=False, ls=ls, lw=1.0,
                            markersize=3, zorder=2))
    # x axis: ticks at the swept values, "∞" at the right end behind a break.
    ticks = [p for v, p in pos.items() if p != x_inf]
    labels = [format_value(v) for v, p in pos.items() if p != x_inf]
    if x_inf is not None:
        ticks.append(x_inf)
        labels.append("∞")
    order = np.argsort(ticks)
    ax.xaxis.set_major_locator(FixedLocator([ticks[j] for j in order]))
    _enlarge_inf(ax.set_xticklabels([labels[j] for j in order]))
    ax.xaxis.set_minor_locator(NullLocator())
    if scale == "categorical":
        ax.set_xlim(-0.5, len(all_x) - 0.5)
    elif len(span_pts) > 1:
        lo, hi = min(span_pts), max(span_pts)
        if scale in ("log", "log2"):
            pad = (hi / lo) ** 0.06
            ax.set_xlim(lo / pad, hi * pad)
        else:
            pad = 0.06 * (hi - lo)
            ax.set_xlim(lo - pad, hi + pad)
    if x_inf is not None and finite_pos:
        _break_marks(ax, scale, max(finite_pos), x_inf)
    ax.set_xlabel(param_label(x, ties))
    ax.set_ylabel(f"{'Final' if metric == 'final' else 'Best'} test accuracy")
    _accuracy_ylim(ax, shown)
    keep = {x, line} if line else {x}
    pooled = _pooled(runs, keep, params, ties)
    seeds = max(len(a) for g in groups.values() for a in g.values())
    if not pooled:
        title = ["one run per point"]
    elif pooled == f"{seeds} seeds":
        title = [f"mean ± s.d. over {pooled}"]
    else:
        title = [f"mean over {pooled}"] + (["error bars: s.d. over seeds"] if seeds > 1 else [])
    title[1:1] = _counts_note(counts.values())
    if model != "device":
        title[0] = f"{MODEL_NAMES.get(model, model)}: {title[0]}"
    compact = None
    if line:
        compact = [_compact_label(line, v) for v in line_values] + [h.get_label() for h in handles[len(line_values):]]
    _legend_top(ax, handles, title=[title[0][0].upper() + title[0][1:], *title[1:]], compact=compact,
                compact_title=[f"{param_symbol(line, ties)}: {title[0]}", *title[1:]] if line else None)
    return fig


def plot_final_vs_param(rows, x, stem, line=None, metric="final", model="device", params=None,
                        references=("float",), ties=None) -> list[Path]:
    """Final (last-epoch) or best test accuracy against a swept parameter.

    Points are the mean over seeds (and any other swept parameter not shown) with
    error bars of one standard deviation over the seeds (sample s.d. of each seed's mean
    over the other pooled parameters; none for a single seed); one line per
    value of `line`, shifted sideways by a hair so error bars do not hide each other. A
    positive curvature (ltp, ltd) spanning more than a decade gets a log x axis, as do other
    positive parameters spanning more than a decade in log-spaced steps (e.g. the learning
    rate); an infinite value (the linear device) is a separate point at the right end,
    labelled "∞" behind a broken-axis mark. Text values (e.g. presets) are categories in
    sorted order. Reference models (default: the float network) are drawn as grey dashed
    or dotted lines, means only.

    Args:
        rows: summary.csv rows (see plot_sweep_curves).
        x: the parameter on the x axis, e.g. "ltp".
        stem: output path without suffix.
        line: optional second parameter, one line per value.
        metric: "final" (last epoch) or "best" (best epoch).
        model: the model plotted ("device", "linear", "float").
        params: the parameter columns (default: every non-standard column).
        references: reference models to add (those absent from rows are skipped).
        ties: {field: source} of tied fields (see plot_sweep_curves).

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_final_vs_param_figure(rows, x, line, metric, model, params, references, ties=ties), stem)


def _vs_states_figure(rows, line=None, metric="final", model="device", params=None,
                      references=("linear", "float"), param="states", ties=None) -> Figure:
    """Build the accuracy-against-number-of-states figure (in `paper_style()`). See plot_vs_states."""
    fig = _final_vs_param_figure(rows, param, line, metric, model, params, references, log2=True, ties=ties)
    return fig


def plot_vs_states(rows, stem, line=None, metric="final", model="device", params=None,
                   references=("linear", "float"), param="states", ties=None) -> list[Path]:
    """Final or best test accuracy against the number of states (log2 x axis, ticks at the values).

    Same as `plot_final_vs_param` with ``x="states"`` (or ``param``, e.g. "states_ltd"),
    with the linear device of the same number of states and the float network as
    grey dashed references.
    """
    with paper_style():
        return save_figure(_vs_states_figure(rows, line, metric, model, params, references, param, ties), stem)


def _luminance(rgba):
    """Relative luminance (WCAG) of an RGB(A) colour."""
    c = np.asarray(matplotlib.colors.to_rgb(rgba))
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def _text_color(rgba):
    """Black or white, whichever contrasts more with a cell colour."""
    return "black" if _luminance(rgba) > 0.179 else "white"


def _heatmap_figure(rows, x, y, metric="final", model="device", params=None, cmap="viridis", ties=None) -> Figure:
    """Build the heatmap figure (call inside `paper_style()`). See plot_heatmap."""
    runs, params = _runs(rows, model, params, "plot_heatmap")
    _check_param(params, x, "plot_heatmap")
    _check_param(params, y, "plot_heatmap")
    if cmap not in ("viridis", "cividis"):
        raise ValueError(f"cmap: use a colour-blind-safe sequential map, 'viridis' or 'cividis', got {cmap!r}")
    xs = sorted({r["params"][x] for r in runs.values()}, key=_sort_key)
    ys = sorted({r["params"][y] for r in runs.values()}, key=_sort_key)
    cells = {}
    for r in runs.values():
        cells.setdefault((r["params"][y], r["params"][x]), []).append(_metric(r, metric))
    mean = np.full((len(ys), len(xs)), np.nan)
    for (vy, vx), a in cells.items():
        mean[ys.index(vy), xs.index(vx)] = np.mean(a)
    fig = Figure(figsize=(3.4, 2.9))
    ax = fig.add_subplot()
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="0.92")
    finite = mean[np.isfinite(mean)]
    vmin, vmax = float(finite.min()), float(finite.max())
    if vmax - vmin < 0.01:
        vmin, vmax = vmin - 0.005, vmax + 0.005
    im = ax.imshow(np.ma.masked_invalid(mean), origin="lower", cmap=colormap, vmin=vmin, vmax=vmax,
                   aspect="auto", interpolation="nearest")
    size = 7 if max(len(xs), len(ys)) <= 6 else 6 if max(len(xs), len(ys)) <= 9 else 5
    for i in range(len(ys)):
        for j in range(len(xs)):
            m = mean[i, j]
            if math.isfinite(m):
                ax.text(j, i, f"{m:.2f}", ha="center", va="center", fontsize=size,
                        color=_text_color(colormap(im.norm(m))))
            else:
                ax.text(j, i, "–", ha="center", va="center", fontsize=size, color="0.4")
    ax.set_xticks(range(len(xs)), [format_value(v) for v in xs])
    ax.set_yticks(range(len(ys)), [format_value(v) for v in ys])
    _enlarge_inf(ax.get_xticklabels() + ax.get_yticklabels())
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel(param_label(x))
    ax.set_ylabel(param_label(y))
    cbar = fig.colorbar(im, ax=ax, label="Test accuracy", shrink=1.0, aspect=25, pad=0.03)
    cbar.outline.set_visible(False)
    cbar.ax.tick_params(labelsize=7)
    pooled = _pooled(runs, {x, y}, params, ties)
    what = "Final" if metric == "final" else "Best"
    name = "" if model == "device" else f"{MODEL_NAMES.get(model, model)}: "
    title = [f"{name}{what} test accuracy, mean over {pooled}" if pooled else f"{name}{what} test accuracy",
             *_counts_note([len(a) for a in cells.values()], "cell")]
    ax.set_title(_wrap(fig, title, (fig.get_figwidth() - 0.8) * fig.dpi, matplotlib.rcParams["legend.fontsize"]),
                 fontsize=matplotlib.rcParams["legend.fontsize"], color="0.3", loc="left")
    return fig


def plot_heatmap(rows, x, y, stem, metric="final", model="device", params=None, cmap="viridis",
                 ties=None) -> list[Path]:
    """Heatmap of the mean final (or best) test accuracy over two swept parameters.

    Every cell prints its mean (2 decimals, black or white for contrast); cells without
    runs are light grey with "–". Axes are categorical, in sorted order with infinity last
    ("∞"); y grows upwards. The colour map is a colour-blind-safe sequential one
    ("viridis" or "cividis") scaled to the data; the colour bar is labelled "Test accuracy".

    Args:
        rows: summary.csv rows (see plot_sweep_curves).
        x, y: the parameters on the axes, e.g. "ltp" and "ltd".
        stem: output path without suffix.
        metric: "final" or "best".
        model: the model plotted.

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_heatmap_figure(rows, x, y, metric, model, params, cmap, ties), stem)


# --------------------------------------------------------------------------------------
# Predictions and confusion matrix
# --------------------------------------------------------------------------------------

def classification_metrics(y_true, y_pred, num_classes=None) -> dict:
    """Confusion matrix and per-class precision, recall and F1, in numpy.

    Args:
        y_true, y_pred: integer class labels of equal length.
        num_classes: number of classes (default: the largest label + 1).

    Returns:
        A dict with ``confusion`` (k x k int array, rows = true class, columns =
        predicted class), ``precision``, ``recall``, ``f1`` and ``support`` (true count) per
        class, ``accuracy``, and ``macro_precision``/``macro_recall``/``macro_f1`` (means
        over the classes where defined). Undefined ratios (0/0: a class never predicted, or
        absent) are NaN; ``f1 = 2 TP / (2 TP + FP + FN)``, 0 when TP = 0 but the class occurs.
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({len(y_true)} and {len(y_pred)})")
    if len(y_true) and min(y_true.min(), y_pred.min()) < 0:
        raise ValueError("class labels must be >= 0")
    k = int(num_classes) if num_classes else int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    if len(y_true) and max(y_true.max(), y_pred.max()) >= k:
        raise ValueError(f"class labels must be < num_classes = {k}")
    cm = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    predicted, actual = cm.sum(axis=0).astype(float), cm.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(actual > 0, tp / actual, np.nan)
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), np.nan)
    n = int(cm.sum())

    def mean(a):
        return float(np.mean(a[np.isfinite(a)])) if np.isfinite(a).any() else math.nan

    return {"confusion": cm, "precision": precision, "recall": recall, "f1": f1, "support": cm.sum(axis=1),
            "accuracy": float(tp.sum() / n) if n else math.nan, "n": n,
            "macro_precision": mean(precision), "macro_recall": mean(recall), "macro_f1": mean(f1)}


def _display_image(image):
    """An image as imshow wants it: 2-D grey or RGB in [0, 1] (CIFAR's [-1, 1] is mapped back)."""
    img = np.asarray(image, dtype=float)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 1:
        side = int(round(math.sqrt(img.size)))
        img = img.reshape(side, side) if side * side == img.size else img[None, :]
    if img.min() < 0:
        img = (img + 1) / 2
    elif img.max() > 1:
        img = img / 255
    return np.clip(img, 0, 1)


def _predictions_figure(images, labels, probabilities, n=16, class_names=None, title=None, cols=4) -> Figure:
    """Build the predictions figure (call inside `paper_style()`). See plot_predictions."""
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64).ravel()
    probs = np.asarray(probabilities, dtype=float)
    if probs.ndim != 2 or len(probs) != len(labels) or len(images) != len(labels):
        raise ValueError(f"plot_predictions: images ({len(images)}), labels ({len(labels)}) and probabilities "
                         f"{probs.shape} must have the same length, probabilities one row of class probabilities each")
    n = min(int(n), len(labels))
    if n < 1:
        raise ValueError("plot_predictions: no images")
    k = probs.shape[1]
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_predictions: {len(names)} class names for {k} classes")
    short = all(len(c) <= 2 for c in names)
    texts = []
    for i in range(n):
        pred, true = int(np.argmax(probs[i])), int(labels[i])
        text = f"{names[pred]} {100 * probs[i, pred]:.0f}%"
        if pred != true:
            text += ("\n" if len(text) + len(names[true]) > 14 else " ") + f"(true {names[true]})"
        texts.append(text)
    lines = max(t.count("\n") + 1 for t in texts)
    cols = min(cols, n)
    nrows = math.ceil(n / cols)
    # Geometry in inches: square image cells, bar charts beside them, a gap for titles and tick labels.
    width, left, right, wspace, ratio = 7.0, 0.08, 0.08, 0.12, 1.2
    ncell = 2 * cols
    avg = (width - left - right) / (ncell + (ncell - 1) * wspace)
    cell = avg * ncell / (cols * (1 + ratio))  # image width = row height
    gap = 0.2 + 0.13 * lines  # bar tick labels below a row, the next row's title above it
    top_in = (0.32 if title else 0.06) + 0.13 * lines
    bottom_in = 0.22 + (0.38 if short else 0.52)
    height = top_in + nrows * cell + (nrows - 1) * gap + bottom_in
    fig = Figure(figsize=(width, height))
    fig.set_layout_engine("none")
    gs = fig.add_gridspec(nrows, ncell, width_ratios=[1, ratio] * cols, left=left / width, right=1 - right / width,
                          top=1 - top_in / height, bottom=bottom_in / height, wspace=wspace, hspace=gap / cell)
    small = 6.5
    for i in range(n):
        r, c = divmod(i, cols)
        ax_img = fig.add_subplot(gs[r, 2 * c])
        ax_bar = fig.add_subplot(gs[r, 2 * c + 1])
        img = _display_image(images[i])
        ax_img.imshow(img, cmap="binary" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.grid(False)
        for spine in ax_img.spines.values():
            spine.set_visible(True)
            spine.set_color("0.7")
            spine.set_linewidth(0.5)
        ax_img.apply_aspect()  # bars exactly as tall as the (square) image
        box, bar_box = ax_img.get_position(), ax_bar.get_position()
        ax_bar.set_position([bar_box.x0, box.y0, bar_box.width, box.height])
        pred, true = int(np.argmax(probs[i])), int(labels[i])
        ok = pred == true
        color = _BLUE if ok else _RED
        ax_img.text(0, 1.04, texts[i], transform=ax_img.transAxes, ha="left", va="bottom", fontsize=small + 0.5,
                    color=color, fontweight="normal" if ok else "bold", linespacing=1.0)
        bars = ax_bar.bar(range(k), probs[i], color=_GREY, width=0.75)
        bars[pred].set_color(color)
        bars[true].set_color(_BLUE)
        mark = blended_transform_factory(ax_bar.transData, ax_bar.transAxes)
        ax_bar.plot([true], [-0.075], transform=mark, marker="^", color=_BLUE, markersize=3, clip_on=False,
                    ls="none")
        ax_bar.set_ylim(0, 1)
        ax_bar.set_xlim(-0.6, k - 0.4)
        ax_bar.set_xticks(range(k), [str(j) for j in range(k)] if k <= 10 else [])
        ax_bar.tick_params(axis="x", labelsize=5, length=0, pad=6)
        ax_bar.get_xticklabels()[true].set_color(_BLUE) if k <= 10 else None
        ax_bar.set_yticks([0, 0.5, 1], [])
        ax_bar.tick_params(axis="y", length=1.5)
        ax_bar.grid(axis="x", visible=False)
        ax_bar.spines["left"].set_linewidth(0.5)
        ax_bar.spines["bottom"].set_linewidth(0.5)
    legend = [Patch(color=_BLUE, label="predicted = true class"), Patch(color=_RED, label="wrong prediction"),
              Line2D([], [], ls="none", marker="^", color=_BLUE, markersize=4, label="true class"),
              Patch(color=_GREY, label="other classes")]
    fig.legend(handles=legend, loc="lower left", bbox_to_anchor=(left / width, 0.02 / height), ncols=4,
               frameon=False, fontsize=7, handlelength=1.2, columnspacing=1.5, borderaxespad=0)
    caption = "Bars: predicted probability of each class (0 to 1, gridline at 0.5) against the class index."
    if not short:
        caption += "\nClasses: " + ", ".join(f"{j} {c}" for j, c in enumerate(names))
    fig.text(left / width, 0.22 / height, caption, fontsize=6.5, color="0.3", ha="left", va="bottom")
    if title:
        fig.suptitle(title, fontsize=matplotlib.rcParams["axes.titlesize"], x=left / width, ha="left",
                     y=1 - 0.05 / height, va="top")
    return fig


def plot_predictions(images, labels, probabilities, stem, n=16, class_names=None, title=None) -> list[Path]:
    """The TensorFlow classification tutorial's figure: test images with their predictions.

    A grid of ``n`` (default 16, 4 per row) image/bar-chart pairs: each image is titled
    with the predicted class and its probability (vermillion-red, bold and with the true
    class when wrong, blue when right), and its bar chart shows the probabilities of all
    classes: the predicted bar red when wrong, the true class blue and marked with ▲.

    Args:
        images: test images, (m, h, w) grey or (m, h, w, 3) colour, in [0, 1] or [-1, 1].
        labels: true classes, (m,).
        probabilities: predicted class probabilities, (m, classes).
        stem: output path without suffix.
        n: how many of the first images to show.
        class_names: optional names of the classes (default: their indices).
        title: optional figure title.

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_predictions_figure(images, labels, probabilities, n, class_names, title), stem)


def _confusion_figure(y_true, y_pred, class_names=None, title=None, num_classes=None) -> Figure:
    """Build the confusion-matrix figure (call inside `paper_style()`). See plot_confusion."""
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    m = classification_metrics(y_true, y_pred, num_classes)
    cm = m["confusion"]
    k = len(cm)
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_confusion: {len(names)} class names for {k} classes")
    longest = max(map(len, names))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(cm.sum(axis=1, keepdims=True) > 0, cm / cm.sum(axis=1, keepdims=True), 0.0)
    fig = Figure(figsize=(7.0, 3.5 + 0.045 * max(0, longest - 3)))
    gs = fig.add_gridspec(1, 3, width_ratios=[k, 0.3, 5.4])
    ax, cax, tab = fig.add_subplot(gs[0]), fig.add_subplot(gs[1]), fig.add_subplot(gs[2])
    cmap = matplotlib.colormaps["Blues"]
    im = ax.imshow(frac, cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    size = 6.5 if k <= 10 else 5 if k <= 15 else 4
    for i in range(k):
        for j in range(k):
            count = int(cm[i, j])
            color = "0.65" if count == 0 else _text_color(cmap(frac[i, j]))
            ax.text(j, i, str(count), ha="center", va="center", fontsize=size, color=color)
    rotate = longest > 2
    ax.set_xticks(range(k), names, rotation=45 if rotate else 0, ha="right" if rotate else "center",
                  rotation_mode="anchor")
    ax.set_yticks(range(k), names)
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    cbar = fig.colorbar(im, cax=cax, label="Fraction of true class")
    cbar.outline.set_visible(False)
    cbar.ax.tick_params(labelsize=7)
    columns = [("Precision", m["precision"]), ("Recall", m["recall"]), ("F1", m["f1"]),
               ("n", m["support"].astype(float))]
    tab.set_xlim(-0.5, len(columns) - 0.5)
    tab.set_ylim(k - 0.5, -0.5)
    for j, (_, values) in enumerate(columns):
        for i, v in enumerate(values):
            text = "–" if not math.isfinite(v) else (f"{int(v)}" if j == 3 else f"{v:.2f}")
            tab.text(j, i, text, ha="center", va="center", fontsize=7)
    tab.set_xticks(range(len(columns)), [c for c, _ in columns])
    tab.xaxis.tick_top()
    tab.tick_params(axis="x", length=0, labelsize=7)
    tab.set_yticks(range(k), names)
    tab.tick_params(axis="y", length=0, labelleft=False)
    tab.grid(False)
    for spine in tab.spines.values():
        spine.set_visible(False)
    for i in range(k + 1):
        tab.axhline(i - 0.5, color="0.9", lw=0.5)
    head = (f"Accuracy {m['accuracy']:.3f} (n = {m['n']}); macro averages: precision {m['macro_precision']:.3f}, "
            f"recall {m['macro_recall']:.3f}, F1 {m['macro_f1']:.3f}")
    fig.suptitle(f"{title}\n{head}" if title else head, fontsize=matplotlib.rcParams["axes.titlesize"])
    return fig


def plot_confusion(y_true, y_pred, stem, class_names=None, title=None, num_classes=None) -> list[Path]:
    """Confusion matrix with per-class precision, recall and F1 beside it.

    Cells print the counts and are coloured by the fraction of their row (the true class),
    so classes of different size compare; a side table lists precision, recall, F1 and the
    number of test images per class; the title gives the overall accuracy and the macro
    averages. Metrics come from
    `classification_metrics` (numpy only).

    Args:
        y_true, y_pred: integer class labels.
        stem: output path without suffix.
        class_names: optional names of the classes (default: their indices).
        title: optional text before "Accuracy ..." in the title (e.g. the model).
        num_classes: number of classes (default: len(class_names) or largest label + 1).

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_confusion_figure(y_true, y_pred, class_names, title, num_classes), stem)
