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
import math

import numpy as np
from keras import ops

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


def _soft_step(g, n, a, num_pulses):
    """Move ``g`` up by ``n >= 0`` pulses along ``g_ltp`` with curvature ``a``."""
    a = ops.cast(a, g.dtype)
    linear = ops.isinf(a)
    a_safe = ops.where(linear, ops.ones_like(a), a)
    s = 1.0 / -ops.expm1(-1.0 / a_safe)
    moved = g + (s - g) * -ops.expm1(-n / (num_pulses * a_safe))
    moved = ops.where(linear, g + n / num_pulses, moved)
    return ops.clip(ops.where(moved > 1.0 - _SNAP, 1.0, moved), 0.0, 1.0)


def _pulses_to_bound(g, a, num_pulses):
    """Pulses (float) that ``g_ltp`` with curvature ``a`` needs to take ``g`` to 1."""
    a = ops.cast(a, g.dtype)
    linear = ops.isinf(a)
    a_safe = ops.where(linear, ops.ones_like(a), a)
    s = 1.0 / -ops.expm1(-1.0 / a_safe)
    position = -a_safe * ops.log1p(-g / s)  # x with g_ltp(x) = g
    return num_pulses * (1.0 - ops.where(linear, g, position))


@dataclasses.dataclass(frozen=True, eq=False)
class ExpDevice:
    """Exponential LTP/LTD device (NeuroSim's model, normalized).

    Args:
        a_p: LTP curvature ``A_p`` (fraction of the full pulse range, unitless).
            ``> 0`` saturating, ``< 0`` accelerating, ``inf`` linear. Scalar or
            an array that broadcasts against the weights (one per device).
        a_d: LTD curvature ``A_d``, same conventions, for depression from Gmax.
        states: number of conductance levels over a full sweep; ``N = states - 1``
            pulses go from Gmin to Gmax. At least 2.
    """

    a_p: float = math.inf
    a_d: float = math.inf
    states: int = 101

    def __post_init__(self):
        _check_curvature("A_p", self.a_p)
        _check_curvature("A_d", self.a_d)
        if isinstance(self.states, bool) or int(self.states) != self.states or self.states < 2:
            raise ValueError(f"states must be an integer >= 2, got {self.states!r}")
        object.__setattr__(self, "states", int(self.states))

    @classmethod
    def from_nl(cls, nl_ltp, nl_ltd, states=101):
        """A device from NeuroSim labels, e.g. ``from_nl(2.4, -4.88, 97)`` for Ag:a-Si."""
        return cls(
            float(nonlinearity.a_p_from_label(nl_ltp)) if np.ndim(nl_ltp) == 0 else nonlinearity.a_p_from_label(nl_ltp),
            float(nonlinearity.a_d_from_label(nl_ltd)) if np.ndim(nl_ltd) == 0 else nonlinearity.a_d_from_label(nl_ltd),
            states,
        )

    @property
    def num_pulses(self) -> int:
        """``N = states - 1``: pulses for a full sweep."""
        return self.states - 1

    @property
    def nl_labels(self):
        """NeuroSim labels ``(NL_LTP, NL_LTD)`` of this device."""
        return nonlinearity.ltp_label(self.a_p), nonlinearity.ltd_label(self.a_d)

    def potentiate(self, g, n):
        """Apply ``n >= 0`` LTP pulses to devices at ``g``; returns the new ``g``."""
        g = ops.convert_to_tensor(g)
        return _soft_step(g, ops.cast(n, g.dtype), self.a_p, self.num_pulses)

    def depress(self, g, n):
        """Apply ``n >= 0`` LTD pulses to devices at ``g``; returns the new ``g``."""
        g = ops.convert_to_tensor(g)
        return 1.0 - _soft_step(1.0 - g, ops.cast(n, g.dtype), self.a_d, self.num_pulses)

    def pulse(self, g, n):
        """Apply signed pulse counts: ``n > 0`` LTP, ``n < 0`` LTD, ``0`` leaves g exactly.

        Pulses past a bound do nothing (the device stays at 0 or 1).
        """
        g = ops.convert_to_tensor(g)
        n = ops.cast(n, g.dtype)
        up = self.potentiate(g, ops.relu(n))
        down = self.depress(g, ops.relu(-n))
        return ops.where(n > 0, up, ops.where(n < 0, down, g))

    def pulses_lost(self, g, n):
        """How many of the signed pulses ``n`` at ``g`` fall past the bound (do nothing)."""
        g = ops.convert_to_tensor(g)
        n = ops.cast(n, g.dtype)
        room_up = _pulses_to_bound(g, self.a_p, self.num_pulses)
        room_down = _pulses_to_bound(1.0 - g, self.a_d, self.num_pulses)
        room = ops.ceil(ops.where(n > 0, room_up, room_down) - _AT_BOUND_TOL)
        return ops.relu(ops.abs(n) - ops.relu(room))

    def level(self, p):
        """Conductance of state ``p`` (0..N): ``p`` LTP pulses from Gmin, ``g_ltp(p/N)``."""
        p = ops.convert_to_tensor(p, dtype="float32")
        return self.potentiate(ops.zeros_like(p), p)

    def nearest_state(self, g):
        """Snap conductances ``g`` to the nearest of the N + 1 LTP levels.

        Returns:
            ``(p, g_snapped)``: the state index (float, integral) and its conductance.
        """
        g = ops.clip(ops.convert_to_tensor(g, dtype="float32"), 0.0, 1.0)
        position = self.num_pulses - _pulses_to_bound(g, self.a_p, self.num_pulses)
        lo = ops.clip(ops.floor(position), 0.0, self.num_pulses)
        hi = ops.clip(lo + 1.0, 0.0, self.num_pulses)
        g_lo, g_hi = self.level(lo), self.level(hi)
        take_hi = ops.abs(g_hi - g) < ops.abs(g - g_lo)
        return ops.where(take_hi, hi, lo), ops.where(take_hi, g_hi, g_lo)

    def response(self):
        """One full cycle as numpy arrays: N LTP pulses from Gmin, then N LTD pulses.

        Returns:
            ``(pulse, g)`` with ``pulse = 0..2N`` and the conductance after each.
        """
        n = np.arange(self.num_pulses + 1, dtype=np.float32)
        up = ops.convert_to_numpy(self.level(n))
        down = ops.convert_to_numpy(self.depress(np.ones_like(n), n))
        return np.arange(2 * self.num_pulses + 1), np.concatenate([up, down[1:]])

    def describe(self) -> str:
        """Short legend text, e.g. ``A_p=0.8, A_d=0.8 (NL 1.56/-1.56)``."""
        if np.ndim(self.a_p) or np.ndim(self.a_d):
            return "per-device A_p/A_d"
        if math.isinf(self.a_p) and math.isinf(self.a_d):
            return "linear"
        nl_p, nl_d = self.nl_labels
        return f"A_p={self.a_p:g}, A_d={self.a_d:g} (NL {nl_p:.2f}/{nl_d:.2f})"

    def get_config(self) -> dict:
        """JSON-able parameters (arrays become lists)."""
        return {
            "kind": "exp",
            "a_p": np.asarray(self.a_p).tolist(),
            "a_d": np.asarray(self.a_d).tolist(),
            "states": self.states,
            "nl_ltp": np.round(np.asarray(self.nl_labels[0]), 4).tolist(),
            "nl_ltd": np.round(np.asarray(self.nl_labels[1]), 4).tolist(),
        }

    @classmethod
    def from_config(cls, config: dict):
        def arr(v):
            return float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64)

        return cls(arr(config["a_p"]), arr(config["a_d"]), int(config["states"]))


def LinearDevice(states: int = 101) -> ExpDevice:
    """A linear device: every pulse moves g by exactly ``1 / (states - 1)``."""
    return ExpDevice(math.inf, math.inf, states)
