"""Conductance models: how a device's normalized conductance moves under pulses.

A device stores its normalized conductance ``g = (G - Gmin) / (Gmax - Gmin)``
in ``[0, 1]`` and has ``states`` levels over a full sweep, so ``N = states - 1``
identical pulses take it from Gmin to Gmax. Potentiation (LTP) after ``x = p/N``
of a full sweep, and depression (LTD) after ``y = q/N`` down from Gmax::

    g_ltp(x) = (1 - exp(-x / A_p)) / (1 - exp(-1 / A_p))
    g_ltd(y) = 1 - (1 - exp(-y / A_d)) / (1 - exp(-1 / A_d))

``A > 0`` saturates (steps shrink toward the bound being approached), ``A < 0``
accelerates, ``A = inf`` is linear (every pulse moves g by exactly ``1/N``).
Applying ``n`` pulses from any ``g`` follows the curve of that direction from
g's position on it; in closed form (soft bounds, no logarithm)::

    potentiate: g' = min(1, g + (s_p - g) * (1 - exp(-n / (N * A_p))))
    depress:    g' = max(0, g - (g - 1 + s_d) * (1 - exp(-n / (N * A_d))))
    s = 1 / (1 - exp(-1 / A))

When ``A_p != A_d`` up-then-down does not return to the start: that asymmetry
is the physics studied, so the stored state is the float ``g``, not a pulse
count. NeuroSim's curves in absolute pulses are the same with its ``A`` equal
to ``A * N`` here; aihwkit's ``SoftBoundsPmaxDevice(p_max=N, alpha=1/(A*N))``
is the symmetric case (docs/devices.md derives both).

Two layers: `ExpDevice` holds a device model's parameters (a frozen dataclass
whose fields are the device options of `devsim run`), and `DevicePopulation`
holds the devices of one weight array, each with what it drew for itself
once (device-to-device variation, stuck devices). ``ExpDevice.sample(shape,
seed)`` makes the population; `devsim.tiles` keeps one per device variable.

All methods are tensor ops (``keras.ops``) on whole arrays, and ``a_p``, ``a_d``
broadcast: a per-device array of curvatures works unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from devsim.lazy import ops, random

from devsim import curves, nonlinearity
from devsim.options import FieldError, check_all, option

_AT_BOUND_TOL = 1e-3  # a device within 1/1000 of a pulse of its bound counts as at it
_SNAP = 1e-6  # float32 round-off: conductances this close to 1 after LTP are the bound itself
MAX_STATES = 100_000
"""Most levels a device may have (real devices have tens to a few thousand)."""


def _constant(x, xp, dtype):
    """A numpy constant of the curve math as a tensor of the operands' ``dtype`` when ``xp`` is keras.ops
    (PyTorch neither subtracts tensors from numpy arrays nor keeps the operands' dtype against a 0-d
    float64 array; TensorFlow converted the constant to the operands' dtype itself)."""
    if xp is ops and isinstance(x, np.ndarray):
        return ops.convert_to_tensor(x, dtype=dtype)
    return x


def _curvature_problem(symbol):
    def check(value):
        a = np.abs(np.asarray(value, dtype=np.float64))
        if np.any(np.isnan(a)) or np.any(a < curves.A_MIN):
            return (f"{symbol} must be a non-zero number with |{symbol}| >= {curves.A_MIN:g} "
                    f"(> 0 saturating, < 0 accelerating, inf linear), got {value!r}")
        return None
    return check


C2C_MODES = ("sqrt", "step", "neurosim")
CELLS = ("1t1r", "fefet")
DEVICE = "device"  # option group of the device fields


def _fraction(help, unit, label, symbol):
    return option(0.0, help, unit=unit, label=label, symbol=symbol, minimum=0.0, maximum=1.0, group=DEVICE)


class Device:
    """What a device model offers: the interface tiles, runs and figures use.

    `ExpDevice` (the exponential model) implements it; a measured response
    (`devsim.measured`) is another kind. Conductances are normalized, ``g`` in
    [0, 1]; every method works on whole tensors (``keras.ops``) unless it says
    numpy. A kind registers in `DEVICE_KINDS` so device JSON files
    (``"kind": ...``) load it.

    - ``states``, ``states_ltd``, ``num_pulses``, ``num_pulses_ltd``: levels and
      pulses of a full LTP / LTD sweep; ``c2c``, ``read_noise``, ``on_off``;
      ``name``, ``source`` (metadata).
    - ``apply_pulses(g, n, seed=None, noise_shape=None, xi=None) -> (g', lost)``;
      ``read(g, seed=None, noise_shape=None, xi=None, range_scale=None)``;
      ``level(p)`` (conductance of state p), ``nearest_state(g) -> (p, g)``.
    - ``sample(shape, seed) -> DevicePopulation``: the devices of one array.
    - ``response() -> (pulse, g)`` (numpy): one noise-free LTP-then-LTD cycle.
    - ``is_linear``, ``linear_twin()``: the linear device with the same levels
      and non-idealities (the run's ``linear`` reference).
    - ``nl_labels``, ``describe()``, ``slug()``, ``get_config()`` / ``from_config(dict)``.
    - ``OPTION_FIELDS``: the fields of this kind that the device options of
      ``devsim run`` (``--c2c``, ``--read-noise``, ...) may override; an
      option naming another field is refused for this kind (one line naming it).

    The base class holds what every kind shares: `read` (read noise, on/off,
    range factor), and `pulse`/`potentiate`/`depress`/`pulses_lost` on top of
    ``apply_pulses``.
    """

    kind = None
    OPTION_FIELDS = ()

    @property
    def c2c_sigma(self) -> float:
        """The mean cycle-to-cycle sigma per pulse this device applies (0: no C2C noise is drawn)."""
        return self.c2c

    def read(self, g, seed=None, noise_shape=None, xi=None, range_scale=None):
        """The normalized conductance the periphery reads from devices at ``g``.

        ``G/Gmax = range_scale * (f + (1 - f) g) * (1 + read_noise * xi)`` with
        ``f = 1/on_off``, returned as ``(G/Gmax - f) / (1 - f)`` against the
        nominal Gmin and Gmax. It is ``g`` itself when nothing varies. Read noise
        is drawn only when a ``seed`` (or the draws ``xi``) is given; ``g`` is
        never modified.

        Args:
            range_scale: each device's range factor (a `DevicePopulation`'s);
                None: nominal.
        """
        noisy = self.read_noise > 0 and (seed is not None or xi is not None)
        if not noisy and range_scale is None:
            return g
        f = 0.0 if math.isinf(self.on_off) else 1.0 / self.on_off
        conductance = f + (1.0 - f) * g
        if range_scale is not None:
            conductance = ops.cast(range_scale, g.dtype) * conductance
        if noisy:
            if xi is None:
                xi = random.normal(noise_shape or ops.shape(g), dtype=g.dtype, seed=seed)
            conductance = conductance * (1.0 + self.read_noise * xi)
        return (conductance - f) / (1.0 - f)

    def pulse(self, g, n, seed=None):
        """Apply signed pulse counts (``n > 0`` LTP, ``n < 0`` LTD); returns the new ``g``.

        Pulses past a bound do nothing (the device stays at 0 or 1).
        """
        return self.apply_pulses(g, n, seed)[0]

    def pulses_lost(self, g, n):
        """How many of the signed pulses ``n`` at ``g`` fall past the bound (do nothing)."""
        return self.apply_pulses(g, n, seed=0)[1]

    def potentiate(self, g, n, seed=None):
        """Apply ``n >= 0`` LTP pulses to devices at ``g``; returns the new ``g``."""
        return self.pulse(g, ops.abs(ops.convert_to_tensor(n, dtype="float32")), seed)

    def depress(self, g, n, seed=None):
        """Apply ``n >= 0`` LTD pulses to devices at ``g``; returns the new ``g``."""
        return self.pulse(g, -ops.abs(ops.convert_to_tensor(n, dtype="float32")), seed)



@dataclasses.dataclass(frozen=True, eq=False)
class ExpDevice(Device):
    """Exponential LTP/LTD device (NeuroSim's model, normalized), with non-idealities.

    The curve (docs/devices.md): after ``x = p / N_p`` of an LTP sweep and
    ``y = q / N_d`` of an LTD sweep,
    ``g_ltp(x) = (1 - exp(-x/A_p)) / (1 - exp(-1/A_p))`` and
    ``g_ltd(y) = 1 - (1 - exp(-y/A_d)) / (1 - exp(-1/A_d))``. ``n`` pulses
    from ``g``::

        g' = g + (s_p - g) (1 - exp(-n / (N_p A_p)))         # LTP, then min(1, .)
        g' = g - (g - 1 + s_d) (1 - exp(-n / (N_d A_d)))     # LTD, then max(0, .)
        g' = clip(g' + c2c * sqrt(n) * xi, 0, 1)             # C2C, xi ~ N(0, 1)

    Every non-ideality is off by default, and is exactly the identity at 0.
    Each field is an option of ``devsim run`` (its help, unit and allowed
    values are declared with it; see `devsim.options`). ``a_p`` and ``a_d``
    may be arrays that broadcast against the weights (one value per device).
    The fields set to device-to-device variation (``d2d``, ``d2d_range``,
    ``stuck_*``) are drawn per device by `sample`.

    Args:
        a_p: LTP curvature ``A_p``.
        a_d: LTD curvature ``A_d``.
        states: levels of an LTP sweep, ``N_p = states - 1``.
        states_ltd: levels of an LTD sweep, ``N_d = states_ltd - 1`` (None: ``states``).
        on_off: ``Gmax / Gmin``.
        c2c: cycle-to-cycle sigma.
        c2c_mode: ``"sqrt"`` or ``"step"``.
        d2d: device-to-device sigma of the NL labels.
        d2d_range: device-to-device relative sigma of the range.
        stuck_gmin: fraction of devices stuck at Gmin.
        stuck_gmax: fraction of devices stuck at Gmax.
        read_noise: relative sigma of the read noise.
        r_on: resistance at Gmax (Ohm), for series-resistance reads (`devsim.periphery`).
        cell: ``"1t1r"`` or ``"fefet"`` (how series resistance enters the reads).
        name: preset or file name (metadata).
        source: where the parameters come from, e.g. a paper (metadata).
    """

    a_p: float = option(
        math.inf, "LTP curvature A_p: > 0 saturating, < 0 accelerating, inf linear.", unit="fraction of the LTP sweep",
        label=r"LTP curvature $A_\mathrm{p}$", symbol=r"$A_\mathrm{p}$", validate=_curvature_problem("A_p"),
        option="ltp", group=DEVICE)
    a_d: float = option(
        math.inf, "LTD curvature A_d, for depression from Gmax (same conventions).", unit="fraction of the LTD sweep",
        label=r"LTD curvature $A_\mathrm{d}$", symbol=r"$A_\mathrm{d}$", validate=_curvature_problem("A_d"),
        option="ltd", group=DEVICE)
    states: int = option(
        101, "Conductance levels of an LTP sweep: N = states - 1 pulses take a device from Gmin to Gmax.",
        unit="levels", label="Number of states", symbol="states", minimum=2, maximum=MAX_STATES, group=DEVICE)
    states_ltd: int | None = option(
        None, "Levels of the LTD sweep when they differ from LTP (NeuroSim's maxNumLevelLTD); unset: states.",
        unit="levels", label="Number of LTD states", symbol="LTD states", minimum=2, maximum=MAX_STATES, group=DEVICE)
    on_off: float = option(
        math.inf, "On/off ratio Gmax/Gmin (inf: Gmin = 0). A device conducts G/Gmax = f + (1 - f) g, f = 1/on_off; "
        "it matters once read noise or range variation act on G.", label=r"On/off ratio $G_\mathrm{max}/G_\mathrm{min}$",
        symbol="on/off", minimum=1.0, exclusive_minimum=True, group=DEVICE)
    c2c: float = option(
        0.0, "Cycle-to-cycle variation: each programming event of n pulses adds N(0, c2c sqrt(n)) to g "
        "(c2c-mode sqrt or neurosim) or N(0, c2c |dg|) (step).", unit="sigma, fraction of the conductance range",
        label="Cycle-to-cycle σ (fraction of range)", symbol="C2C σ", minimum=0.0, maximum=1.0, group=DEVICE)
    c2c_mode: str = option(
        "sqrt", "How C2C noise scales with a programming event: sqrt (sigma sqrt(n)), step (sigma |dg|) or neurosim "
        "(sigma sqrt(n) added to the curve's value before it is clipped to the bounds, as Cell.cpp does).",
        choices=C2C_MODES, label="C2C scaling", symbol="C2C", group=DEVICE)
    d2d: float = option(
        0.0, "Device-to-device variation of the nonlinearity: each device draws NL_LTP + N(0, d2d) and "
        "NL_LTD + N(0, d2d) once, fixed for its life.", unit="sigma, NeuroSim NL-label units",
        label="Device-to-device σ (NL label)", symbol="D2D σ", minimum=0.0, maximum=nonlinearity.NL_LIMIT, group=DEVICE)
    d2d_range: float = option(
        0.0, "Device-to-device variation of the conductance range: each device's Gmin and Gmax are scaled once by "
        "1 + N(0, d2d_range) (at least 0.05), read against the nominal reference.", unit="relative sigma",
        label="Device-to-device range σ (relative)", symbol="D2D range σ", minimum=0.0, maximum=1.0, group=DEVICE)
    stuck_gmin: float = _fraction(
        "Fraction of devices stuck at Gmin: their pulses do nothing (counted as lost).", "fraction of devices",
        r"Devices stuck at $G_\mathrm{min}$ (fraction)", r"stuck at $G_\mathrm{min}$")
    stuck_gmax: float = _fraction(
        "Fraction of devices stuck at Gmax.", "fraction of devices",
        r"Devices stuck at $G_\mathrm{max}$ (fraction)", r"stuck at $G_\mathrm{max}$")
    read_noise: float = option(
        0.0, "Multiplicative read noise: every read returns G (1 + N(0, read_noise)); the stored g never changes.",
        unit="relative sigma", label="Read noise σ (relative)", symbol="read σ", minimum=0.0, maximum=1.0, group=DEVICE)
    r_on: float | None = option(
        None, "Resistance of a device at Gmax (1/Gmax), for reads with series resistance (--r-access, --r-wire).",
        unit="Ohm", label=r"$R_\mathrm{on}$ (Ohm)", symbol=r"$R_\mathrm{on}$", minimum=0.0, exclusive_minimum=True,
        finite=True, group=DEVICE)
    cell: str = option(
        "1t1r", "Cell type for reads with --r-access: 1t1r (the access resistance in series with every read) or "
        "fefet (NeuroSim's FeFET flag: cells are read without it, the ADC bounds and weight read-back with it).",
        choices=CELLS, label="Cell", symbol="cell", group=DEVICE)
    name: str | None = None
    source: str | None = None

    def __post_init__(self):
        check_all(self)
        if self.states_ltd is None:
            object.__setattr__(self, "states_ltd", self.states)
        if self.stuck_gmin + self.stuck_gmax > 1:
            raise FieldError("stuck_gmin", f"stuck_gmin + stuck_gmax must be at most 1, got {self.stuck_gmin + self.stuck_gmax:g}")

    @classmethod
    def from_nl(cls, nl_ltp, nl_ltd, states=101, **fields):
        """A device from NeuroSim labels, e.g. ``from_nl(2.4, -4.88, 97)`` for Ag:a-Si."""

        def scalar(x):
            return float(x) if np.ndim(x) == 0 else x

        a_p = scalar(nonlinearity.a_p_from_label(nl_ltp))
        return cls(a_p, scalar(nonlinearity.a_d_from_label(nl_ltd)), states, **fields)

    @property
    def num_pulses(self) -> int:
        """``N = N_p = states - 1``: LTP pulses for a full sweep."""
        return self.states - 1

    @property
    def num_pulses_ltd(self) -> int:
        """``N_d = states_ltd - 1``: LTD pulses for a full sweep."""
        return self.states_ltd - 1

    @property
    def nl_labels(self):
        """NeuroSim labels ``(NL_LTP, NL_LTD)`` of this device."""
        return nonlinearity.ltp_label(self.a_p), nonlinearity.ltd_label(self.a_d)

    @property
    def needs_sampling(self) -> bool:
        """Whether devices differ from each other (`sample` draws them)."""
        return self.d2d > 0 or self.d2d_range > 0 or self.stuck_gmin > 0 or self.stuck_gmax > 0

    @property
    def is_linear(self) -> bool:
        """Both branches (of every device) are straight lines."""
        return bool(np.all(curves.is_linear(self.a_p)) and np.all(curves.is_linear(self.a_d)))

    def linear_twin(self) -> "ExpDevice":
        """The linear reference of this device: same levels and non-idealities, linear curves."""
        return dataclasses.replace(self, a_p=math.inf, a_d=math.inf, name=None, source=None)

    def sample(self, shape, seed=None, copies: int = 0) -> "DevicePopulation":
        """Draw the device-to-device variations of a population of ``shape`` devices.

        Returns a `DevicePopulation` whose model has per-device ``a_p``/``a_d``
        (where ``d2d > 0``) and D2D sigmas of 0, with each device's range factor
        and stuck state; all fixed for the devices' life and reproducible from
        ``seed``. Without variation, the population of this device itself.

        Args:
            copies: leading axes of ``shape`` that index stacked copies of one
                array (`devsim.stacked`): the draws have the shape of one copy
                and are shared, so every copy gets the devices it gets alone
                (its own ``a_p``/``a_d`` broadcast against them).
        """
        if not self.needs_sampling:
            return DevicePopulation(self)
        rng = np.random.default_rng(seed)
        shape = tuple(shape)[copies:]
        fields = {"d2d": 0.0, "d2d_range": 0.0, "stuck_gmin": 0.0, "stuck_gmax": 0.0}
        if self.d2d > 0:
            limit = nonlinearity.NL_LIMIT
            nl_p, nl_d = (x + rng.normal(0.0, self.d2d, shape) for x in self.nl_labels)
            nl_p, nl_d = (np.clip(x, -limit, limit) for x in (nl_p, nl_d))
            fields["a_p"] = np.asarray(nonlinearity.a_p_from_label(nl_p), np.float64)
            fields["a_d"] = np.asarray(nonlinearity.a_d_from_label(nl_d), np.float64)
        range_scale, stuck = draw_range_and_stuck(self, shape, rng)
        return DevicePopulation(dataclasses.replace(self, **fields), range_scale, stuck)

    @property
    def curve_kind(self) -> tuple:
        """Which code path the curve math takes: (LTP linear, LTD linear, symmetric) per device array.

        Devices that differ only in their curvatures but share this compute
        every device with the same fused float32 arithmetic (`devsim.stacked`
        stacks only those, so a stacked copy equals its run alone bit for bit).
        """
        ltp, ltd = self._curves
        symmetric = np.shape(ltp.s) == np.shape(ltd.s) and np.array_equal(ltp.s, ltd.s)
        return bool(np.all(ltp.linear)), bool(np.any(ltp.linear)), bool(np.all(ltd.linear)), bool(np.any(ltd.linear)), symmetric

    @functools.cached_property
    def _curves(self):
        """(LTP, LTD) `curves.Constants`, computed once in float64."""
        return curves.Constants.of(self.a_p, self.num_pulses), curves.Constants.of(self.a_d, self.num_pulses_ltd)

    # The curve math, written once for both array namespaces: ``xp`` is keras.ops
    # (training, inside compiled steps) or numpy (figures and `devsim device`,
    # without loading a backend).

    def _select(self, up, field, xp, dtype=None):
        """A curve constant of the direction each device is pulsed in (``up``: LTP), of ``dtype`` (tensors)."""
        ltp, ltd = self._curves
        x_p, x_d = getattr(ltp, field), getattr(ltd, field)
        if np.shape(x_p) == np.shape(x_d) and np.array_equal(x_p, x_d):
            return _constant(x_p, xp, dtype)  # symmetric device: no per-device select
        return xp.where(up, x_p, x_d)

    def _all_linear(self):
        ltp, ltd = self._curves
        return np.all(ltp.linear) and np.all(ltd.linear)

    def _any_linear(self):
        ltp, ltd = self._curves
        return np.any(ltp.linear) or np.any(ltd.linear)

    def _linear_step(self, up, xp):
        """``1/N`` of the direction: the step of a linear device."""
        ltp, ltd = self._curves
        if ltp.num_pulses == ltd.num_pulses:
            return 1.0 / ltp.num_pulses
        return xp.where(up, np.float32(1.0 / ltp.num_pulses), np.float32(1.0 / ltd.num_pulses))

    def _linear_mask(self, up, xp):
        ltp, ltd = self._curves
        return xp.where(up, ltp.linear, ltd.linear)

    def _climb(self, h, k, up, xp):
        """Move ``h`` up by ``k >= 0`` pulses: on the LTP curve where ``up``, else on the
        LTP-shaped curve of ``1 - g`` with ``A_d`` (depression seen from Gmax)."""
        linear_step = k * self._linear_step(up, xp)
        if self._all_linear():
            return h + linear_step
        step = (self._select(up, "s", xp, h.dtype) - h) * -xp.expm1(-k * self._select(up, "rate", xp, h.dtype))  # (s - h)(1 - exp(-k/(N A)))
        if self._any_linear():
            step = xp.where(self._linear_mask(up, xp), linear_step, step)
        return h + step

    def _room(self, h, up, xp):
        """Pulses (float) the curve selected by ``up`` needs to take ``h`` to 1."""
        n_dir = 1.0 / self._linear_step(up, xp)
        room_linear = (1.0 - h) * n_dir
        if self._all_linear():
            return room_linear
        room = n_dir + xp.log1p(-h * self._select(up, "inv_s", xp, h.dtype)) * self._select(up, "n_a", xp, h.dtype)  # N minus h's position
        if self._any_linear():
            room = xp.where(self._linear_mask(up, xp), room_linear, room)
        return room

    def _move(self, g, n, xp, clip=True):
        """Noise-free ``(g_new, lost)`` after signed pulses ``n`` (``n = 0`` not yet masked);
        ``clip=False`` leaves ``g_new`` where the curve goes, possibly past a bound."""
        up = n > 0
        k = xp.abs(n)
        h = xp.where(up, g, 1.0 - g)  # distance climbed from the bound the pulses leave
        h_new = self._climb(h, k, up, xp)
        if clip:
            h_new = xp.clip(xp.where(h_new > 1.0 - _SNAP, 1.0, h_new), 0.0, 1.0)
        g_new = xp.where(up, h_new, 1.0 - h_new)
        relu = xp.relu if xp is ops else (lambda x: xp.maximum(x, 0.0))
        lost = relu(k - relu(xp.ceil(self._room(h, up, xp) - _AT_BOUND_TOL)))
        return g_new, lost, k

    def apply_pulses(self, g, n, seed=None, noise_shape=None, xi=None):
        """Apply signed pulse counts and count the pulses lost at the bounds.

        Args:
            g: conductances in [0, 1] (any shape).
            n: signed pulse counts (broadcastable to ``g``): ``n > 0`` LTP,
                ``n < 0`` LTD, 0 leaves ``g`` exactly as it is.
            seed: ``keras.random.SeedGenerator`` or int for C2C noise; required
                when ``c2c > 0``.
            noise_shape: shape of the noise draws (default ``g``'s), broadcast
                against ``g`` (one draw shared by stacked copies).
            xi: the standard-normal C2C draws themselves (then ``seed`` is not used).

        Returns:
            ``(g_new, lost)``: the conductances after the pulses, and per device
            how many of its pulses did nothing (past a bound).
        """
        g = ops.convert_to_tensor(g)
        n = ops.cast(n, g.dtype)
        before_clip = self.c2c > 0 and self.c2c_mode == "neurosim"
        g_new, lost, k = self._move(g, n, ops, clip=not before_clip)
        if self.c2c > 0:
            if xi is None and seed is None:
                raise ValueError("c2c > 0 needs a seed (a keras.random.SeedGenerator or int) for its noise")
            if xi is None:
                xi = random.normal(noise_shape or ops.shape(g_new), dtype=g.dtype, seed=seed)
            sigma = self.c2c * (ops.abs(g_new - g) if self.c2c_mode == "step" else ops.sqrt(k))
            g_new = ops.clip(g_new + sigma * xi, 0.0, 1.0)
        g_new = ops.where(k == 0, g, g_new)
        return g_new, lost

    def level(self, p):
        """Conductance of state ``p`` (0..N): ``p`` LTP pulses from Gmin, ``g_ltp(p/N)``."""
        p = ops.convert_to_tensor(p, dtype="float32")
        return self._noiseless.potentiate(ops.zeros_like(p), p)

    @functools.cached_property
    def _noiseless(self):
        return dataclasses.replace(self, c2c=0.0) if self.c2c > 0 else self

    def nearest_state(self, g):
        """Snap conductances ``g`` to the nearest of the N + 1 LTP levels.

        Returns:
            ``(p, g_snapped)``: the state index (float, integral) and its conductance.
        """
        g = ops.clip(ops.convert_to_tensor(g, dtype="float32"), 0.0, 1.0)
        position = self.num_pulses - self._room(g, True, ops)
        lo = ops.clip(ops.floor(position), 0.0, self.num_pulses)
        hi = ops.clip(lo + 1.0, 0.0, self.num_pulses)
        g_lo, g_hi = self.level(lo), self.level(hi)
        take_hi = ops.abs(g_hi - g) < ops.abs(g - g_lo)
        return ops.where(take_hi, hi, lo), ops.where(take_hi, g_hi, g_lo)

    def response(self):
        """One noise-free cycle as numpy arrays: N_p LTP pulses from Gmin, then N_d LTD pulses.

        Returns:
            ``(pulse, g)`` with ``pulse = 0..N_p + N_d`` and the conductance after each.
        """
        p = np.arange(self.num_pulses + 1, dtype=np.float32)
        q = np.arange(self.num_pulses_ltd + 1, dtype=np.float32)
        up = self._move(np.zeros_like(p), p, np)[0]
        down = self._move(np.ones_like(q), -q, np)[0]
        up[0], down[0] = 0.0, 1.0  # no pulse: the bound itself
        return np.arange(self.num_pulses + self.num_pulses_ltd + 1), np.concatenate([up, down[1:]]).astype(np.float32)

    def describe(self) -> str:
        """Short legend text, e.g. ``A_p=0.8, A_d=0.8 (NL 1.56/-1.56)``."""
        if np.ndim(self.a_p) or np.ndim(self.a_d):
            return "per-device A_p/A_d"
        if math.isinf(self.a_p) and math.isinf(self.a_d):
            text = "linear"
        else:
            nl_p, nl_d = self.nl_labels
            text = f"A_p={self.a_p:.3g}, A_d={self.a_d:.3g} (NL {nl_p:.2f}/{nl_d:.2f})"
        return f"{self.name}: {text}" if self.name else text

    def slug(self) -> str:
        """``ltp0.8_ltd0.8`` or ``linear``: this device in default run names."""
        return "linear" if self.is_linear else f"ltp{float(self.a_p):.4g}_ltd{float(self.a_d):.4g}"

    def get_config(self) -> dict:
        """JSON-able parameters (arrays become lists); `from_config` inverts it."""
        config = {"kind": "exp"}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            config[field.name] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
        config["nl_ltp"], config["nl_ltd"] = (np.round(np.asarray(x), 4).tolist() for x in self.nl_labels)
        return config

    kind = "exp"
    OPTION_FIELDS = ("a_p", "a_d", "states", "states_ltd", "on_off", "c2c", "c2c_mode", "d2d", "d2d_range",
                     "stuck_gmin", "stuck_gmax", "read_noise", "r_on", "cell")
    METADATA_KEYS = ("kind", "nl_ltp", "nl_ltd", "fit")
    """Keys of a device config that are not fields: the kind, the labels (an alternative to a_p/a_d), a fit's record."""

    @classmethod
    def from_config(cls, config: dict):
        """A device from `get_config` output or a hand-written dict.

        Either ``a_p``/``a_d`` or the NeuroSim labels ``nl_ltp``/``nl_ltd`` may be
        given (``a_*`` wins); numbers may be written as text (``"inf"``).

        Raises:
            FieldError: an unknown key (naming it), or a bad value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in config if k not in names and k not in cls.METADATA_KEYS]
        if unknown:
            raise FieldError(unknown[0], f"not a device parameter (known: {', '.join(sorted(names | {'nl_ltp', 'nl_ltd'}))})")
        fields = {k: _number(v) for k, v in config.items() if k in names}
        for a, label, convert in (("a_p", "nl_ltp", nonlinearity.a_p_from_label), ("a_d", "nl_ltd", nonlinearity.a_d_from_label)):
            if a not in fields and label in config:
                value = _number(config[label])
                if isinstance(value, (bool, str)) or value is None:
                    raise FieldError(label, f"must be a NeuroSim label (a number), got {value!r}")
                try:
                    fields[a] = convert(value)
                except ValueError as exc:
                    raise FieldError(label, str(exc)) from None
            if a in fields:
                v = fields[a]
                if isinstance(v, list):
                    fields[a] = np.asarray(v, dtype=np.float64) if _all_numbers(v) else v
                elif isinstance(v, np.ndarray) and v.ndim == 0:
                    fields[a] = float(v)
        return cls(**fields)


def draw_range_and_stuck(device, shape, rng):
    """Each device's range factor (``d2d_range``) and stuck state (``stuck_gmin``/``stuck_gmax``), or None.

    Shared by the device kinds; draws from ``rng`` in this order (range, then stuck).
    """
    range_scale = stuck = None
    if device.d2d_range > 0:
        scale = 1.0 + rng.normal(0.0, device.d2d_range, shape)
        range_scale = np.maximum(scale, 0.05).astype(np.float32)
    if device.stuck_gmin > 0 or device.stuck_gmax > 0:
        u = rng.uniform(size=shape)
        total = device.stuck_gmin + device.stuck_gmax
        stuck = np.where(u < device.stuck_gmin, -1, np.where(u < total, 1, 0)).astype(np.int8)
    return range_scale, stuck


def same_option(name, default=dataclasses.MISSING):
    """A dataclass field declared like `ExpDevice`'s ``name`` (help, unit, bounds), for another kind."""
    f = ExpDevice.__dataclass_fields__[name]
    return dataclasses.field(default=f.default if default is dataclasses.MISSING else default, metadata=f.metadata)


def _number(value):
    """JSON text for non-finite numbers ("inf", "-inf") as floats; everything else as it is."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(value.strip().lower().replace("infinity", "inf"))
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value


def _all_numbers(values):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) or (isinstance(v, list) and _all_numbers(v))
               for v in values)


DEVICE_KINDS = {"exp": "devsim.devices:ExpDevice", "table": "devsim.measured:TableDevice"}
"""Device kinds by the ``kind`` of their config: ``"module:class"`` (imported on first use)."""


def device_class(kind: str):
    """The `Device` class of a ``kind`` (`DEVICE_KINDS`); FieldError naming ``kind`` if unknown."""
    import importlib

    if kind not in DEVICE_KINDS:
        raise FieldError("kind", f"unknown device kind {kind!r}; known: {', '.join(DEVICE_KINDS)}")
    module, name = DEVICE_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def device_from_config(config: dict) -> Device:
    """A device of any kind from its config (``"kind"``, default ``"exp"``)."""
    if not isinstance(config, dict):
        raise FieldError("device", f"a device config is a JSON object, got {type(config).__name__}")
    return device_class(config.get("kind", "exp")).from_config(config)


def LinearDevice(states: int = 101) -> ExpDevice:
    """A linear device: every pulse moves g by exactly ``1 / (states - 1)``."""
    return ExpDevice(math.inf, math.inf, states)


@dataclasses.dataclass(frozen=True, eq=False)
class DevicePopulation:
    """The devices of one weight array: a device model and what each device drew for itself.

    Made by `ExpDevice.sample`; fixed for the devices' life. Applies pulses and
    reads like the model, with each device's own draws::

        g', lost = model.apply_pulses(g, n)          # per-device a_p/a_d broadcast
        g', lost = where(stuck, g, g'), where(stuck, |n|, lost)
        read(g)  = model.read(g, range_scale=range_scale)

    Attributes:
        model: the `ExpDevice` (per-device ``a_p``/``a_d`` where ``d2d > 0``,
            variation sigmas 0).
        range_scale: float32 array, each device's factor on Gmin and Gmax
            (``d2d_range``), or None (nominal).
        stuck: int8 array, -1 stuck at Gmin, +1 at Gmax, 0 free; or None.
    """

    model: Device
    range_scale: np.ndarray | None = None
    stuck: np.ndarray | None = None

    @property
    def num_pulses(self) -> int:
        return self.model.num_pulses

    @property
    def num_pulses_ltd(self) -> int:
        return self.model.num_pulses_ltd

    @property
    def c2c(self) -> float:
        return self.model.c2c_sigma

    @property
    def read_noise(self) -> float:
        return self.model.read_noise

    def sample(self, shape, seed=None, copies: int = 0) -> "DevicePopulation":
        """Already drawn: the population itself (its devices are fixed for life)."""
        return self

    def apply_pulses(self, g, n, seed=None, noise_shape=None, xi=None):
        """`ExpDevice.apply_pulses`; stuck devices do not move and lose all their pulses."""
        g = ops.convert_to_tensor(g)
        g_new, lost = self.model.apply_pulses(g, n, seed=seed, noise_shape=noise_shape, xi=xi)
        if self.stuck is not None:
            k = ops.abs(ops.cast(n, g.dtype))
            free = ops.convert_to_tensor(self.stuck == 0)
            g_new = ops.where(free, g_new, g)
            lost = ops.where(free, lost, k)
        return g_new, lost

    def pulse(self, g, n, seed=None):
        return self.apply_pulses(g, n, seed)[0]

    def read(self, g, seed=None, noise_shape=None, xi=None):
        """`ExpDevice.read` with each device's range factor."""
        return self.model.read(g, seed=seed, noise_shape=noise_shape, xi=xi, range_scale=self.range_scale)

    def stuck_values(self, g):
        """``g`` with stuck devices set to their bound."""
        if self.stuck is None:
            return g
        return ops.where(self.stuck < 0, 0.0, ops.where(self.stuck > 0, 1.0, g))

    def level(self, p):
        return self.model.level(p)

    def nearest_state(self, g):
        return self.model.nearest_state(g)

    def stuck_counts(self) -> tuple[int, int]:
        """``(stuck at Gmin, stuck at Gmax)``."""
        if self.stuck is None:
            return 0, 0
        return int(np.sum(self.stuck < 0)), int(np.sum(self.stuck > 0))
