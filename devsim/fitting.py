"""Fit a measured pulse response (conductance against pulse number) to the device model.

``devsim fit pulses.csv`` turns a measurement of conductance ``G`` under identical
programming pulses -- a potentiation (LTP) branch from Gmin up to Gmax, then a
depression (LTD) branch back down, possibly for several cycles -- into a device
JSON that `devsim.devices.ExpDevice.from_config` loads.

CSV format
----------
A header row is required; column order is free, names are case-insensitive and
extra columns are ignored. One row per conductance reading:

- ``pulse``: pulse number within the branch, an integer >= 0 (0 = the branch
  start, before any pulse of that branch).
- ``conductance``: the measured G, in any unit (S, uS, ...). Gmin and Gmax come
  back in the same unit; ``devsim fit --unit S`` (or mS, uS, nS) names it, for
  the JSON and the figures' axes.
- ``direction``: ``ltp`` or ``ltd`` (case-insensitive); ``potentiation`` /
  ``depression`` and ``+1`` / ``-1`` are accepted too.
- ``cycle`` (optional, default 1): integer cycle index. All cycles are fitted
  jointly with one set of parameters.

The number of pulses of a full sweep is the largest ``pulse`` of each branch:
``N_p`` for LTP and ``N_d`` for LTD, so the device gets ``states = N_p + 1``
and ``states_ltd = N_d + 1``. Example (``examples/pulses_example.csv``)::

    cycle,direction,pulse,conductance
    1,ltp,0,2.000000e-06
    1,ltp,1,2.773866e-06
    ...
    1,ltp,64,2.052556e-05
    1,ltd,0,2.052556e-05
    1,ltd,1,1.932359e-05
    ...

Model
-----
With ``R = Gmax - Gmin`` and ``u = 1/A``::

    G_ltp(p) = Gmin + R * (1 - exp(-u_p p/N_p)) / (1 - exp(-u_p)),   p = 0..N_p
    G_ltd(q) = Gmax - R * (1 - exp(-u_d q/N_d)) / (1 - exp(-u_d)),   q = 0..N_d

``A > 0`` saturating, ``A < 0`` accelerating, ``A = inf`` (``u = 0``) linear.
The fit works in ``u`` (bounded to ``[-50, 50]``), so it passes smoothly
through the linear case; ``A = 1/u`` is reported with ``sigma_A = sigma_u / u**2``.
All points of all cycles are fitted jointly by least squares
(`scipy.optimize.least_squares`) in (Gmin, Gmax, u_p, u_d).

Noise model and uncertainties
-----------------------------
Cycle-to-cycle variation is a random walk around the curve, as in NeuroSim and
`ExpDevice` (``c2c_mode="sqrt"``): each pulse moves the device by the noise-free
step of its curve *from where it is* (soft bounds, no clipping) plus
``N(0, c2c * R)``. The deviation from the fitted curve then obeys
``r_i = rho * r_(i-1) + noise`` with ``rho = exp(-u / N)`` (1 for a linear
device), and the one-step prediction errors ``r_i - rho * r_(i-1)`` over
consecutive pulses of one branch and cycle estimate the per-pulse noise:
``c2c = rms(r_i - rho * r_(i-1)) / R``, pooled over branches and cycles. For a
linear device these are simply the increments of the residuals. Read noise
(white noise on each reading) is not separated: it adds ``2 * sigma_read**2``
to the squared estimate. Branches of fewer than 3 points do not contribute;
with no usable pairs at all, ``c2c = 0``.

Because a random walk makes the residuals strongly correlated, the textbook
least-squares covariance (independent residuals) is far too optimistic. The
reported 1-sigma errors are the larger of that covariance and a sandwich
covariance ``(J'J)^-1 J' Sigma J (J'J)^-1`` whose ``Sigma`` is the residual
covariance of the random walk above (one chain through the branches in cycle
order, each branch start one pulse of noise away from the previous branch end).

Everything is in numpy/scipy; the fit figure is `devsim.figures.fit` and files
are written atomically (`devsim.io`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
from scipy import linalg, optimize, signal

from devsim import curves, io, nonlinearity

__all__ = [
    "FitError",
    "FitResult",
    "read_pulse_csv",
    "fit_pulse_data",
    "fit_csv",
    "bootstrap_fit",
    "pulse_arrays",
    "write_fit",
    "simulate_pulses",
]

U_BOUND = 50.0
"""Bound on ``|u| = 1/|A|`` during the fit (``|A| >= 0.02``: nearly a single step)."""

MIN_POINTS = 3
"""Fewest points (and distinct pulse numbers) a branch needs."""

MAX_PULSE = 99_999
"""Largest pulse number accepted (a device has at most `devsim.devices.MAX_STATES` levels)."""

MAX_CYCLE = 2**31 - 1
"""Largest cycle index accepted."""

ABSURD = 1e3
"""A reading further than this many times the data's interquartile range from their median is refused
(a typing or unit error: no device's conductance spans that)."""

MIN_CLUSTER_CYCLES = 6
"""From this many cycles on, the uncertainties come from the spread between cycles (a cluster sandwich,
what a bootstrap over cycles estimates); below it, from the random-walk noise model."""

_COLUMNS = ("pulse", "conductance", "direction")
_DIRECTIONS = {
    "ltp": 1, "potentiation": 1, "+1": 1, "1": 1, "+1.0": 1, "1.0": 1,
    "ltd": -1, "depression": -1, "-1": -1, "-1.0": -1,
}
_BRANCH = {1: "ltp", -1: "ltd"}


class FitError(ValueError):
    """Bad pulse data: a one-line message naming the file, row (1-based data row,
    as a spreadsheet shows it: the header is row 1) or column."""


# --------------------------------------------------------------------------- reading


def _where(source):
    return str(source) if str(source) else "data"


def _parse_int(text, where, column):
    try:
        value = float(text)
    except ValueError:
        raise FitError(f"{where}, column {column!r}: {text!r} is not a number") from None
    if math.isnan(value):
        raise FitError(f"{where}, column {column!r}: value is NaN")
    if not math.isfinite(value) or value != int(value):
        raise FitError(f"{where}, column {column!r}: {text!r} is not an integer")
    _check_int_range(value, where, column, text)
    return int(value)


def _check_int_range(value, where, column, text=None):
    """Pulse numbers up to `MAX_PULSE`, cycle indices up to `MAX_CYCLE` in magnitude (beyond: a typo)."""
    text = repr(text) if text is not None else f"{value:g}"
    if column == "pulse" and value > MAX_PULSE:
        raise FitError(f"{where}, column 'pulse': pulse number {text} is too large (at most {MAX_PULSE:,}: "
                       "a device has at most 100,000 levels)")
    if column == "cycle" and abs(value) > MAX_CYCLE:
        raise FitError(f"{where}, column 'cycle': cycle index {text} is too large (at most {MAX_CYCLE:,})")


def _check_conductances(g, rows, where):
    """No negative reading, and none absurdly far from the others (naming the first such row)."""
    bad = np.flatnonzero(g < 0)
    if bad.size:
        raise FitError(f"{where} row {rows[bad[0]]}, column 'conductance': {g[bad[0]]:.6g} is negative "
                       "(give conductances, G >= 0, not currents or differences)")
    if g.size >= 4:
        q1, median, q3 = np.percentile(g, [25, 50, 75])
        spread = q3 - q1
        if spread > 0:
            with np.errstate(over="ignore"):
                far = np.abs(g - median) > ABSURD * spread
            if np.any(far):
                k = np.flatnonzero(far)[np.argmax(np.abs(g[far] - median))]
                raise FitError(f"{where} row {rows[k]}, column 'conductance': {g[k]:.6g} is absurd for these data "
                               f"(median {median:.4g}, interquartile range {spread:.3g}); a typing or unit error?")


def _parse_direction(text, where):
    value = _DIRECTIONS.get(str(text).strip().lower())
    if value is None:
        raise FitError(
            f"{where}, column 'direction': {str(text)!r} is not a direction "
            "(use ltp/ltd, potentiation/depression or +1/-1)"
        )
    return value


def read_pulse_csv(path) -> dict:
    """Read and validate a pulse-response CSV (format in the module docstring).

    Args:
        path: the CSV file.

    Returns:
        ``{"pulse": int array, "conductance": float array, "direction": int
        array of +1 (LTP) / -1 (LTD), "cycle": int array, "row": int array}``,
        one entry per data row; ``row`` is the spreadsheet row number (header = 1)
        that error messages quote.

    Raises:
        FitError: unreadable file, missing column, non-numeric, empty or NaN
            value, unknown direction, negative or non-integer pulse number,
            no data rows. The message names the file and the row or column.
    """
    name = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            numbered = [(reader.line_num, r) for r in reader if any(cell.strip() for cell in r)]
    except FileNotFoundError:
        raise FitError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise FitError(f"{name}: is a directory, not a CSV file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FitError(f"{name}: cannot read ({exc})".replace("\n", " ")) from None
    if not numbered:
        raise FitError(f"{name}: empty file (need a header row: pulse, conductance, direction; optional cycle)")
    _, header = numbered[0]
    index = {}
    for i, col in enumerate(header):
        index.setdefault(col.strip().lower(), i)
    missing = [c for c in _COLUMNS if c not in index]
    if missing:
        which = ", ".join(repr(c) for c in missing)
        raise FitError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {which} "
            "(need pulse, conductance, direction; optional cycle)"
        )
    body = numbered[1:]
    if not body:
        raise FitError(f"{name}: no data rows below the header")
    has_cycle = "cycle" in index
    n = len(body)
    pulse = np.empty(n, np.int64)
    conductance = np.empty(n, np.float64)
    direction = np.empty(n, np.int64)
    cycle = np.ones(n, np.int64)
    rownum = np.empty(n, np.int64)
    for k, (line, record) in enumerate(body):
        where = f"{name} row {line}"

        def cell(column):
            i = index[column]
            text = record[i].strip() if i < len(record) else ""
            if not text:
                raise FitError(f"{where}, column {column!r}: empty value")
            return text

        pulse[k] = _parse_int(cell("pulse"), where, "pulse")
        if pulse[k] < 0:
            raise FitError(f"{where}, column 'pulse': pulse number {pulse[k]} is negative (0 = branch start)")
        text = cell("conductance")
        try:
            conductance[k] = float(text)
        except ValueError:
            raise FitError(f"{where}, column 'conductance': {text!r} is not a number") from None
        if math.isnan(conductance[k]):
            raise FitError(f"{where}, column 'conductance': value is NaN")
        if not math.isfinite(conductance[k]):
            raise FitError(f"{where}, column 'conductance': {text!r} is not finite")
        if conductance[k] < 0:
            raise FitError(f"{where}, column 'conductance': {text} is negative "
                           "(give conductances, G >= 0, not currents or differences)")
        direction[k] = _parse_direction(cell("direction"), where)
        if has_cycle:
            cycle[k] = _parse_int(cell("cycle"), where, "cycle")
        rownum[k] = line
    _check_conductances(conductance, rownum, name)
    return {"pulse": pulse, "conductance": conductance, "direction": direction, "cycle": cycle, "row": rownum}


def pulse_arrays(data, source=""):
    """Validate an in-memory data dict (lists or arrays) like `read_pulse_csv` does.

    Returns:
        ``(pulse, conductance, direction, cycle, row)`` as numpy arrays (direction +1 for
        LTP, -1 for LTD; row: the CSV row of each reading, for messages).
    """
    where = _where(source)
    for key in _COLUMNS:
        if key not in data:
            raise FitError(f"{where}: missing column {key!r} (need pulse, conductance, direction; optional cycle)")
    n = len(data["conductance"])
    for key in (*_COLUMNS, "cycle", "row"):
        if key in data and data[key] is not None and len(data[key]) != n:
            raise FitError(f"{where}: column {key!r} has {len(data[key])} values, 'conductance' has {n}")
    if n == 0:
        raise FitError(f"{where}: no data rows")
    rows = np.asarray(data["row"], np.int64) if data.get("row") is not None else np.arange(n) + 2
    g = np.asarray(data["conductance"], np.float64)
    bad = np.flatnonzero(~np.isfinite(g))
    if bad.size:
        raise FitError(f"{where} row {rows[bad[0]]}, column 'conductance': value is {g[bad[0]]}")
    pulse_f = np.asarray(data["pulse"], np.float64)
    bad = np.flatnonzero(~np.isfinite(pulse_f) | (pulse_f != np.round(pulse_f)))
    if bad.size:
        raise FitError(f"{where} row {rows[bad[0]]}, column 'pulse': {pulse_f[bad[0]]} is not an integer")
    bad = np.flatnonzero(pulse_f < 0)
    if bad.size:
        raise FitError(f"{where} row {rows[bad[0]]}, column 'pulse': pulse number {int(pulse_f[bad[0]])} is negative")
    bad = np.flatnonzero(pulse_f > MAX_PULSE)
    if bad.size:
        _check_int_range(pulse_f[bad[0]], f"{where} row {rows[bad[0]]}", "pulse")
    _check_conductances(g, rows, where)
    raw = np.asarray(data["direction"])
    if raw.dtype.kind in "iuf":
        direction = np.where(raw > 0, 1, -1).astype(np.int64)
        bad = np.flatnonzero((raw != 1) & (raw != -1))
        if bad.size:
            raise FitError(f"{where} row {rows[bad[0]]}, column 'direction': {raw[bad[0]]!r} is not +1 or -1")
    else:
        direction = np.array([_parse_direction(d, f"{where} row {r}") for d, r in zip(raw, rows)], np.int64)
    cycle = data.get("cycle")
    if cycle is None:
        cycle = np.ones(n, np.int64)
    else:
        cycle_f = np.asarray(cycle, np.float64)
        bad = np.flatnonzero(~np.isfinite(cycle_f) | (cycle_f != np.round(cycle_f)) | (np.abs(cycle_f) > MAX_CYCLE))
        if bad.size:
            raise FitError(f"{where} row {rows[bad[0]]}, column 'cycle': {cycle_f[bad[0]]:g} is not an integer "
                           f"of at most {MAX_CYCLE:,}")
        cycle = cycle_f.astype(np.int64)
    return pulse_f.astype(np.int64), g, direction, cycle, rows


# --------------------------------------------------------------------------- model


def _dshape_du(x, u):
    h = 1e-5 * max(1.0, abs(float(u)))
    return (curves.shape(x, u + h) - curves.shape(x, u - h)) / (2.0 * h)


def _a(u):
    return float(curves.curvature(u))


def _model(theta, x, up):
    """Model conductance (same units as ``theta``'s Gmin/Gmax) at branch position ``x = p/N``."""
    g_min, g_max, u_p, u_d = theta
    r = g_max - g_min
    return np.where(up, g_min + r * curves.shape(x, u_p), g_max - r * curves.shape(x, u_d))


def _jacobian(theta, x, up):
    g_min, g_max, u_p, u_d = theta
    r = g_max - g_min
    f = np.where(up, curves.shape(x, u_p), curves.shape(x, u_d))
    jac = np.empty((x.size, 4))
    jac[:, 0] = np.where(up, 1.0 - f, f)
    jac[:, 1] = np.where(up, f, 1.0 - f)
    jac[:, 2] = np.where(up, r * _dshape_du(x, u_p), 0.0)
    jac[:, 3] = np.where(up, 0.0, -r * _dshape_du(x, u_d))
    return jac


# --------------------------------------------------------------------------- result


@dataclasses.dataclass
class FitResult:
    """Fitted device parameters with 1-sigma uncertainties (see the module docstring).

    ``g_min``/``g_max`` and their errors and ``rmse`` are in the CSV's unit
    (``unit``, one of `devsim.options.CONDUCTANCE_UNITS`, when known: it labels the figures);
    ``a_p``/``a_d`` are unitless (fraction of a full sweep); ``c2c`` is the
    per-pulse cycle-to-cycle sigma as a fraction of ``g_max - g_min``.
    """

    g_min: float
    g_max: float
    a_p: float
    a_d: float
    g_min_err: float
    g_max_err: float
    a_p_err: float
    a_d_err: float
    states: int
    states_ltd: int
    nl_ltp: float
    nl_ltd: float
    c2c: float
    rmse: float
    n_points: int
    source: str = ""
    nl_ltp_err: float = 0.0
    nl_ltd_err: float = 0.0
    n_cycles: int = 1
    notes: list = dataclasses.field(default_factory=list)
    error_method: str = "least squares"
    bootstrap: dict | None = None
    unit: str | None = None

    @property
    def on_off(self) -> float:
        """``g_max / g_min``; ``inf`` when ``g_min <= 0``."""
        return self.g_max / self.g_min if self.g_min > 0 else math.inf

    def curve(self, x, up):
        """The fitted conductance (the CSV's unit) at branch position ``x = p/N``: LTP where `up`, else LTD."""
        return _model((self.g_min, self.g_max, 1.0 / self.a_p, 1.0 / self.a_d), np.asarray(x, np.float64), up)

    def _default_name(self):
        return Path(self.source).stem if self.source else None

    def device(self, name=None):
        """The fitted device as a `devsim.devices.ExpDevice` (name: the CSV's stem by default)."""
        from devsim.devices import ExpDevice  # keras: imported only when needed

        return ExpDevice(
            self.a_p, self.a_d, self.states, states_ltd=self.states_ltd, on_off=self.on_off,
            c2c=self.c2c, name=name or self._default_name(), source=self.source or None,
        )

    def to_json(self, name=None) -> dict:
        """``device().get_config()`` plus a ``"fit"`` block; loads back with ``ExpDevice.from_config``."""
        config = self.device(name).get_config()
        config["fit"] = {
            "g_min": self.g_min,
            "g_max": self.g_max,
            "g_min_err": self.g_min_err,
            "g_max_err": self.g_max_err,
            "unit": self.unit or "the CSV's conductance unit (g_min, g_max, their errors, rmse)",
            "a_p_err": self.a_p_err,
            "a_d_err": self.a_d_err,
            "nl_ltp_err": round(self.nl_ltp_err, 4),
            "nl_ltd_err": round(self.nl_ltd_err, 4),
            "c2c": self.c2c,
            "rmse": self.rmse,
            "rmse_relative": self.rmse / (self.g_max - self.g_min),
            "n_points": self.n_points,
            "n_cycles": self.n_cycles,
            "noise_model": "random walk: each pulse adds N(0, c2c * (g_max - g_min)) to the curve step",
        }
        config["fit"]["error_method"] = self.error_method
        if self.bootstrap:
            config["fit"]["bootstrap"] = dict(self.bootstrap)
        if self.notes:
            config["fit"]["notes"] = list(self.notes)
        return config

    def summary(self) -> str:
        """A few lines for the terminal."""

        def pm(value, err):
            return f"{value:.4g} +- {err:.2g}"

        return "\n".join([
            f"Gmin = {pm(self.g_min, self.g_min_err)}, Gmax = {pm(self.g_max, self.g_max_err)}"
            f" (on/off {self.on_off:.3g})",
            f"A_p = {pm(self.a_p, self.a_p_err)} (NL {self.nl_ltp:+.2f}), "
            f"A_d = {pm(self.a_d, self.a_d_err)} (NL {self.nl_ltd:+.2f})",
            f"states = {self.states} (LTP), {self.states_ltd} (LTD); c2c = {100 * self.c2c:.2f} % per pulse",
            f"rmse = {self.rmse:.3g} ({100 * self.rmse / (self.g_max - self.g_min):.2f} % of range), "
            f"{self.n_points} points, {self.n_cycles} cycle(s); errors from {self.error_method}",
            *([f"bootstrap over cycles ({b['n']} resamples): Gmin +- {b['g_min_err']:.2g}, "
               f"Gmax +- {b['g_max_err']:.2g}, A_p +- {b['a_p_err']:.2g}, A_d +- {b['a_d_err']:.2g}"]
              if (b := self.bootstrap) else []),
        ])


# --------------------------------------------------------------------------- fitting


def _check_branches(pulse, g, direction, where):
    """Each branch has enough points and moves the right way; returns (N_p, N_d)."""
    sweeps = {}
    for d in (1, -1):
        sel = direction == d
        name = _BRANCH[d]
        count = int(sel.sum())
        if count < MIN_POINTS:
            plural = "" if count == 1 else "s"
            raise FitError(f"{where}: the {name} branch has {count} point{plural}; need at least {MIN_POINTS}")
        p, gd = pulse[sel], g[sel]
        distinct = np.unique(p).size
        if distinct < MIN_POINTS:
            raise FitError(
                f"{where}: the {name} branch has only {distinct} distinct pulse numbers; need at least {MIN_POINTS}"
            )
        if np.ptp(gd) == 0:
            raise FitError(f"{where}: the {name} branch does not move (conductance constant at {gd[0]:.6g})")
        # overall trend: least-squares slope of G against pulse number (all cycles pooled)
        slope = np.polyfit(p.astype(np.float64), gd, 1)[0]
        wrong = slope <= 0 if d == 1 else slope >= 0
        if wrong:
            trend = "up" if d == 1 else "down"
            raise FitError(
                f"{where}: the {name} branch does not go {trend} overall (least-squares slope "
                f"{slope:.3g} per pulse); check the direction column"
            )
        sweeps[d] = int(p.max())
    return sweeps[1], sweeps[-1]


def _chain(pulse, direction, cycle, rows):
    """Chain order: by cycle, branches in order of appearance in the file, then by pulse.

    Returns the permutation and, per point of the chain, whether it continues the
    previous point's branch (same cycle and direction).
    """
    key = cycle * 2 + (direction > 0)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    first_row = rows[first][inverse]  # file position of each point's branch
    order = np.lexsort((rows, pulse, first_row, cycle))
    k = key[order]
    same = np.r_[False, k[1:] == k[:-1]]
    return order, same


_STARTS = ((0.0, 1.0, 1.0, 1.0), (0.0, 1.0, -1.0, -1.0), (0.0, 1.0, 1.0, -1.0), (0.0, 1.0, -1.0, 1.0))


def _fit(x, z, up, starts=_STARTS, tol=1e-14):
    """Least squares in normalized units ``z``; returns the best ``scipy`` result over a few starts."""
    best = None
    for x0 in starts:
        res = optimize.least_squares(
            lambda t: _model(t, x, up) - z,
            x0=np.clip(x0, (-np.inf, -np.inf, -U_BOUND, -U_BOUND), (np.inf, np.inf, U_BOUND, U_BOUND)),
            jac=lambda t: _jacobian(t, x, up),
            bounds=((-np.inf, -np.inf, -U_BOUND, -U_BOUND), (np.inf, np.inf, U_BOUND, U_BOUND)),
            method="trf",
            x_scale="jac",
            ftol=tol, xtol=tol, gtol=tol,
            max_nfev=2000,
        )
        if best is None or res.cost < best.cost:
            best = res
    return best


def _snap_u(u):
    """``u`` below round-off is exactly linear."""
    return 0.0 if abs(u) < 1e-12 else u


def _cluster_sandwich(jac, resid, cycle, jtj_inv):
    """``(J'J)^-1 [sum_c (J_c' r_c)(J_c' r_c)'] (J'J)^-1 C/(C-1)``: each cycle one independent draw.

    Whatever correlates the residuals within a cycle (the random walk, a drop
    at the turn-around, a curve the model misses), cycles repeat independently;
    this is the covariance a bootstrap over cycles estimates, without refitting.
    """
    _, index = np.unique(cycle, return_inverse=True)
    scores = np.zeros((index.max() + 1, jac.shape[1]))
    np.add.at(scores, index, jac * resid[:, None])
    scores -= scores.mean(axis=0)
    c = scores.shape[0]
    return jtj_inv @ (scores.T @ scores) @ jtj_inv * (c / (c - 1))


def _walk_sandwich(jac, r_c, order, same, rho_c, gap, sigma, jtj_inv):
    """``(J'J)^-1 J' Sigma J (J'J)^-1`` with ``Sigma`` the covariance of the random walk around the curve.

    Each branch is its own chain ``r_i = rho r_(i-1) + N(0, sigma^2 gap)``,
    started with the variance of the branches' first residuals. ``rho`` is
    capped at 1: an accelerating fit (``rho = exp(-u/N) > 1``) chained through
    every branch of every cycle would grow as ``exp(|u|)`` per branch, which
    is what made 40 cycles of accelerating data report A_p +- 1e13.
    """
    link = np.where(same, np.minimum(rho_c, 1.0), 0.0)
    start = ~same
    first_var = float(np.mean(r_c[start] ** 2)) if np.any(start) else sigma**2
    var = np.where(same, sigma**2 * np.maximum(gap, 1), max(first_var, sigma**2)).astype(np.float64)
    # Sigma = L diag(var) L', L = (I - P)^-1 with P the sub-diagonal of link factors
    banded = np.zeros((2, link.size))
    banded[0, 1:] = -link[1:]
    banded[1] = 1.0
    y = linalg.solve_banded((0, 1), banded, jac[order])  # solves (I - P)' y = J
    meat = (y * var[:, None]).T @ y
    return jtj_inv @ meat @ jtj_inv


def fit_pulse_data(data: dict, source="") -> FitResult:
    """Fit the device model to pulse data (the dict `read_pulse_csv` returns).

    Args:
        data: ``{"pulse", "conductance", "direction", "cycle" (optional),
            "row" (optional, for messages)}``; ``direction`` is +1/-1 or the
            strings the CSV accepts.
        source: the data's origin (file name), quoted in messages and stored.

    Returns:
        A `FitResult`.

    Raises:
        FitError: a branch with fewer than 3 points or pulse numbers, a branch
            that does not move or moves the wrong way overall (LTP must rise,
            LTD fall, judged by the least-squares slope of G against pulse
            number), or a fit that does not converge.
    """
    where = _where(source)
    pulse, g, direction, cycle, rows = pulse_arrays(data, source)
    n_p, n_d = _check_branches(pulse, g, direction, where)
    up = direction > 0
    x = pulse / np.where(up, n_p, n_d)

    lo, span = g.min(), np.ptp(g)
    z = (g - lo) / span
    res = _fit(x, z, up)
    if not np.all(np.isfinite(res.x)) or res.x[1] <= res.x[0]:
        raise FitError(f"{where}: the fit did not converge ({res.message})")
    theta = res.x.copy()
    theta[2], theta[3] = _snap_u(theta[2]), _snap_u(theta[3])
    resid = z - _model(theta, x, up)
    jac = _jacobian(theta, x, up)
    r_norm = theta[1] - theta[0]

    # C2C: one-step prediction errors over consecutive pulses of one branch and cycle
    order, same = _chain(pulse, direction, cycle, rows)
    r_c, p_c, up_c = resid[order], pulse[order], up[order]
    u_c = np.where(up_c, theta[2], theta[3])
    n_c = np.where(up_c, n_p, n_d)
    gap = np.r_[0, np.diff(p_c)]
    key = (cycle * 2 + up)[order]
    _, branch_id, branch_size = np.unique(key, return_inverse=True, return_counts=True)
    step = same & (gap == 1) & (branch_size[branch_id] >= MIN_POINTS)
    rho_c = np.exp(-u_c * np.maximum(gap, 0) / n_c)
    innovation = r_c[1:] - rho_c[1:] * r_c[:-1]
    pairs = innovation[step[1:]]
    sigma = float(np.sqrt(np.mean(pairs**2))) if pairs.size else 0.0  # normalized units
    c2c = sigma / r_norm

    # covariance: plain least squares, and the sandwich of the cycles' spread (many cycles)
    # or of the random-walk noise model (few); report the larger
    n_cycles = int(np.unique(cycle).size)
    dof = max(1, z.size - 4)
    jtj_inv = linalg.pinvh(jac.T @ jac)
    cov = jtj_inv * (resid @ resid) / dof
    if n_cycles >= MIN_CLUSTER_CYCLES:
        sandwich, method = _cluster_sandwich(jac, resid, cycle, jtj_inv), "cycles"
    elif sigma > 0:
        sandwich, method = _walk_sandwich(jac, r_c, order, same, rho_c, gap, sigma, jtj_inv), "random walk"
    else:
        sandwich, method = None, "least squares"
    variance = np.diag(cov) if sandwich is None else np.maximum(np.diag(cov), np.diag(sandwich))
    err = np.sqrt(np.clip(variance, 0.0, None))

    g_min, g_max = lo + span * theta[0], lo + span * theta[1]
    u_p, u_d = float(theta[2]), float(theta[3])
    a_p, a_d = _a(u_p), _a(u_d)
    a_err = [math.inf if u == 0 else e / u**2 for u, e in ((u_p, err[2]), (u_d, err[3]))]
    nl_p, nl_d = float(nonlinearity.ltp_label(a_p)), float(nonlinearity.ltd_label(a_d))
    notes = [
        f"{where}: the {name} curvature hit the fit bound |A| = {1 / U_BOUND:g} (a near-step response); "
        f"{sym} is a limit, not a measurement"
        for name, sym, u in (("ltp", "A_p", u_p), ("ltd", "A_d", u_d)) if abs(u) >= U_BOUND * (1 - 1e-9)
    ]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    nl_err = [_label_err(nonlinearity.ltp_label, u_p, err[2]), _label_err(nonlinearity.ltd_label, u_d, err[3])]
    return FitResult(
        g_min=float(g_min), g_max=float(g_max), a_p=a_p, a_d=a_d,
        g_min_err=float(span * err[0]), g_max_err=float(span * err[1]),
        a_p_err=float(a_err[0]), a_d_err=float(a_err[1]),
        states=n_p + 1, states_ltd=n_d + 1, nl_ltp=nl_p, nl_ltd=nl_d,
        c2c=float(c2c), rmse=float(span * np.sqrt(np.mean(resid**2))), n_points=int(z.size),
        source=str(source), nl_ltp_err=nl_err[0], nl_ltd_err=nl_err[1],
        n_cycles=n_cycles, notes=notes, error_method=method,
    )


def bootstrap_fit(data: dict, result: FitResult, n: int = 100, seed: int = 0) -> dict:
    """Bootstrap over cycles: refit ``n`` resamples of whole cycles (drawn with replacement).

    Every resample keeps the pulse scale of the full data (``N_p``, ``N_d``) and
    starts from ``result``'s parameters. The spread of each parameter is half
    its central 68 % interval (robust to the odd resample where a near-linear
    branch's ``A`` runs off to infinity); for ``A`` it is also given as the
    spread of the NeuroSim label.

    Returns:
        ``{"n": n, "g_min_err", "g_max_err", "a_p_err", "a_d_err", "nl_ltp_err",
        "nl_ltd_err"}`` (the CSV's unit for Gmin/Gmax), or ``{}`` with fewer
        than 3 cycles.
    """
    pulse, g, direction, cycle, _ = pulse_arrays(data, result.source)
    ids = np.unique(cycle)
    if ids.size < 3 or n < 2:
        return {}
    up = direction > 0
    x = pulse / np.where(up, result.states - 1, result.states_ltd - 1)
    lo, span = g.min(), np.ptp(g)
    z = (g - lo) / span
    members = [np.flatnonzero(cycle == c) for c in ids]
    start = ((result.g_min - lo) / span, (result.g_max - lo) / span, 1.0 / result.a_p, 1.0 / result.a_d)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(int(n)):
        take = np.concatenate([members[k] for k in rng.integers(0, ids.size, ids.size)])
        res = _fit(x[take], z[take], up[take], starts=(start,), tol=1e-10)
        if np.all(np.isfinite(res.x)) and res.x[1] > res.x[0]:
            draws.append(res.x)
    draws = np.array(draws)
    if len(draws) < 2:
        return {}

    def spread(values):
        q16, q84 = np.percentile(values, [16, 84])
        return float((q84 - q16) / 2)

    a_p, a_d = curves.curvature(draws[:, 2]), curves.curvature(draws[:, 3])
    return {
        "n": int(len(draws)),
        "g_min_err": span * spread(draws[:, 0]), "g_max_err": span * spread(draws[:, 1]),
        "a_p_err": spread(a_p), "a_d_err": spread(a_d),
        "nl_ltp_err": spread(nonlinearity.ltp_label(a_p)), "nl_ltd_err": spread(nonlinearity.ltd_label(a_d)),
    }


def _label_err(label, u, err):
    """1-sigma of a NeuroSim label from that of ``u`` (numerical derivative, in u)."""
    if err == 0:
        return 0.0
    h = max(1e-4, 1e-3 * abs(u))
    d = (float(label(_a(u + h))) - float(label(_a(u - h)))) / (2 * h)
    return float(abs(d) * err)


def fit_csv(path) -> FitResult:
    """`read_pulse_csv` then `fit_pulse_data`; the path is the result's ``source``."""
    return fit_pulse_data(read_pulse_csv(path), source=str(path))


# --------------------------------------------------------------------------- output


def write_fit(result, data, out_dir, name=None) -> dict[str, Path]:
    """Write ``device.json`` (atomic), ``fit.png`` and ``fit.pdf`` to ``out_dir``.

    Returns:
        ``{"device": .../device.json, "png": .../fit.png, "pdf": .../fit.pdf}``.
    """
    from devsim.figures.fit import plot_fit  # matplotlib: imported only when a figure is drawn

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = out_dir / "device.json"
    io.write_json(device, result.to_json(name))
    png, pdf = plot_fit(data, result, out_dir / "fit")
    return {"device": device, "png": png, "pdf": pdf}


# --------------------------------------------------------------------------- synthetic data


def simulate_pulses(g_min, g_max, a_p, a_d, n_p, n_d=None, cycles=1, c2c=0.0, seed=0) -> dict:
    """Synthetic pulse data under the noise model the fit assumes (for tests and examples).

    The device starts at Gmin and is cycled: ``n_p`` LTP pulses, then ``n_d``
    LTD pulses, ``cycles`` times. Each pulse moves the device by the
    noise-free step of its curve from where it is (soft bounds, no clipping)
    plus ``N(0, c2c * (g_max - g_min))``. Every branch is recorded from its
    pulse 0 (the state the previous branch ended in) to its last pulse.

    Returns:
        A dict like `read_pulse_csv`'s (rows in cycle, LTP-then-LTD, pulse order).
    """
    n_d = n_p if n_d is None else n_d
    rng = np.random.default_rng(seed)
    span = g_max - g_min
    out = {"pulse": [], "conductance": [], "direction": [], "cycle": []}
    h = 0.0  # normalized conductance
    for c in range(1, cycles + 1):
        for d, a, n in ((1, a_p, n_p), (-1, a_d, n_d)):
            u = float(curves.rate(a))
            rate = float(curves.step_factor(1, u, n))  # one pulse: dist' = rate * dist + shape(1/n)
            start = h if d > 0 else 1.0 - h  # distance climbed from the bound the pulses leave
            drive = float(curves.shape(1.0 / n, u)) + c2c * rng.standard_normal(n)
            walk = signal.lfilter([1.0], [1.0, -rate], drive, zi=[rate * start])[0]
            dist = np.r_[start, walk]
            level = dist if d > 0 else 1.0 - dist
            h = level[-1]
            out["pulse"].append(np.arange(n + 1))
            out["conductance"].append(g_min + span * level)
            out["direction"].append(np.full(n + 1, d))
            out["cycle"].append(np.full(n + 1, c))
    return {k: np.concatenate(v) for k, v in out.items()}
