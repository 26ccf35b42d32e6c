"""Figures of a parameter sweep, and which ones a sweep gets.

- `plot_sweep_curves`: test accuracy against epoch, one colour per swept value.
- `plot_final_vs_param`: final (or best) accuracy against a swept parameter.
- `plot_vs_states`: the same against the number of states, on a log2 axis.
- `plot_heatmap`: final accuracy over two swept parameters, e.g. (A_p, A_d).
- `sweep_plan`: which of these a sweep gets, from what was swept.

Each takes summary.csv rows (`devsim.figures.summary.load_summary`).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from devsim.figures.accuracy import accuracy_ylim
from devsim.figures.labels import (MODEL_NAMES, compact_label, format_value, is_linear_value, param_label,
                                   param_symbol, value_label)
from devsim.figures.style import BLUE, OKABE_ITO, paper_style, save_figure, text_color
from devsim.figures.summary import (check_param, group_means, group_runs, is_number, parse_value, run_metric, seed_means,
                                    sort_key)

__all__ = ["HEATMAP_PAIRS", "plot_sweep_curves", "plot_final_vs_param", "plot_vs_states", "plot_heatmap",
           "sweep_plan"]

HEATMAP_PAIRS = (("ltp", "ltd"), ("nl_ltp", "nl_ltd"))
"""Swept parameter pairs drawn as a heatmap (x, y) when both are swept."""

_CURVATURES = ("ltp", "ltd", "a_p", "a_d")  # log x axis when positive and spanning > a decade
_VALUE_COLORS = OKABE_ITO[:6]  # without yellow (poor on white) and black (kept for the linear device)
_MARKERS = "osD^vP<>X*"
_REFERENCE_STYLES = {"float": ("0.55", ".", (0, (5, 2))), "linear": ("0.2", "x", ":")}  # colour, marker, dashes


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


def _value_styles(values, param=None):
    """Colour and marker per value: Okabe-Ito (viridis beyond 6), black for the linear device (A = ∞, NL = 0)."""
    finite = [v for v in values if not is_linear_value(param, v)]
    if len(finite) <= len(_VALUE_COLORS):
        colors = _VALUE_COLORS[:len(finite)]
    else:
        colors = [matplotlib.colormaps["viridis"](t) for t in np.linspace(0, 0.88, len(finite))]
    styles, k = {}, 0
    for i, v in enumerate(values):
        if is_linear_value(param, v):
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


def _sweep_curves_figure(rows, param, model="device", band="minmax", params=None, ties=None, labels=None) -> Figure:
    """Build the sweep-curves figure (call inside `paper_style()`). See plot_sweep_curves."""
    if band not in ("minmax", "std"):
        raise ValueError(f"band: must be 'minmax' or 'std', got {band!r}")
    runs, params = group_runs(rows, model, params, "plot_sweep_curves")
    check_param(params, param, "plot_sweep_curves")
    values = sorted({r["params"][param] for r in runs.values()}, key=sort_key)
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
        acc = [seed_means((r["params"].get("seed"), r["acc"][e]) for r in mine if e in r["acc"]) for e in epochs]
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
    accuracy_ylim(ax, shown)
    pooled = _pooled(runs, {param}, params, ties)
    counts = [sum(r["params"][param] == v for r in runs.values()) for v in values]
    title = [f"mean over {pooled}" if pooled else "one run per value", *_counts_note(counts, "line")]
    if banded:
        title.append("band: " + ("min–max" if band == "minmax" else "mean ± s.d.") + " over seeds")
    if model not in ("device", None):
        title[0] = f"{MODEL_NAMES.get(model, model)}: {title[0]}"
    _legend_top(ax, handles, title=[title[0][0].upper() + title[0][1:], *title[1:]],
                compact=None if param == "model" else [labels.get(v, compact_label(param, v)) for v in values],
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
    numeric = all(is_number(v) for v in values) and not any(is_number(v) and v == -math.inf for v in values)
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


def _final_vs_param_figure(rows, x, line=None, metric="final", model="device", params=None,
                           references=("float",), log2=False, ties=None) -> Figure:
    """Build the final-accuracy-against-parameter figure (in `paper_style()`). See plot_final_vs_param."""
    what = "plot_vs_states" if log2 else "plot_final_vs_param"
    runs, params = group_runs(rows, model, params, what)
    check_param(params, x, what)
    if line is not None:
        check_param(params, line, what)
        if line == x:
            raise ValueError(f"{what}: line must differ from x ({x!r})")
    run_metric(next(iter(runs.values())), metric)  # validates metric
    groups, counts = group_means(runs, x, line, metric)
    ref_groups = {}
    for ref in references or ():
        if ref != model and any(str(r.get("model")) == ref for r in rows):
            try:
                ref_runs, _ = group_runs(rows, ref, params, what)
            except ValueError:
                continue
            ref_groups[ref] = group_means(ref_runs, x, None, metric)[0][None]
    all_x = sorted({v for g in [*groups.values(), *ref_groups.values()] for v in g}, key=sort_key)
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
    line_values = sorted(groups, key=sort_key)
    styles = _value_styles(line_values, line) if line else {None: (BLUE, "o")}
    handles, shown = [], []

    def draw(g, i, k, color, marker, label, errors=True, **kw):
        xs = [v for v in sorted(g, key=sort_key)]
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
    texts = [labels[j] for j in order]
    # text categories (device names) side by side overlap beyond about 6 characters each on this width
    rotate = scale == "categorical" and sum(len(t) for t in texts) > 6 * len(texts) and len(texts) > 3
    _enlarge_inf(ax.set_xticklabels(texts, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                                    rotation_mode="anchor" if rotate else "default"))
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
    accuracy_ylim(ax, shown)
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
        compact = [compact_label(line, v) for v in line_values] + [h.get_label() for h in handles[len(line_values):]]
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


def _heatmap_figure(rows, x, y, metric="final", model="device", params=None, cmap="viridis", ties=None) -> Figure:
    """Build the heatmap figure (call inside `paper_style()`). See plot_heatmap."""
    runs, params = group_runs(rows, model, params, "plot_heatmap")
    check_param(params, x, "plot_heatmap")
    check_param(params, y, "plot_heatmap")
    if cmap not in ("viridis", "cividis"):
        raise ValueError(f"cmap: use a colour-blind-safe sequential map, 'viridis' or 'cividis', got {cmap!r}")
    xs = sorted({r["params"][x] for r in runs.values()}, key=sort_key)
    ys = sorted({r["params"][y] for r in runs.values()}, key=sort_key)
    cells = {}
    for r in runs.values():
        cells.setdefault((r["params"][y], r["params"][x]), []).append(run_metric(r, metric))
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
                        color=text_color(colormap(im.norm(m))))
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


def sweep_plan(swept, params, ties=None, fixed=None) -> list[tuple[str, object, dict]]:
    """Which figures a sweep gets: ``[(stem, plot function, keyword arguments), ...]``.

    Args:
        swept: the swept parameters other than the seed and tied fields, in sweep order.
        params: every parameter column of the summary (seed and tied fields included).
        ties: {field: source} from sweep.json: fields that take another's value.
        fixed: the fixed fields from sweep.json (names the device of a seeds-only sweep).

    Returns:
        For a sweep of seeds only, ``curves_models`` (every model, mean over seeds).
    """
    ties = dict(ties or {})
    if not swept:
        device = [value_label(p, parse_value(v)) for p, v in (fixed or {}).items()
                  if p in ("device", "ltp", "ltd", "nl_ltp", "nl_ltd", "states") and v is not None]
        labels = {"device": "device: " + ", ".join(device)} if device else None
        return [("curves_models", plot_sweep_curves,
                 {"param": "model", "model": None, "params": params, "labels": labels})]
    plan = []
    pairs = [(a, b) for a, b in HEATMAP_PAIRS if a in swept and b in swept]
    for p in swept:
        plan.append((f"curves_{p}", plot_sweep_curves, {"param": p, "params": params, "ties": ties}))
    for p in swept:
        others = [q for q in swept if q != p]
        line = None
        if len(swept) == 2 and not any({p, others[0]} == set(pair) for pair in pairs):
            line = others[0]
        if p in ("states", "states_ltd"):
            kwargs = {"param": p, "line": line, "params": params, "ties": ties}
            plan.append((f"final_{p}", plot_vs_states, kwargs))
        else:
            kwargs = {"x": p, "line": line, "params": params, "ties": ties}
            plan.append((f"final_{p}", plot_final_vs_param, kwargs))
    for a, b in pairs:
        plan.append((f"heatmap_{a}_{b}", plot_heatmap, {"x": a, "y": b, "params": params, "ties": ties}))
    return plan
