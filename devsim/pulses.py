"""Pulse rules: turn a proposed weight change into a whole number of pulses.

Each rule maps ``dw`` (any shape) to signed pulse counts ``n`` (same shape,
float dtype, integral values; ``n > 0`` potentiates). ``dw_min`` is the weight
change of one pulse of a linear device (see :mod:`devsim.mapping`)::

    sign:          n = sign(dw)                                    # original study
    proportional:  n = sign(dw) * min(round(|dw| / dw_min), max_pulses)   # NeuroSim
    stochastic:    n = sign(dw) * min(floor(r) + (u < r - floor(r)), max_pulses),
                   r = |dw| / dw_min, u ~ U[0, 1)   # unbiased: E[n] = dw / dw_min
    neurosim:      n = sign(dw) * round_half_up(|dw| / dw_min)   # no cap (max_pulses None)

``neurosim`` is MLP+NeuroSim V3.0's rule (Cell.cpp ``RealDevice::Write`` with
formula.cpp ``truncate``), computed in double precision as NeuroSim does;
with ``truncation=True`` it keeps NeuroSim's ``(int)((k/N) N)``, which gives
``k - 1`` where ``(k/N) N`` falls one ulp below ``k``.
"""

from __future__ import annotations

from devsim.lazy import ops, random


def sign_pulses(dw, dw_min, max_pulses, seed=None, noise_shape=None, u=None):
    """One pulse toward the sign of the change; none where ``dw == 0``."""
    return ops.sign(dw)


def proportional_pulses(dw, dw_min, max_pulses, seed=None, noise_shape=None, u=None):
    """``round(|dw| / dw_min)`` pulses (half to even), at most ``max_pulses``."""
    return ops.sign(dw) * ops.minimum(ops.round(ops.abs(dw) / dw_min), max_pulses)


def stochastic_pulses(dw, dw_min, max_pulses, seed=None, noise_shape=None, u=None):
    """Unbiased stochastic rounding of ``|dw| / dw_min``, at most ``max_pulses``.

    Args:
        seed: a ``keras.random.SeedGenerator`` (or int) for the rounding draws.
        noise_shape: shape of the draws (default ``dw``'s); a trailing part of
            it broadcasts one draw over stacked copies of the weights.
        u: the uniform draws themselves (then ``seed`` is not used).
    """
    r = ops.abs(dw) / dw_min
    whole = ops.floor(r)
    if u is None:
        u = random.uniform(noise_shape or ops.shape(dw), dtype=dw.dtype, seed=seed)
    n = whole + ops.cast(u < r - whole, dw.dtype)
    return ops.sign(dw) * ops.minimum(n, max_pulses)


def neurosim_pulses(dw, dw_min, max_pulses=None, seed=None, noise_shape=None, u=None, levels=None, w_range=None,
                    truncation=False):
    """Round half away from zero of ``|dw| / dw_min``, in float64, uncapped unless ``max_pulses``.

    Args:
        levels: ``N`` of the direction of every element (LTP where ``dw > 0``);
            with ``w_range`` (``wmax - wmin``) the ratio is computed as NeuroSim
            does, ``(|dw| / w_range) N``. Needed for ``truncation``.
        truncation: NeuroSim's ``numPulse = (int)((k / N) * N)`` (C double arithmetic).
    """
    dtype = dw.dtype
    if levels is not None and w_range is not None:
        r = ops.abs(ops.cast(dw, "float64")) / float(w_range) * ops.cast(levels, "float64")
    else:
        r = ops.abs(ops.cast(dw, "float64")) / ops.cast(dw_min, "float64")
    whole = ops.floor(r)
    k = whole + ops.cast(r - whole >= 0.5, "float64")
    if truncation:
        n_levels = ops.cast(levels, "float64")
        k = ops.floor((k / n_levels) * n_levels)
    if max_pulses is not None:
        k = ops.minimum(k, max_pulses)
    return ops.sign(dw) * ops.cast(k, dtype)


RANDOM_RULES = ("stochastic",)
"""Rules that draw random numbers (``u ~ U[0, 1)`` of the weight's shape)."""

PULSE_RULES = {
    "sign": sign_pulses,
    "proportional": proportional_pulses,
    "stochastic": stochastic_pulses,
    "neurosim": neurosim_pulses,
}
