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


def _branch(a, num_pulses):
    """Constants of one direction's curve: asymptote ``s``, ``rate = 1/(N A)``, linear mask."""
    a = np.asarray(a, dtype=np.float64)
    linear = np.isinf(a)
    a_safe = np.where(linear, 1.0, a)
    s = 1.0 / -np.expm1(-1.0 / a_safe)
    return s.astype(np.float32), (1.0 / (num_pulses * a_safe)).astype(np.float32), linear


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

    @functools.cached_property
    def _branches(self):
        return _branch(self.a_p, self.num_pulses), _branch(self.a_d, self.num_pulses)

    def _select(self, up, dtype):
        """Per device: the asymptote ``s`` and ``rate`` of the direction it is pulsed in."""
        (s_p, r_p, _), (s_d, r_d, _) = self._branches
        s = ops.where(up, ops.cast(s_p, dtype), ops.cast(s_d, dtype))
        return s, ops.where(up, ops.cast(r_p, dtype), ops.cast(r_d, dtype))

    def _climb(self, h, k, up):
        """Move ``h`` up by ``k >= 0`` pulses: on the LTP curve where ``up``, else on the
        LTP-shaped curve of ``1 - g`` with ``A_d`` (depression seen from Gmax)."""
        (_, _, lin_p), (_, _, lin_d) = self._branches
        if np.all(lin_p) and np.all(lin_d):
            return h + k / self.num_pulses
        s, rate = self._select(up, h.dtype)
        step = (s - h) * -ops.expm1(-k * rate)  # soft bounds: (s - h)(1 - exp(-k/(N A)))
        if np.any(lin_p) or np.any(lin_d):
            step = ops.where(ops.where(up, lin_p, lin_d), k / self.num_pulses, step)
        return h + step

    def _room(self, h, up):
        """Pulses (float) the curve selected by ``up`` needs to take ``h`` to 1."""
        (_, _, lin_p), (_, _, lin_d) = self._branches
        room_linear = self.num_pulses * (1.0 - h)
        if np.all(lin_p) and np.all(lin_d):
            return room_linear
        s, rate = self._select(up, h.dtype)
        room = self.num_pulses + ops.log1p(-h / s) / rate  # N minus h's position on the curve
        if np.any(lin_p) or np.any(lin_d):
            room = ops.where(ops.where(up, lin_p, lin_d), room_linear, room)
        return room

    def apply_pulses(self, g, n):
        """Apply signed pulse counts and count the pulses lost at the bounds.

        Args:
            g: conductances in [0, 1] (any shape).
            n: signed pulse counts (broadcastable to ``g``): ``n > 0`` LTP,
                ``n < 0`` LTD, 0 leaves ``g`` exactly as it is.

        Returns:
            ``(g_new, lost)``: the conductances after the pulses, and per device
            how many of its pulses fell past the bound (and did nothing).
        """
        g = ops.convert_to_tensor(g)
        n = ops.cast(n, g.dtype)
        up = n > 0
        k = ops.abs(n)
        h = ops.where(up, g, 1.0 - g)  # distance climbed from the bound the pulses leave
        h_new = self._climb(h, k, up)
        h_new = ops.clip(ops.where(h_new > 1.0 - _SNAP, 1.0, h_new), 0.0, 1.0)
        g_new = ops.where(k == 0, g, ops.where(up, h_new, 1.0 - h_new))
        lost = ops.relu(k - ops.relu(ops.ceil(self._room(h, up) - _AT_BOUND_TOL)))
        return g_new, lost

    def pulse(self, g, n):
        """Apply signed pulse counts (``n > 0`` LTP, ``n < 0`` LTD); returns the new ``g``.

        Pulses past a bound do nothing (the device stays at 0 or 1).
        """
        return self.apply_pulses(g, n)[0]

    def pulses_lost(self, g, n):
        """How many of the signed pulses ``n`` at ``g`` fall past the bound (do nothing)."""
        return self.apply_pulses(g, n)[1]

    def potentiate(self, g, n):
        """Apply ``n >= 0`` LTP pulses to devices at ``g``; returns the new ``g``."""
        return self.pulse(g, ops.abs(ops.convert_to_tensor(n, dtype="float32")))

    def depress(self, g, n):
        """Apply ``n >= 0`` LTD pulses to devices at ``g``; returns the new ``g``."""
        return self.pulse(g, -ops.abs(ops.convert_to_tensor(n, dtype="float32")))

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
        position = self.num_pulses - self._room(g, True)
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
