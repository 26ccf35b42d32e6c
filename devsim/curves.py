"""The exponential pulse-response curve: one place for its math (numpy).

In normalized conductance and with ``x = p / N`` the fraction of a full sweep
(``N`` pulses from one bound to the other), a branch with curvature ``A``
follows::

    shape(x, u) = (1 - exp(-u x)) / (1 - exp(-u)),   u = 1 / A

``A > 0`` (``u > 0``) saturates, ``A < 0`` accelerates and ``A = inf``
(``u = 0``) is the straight line ``shape = x``. Potentiation from Gmin is
``g = shape(p/N, 1/A_p)``; depression from Gmax is ``g = 1 - shape(q/N, 1/A_d)``.
From any point, ``n`` more pulses move the distance ``h`` climbed from the
bound being left as soft bounds do::

    h' = h + (s - h) (1 - exp(-n / (N A))),   s = 1 / (1 - exp(-1/A))

(``s`` is the curve's asymptote), and ``h`` sits ``N + log(1 - h / s) N A``
pulses along the curve. `devsim.devices` evaluates these with tensor ops from
the float32 constants of `Constants`; `devsim.fitting` fits `shape`;
`devsim.nonlinearity` measures its gap to the straight line. The derivation
and the equivalence with NeuroSim's and aihwkit's curves are in docs/devices.md.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

A_MIN = 1e-3
"""Smallest ``|A|`` accepted: one pulse then takes a device all the way to its bound."""

A_LINEAR = 1e6
"""``|A|`` from which a curve is treated as exactly linear: its largest gap to the line,
``1 / (8 |A|)``, is below float32 resolution, and its constants would overflow."""

_SMALL_U = 1e-6


def rate(a):
    """``u = 1/A`` (0 for linear curves, including ``|A| >= A_LINEAR``)."""
    a = np.asarray(a, np.float64)
    linear = is_linear(a)
    return np.where(linear, 0.0, 1.0 / np.where(linear, 1.0, a))


def is_linear(a):
    """Whether the curve with curvature ``a`` is treated as a straight line."""
    return np.abs(np.asarray(a, np.float64)) >= A_LINEAR


def curvature(u):
    """``A = 1/u`` (``inf`` for ``u = 0``); the inverse of `rate`."""
    u = np.asarray(u, np.float64)
    a = np.where(u == 0, np.inf, 1.0 / np.where(u == 0, 1.0, u))
    return a[()] if a.ndim == 0 else a


def shape(x, u):
    """``(1 - exp(-u x)) / (1 - exp(-u))``, stable through ``u = 0`` (where it is ``x``).

    Args:
        x: fraction of a full sweep (0 at the bound the pulses leave, 1 at the other).
        u: ``1 / A`` (scalar or broadcasting array).
    """
    x = np.asarray(x, np.float64)
    u = np.asarray(u, np.float64)
    small = np.abs(u) < _SMALL_U
    safe = np.where(small, 1.0, u)
    exact = np.expm1(-safe * x) / np.expm1(-safe)
    return np.where(small, x + 0.5 * u * x * (1.0 - x), exact)


def max_gap(a):
    """Largest gap between the saturating curve of ``|A| = a`` and the straight line, in closed form.

    ``d/dx shape(x) = 1`` at ``x* = -A log(A (1 - exp(-1/A)))``, and the gap there is
    ``shape(x*) - x*`` (NaN-free for finite ``a > 0``; callers treat ``inf`` as 0).
    """
    a = np.abs(np.asarray(a, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = -np.expm1(-1.0 / a)
        x_star = -a * np.log(a * d)
        return -np.expm1(-x_star / a) / d - x_star


def step_factor(n, u, num_pulses):
    """``exp(-n u / N)``: the fraction of the distance to the asymptote left after ``n`` pulses."""
    return np.exp(-np.asarray(n, np.float64) * np.asarray(u, np.float64) / num_pulses)


@dataclasses.dataclass(frozen=True)
class Constants:
    """float32 constants of one direction's curve, for the tensor ops of `devsim.devices`.

    Attributes:
        num_pulses: ``N``, pulses of a full sweep.
        rate: ``1 / (N A)``.
        s: the asymptote ``1 / (1 - exp(-1/A))``.
        inv_s: ``1 / s``.
        n_a: ``N A = 1 / rate``.
        linear: where the curve is a straight line (the other constants are
            placeholders there).
    """

    num_pulses: int
    rate: np.ndarray
    s: np.ndarray
    inv_s: np.ndarray
    n_a: np.ndarray
    linear: np.ndarray

    @classmethod
    def of(cls, a, num_pulses: int) -> "Constants":
        """Constants of curvature ``a`` (scalar or per device) over ``num_pulses`` pulses, computed in float64."""
        a = np.asarray(a, dtype=np.float64)
        linear = is_linear(a)
        a = np.where(linear, 1.0, a)
        inv_s = -np.expm1(-1.0 / a)
        f32 = functools.partial(np.asarray, dtype=np.float32)
        return cls(num_pulses, f32(1.0 / (num_pulses * a)), f32(1.0 / inv_s), f32(inv_s), f32(num_pulses * a), linear)

