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
is the symmetric case.

All methods are tensor ops (``keras.ops``) on whole arrays, and ``a_p``, ``a_d``
broadcast: a per-device array of curvatures works unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from keras import ops, random

from devsim import nonlinearity

_AT_BOUND_TOL = 1e-3  # a device within 1/1000 of a pulse of its bound counts as at it
_SNAP = 1e-6  # float32 round-off: conductances this close to 1 after LTP are the bound itself


def _check_curvature(name, value):
    arr = np.asarray(value, dtype=np.float64)
    if np.any(np.isnan(arr)) or np.any(arr == 0):
        raise ValueError(
            f"{name} must be a non-zero number (A > 0 saturating, A < 0 accelerating, "
            f"inf linear), got {value!r}"
        )


@dataclasses.dataclass(frozen=True)
class _Curve:
    """float32 constants of one direction's curve (numpy, scalar or per device)."""

    num_pulses: int  # N, pulses of a full sweep
    rate: np.ndarray  # 1 / (N A)
    s: np.ndarray  # asymptote 1 / (1 - exp(-1/A))
    inv_s: np.ndarray  # 1 / s
    n_a: np.ndarray  # N A = 1 / rate
    linear: np.ndarray  # A = inf (the other constants are placeholders there)

    @classmethod
    def of(cls, a, num_pulses):
        a = np.asarray(a, dtype=np.float64)
        linear = np.isinf(a)
        a = np.where(linear, 1.0, a)
        inv_s = -np.expm1(-1.0 / a)
        f32 = functools.partial(np.asarray, dtype=np.float32)
        return cls(num_pulses, f32(1.0 / (num_pulses * a)), f32(1.0 / inv_s), f32(inv_s), f32(num_pulses * a), linear)


def _check_fraction(name, value, upper=1.0):
    if not (0.0 <= value <= upper):
        raise ValueError(f"{name} must be between 0 and {upper:g}, got {value!r}")


C2C_MODES = ("sqrt", "step")


@dataclasses.dataclass(frozen=True, eq=False)
class ExpDevice:
    """Exponential LTP/LTD device (NeuroSim's model, normalized), with non-idealities.

    The curve (DESIGN.md section 1): after ``x = p / N_p`` of an LTP sweep and
    ``y = q / N_d`` of an LTD sweep,
    ``g_ltp(x) = (1 - exp(-x/A_p)) / (1 - exp(-1/A_p))`` and
    ``g_ltd(y) = 1 - (1 - exp(-y/A_d)) / (1 - exp(-1/A_d))``.
    Every non-ideality is off by default, and is exactly the identity at 0.

    Args:
        a_p: LTP curvature ``A_p`` (unitless, fraction of the LTP sweep).
            ``> 0`` saturating, ``< 0`` accelerating, ``inf`` linear. Scalar or
            an array that broadcasts against the weights (one per device).
        a_d: LTD curvature ``A_d``, same conventions, for depression from Gmax.
        states: conductance levels of an LTP sweep; ``N_p = states - 1`` LTP
            pulses go from Gmin to Gmax. At least 2.
        states_ltd: levels of an LTD sweep (``N_d = states_ltd - 1``), as
            NeuroSim's maxNumLevelLTD; ``None``: the same as ``states``.
        on_off: on/off ratio ``Gmax / Gmin`` (unitless, > 1; ``inf``: Gmin = 0).
            With ``f = 1/on_off`` a device conducts ``G/Gmax = f + (1 - f) g``;
            it matters once read noise or range variation act on G.
        c2c: cycle-to-cycle variation, sigma as a fraction of the conductance
            range (unitless). Each programming event of ``n`` pulses adds
            ``N(0, c2c * sqrt(n))`` to g (``c2c_mode="sqrt"``, NeuroSim), or
            ``N(0, c2c * |dg|)`` (``"step"``: noise proportional to the step).
        c2c_mode: ``"sqrt"`` or ``"step"``, see ``c2c``.
        d2d: device-to-device variation of the nonlinearity, sigma in NeuroSim
            NL-label units: each device draws ``NL + N(0, d2d)`` for LTP and for
            LTD once (see `sample`), fixed for its life.
        d2d_range: device-to-device variation of the conductance range, relative
            sigma: each device's Gmin and Gmax are scaled by ``1 + N(0, d2d_range)``
            (at least 0.05), against the nominal reference.
        stuck_gmin: fraction of devices stuck at Gmin (pulses do nothing).
        stuck_gmax: fraction of devices stuck at Gmax.
        read_noise: multiplicative read noise, relative sigma: every read
            returns ``G * (1 + N(0, read_noise))``; the stored g never changes.
        name: preset or file name (metadata).
        source: where the parameters come from, e.g. a paper (metadata).
        range_scale: per-device range factor, drawn by `sample` (1: nominal).
        stuck: per-device int8 array, -1 stuck at Gmin, +1 at Gmax, 0 free;
            drawn by `sample` (``None``: no stuck devices).
    """

    a_p: float = math.inf
    a_d: float = math.inf
    states: int = 101
    states_ltd: int | None = None
    on_off: float = math.inf
    c2c: float = 0.0
    c2c_mode: str = "sqrt"
    d2d: float = 0.0
    d2d_range: float = 0.0
    stuck_gmin: float = 0.0
    stuck_gmax: float = 0.0
    read_noise: float = 0.0
    name: str | None = None
    source: str | None = None
    range_scale: float = 1.0
    stuck: np.ndarray | None = None

    def __post_init__(self):
        _check_curvature("A_p", self.a_p)
        _check_curvature("A_d", self.a_d)
        for field in ("states", "states_ltd"):
            value = getattr(self, field)
            if value is None and field == "states_ltd":
                object.__setattr__(self, field, self.states)
                continue
            if isinstance(value, bool) or int(value) != value or value < 2:
                raise ValueError(f"{field} must be an integer >= 2, got {value!r}")
            object.__setattr__(self, field, int(value))
        if not (self.on_off > 1):
            raise ValueError(f"on_off must be > 1 (Gmax/Gmin; inf for Gmin = 0), got {self.on_off!r}")
        for field in ("c2c", "d2d", "d2d_range", "read_noise"):
            if not (getattr(self, field) >= 0 and math.isfinite(getattr(self, field))):
                raise ValueError(f"{field} must be a finite number >= 0, got {getattr(self, field)!r}")
        _check_fraction("stuck_gmin", self.stuck_gmin)
        _check_fraction("stuck_gmax", self.stuck_gmax)
        _check_fraction("stuck_gmin + stuck_gmax", self.stuck_gmin + self.stuck_gmax)
        if self.c2c_mode not in C2C_MODES:
            raise ValueError(f"c2c_mode must be one of {', '.join(C2C_MODES)}, got {self.c2c_mode!r}")

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

    def sample(self, shape, seed=None) -> "ExpDevice":
        """Draw the device-to-device variations of a population of ``shape`` devices.

        Returns a device whose ``a_p``/``a_d``/``range_scale``/``stuck`` are
        per-device arrays (fixed for the devices' life) and whose D2D sigmas
        are 0, so sampling again changes nothing. Reproducible from ``seed``.
        """
        if not self.needs_sampling:
            return self
        rng = np.random.default_rng(seed)
        shape = tuple(shape)
        fields = {"d2d": 0.0, "d2d_range": 0.0, "stuck_gmin": 0.0, "stuck_gmax": 0.0}
        if self.d2d > 0:
            limit = nonlinearity.NL_MAX - 1e-3
            nl_p, nl_d = (np.broadcast_to(x, shape) + rng.normal(0.0, self.d2d, shape) for x in self.nl_labels)
            nl_p, nl_d = (np.clip(x, -limit, limit) for x in (nl_p, nl_d))
            fields["a_p"] = np.asarray(nonlinearity.a_p_from_label(nl_p), np.float64)
            fields["a_d"] = np.asarray(nonlinearity.a_d_from_label(nl_d), np.float64)
        if self.d2d_range > 0:
            scale = 1.0 + rng.normal(0.0, self.d2d_range, shape)
            fields["range_scale"] = np.maximum(scale, 0.05).astype(np.float32) * self.range_scale
        if self.stuck_gmin > 0 or self.stuck_gmax > 0:
            u = rng.uniform(size=shape)
            fields["stuck"] = np.where(u < self.stuck_gmin, -1, np.where(u < self.stuck_gmin + self.stuck_gmax, 1, 0)).astype(np.int8)
        return dataclasses.replace(self, **fields)

    @functools.cached_property
    def _curves(self):
        """(LTP, LTD) `_Curve` constants, computed once in float64."""
        return _Curve.of(self.a_p, self.num_pulses), _Curve.of(self.a_d, self.num_pulses_ltd)

    def _select(self, up, field):
        """A curve constant of the direction each device is pulsed in (``up``: LTP)."""
        ltp, ltd = self._curves
        x_p, x_d = getattr(ltp, field), getattr(ltd, field)
        if np.shape(x_p) == np.shape(x_d) and np.array_equal(x_p, x_d):
            return x_p  # symmetric device: no per-device select
        return ops.where(up, x_p, x_d)

    def _all_linear(self):
        ltp, ltd = self._curves
        return np.all(ltp.linear) and np.all(ltd.linear)

    def _any_linear(self):
        ltp, ltd = self._curves
        return np.any(ltp.linear) or np.any(ltd.linear)

    def _linear_step(self, up):
        """``1/N`` of the direction: the step of a linear device."""
        ltp, ltd = self._curves
        if ltp.num_pulses == ltd.num_pulses:
            return 1.0 / ltp.num_pulses
        return ops.where(up, np.float32(1.0 / ltp.num_pulses), np.float32(1.0 / ltd.num_pulses))

    def _linear_mask(self, up):
        ltp, ltd = self._curves
        return ops.where(up, ltp.linear, ltd.linear)

    def _climb(self, h, k, up):
        """Move ``h`` up by ``k >= 0`` pulses: on the LTP curve where ``up``, else on the
        LTP-shaped curve of ``1 - g`` with ``A_d`` (depression seen from Gmax)."""
        linear_step = k * self._linear_step(up)
        if self._all_linear():
            return h + linear_step
        step = (self._select(up, "s") - h) * -ops.expm1(-k * self._select(up, "rate"))  # (s - h)(1 - exp(-k/(N A)))
        if self._any_linear():
            step = ops.where(self._linear_mask(up), linear_step, step)
        return h + step

    def _room(self, h, up):
        """Pulses (float) the curve selected by ``up`` needs to take ``h`` to 1."""
        n_dir = 1.0 / self._linear_step(up)
        room_linear = (1.0 - h) * n_dir
        if self._all_linear():
            return room_linear
        room = n_dir + ops.log1p(-h * self._select(up, "inv_s")) * self._select(up, "n_a")  # N minus h's position
        if self._any_linear():
            room = ops.where(self._linear_mask(up), room_linear, room)
        return room

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
            how many of its pulses did nothing (past a bound, or stuck device).
        """
        g = ops.convert_to_tensor(g)
        n = ops.cast(n, g.dtype)
        up = n > 0
        k = ops.abs(n)
        h = ops.where(up, g, 1.0 - g)  # distance climbed from the bound the pulses leave
        h_new = self._climb(h, k, up)
        h_new = ops.clip(ops.where(h_new > 1.0 - _SNAP, 1.0, h_new), 0.0, 1.0)
        g_new = ops.where(up, h_new, 1.0 - h_new)
        lost = ops.relu(k - ops.relu(ops.ceil(self._room(h, up) - _AT_BOUND_TOL)))
        if self.c2c > 0:
            if xi is None and seed is None:
                raise ValueError("c2c > 0 needs a seed (a keras.random.SeedGenerator or int) for its noise")
            if xi is None:
                xi = random.normal(noise_shape or ops.shape(g_new), dtype=g.dtype, seed=seed)
            sigma = self.c2c * (ops.sqrt(k) if self.c2c_mode == "sqrt" else ops.abs(g_new - g))
            g_new = ops.clip(g_new + sigma * xi, 0.0, 1.0)
        g_new = ops.where(k == 0, g, g_new)
        if self.stuck is not None:
            free = ops.convert_to_tensor(self.stuck == 0)
            g_new = ops.where(free, g_new, g)
            lost = ops.where(free, lost, k)
        return g_new, lost

    def read(self, g, seed=None, noise_shape=None, xi=None):
        """The normalized conductance the periphery reads from devices at ``g``.

        ``G/Gmax = range_scale * (f + (1 - f) g) * (1 + read_noise * xi)`` with
        ``f = 1/on_off``, returned as ``(G/Gmax - f) / (1 - f)`` against the
        nominal Gmin and Gmax. It is ``g`` itself when nothing varies. Read noise
        is drawn only when a ``seed`` (or the draws ``xi``) is given; ``g`` is
        never modified.
        """
        noisy = self.read_noise > 0 and (seed is not None or xi is not None)
        if not noisy and np.all(np.asarray(self.range_scale) == 1.0):
            return g
        f = 0.0 if math.isinf(self.on_off) else 1.0 / self.on_off
        conductance = ops.cast(self.range_scale, g.dtype) * (f + (1.0 - f) * g)
        if noisy:
            if xi is None:
                xi = random.normal(noise_shape or ops.shape(g), dtype=g.dtype, seed=seed)
            conductance = conductance * (1.0 + self.read_noise * xi)
        return (conductance - f) / (1.0 - f)

    def stuck_values(self, g):
        """``g`` with stuck devices set to their bound."""
        if self.stuck is None:
            return g
        return ops.where(self.stuck < 0, 0.0, ops.where(self.stuck > 0, 1.0, g))

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

    def level(self, p):
        """Conductance of state ``p`` (0..N): ``p`` LTP pulses from Gmin, ``g_ltp(p/N)``."""
        p = ops.convert_to_tensor(p, dtype="float32")
        return self._noiseless.potentiate(ops.zeros_like(p), p)

    @functools.cached_property
    def _noiseless(self):
        return dataclasses.replace(self, c2c=0.0, stuck=None) if (self.c2c > 0 or self.stuck is not None) else self

    def nearest_state(self, g):
        """Snap conductances ``g`` to the nearest of the N + 1 LTP levels.

        Returns:
            ``(p, g_snapped)``: the state index (float, integral) and its conductance.
        """
        g = ops.clip(ops.convert_to_tensor(g, dtype="float32"), 0.0, 1.0)
        position = self.num_pulses - self._room(g, True)
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
        up = ops.convert_to_numpy(self.level(np.arange(self.num_pulses + 1, dtype=np.float32)))
        q = np.arange(self.num_pulses_ltd + 1, dtype=np.float32)
        down = ops.convert_to_numpy(self._noiseless.depress(np.ones_like(q), q))
        return np.arange(self.num_pulses + self.num_pulses_ltd + 1), np.concatenate([up, down[1:]])

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

    def get_config(self) -> dict:
        """JSON-able parameters (arrays become lists); `from_config` inverts it."""
        config = {"kind": "exp"}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in ("range_scale", "stuck"):
                continue
            config[field.name] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
        config["nl_ltp"], config["nl_ltd"] = (np.round(np.asarray(x), 4).tolist() for x in self.nl_labels)
        return config

    @classmethod
    def from_config(cls, config: dict):
        """A device from `get_config` output or a hand-written dict.

        Either ``a_p``/``a_d`` or the NeuroSim labels ``nl_ltp``/``nl_ltd`` may be
        given (``a_*`` wins); keys that are not fields (``kind``, ``fit``, ...)
        are ignored.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"range_scale", "stuck"}
        fields = {k: v for k, v in config.items() if k in names}
        for a, label, convert in (("a_p", "nl_ltp", nonlinearity.a_p_from_label), ("a_d", "nl_ltd", nonlinearity.a_d_from_label)):
            if a not in fields and label in config:
                fields[a] = convert(config[label])
            if a in fields:
                v = fields[a]
                fields[a] = float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64)
        return cls(**fields)


def LinearDevice(states: int = 101) -> ExpDevice:
    """A linear device: every pulse moves g by exactly ``1 / (states - 1)``."""
    return ExpDevice(math.inf, math.inf, states)
