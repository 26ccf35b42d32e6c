"""Measured devices: train on the measured pulse response itself (``"kind": "table"``).

Many real devices do not follow the exponential model of `devsim.devices`: a
kink, a drop at the LTP -> LTD turn-around, a spread that depends on the
state. `TableDevice` takes the response from the measurement instead of a
curve. docs/measured.md gives the equations; in short, in normalized
conductance ``g = (G - Gmin) / (Gmax - Gmin)``:

1. **Steps.** Every pair of consecutive readings one pulse apart in one
   branch of one cycle is a step ``dg`` taken from the state ``g`` (LTD steps
   are counted as decreases, ``dg > 0``).
   Gmin and Gmax are the mean last readings of the LTD and the LTP branches.
2. **Bins.** Per direction the steps are sorted by state and split into
   ``B = min(max_bins, n // min_per_bin)`` bins of equal count; each bin gives
   its mean state, mean step ``m`` and spread ``s`` (standard deviation of the
   steps: the cycle-to-cycle noise per pulse at that state).
3. **Smoothing and monotonicity.** ``m`` is smoothed with a [1, 2, 1] kernel.
   A bin whose mean step has the wrong sign beyond 3 standard errors is an
   error (the mean response is not monotone); a non-significant one (noise
   near a saturated end) is raised to a small floor.
4. **Mean ramp.** ``m(g)`` (linear interpolation between bin centres,
   constant beyond) is integrated pulse by pulse into a ramp per direction:
   ``h_0 = 0, h_(k+1) = min(1, h_k + m(h_k))`` with ``h = g`` for LTP and
   ``h = 1 - g`` for LTD, until ``h = 1`` after ``N`` pulses (``N_p``, ``N_d``:
   the device's pulses of a full sweep). The spread is sampled along it
   (``s_k``), and its running sum of squares ``S_k = sum_(j<k) s_j^2``.
5. **Pulses.** ``n`` pulses from ``g``: the position on the ramp
   ``p = P(h)`` (inverse interpolation), ``p' = min(p + n, N)``,
   ``h' = R(p')`` (interpolation), plus C2C noise
   ``sqrt(S(p') - S(p)) xi`` (the steps' variances along the path), clipped
   to [0, 1]. Pulses past the bound are counted as lost.

All pulse math is ``keras.ops`` on whole tensors (``searchsorted`` on the
ramps of both directions concatenated into one sorted sequence, ``take``,
``where``), so it runs inside the compiled update step. Device-to-device
variation can resample whole cycles: ``variants`` tables built from
bootstrap resamples of the cycles, one drawn per device (``d2d_cycles``).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from devsim.devices import (
    _AT_BOUND_TOL,
    MAX_STATES,
    Device,
    DevicePopulation,
    ExpDevice,
    _number,
    draw_range_and_stuck,
    same_option,
)
from devsim.lazy import ops, random
from devsim.options import FieldError, check_all

__all__ = ["TableDevice", "BranchTable", "TableError", "build_table", "table_from_data", "ramp_numpy",
           "MIN_PER_BIN", "MAX_BINS"]

MIN_PER_BIN = 20
"""Fewest steps (readings one pulse apart) per bin of the table."""

MAX_BINS = 24
"""Most bins per direction."""


_FLOOR = 0.02
"""A non-significant mean step of the wrong sign is raised to this fraction of the median step."""

_BRANCH = {1: "ltp", -1: "ltd"}


class TableError(ValueError):
    """Data that cannot make a table: one line naming the problem (and the branch, and where)."""


# --------------------------------------------------------------------------- the table


@dataclasses.dataclass(frozen=True)
class BranchTable:
    """The measured step table of one direction, in normalized conductance.

    Attributes:
        g: bin centres (mean state of the bin's steps), increasing.
        step: smoothed mean step per pulse (> 0: LTP raises g, LTD lowers it).
        sigma: standard deviation of the steps (C2C per pulse at that state).
        count: steps in each bin.
        raw_step: the bin means before smoothing.
    """

    g: tuple
    step: tuple
    sigma: tuple
    count: tuple
    raw_step: tuple = ()

    def to_dict(self) -> dict:
        return {k: [float(v) for v in getattr(self, k)] if k != "count" else [int(v) for v in self.count]
                for k in ("g", "step", "sigma", "count", "raw_step")}

    @classmethod
    def from_dict(cls, d, where="ltp"):
        if not isinstance(d, dict):
            raise FieldError(where, f"must be a table object with g, step, sigma, count; got {type(d).__name__}")
        missing = [k for k in ("g", "step", "sigma") if k not in d]
        if missing:
            raise FieldError(where, f"table misses {', '.join(missing)}")
        unknown = [k for k in d if k not in ("g", "step", "sigma", "count", "raw_step")]
        if unknown:
            raise FieldError(where, f"unknown table key {unknown[0]!r}")
        arrays = {}
        for k in ("g", "step", "sigma", "count", "raw_step"):
            v = d.get(k, [])
            try:
                a = np.asarray([_number(x) for x in v], np.float64)
            except (TypeError, ValueError):
                raise FieldError(where, f"{k} must be a list of numbers") from None
            if a.ndim != 1 or not np.all(np.isfinite(a)):
                raise FieldError(where, f"{k} must be a list of finite numbers")
            arrays[k] = a
        n = arrays["g"].size
        if n < 1 or arrays["step"].size != n or arrays["sigma"].size != n:
            raise FieldError(where, f"g, step and sigma must be equally long non-empty lists (got {n}, "
                             f"{arrays['step'].size}, {arrays['sigma'].size})")
        if np.any(np.diff(arrays["g"]) <= 0):
            raise FieldError(where, "g (bin centres) must increase")
        if np.any(arrays["step"] <= 0):
            raise FieldError(where, "step must be > 0 in every bin (the mean response moves one way)")
        if np.any(arrays["sigma"] < 0):
            raise FieldError(where, "sigma must be >= 0")
        count = arrays["count"] if arrays["count"].size == n else np.zeros(n)
        raw = arrays["raw_step"] if arrays["raw_step"].size == n else arrays["step"]
        return cls(tuple(arrays["g"]), tuple(arrays["step"]), tuple(arrays["sigma"]), tuple(int(c) for c in count),
                   tuple(raw))


def _interp(x, xp, fp):
    return np.interp(x, np.asarray(xp), np.asarray(fp))


def ramp_numpy(table: BranchTable, direction: int, max_pulses: int = MAX_STATES - 1):
    """The mean ramp of one direction: ``(h, s)`` at pulses ``0..N`` (numpy, float64).

    ``h`` is the distance climbed from the bound the pulses leave (``g`` for
    LTP, ``1 - g`` for LTD): ``h_0 = 0``, ``h_(k+1) = min(1, h_k + m(g_k))``;
    ``s_k`` the spread at ``h_k``.

    Raises:
        TableError: the ramp does not reach the other bound within ``max_pulses``.
    """
    h = [0.0]
    g_of = (lambda x: x) if direction > 0 else (lambda x: 1.0 - x)
    # the table is in g; for LTD, the step at h is the table's at g = 1 - h
    while h[-1] < 1.0:
        if len(h) > max_pulses:
            raise TableError(f"the {_BRANCH[direction]} table needs more than {max_pulses:,} pulses to cross the range "
                             f"(mean step {min(table.step):.3g} of the range at its smallest)")
        h.append(min(1.0, h[-1] + float(_interp(g_of(h[-1]), table.g, table.step))))
    h = np.asarray(h)
    s = _interp(g_of(h), table.g, table.sigma)
    return h, s


# --------------------------------------------------------------------------- building from data


def _steps(pulse, g, direction, cycle, rows, d):
    """States and steps (decreases for LTD) of direction ``d``: consecutive readings one pulse apart."""
    sel = np.flatnonzero(direction == d)
    order = sel[np.lexsort((rows[sel], pulse[sel], cycle[sel]))]
    p, gg, c = pulse[order], g[order], cycle[order]
    pair = (c[1:] == c[:-1]) & (p[1:] - p[:-1] == 1)
    step = (gg[1:] - gg[:-1]) * d
    return gg[:-1][pair], step[pair], c[:-1][pair]


def _bin(state, step, min_per_bin, max_bins, name, where):
    n = state.size
    if n < 2 * min_per_bin:
        raise TableError(f"{where}: too few readings per bin: the {name} branch has {n} steps (readings one pulse apart "
                         f"in one cycle); a table needs at least {2 * min_per_bin} ({min_per_bin} per bin, 2 bins)")
    n_bins = int(min(max_bins, n // min_per_bin))
    order = np.argsort(state, kind="stable")
    chunks = np.array_split(order, n_bins)
    centre = np.array([state[c].mean() for c in chunks])
    mean = np.array([step[c].mean() for c in chunks])
    sigma = np.array([step[c].std(ddof=1) for c in chunks])
    count = np.array([c.size for c in chunks])
    # bins whose centres coincide (many identical readings) are merged
    keep = np.r_[True, np.diff(centre) > 1e-12]
    if not np.all(keep):
        groups = np.cumsum(keep) - 1
        merged = [np.concatenate([chunks[i] for i in np.flatnonzero(groups == k)]) for k in range(groups.max() + 1)]
        centre = np.array([state[c].mean() for c in merged])
        mean = np.array([step[c].mean() for c in merged])
        sigma = np.array([step[c].std(ddof=1) for c in merged])
        count = np.array([c.size for c in merged])
    return centre, mean, sigma, count


def _range(pulse, conductance, direction, cycle):
    """Gmin, Gmax of a table: the mean last reading of the LTD and of the LTP branches (where the mean
    ramps of the measurement end; single readings beyond are noise, not range)."""
    ends = {}
    for d in (1, -1):
        last = []
        for c in np.unique(cycle[direction == d]):
            sel = (direction == d) & (cycle == c)
            p = pulse[sel]
            last.append(conductance[sel][p == p.max()].mean())
        ends[d] = float(np.mean(last))
    return ends[-1], ends[1]


MONOTONE_TOL = 0.05
"""How far (fraction of the range, beyond 3 standard errors) the mean measured ramp may fall back."""


def _check_mean_ramp(pulse, g, direction, cycle, d, where):
    """The mean over cycles of each pulse number's reading must not turn back (TableError naming it)."""
    sel = direction == d
    h = g[sel] if d > 0 else 1.0 - g[sel]
    p = pulse[sel]
    n_cycles = np.unique(cycle[sel]).size
    numbers, index, count = np.unique(p, return_inverse=True, return_counts=True)
    mean = np.bincount(index, h) / count
    sq = np.bincount(index, h * h) / count
    se = np.sqrt(np.maximum(sq - mean**2, 0.0) / np.maximum(count - 1, 1))
    keep = count >= max(2, n_cycles // 2) if n_cycles > 1 else count >= 1
    numbers, mean, se = numbers[keep], mean[keep], se[keep]
    if mean.size < 2:
        return
    peak = np.maximum.accumulate(mean)
    fall = peak - mean - 3 * se
    if np.max(fall) > MONOTONE_TOL:
        k = int(np.argmax(fall))
        q = int(np.argmax(mean[: k + 1]))
        sign = 1 if d > 0 else -1
        to_g = (lambda x: x) if d > 0 else (lambda x: 1 - x)
        raise TableError(f"{where}: the mean {_BRANCH[d]} ramp is not monotone: it turns back from g = {to_g(mean[q]):.3f} "
                         f"at pulse {numbers[q]} to {to_g(mean[k]):.3f} at pulse {numbers[k]} (a change of "
                         f"{-sign * (mean[q] - mean[k]):+.3f} of the range, mean over cycles)")


def _smooth(values):
    if values.size < 3:
        return values.copy()
    padded = np.r_[values[0], values, values[-1]]
    return (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4


def build_table(state, step, name="ltp", where="data", g_range=(0.0, 1.0), min_per_bin=MIN_PER_BIN,
                max_bins=MAX_BINS) -> BranchTable:
    """The `BranchTable` of one direction from its steps (normalized units; module docstring, steps 2-3).

    Raises:
        TableError: too few steps per bin, a branch that does not move, a mean
            step of the wrong sign beyond 3 standard errors (not monotone).
    """
    state, step = np.asarray(state, np.float64), np.asarray(step, np.float64)
    if state.size and not np.mean(step) > 3 * np.std(step) / math.sqrt(state.size):
        trend = "up" if name == "ltp" else "down"
        raise TableError(f"{where}: the {name} branch does not move {trend}: its mean step is {np.mean(step):.3g} of the "
                         f"range per pulse, within noise of 0 ({state.size} steps)")
    centre, mean, sigma, count = _bin(state, step, min_per_bin, max_bins, name, where)
    se = sigma / np.sqrt(count)
    lo, hi = g_range
    wrong = np.flatnonzero(mean < -3 * se)
    if wrong.size:
        k = wrong[np.argmin(mean[wrong] / np.maximum(se[wrong], 1e-300))]
        trend = "rise" if name == "ltp" else "fall"
        raise TableError(f"{where}: the mean {name} response is not monotone: around g = {centre[k]:.3f} of the range "
                         f"({count[k]} steps) the mean step is {mean[k]:.3g} +- {se[k]:.2g}, it must {trend}")
    smoothed = _smooth(mean)
    floor = _FLOOR * float(np.median(mean[mean > 0])) if np.any(mean > 0) else 1e-6
    smoothed = np.maximum(smoothed, floor)
    return BranchTable(tuple(centre), tuple(smoothed), tuple(sigma), tuple(int(c) for c in count), tuple(mean))


def table_from_data(data: dict, source="", name=None, min_per_bin=MIN_PER_BIN, max_bins=MAX_BINS,
                    variants=8, fit=None, seed=0) -> "TableDevice":
    """A `TableDevice` from pulse data (the dict `devsim.fitting.read_pulse_csv` returns).

    Args:
        data: ``pulse``, ``conductance``, ``direction`` (+1/-1), ``cycle``, ``row``.
        source: the data's origin (file name), quoted in messages and stored.
        name: device name (default: the file's stem).
        min_per_bin, max_bins: binning (module docstring).
        variants: tables built from bootstrap resamples of whole cycles, for
            device-to-device variation (``d2d_cycles``); 0, or fewer than 3
            cycles: none.
        fit: the `devsim.fitting.FitResult` of the same data (its exponential
            is stored beside the table; fitted here if None).
        seed: seed of the resamples.

    Raises:
        TableError, devsim.fitting.FitError: bad data, one line.
    """
    from pathlib import Path

    from devsim import fitting

    where = str(source) if str(source) else "data"
    pulse, conductance, direction, cycle, rows = fitting.pulse_arrays(data, source)
    for d in (1, -1):
        if not np.any(direction == d):
            raise TableError(f"{where}: the {_BRANCH[d]} branch has no readings; a table needs both directions")
    g_min, g_max = _range(pulse, conductance, direction, cycle)
    if not g_max > g_min:
        raise TableError(f"{where}: the conductance does not move (constant at {g_min:.6g})")
    g = (conductance - g_min) / (g_max - g_min)
    if fit is None:
        fit = fitting.fit_pulse_data(data, source=source)
    for d in (1, -1):
        _check_mean_ramp(pulse, g, direction, cycle, d, where)
    steps = {d: _steps(pulse, g, direction, cycle, rows, d) for d in (1, -1)}
    tables = {d: build_table(steps[d][0], steps[d][1], _BRANCH[d], where, min_per_bin=min_per_bin, max_bins=max_bins)
              for d in (1, -1)}
    for d in (1, -1):
        ramp_numpy(tables[d], d)  # raises if a ramp cannot cross the range
    extra = []
    ids = np.unique(cycle)
    if variants and ids.size >= 3:
        rng = np.random.default_rng(seed)
        for _ in range(int(variants)):
            take = rng.choice(ids, ids.size, replace=True)
            pair = {}
            for d in (1, -1):
                st, sp, cy = steps[d]
                idx = np.concatenate([np.flatnonzero(cy == c) for c in take])
                try:
                    pair[d] = build_table(st[idx], sp[idx], _BRANCH[d], where, min_per_bin=min_per_bin, max_bins=max_bins)
                    ramp_numpy(pair[d], d)
                except TableError:
                    pair = None
                    break
            if pair is not None:
                extra.append({"ltp": pair[1].to_dict(), "ltd": pair[-1].to_dict()})
    default = Path(str(source)).stem if str(source) else None
    return TableDevice(
        ltp=tables[1], ltd=tables[-1], g_min=float(g_min), g_max=float(g_max), a_p=fit.a_p, a_d=fit.a_d,
        variants=tuple(extra), on_off=float(g_max / g_min) if g_min > 0 else math.inf,
        name=name or default, source=str(source) or None,
    )


# --------------------------------------------------------------------------- the device


def _table_field(value, where):
    if isinstance(value, BranchTable):
        return value
    return BranchTable.from_dict(value, where)


@dataclasses.dataclass(frozen=True, eq=False)
class TableDevice(Device):
    """A device whose pulse response is a measured step table (module docstring; docs/measured.md).

    Same interface as `devsim.devices.ExpDevice`: tiles, `DeviceOptimizer`,
    runs and sweeps use it unchanged. ``num_pulses``/``num_pulses_ltd`` are
    the pulses of the mean ramps (``N_p``, ``N_d``).

    Args:
        ltp, ltd: the `BranchTable` of each direction (or its dict).
        g_min, g_max: the measured conductances of g = 0 and g = 1 (the CSV's unit; metadata).
        a_p, a_d: the exponential fitted to the same data (``nl_labels``, ``describe``; metadata).
        c2c: mean C2C sigma per pulse (fraction of the range) the noise is scaled to;
            None: the measured spread as it is; 0: no noise.
        variants: tables from bootstrap resamples of the cycles (dicts with ``ltp``, ``ltd``).
        d2d_cycles: each device draws one of the variants (device-to-device variation).
        on_off, d2d_range, stuck_gmin, stuck_gmax, read_noise: as `ExpDevice`'s.
        name, source: metadata.
    """

    ltp: BranchTable
    ltd: BranchTable
    g_min: float = 0.0
    g_max: float = 1.0
    a_p: float = math.inf
    a_d: float = math.inf
    c2c: float | None = None
    variants: tuple = ()
    d2d_cycles: bool = False
    on_off: float = same_option("on_off")
    d2d_range: float = same_option("d2d_range")
    stuck_gmin: float = same_option("stuck_gmin")
    stuck_gmax: float = same_option("stuck_gmax")
    read_noise: float = same_option("read_noise")
    name: str | None = None
    source: str | None = None
    variant: np.ndarray | None = None  # per-device variant index (set by `sample`; not in the config)

    kind = "table"
    OPTION_FIELDS = ("c2c", "on_off", "d2d_range", "stuck_gmin", "stuck_gmax", "read_noise")

    def __post_init__(self):
        object.__setattr__(self, "ltp", _table_field(self.ltp, "ltp"))
        object.__setattr__(self, "ltd", _table_field(self.ltd, "ltd"))
        check_all(self)
        if self.c2c is not None:
            c2c = _number(self.c2c)
            if isinstance(c2c, bool) or not isinstance(c2c, (int, float)) or not 0 <= c2c <= 1:
                raise FieldError("c2c", f"must be a number in [0, 1] (or null: the measured spread), got {self.c2c!r}")
            object.__setattr__(self, "c2c", float(c2c))
        if self.stuck_gmin + self.stuck_gmax > 1:
            raise FieldError("stuck_gmin", "stuck_gmin + stuck_gmax must be at most 1")
        if not isinstance(self.d2d_cycles, (bool, np.bool_)):
            raise FieldError("d2d_cycles", f"must be true or false, got {self.d2d_cycles!r}")
        if self.d2d_cycles and not self.variants:
            raise FieldError("d2d_cycles", "needs variants (tables from resampled cycles; build the table from 3 or "
                             "more cycles)")
        variants = []
        for i, v in enumerate(self.variants):
            if not isinstance(v, dict) or set(v) != {"ltp", "ltd"}:
                raise FieldError("variants", f"variant {i} must be an object with ltp and ltd tables")
            variants.append({k: _table_field(v[k], f"variants[{i}].{k}") for k in ("ltp", "ltd")})
        object.__setattr__(self, "variants", tuple(variants))
        for name in ("g_min", "g_max", "a_p", "a_d"):
            value = _number(getattr(self, name))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise FieldError(name, f"must be a number, got {getattr(self, name)!r}")
            object.__setattr__(self, name, float(value))
        for d, table in ((1, self.ltp), (-1, self.ltd)):
            try:
                ramp_numpy(table, d)
            except TableError as exc:
                raise FieldError(_BRANCH[d], str(exc)) from None

    # ------------------------------------------------------------------ ramps

    @functools.cached_property
    def _ramps(self):
        """Per table set (nominal, then variants): ``(h_up, s_up, h_down, s_down)``."""
        sets = [(self.ltp, self.ltd)] + [(v["ltp"], v["ltd"]) for v in self.variants]
        return [(*ramp_numpy(a, 1), *ramp_numpy(b, -1)) for a, b in sets]

    @property
    def num_pulses(self) -> int:
        return len(self._ramps[0][0]) - 1

    @property
    def num_pulses_ltd(self) -> int:
        return len(self._ramps[0][2]) - 1

    @property
    def states(self) -> int:
        return self.num_pulses + 1

    @property
    def states_ltd(self) -> int:
        return self.num_pulses_ltd + 1

    @functools.cached_property
    def measured_c2c(self) -> float:
        """Mean measured C2C sigma per pulse (fraction of the range), weighted by steps."""
        sig = np.r_[self.ltp.sigma, self.ltd.sigma]
        count = np.r_[self.ltp.count, self.ltd.count].astype(np.float64)
        if count.sum() == 0:
            count = np.ones_like(sig)
        return float(np.sqrt(np.sum(count * sig**2) / np.sum(count)))

    @property
    def noise_scale(self) -> float:
        """Factor on the measured spread: 1, or ``c2c / measured_c2c`` when ``c2c`` is set."""
        if self.c2c is None:
            return 1.0
        return 0.0 if self.c2c == 0 or self.measured_c2c == 0 else self.c2c / self.measured_c2c

    @property
    def c2c_sigma(self) -> float:
        """The mean C2C sigma per pulse the device applies (0 when off)."""
        return self.measured_c2c if self.c2c is None else self.c2c

    @functools.cached_property
    def _tensors(self):
        """float32 numpy arrays for the tensor ops: the ramps of all table sets and directions
        concatenated into one increasing sequence (set ``v``, direction ``d``: offset ``4 v + (d < 0) 2``),
        their running variance sums, and per set/direction the start index and N."""
        seq, cum, start, count = [], [], [], []
        n = 0
        for v, (h_up, s_up, h_dn, s_dn) in enumerate(self._ramps):
            for k, (h, s) in enumerate(((h_up, s_up), (h_dn, s_dn))):
                seq.append(h + 4 * v + 2 * k)
                cum.append(np.r_[0.0, np.cumsum(s[:-1] ** 2)])
                start.append(n)
                count.append(len(h) - 1)
                n += len(h)
        f32 = functools.partial(np.asarray, dtype=np.float32)
        return f32(np.concatenate(seq)), f32(np.concatenate(cum)), np.asarray(start, np.int32), f32(count)

    # ------------------------------------------------------------------ interface

    @property
    def nl_labels(self):
        """NeuroSim labels of the exponential fitted to the same data."""
        from devsim import nonlinearity

        return nonlinearity.ltp_label(self.a_p), nonlinearity.ltd_label(self.a_d)

    @property
    def needs_sampling(self) -> bool:
        return bool(self.d2d_cycles) or self.d2d_range > 0 or self.stuck_gmin > 0 or self.stuck_gmax > 0

    @property
    def is_linear(self) -> bool:
        return False

    def linear_twin(self) -> ExpDevice:
        """A linear `ExpDevice` with the same levels (N_p, N_d) and non-idealities (C2C: the mean sigma)."""
        return ExpDevice(math.inf, math.inf, self.states, states_ltd=self.states_ltd, on_off=self.on_off,
                         c2c=self.c2c_sigma, d2d_range=self.d2d_range, stuck_gmin=self.stuck_gmin,
                         stuck_gmax=self.stuck_gmax, read_noise=self.read_noise)

    def fitted_exponential(self) -> ExpDevice:
        """The exponential device fitted to the same data (same levels and non-idealities)."""
        return dataclasses.replace(self.linear_twin(), a_p=self.a_p, a_d=self.a_d, name=self.name, source=self.source)

    def sample(self, shape, seed=None, copies: int = 0) -> DevicePopulation:
        """Each device's variant table (``d2d_cycles``), range factor and stuck state, fixed for life.

        ``copies`` leading axes of ``shape`` index stacked copies, which share one copy's draws.
        """
        if not self.needs_sampling:
            return DevicePopulation(self)
        rng = np.random.default_rng(seed)
        shape = tuple(shape)[copies:]
        fields = {"d2d_range": 0.0, "stuck_gmin": 0.0, "stuck_gmax": 0.0, "d2d_cycles": False}
        if self.d2d_cycles:
            fields["variant"] = rng.integers(1, len(self.variants) + 1, size=shape).astype(np.int32)
        range_scale, stuck = draw_range_and_stuck(self, shape, rng)
        return DevicePopulation(dataclasses.replace(self, **fields), range_scale, stuck)

    def _move(self, g, n, xp, variant=None):
        """Noise-free ``(g_new, lost, k, var)``: ``var`` the C2C variance of the path (before scaling)."""
        seq, cum, start, count = self._tensors
        up = n > 0
        k = xp.abs(n)
        h = xp.where(up, g, 1.0 - g)
        which = xp.where(up, 0, 1)
        if variant is not None:
            which = which + 2 * xp.convert_to_tensor(variant) if xp is ops else which + 2 * np.asarray(variant)
        if xp is ops:
            which = ops.cast(which, "int32")
            lo = ops.take(ops.convert_to_tensor(start), which)
            n_dir = ops.take(ops.convert_to_tensor(count), which)
            offset = ops.cast(which // 2 * 4 + which % 2 * 2, g.dtype)
            seq_t, cum_t = ops.convert_to_tensor(seq), ops.convert_to_tensor(cum)
            flat = ops.reshape(h + offset, (-1,))
            i = ops.reshape(ops.searchsorted(seq_t, flat, side="right"), ops.shape(h)) - 1
            take = lambda a, idx: ops.take(a, idx)  # noqa: E731
            floor, cast_int = ops.floor, (lambda x: ops.cast(x, "int32"))
        else:
            which = np.asarray(which, np.int32)
            lo, n_dir = start[which], count[which]
            offset = (which // 2 * 4 + which % 2 * 2).astype(np.float32)
            seq_t, cum_t = seq, cum
            i = np.searchsorted(seq, h + offset, side="right").astype(np.int32) - 1
            take = lambda a, idx: a[idx]  # noqa: E731
            floor, cast_int = np.floor, (lambda x: np.asarray(x).astype(np.int32))
        n_int = cast_int(n_dir)
        i = xp.clip(i, lo, lo + n_int - 1)
        r0, r1 = take(seq_t, i) - offset, take(seq_t, i + 1) - offset
        frac = xp.clip((h - r0) / xp.maximum(r1 - r0, 1e-12), 0.0, 1.0)
        p = ops.cast(i - lo, g.dtype) + frac if xp is ops else (i - lo).astype(np.float32) + frac
        room = n_dir - p
        p_new = xp.minimum(p + k, n_dir)
        j = xp.clip(cast_int(floor(p_new)), 0, n_int - 1)
        f = p_new - (ops.cast(j, g.dtype) if xp is ops else j.astype(np.float32))
        a, b = take(seq_t, lo + j) - offset, take(seq_t, lo + j + 1) - offset
        h_new = xp.clip(a + f * (b - a), 0.0, 1.0)
        g_new = xp.where(up, h_new, 1.0 - h_new)
        relu = ops.relu if xp is ops else (lambda x: np.maximum(x, 0.0))
        lost = relu(k - relu(xp.ceil(room - _AT_BOUND_TOL)))

        def cum_at(q, base):
            qi = xp.clip(cast_int(floor(q)), 0, n_int - 1)
            qf = q - (ops.cast(qi, g.dtype) if xp is ops else qi.astype(np.float32))
            c0, c1 = take(cum_t, base + qi), take(cum_t, base + qi + 1)
            return c0 + qf * (c1 - c0)

        var = relu(cum_at(p_new, lo) - cum_at(p, lo))
        return g_new, lost, k, var

    def apply_pulses(self, g, n, seed=None, noise_shape=None, xi=None):
        """Apply signed pulse counts along the measured ramps; returns ``(g_new, lost)`` (see `ExpDevice`)."""
        g = ops.convert_to_tensor(g)
        n = ops.cast(n, g.dtype)
        g_new, lost, k, var = self._move(g, n, ops, self.variant)
        scale = self.noise_scale
        if scale > 0:
            if xi is None and seed is None:
                raise ValueError("a table device with C2C noise needs a seed (a keras.random.SeedGenerator or int)")
            if xi is None:
                xi = random.normal(noise_shape or ops.shape(g_new), dtype=g.dtype, seed=seed)
            g_new = ops.clip(g_new + np.float32(scale) * ops.sqrt(var) * xi, 0.0, 1.0)
        return ops.where(k == 0, g, g_new), lost

    def level(self, p):
        """Conductance of state ``p`` (0..N_p): ``p`` pulses along the mean LTP ramp from Gmin."""
        p = ops.convert_to_tensor(p, dtype="float32")
        return self._move(ops.zeros_like(p), p, ops)[0]

    def nearest_state(self, g):
        """Snap ``g`` to the nearest level of the mean LTP ramp: ``(p, g_snapped)``."""
        seq, _, _, _ = self._tensors
        g = ops.clip(ops.convert_to_tensor(g, dtype="float32"), 0.0, 1.0)
        ramp = ops.convert_to_tensor(seq[: self.num_pulses + 1])
        hi = ops.clip(ops.reshape(ops.searchsorted(ramp, ops.reshape(g, (-1,)), side="left"), ops.shape(g)),
                      0, self.num_pulses)
        lo = ops.clip(hi - 1, 0, self.num_pulses)
        g_lo, g_hi = ops.take(ramp, lo), ops.take(ramp, hi)
        take_hi = ops.abs(g_hi - g) < ops.abs(g - g_lo)
        return ops.cast(ops.where(take_hi, hi, lo), "float32"), ops.where(take_hi, g_hi, g_lo)

    def response(self):
        """The mean ramps as one cycle (numpy): N_p LTP pulses from Gmin, then N_d LTD pulses."""
        h_up, _, h_dn, _ = self._ramps[0]
        g = np.r_[h_up, 1.0 - h_dn[1:]].astype(np.float32)
        return np.arange(g.size), g

    def simulate(self, g0, pulses, seed=0, variant=None):
        """Numpy: one device from ``g0`` through a sequence of signed pulses ``pulses`` (one per event),
        with its C2C noise; returns the conductance after each event (for figures)."""
        rng = np.random.default_rng(seed)
        g = np.float32(g0)
        out = []
        for n in pulses:
            g_new, _, k, var = self._move(np.float32(g), np.float32(n), np, variant)
            if self.noise_scale > 0:
                g_new = np.clip(g_new + self.noise_scale * np.sqrt(var) * rng.standard_normal(), 0.0, 1.0)
            g = np.float32(g if k == 0 else g_new)
            out.append(float(g))
        return np.asarray(out)

    def slug(self) -> str:
        return "table"

    def describe(self) -> str:
        nl_p, nl_d = self.nl_labels
        text = (f"measured table, {self.num_pulses}/{self.num_pulses_ltd} pulses (fitted A_p={self.a_p:.3g}, "
                f"A_d={self.a_d:.3g}, NL {nl_p:.2f}/{nl_d:.2f})")
        return f"{self.name}: {text}" if self.name else text

    def get_config(self) -> dict:
        """Strict-JSON-able parameters; `from_config` inverts it."""
        config = {"kind": "table"}
        for f in dataclasses.fields(self):
            if f.name == "variant":
                continue
            value = getattr(self, f.name)
            if isinstance(value, BranchTable):
                value = value.to_dict()
            elif f.name == "variants":
                value = [{k: t.to_dict() for k, t in v.items()} for v in value]
            config[f.name] = value
        config["states"], config["states_ltd"] = self.states, self.states_ltd
        config["nl_ltp"], config["nl_ltd"] = (round(float(x), 4) for x in self.nl_labels)
        return config

    METADATA_KEYS = ("kind", "states", "states_ltd", "nl_ltp", "nl_ltd", "fit", "exponential", "goodness")

    @classmethod
    def from_config(cls, config: dict):
        names = {f.name for f in dataclasses.fields(cls)} - {"variant"}
        unknown = [k for k in config if k not in names and k not in cls.METADATA_KEYS]
        if unknown:
            raise FieldError(unknown[0], f"not a table-device parameter (known: {', '.join(sorted(names))})")
        for key in ("ltp", "ltd"):
            if key not in config:
                raise FieldError(key, "a table device needs the ltp and ltd tables")
        fields = {k: _number(v) if not isinstance(v, (dict, list)) else v for k, v in config.items() if k in names}
        if "variants" in fields:
            if not isinstance(fields["variants"], list):
                raise FieldError("variants", "must be a list of {ltp, ltd} tables")
            fields["variants"] = tuple(fields["variants"])
        return cls(**fields)


# --------------------------------------------------------------------------- goodness of fit


def goodness(data: dict, table: "TableDevice", fit, source="", bins=12) -> dict:
    """How well the fitted exponential and the table predict the measured steps.

    Every pair of consecutive readings one pulse apart is a one-pulse
    prediction: from the measured state, each model's noise-free step, against
    the measured next reading. Residuals are in fractions of the table's range.
    Per direction they are also binned against G (equal-count bins): a bin
    whose mean residual is more than 3 standard errors from 0 is structure
    the model misses.

    Returns:
        ``{"rms_exp", "rms_table", "ratio": rms_exp / rms_table, "bias": {ltp/ltd: {"g", "exp", "table",
        "se"}}, "biased_bins_exp", "biased_bins_table", "adequate": bool, "verdict": str}``.
    """
    from devsim import fitting

    pulse, conductance, direction, cycle, rows = fitting.pulse_arrays(data, source)
    span = table.g_max - table.g_min
    exp = ExpDevice(fit.a_p, fit.a_d, fit.states, states_ltd=fit.states_ltd)
    fit_span = fit.g_max - fit.g_min
    out = {"bias": {}}
    res = {"exp": [], "table": []}
    biased = {"exp": 0, "table": 0}
    for d in (1, -1):
        g_tab = (conductance - table.g_min) / span
        state, step, _ = _steps(pulse, g_tab, direction, cycle, rows, d)
        before = state
        after = state + d * step
        n = np.full(before.shape, float(d), np.float32)
        pred_tab = np.asarray(table._move(before.astype(np.float32), n, np)[0], np.float64)
        g_fit = (before * span + table.g_min - fit.g_min) / fit_span
        pred_exp = np.asarray(exp._move(np.clip(g_fit, 0, 1).astype(np.float32), n, np)[0], np.float64)
        pred_exp = (pred_exp * fit_span + fit.g_min - table.g_min) / span
        r_tab, r_exp = after - pred_tab, after - pred_exp
        res["exp"].append(r_exp)
        res["table"].append(r_tab)
        order = np.argsort(before, kind="stable")
        chunks = np.array_split(order, max(1, min(bins, before.size // MIN_PER_BIN)))
        entry = {"g": [float(before[c].mean()) for c in chunks],
                 "exp": [float(r_exp[c].mean()) for c in chunks],
                 "table": [float(r_tab[c].mean()) for c in chunks],
                 "se": [float(r_tab[c].std(ddof=1) / math.sqrt(c.size)) if c.size > 1 else math.inf for c in chunks]}
        for model in ("exp", "table"):
            biased[model] += int(np.sum(np.abs(entry[model]) > 3 * np.asarray(entry["se"])))
        out["bias"][_BRANCH[d]] = entry
    rms = {m: float(np.sqrt(np.mean(np.concatenate(v) ** 2))) for m, v in res.items()}
    out.update(rms_exp=rms["exp"], rms_table=rms["table"], ratio=rms["exp"] / rms["table"] if rms["table"] else math.inf,
               biased_bins_exp=biased["exp"], biased_bins_table=biased["table"],
               n_bins=sum(len(v["g"]) for v in out["bias"].values()))
    adequate = out["ratio"] < 1.05 and biased["exp"] <= max(1, biased["table"])
    out["adequate"] = bool(adequate)
    out["verdict"] = (
        f"one-pulse prediction rms: exponential {100 * rms['exp']:.3f} %, table {100 * rms['table']:.3f} % of the range "
        f"(ratio {out['ratio']:.2f}); mean residual off zero (> 3 SE) in {biased['exp']} of {out['n_bins']} G bins "
        f"for the exponential, {biased['table']} for the table: "
        + ("the exponential model is adequate" if adequate else
           "the exponential model misses structure of this device; train on the table device"))
    return out
