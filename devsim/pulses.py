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
formula.cpp ``truncate``); with ``truncation=True`` it keeps NeuroSim's
``(int)((k/N) N)`` in C doubles, which gives ``k - 1`` where ``(k/N) N``
falls one ulp below ``k`` (N = 97: k = 7, 14, 25, ...).
"""

from __future__ import annotations

import functools

import numpy as np

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


QUIRK_TABLE_SIZE = 1 << 14
"""Requests up to this many pulses get NeuroSim's ``(int)((k/N) N)`` exactly (a table per N);
larger ones (never seen in practice) are applied as requested."""


@functools.cache
def truncation_table(num_pulses: int) -> np.ndarray:
    """``1`` where NeuroSim's ``(int)((k / N) * N)`` gives ``k - 1`` (C doubles), for k = 0 .. QUIRK_TABLE_SIZE - 1."""
    k = np.arange(QUIRK_TABLE_SIZE, dtype=np.float64)
    lost = np.trunc((k / num_pulses) * num_pulses) < k
    return lost.astype(np.float32)


def neurosim_pulses(dw, dw_min, max_pulses=None, seed=None, noise_shape=None, u=None, levels=None, w_range=None,
                    truncation=False):
    """Round half away from zero of ``|dw| / dw_min``, uncapped unless ``max_pulses``.

    Args:
        levels: ``N``, pulses of a full sweep: one int, or ``(N_ltp, N_ltd)`` (LTP
            where ``dw > 0``); with ``w_range`` (``wmax - wmin``) the ratio is
            ``|dw| N / w_range``, as NeuroSim computes it. Needed for ``truncation``.
        truncation: NeuroSim's ``numPulse = (int)((k / N) * N)``, from a table of
            the double-precision result (`truncation_table`).
    """
    up = dw > 0
    if isinstance(levels, tuple) and levels[0] == levels[1]:
        levels = levels[0]
    n_levels = levels if not isinstance(levels, tuple) else ops.where(up, float(levels[0]), float(levels[1]))
    if levels is not None and w_range is not None:
        r = ops.abs(dw) * (n_levels / float(w_range))
    else:
        r = ops.abs(dw) / dw_min
    whole = ops.floor(r)
    k = whole + ops.cast(r - whole >= 0.5, dw.dtype)
    if truncation:
        index = ops.cast(ops.minimum(k, QUIRK_TABLE_SIZE - 1), "int32")
        if isinstance(levels, tuple):
            table = np.concatenate([truncation_table(levels[0]), truncation_table(levels[1])])
            index = index + ops.where(up, 0, QUIRK_TABLE_SIZE)
        else:
            table = truncation_table(int(levels))
        k = k - ops.take(ops.convert_to_tensor(table), index) * ops.cast(k < QUIRK_TABLE_SIZE, dw.dtype)
    if max_pulses is not None:
        k = ops.minimum(k, max_pulses)
    return ops.sign(dw) * k


RANDOM_RULES = ("stochastic",)
"""Rules that draw random numbers (``u ~ U[0, 1)`` of the weight's shape)."""

PULSE_RULES = {
    "sign": sign_pulses,
    "proportional": proportional_pulses,
    "stochastic": stochastic_pulses,
    "neurosim": neurosim_pulses,
}
