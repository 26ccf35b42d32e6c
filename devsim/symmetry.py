"""Symmetry points of devices: where one LTP pulse and one LTD pulse move a device equally.

Kim et al., "Zero-shifting technique for deep neural network training on
resistive cross-point arrays", arXiv:1907.10228 (2019). Random up/down pulses
drift a device with unequal up and down steps to the conductance ``g*`` where
``up(g*) = down(g*)``; plain SGD then sees every weight decay toward the weight
``g*`` encodes. Reading a device against a reference at ``g*`` (zero shifting)
makes that point weight zero (docs/algorithms.md, section 1).

For the exponential model both one-pulse steps are linear in ``g``
(unclipped, noise-free)::

    up(g)   = (s_p - g) k_p,         k_p = 1 - exp(-1/(N_p A_p)),  s = 1/(1 - exp(-1/A))
    down(g) = (g - 1 + s_d) k_d,     k_d = 1 - exp(-1/(N_d A_d))
    g*      = (s_p k_p + (1 - s_d) k_d) / (k_p + k_d)

(a linear branch has ``up = 1/N_p``, ``k_p = 0``). One value per device where
``a_p``/``a_d`` are per-device arrays (device-to-device variation). Other device
kinds go through `symmetry_point_numeric`, a vectorized bisection on their
one-pulse response. Everything here is numpy (float64); nothing loads Keras
except the numeric path of a device kind whose pulses are tensor ops.
"""

from __future__ import annotations

import math

import numpy as np

from devsim import curves


def _coefficients(a, num_pulses):
    """One pulse moves ``h`` (distance from the bound being left) by ``alpha - beta h``."""
    a = np.asarray(a, np.float64)
    linear = curves.is_linear(a)
    a_ = np.where(linear, 1.0, a)
    k = -np.expm1(-1.0 / (num_pulses * a_))
    s = 1.0 / -np.expm1(-1.0 / a_)
    return np.where(linear, 1.0 / num_pulses, s * k), np.where(linear, 0.0, k)


def step_up(g, device):
    """Noise-free, unclipped change of ``g`` by one LTP pulse of an `ExpDevice`: ``(s_p - g) k_p``."""
    alpha, beta = _coefficients(device.a_p, device.num_pulses)
    return alpha - beta * np.asarray(g, np.float64)


def step_down(g, device):
    """Noise-free, unclipped decrease of ``g`` by one LTD pulse of an `ExpDevice`: ``(g - 1 + s_d) k_d``."""
    alpha, beta = _coefficients(device.a_d, device.num_pulses_ltd)
    return alpha - beta * (1.0 - np.asarray(g, np.float64))


def symmetry_point_exp(device):
    """Closed-form ``g*`` of an `ExpDevice` (per device for per-device ``a_p``/``a_d``).

    NaN where both branches are linear (no single point: every point is
    symmetric when ``N_p = N_d``, none otherwise). The value may lie outside
    [0, 1]: then the device has no symmetry point and alternating pulses drive
    it to a bound (`reference_conductance` clips it).
    """
    a_p, b_p = _coefficients(device.a_p, device.num_pulses)
    a_d, b_d = _coefficients(device.a_d, device.num_pulses_ltd)
    den = b_p + b_d
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (a_p - a_d + b_d) / den
    g = np.where(den == 0, np.nan, g)
    return g[()] if np.ndim(g) == 0 else g


def is_attracting(device):
    """Whether random up/down pulses drift an `ExpDevice` toward its symmetry point:
    ``d(up - down)/dg = -(k_p + k_d) < 0``, true for saturating curves (A > 0)."""
    _, b_p = _coefficients(device.a_p, device.num_pulses)
    _, b_d = _coefficients(device.a_d, device.num_pulses_ltd)
    return (b_p + b_d) > 0


def symmetry_point_numeric(step_up_fn, step_down_fn, shape=(), lo=0.0, hi=1.0, iterations=64, flat=1e-9):
    """``g*`` of any one-pulse response by vectorized bisection of ``up(g) - down(g)`` on ``[lo, hi]``.

    Args:
        step_up_fn, step_down_fn: ``g -> |dg|`` of one noise-free LTP / LTD pulse
            (numpy arrays of ``shape`` in, same out).
        shape: shape of the device population.
        lo, hi: the bracket (the numeric path of `symmetry_point` keeps it one
            step away from the bounds, where clipped steps fake a sign change).
        iterations: halvings (64 reach float64 resolution).
        flat: ``|up - down|`` below this at both ends and the middle counts as
            "equal everywhere" (a linear device): NaN.

    Returns:
        ``g*`` where ``up - down`` changes sign on the bracket, else NaN.
    """
    def f(g):
        return np.asarray(step_up_fn(g), np.float64) - np.asarray(step_down_fn(g), np.float64)

    low, high = np.full(shape, float(lo)), np.full(shape, float(hi))
    f0, f1, fm = f(low), f(high), f(0.5 * (low + high))
    is_flat = (np.abs(f0) < flat) & (np.abs(f1) < flat) & (np.abs(fm) < flat)
    bracket = ((np.sign(f0) != np.sign(f1)) | (f0 == 0) | (f1 == 0)) & ~is_flat
    f_low = f0
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        f_mid = f(mid)
        right = np.sign(f_mid) == np.sign(f_low)  # the root lies right of mid
        low, f_low = np.where(right, mid, low), np.where(right, f_mid, f_low)
        high = np.where(right, high, mid)
    g = np.where(f0 == 0, low * 0 + lo, np.where(f1 == 0, hi, 0.5 * (low + high)))
    g = np.where(bracket, g, np.nan)
    return g[()] if np.ndim(g) == 0 else g


def _pulse_steps(device, shape):
    """Noise-free one-pulse steps of any device kind, through its own ``apply_pulses`` (tensor ops)."""
    from devsim.lazy import ops

    def run(g, n):
        g32 = np.asarray(g, np.float32)
        zeros = np.zeros_like(g32)
        g_new, _ = device.apply_pulses(g32, np.full(g32.shape, n, np.float32), xi=zeros)
        return np.asarray(ops.convert_to_numpy(g_new), np.float64)

    return (lambda g: run(g, 1.0) - np.asarray(g, np.float32)), (lambda g: np.asarray(g, np.float32) - run(g, -1.0))


def symmetry_point(device, shape=(), method=None):
    """Every device's symmetry point ``g*`` (numpy float64).

    Args:
        device: a device model (`ExpDevice`, another `Device` kind) or a
            `DevicePopulation` (its per-device draws: D2D curvatures give one
            ``g*`` per device; range variation and the on/off ratio change what
            is read, not the pulse dynamics, so they leave ``g*`` unchanged).
        shape: the population's shape for the numeric path (the closed form
            broadcasts by itself).
        method: ``"closed"`` (exponential model), ``"numeric"`` (bisection of
            the device's own one-pulse response, any kind) or None (closed form
            where the model has one).

    Returns:
        ``g*``, NaN where there is no single symmetry point (both branches
        linear, or no sign change of ``up - down`` on the device).
    """
    model = getattr(device, "model", device)
    if method is None:
        method = "closed" if getattr(model, "kind", None) == "exp" else "numeric"
    if method == "closed":
        if getattr(model, "kind", None) != "exp":
            raise ValueError(f"the closed-form symmetry point needs an exponential device, got kind {model.kind!r}")
        return symmetry_point_exp(model)
    if method != "numeric":
        raise ValueError(f"method must be 'closed', 'numeric' or None, got {method!r}")
    shape = tuple(np.broadcast_shapes(tuple(shape), np.shape(getattr(model, "a_p", 0.0)), np.shape(getattr(model, "a_d", 0.0))))
    up, down = _pulse_steps(model, shape)
    margin = 1.0 / max(model.num_pulses, model.num_pulses_ltd)  # one step from the bounds: no clipping
    return symmetry_point_numeric(up, down, shape, lo=margin, hi=1.0 - margin, flat=1e-7)


def reference_conductance(device, shape=(), mode="symmetry"):
    """The conductance a weight is read against: 0.5 (``mode="mid"``) or the device's
    symmetry point clipped to [0, 1], 0.5 where there is none (``"symmetry"``)."""
    if mode == "mid":
        return np.asarray(0.5)
    if mode != "symmetry":
        raise ValueError(f"reference must be 'mid' or 'symmetry', got {mode!r}")
    g = np.asarray(symmetry_point(device, shape), np.float64)
    return np.clip(np.nan_to_num(g, nan=0.5), 0.0, 1.0)


def describe(device) -> str:
    """One line for `devsim device`: the symmetry point, its weight under a mid-range
    reference, the step there, and whether it attracts."""
    model = getattr(device, "model", device)
    g = symmetry_point(model)
    if np.ndim(g):
        return f"symmetry point: per device, mean {np.nanmean(g):.4f}"
    if math.isnan(g):
        return "symmetry point: none (both branches linear: up and down steps are equal everywhere)"
    if model.kind == "exp":
        step = float(step_up(g, model))
        attract = "attracting" if is_attracting(model) else "repelling"
    else:
        up, _ = _pulse_steps(model, ())
        step, attract = float(up(np.asarray(g))), "numeric"
    where = "" if 0.0 <= g <= 1.0 else " (outside the device: no symmetry point on it; the reference clips to a bound)"
    return (f"symmetry point: g* = {g:.4f} ({attract}; one pulse there moves g by {step:.4f}; "
            f"a mid-range reference reads it as w/wmax = {2 * (g - 0.5):+.3f}){where}")
