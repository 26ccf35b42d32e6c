"""NeuroSim nonlinearity labels ("NL") and their conversion to devsim's A.

Device papers quote NeuroSim's labels (0 to 9, e.g. Ag:a-Si LTP 2.40 / LTD -4.88)
rather than the curvature ``A`` of the exponential model. The label of a
saturating curve is its largest vertical gap to the straight line, in units of
0.098995 (MLP+NeuroSim V3.0 manual)::

    NL(A) = max_x (g_ltp(x) - x) / 0.098995,   A > 0

The maximum has a closed form (`devsim.curves.max_gap`).

Signs follow NeuroSim. An LTP label ``+L`` is ``A_p = +A(L)`` (saturating). An
LTD label ``-L`` is ordinary saturating depression, ``A_d = +A(L)``; ``+L`` walks
back down the potentiation curve, ``A_d = -A(L)``. A label of 0 is a linear
device (``A = inf``). All functions take scalars or arrays.
"""

from __future__ import annotations

import numpy as np

from devsim import curves

NL_UNIT = 0.098995
"""Vertical gap (in normalized conductance) that NeuroSim calls one NL unit."""

NL_MAX = 1.0 / NL_UNIT
"""Label of the limit A -> 0+ (a step to the bound); no label reaches it."""

NL_LIMIT = float(np.round(curves.max_gap(curves.A_MIN) / NL_UNIT, 2))
"""Largest label accepted (10.02): that of the smallest curvature accepted, ``|A| = curves.A_MIN``."""

_LOG_A_BRACKET = (np.log(1e-4), np.log(1e12))


def nl_from_a(a):
    """NeuroSim label magnitude of a curve with curvature ``|a|`` (0 for inf).

    Args:
        a: curvature ``A`` (normalized to the full pulse range), scalar or
            array; the sign is ignored, ``inf`` gives 0.

    Returns:
        The label, a float or float array in ``[0, NL_MAX)``.
    """
    a = np.abs(np.asarray(a, dtype=np.float64))
    label = np.where(np.isinf(a), 0.0, curves.max_gap(a) / NL_UNIT)
    return label[()] if label.ndim == 0 else label


def a_from_nl(label):
    """Inverse of :func:`nl_from_a`: the positive ``A`` whose label is ``|label|``.

    Solved by bracketed root finding in ``log A`` (vectorized). A label of 0
    gives ``inf`` (linear).

    Args:
        label: NL label magnitude, scalar or array, ``0 <= |label| <= NL_LIMIT``.

    Returns:
        ``A > 0`` (float or array).

    Raises:
        ValueError: a label is NaN or above ``NL_LIMIT`` (10.02).
    """
    label = np.abs(np.asarray(label, dtype=np.float64))
    if np.any(np.isnan(label)) or np.any(label > NL_LIMIT):
        raise ValueError(f"NL label must be a number with |NL| <= {NL_LIMIT:.2f} (|A| >= {curves.A_MIN:g}), got {label}")
    tiny = label < 1e-7
    target = np.where(tiny, 1.0, label)
    from scipy.optimize import elementwise  # scipy loads only when a label is inverted

    lo, hi = _LOG_A_BRACKET
    res = elementwise.find_root(
        lambda log_a, t: nl_from_a(np.exp(log_a)) - t,
        (np.full_like(target, lo), np.full_like(target, hi)),
        args=(target,),
        tolerances={"xatol": 1e-13, "xrtol": 1e-13},
    )
    a = np.where(tiny, np.inf, np.exp(res.x))
    return a[()] if a.ndim == 0 else a


def _signed(magnitude, negative):
    out = np.where(negative, -magnitude, magnitude)
    return out[()] if out.ndim == 0 else out


def ltp_label(a_p):
    """NeuroSim LTP label of ``A_p``: ``+NL`` saturating, ``-NL`` accelerating, 0 linear."""
    a_p = np.asarray(a_p, dtype=np.float64)
    return _signed(nl_from_a(a_p), a_p < 0)


def ltd_label(a_d):
    """NeuroSim LTD label of ``A_d``: ``-NL`` saturating, ``+NL`` accelerating, 0 linear."""
    a_d = np.asarray(a_d, dtype=np.float64)
    return _signed(nl_from_a(a_d), np.isfinite(a_d) & (a_d > 0))


def a_p_from_label(label):
    """``A_p`` for a NeuroSim LTP label (``+L`` saturating, ``-L`` accelerating, 0 linear)."""
    label = np.asarray(label, dtype=np.float64)
    return _signed(np.asarray(a_from_nl(label)), label < 0)


def a_d_from_label(label):
    """``A_d`` for a NeuroSim LTD label (``-L`` saturating, ``+L`` accelerating, 0 linear)."""
    label = np.asarray(label, dtype=np.float64)
    return _signed(np.asarray(a_from_nl(label)), label > 0)
