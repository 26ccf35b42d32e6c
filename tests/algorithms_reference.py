"""Plain-numpy reference implementations of devsim's training algorithms and analog periphery.

The specification these functions implement is ``docs/algorithms.md`` (symmetry
point, zero shifting, Tiki-Taka v1/v2, chopped TTv2, AGAD, mixed precision) and
``docs/periphery.md`` (DAC/ADC, noise, noise and bound management). They are the
oracle devsim's Keras tiles are tested against, so they are written for clarity
and exactness, not speed: float64 numpy, vectorized over weights (no Python loop
over weights; the only loops are over at most two row segments of a transfer
and over the few bound-management rounds), no devsim import, and every random
draw is an explicit argument so a test can feed devsim the very same draws.

Conventions (devsim's):

* A weight matrix has Keras's kernel layout ``(n_in, n_out)``, ``y = x @ W``.
  aihwkit's matrices are ``(out, in)``; aihwkit's "column ``j``" (the read with a
  one-hot input ``e_j``) is the kernel's *row* ``j`` here.
* A device stores its normalized conductance ``g`` in ``[0, 1]``. The
  exponential soft-bounds model (``ExpDevice``) with ``N`` pulses for a full
  sweep moves ``g`` by ``n > 0`` LTP pulses as
  ``g' = g + (s_p - g)(1 - exp(-n/(N A_p)))`` and by ``n`` LTD pulses as
  ``g' = g - (g - 1 + s_d)(1 - exp(-n/(N_d A_d)))``, ``s = 1/(1 - exp(-1/A))``,
  a linear step ``1/N`` where ``A = inf``.
* A weight is read against a reference conductance ``g_ref``:
  ``w = 2 w_max (g - g_ref)``. ``g_ref = 0.5`` is devsim's ``ReferenceMapping``
  (``w = w_max (2g - 1)``); ``g_ref = g_sym`` is zero shifting.
* ``dw_min = 2 w_max / N`` is the weight change of one pulse of a linear device;
  pulse rules divide by it.
* Reads are noise-free ``read(g) = g`` (no range variation, on/off ratio or
  multiplicative read noise; devsim's ``ExpDevice.read`` adds those): the
  transfer reads take an additive ``read_noise`` and an ADC instead, and
  `analog_mvm` models the periphery.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

SNAP = 1e-6
"""A conductance this close to 1 after LTP is the bound itself (devsim's float32 round-off snap)."""


def _f64(x):
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------
# Device model
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExpDevice:
    """devsim's exponential soft-bounds device, normalized (``g`` in [0, 1]).

    Args:
        a_p, a_d: LTP / LTD curvature (``> 0`` saturating, ``< 0`` accelerating,
            ``inf`` linear); scalars or arrays broadcasting against the weights
            (device-to-device variation: one value per device).
        n_p: LTP pulses for a full sweep (``states - 1``).
        n_d: LTD pulses for a full sweep (default ``n_p``).
        c2c: cycle-to-cycle sigma (fraction of the range): a programming event
            of ``k`` pulses adds ``c2c * sqrt(k) * xi`` (``c2c_mode="sqrt"``) or
            ``c2c * |dg| * xi`` (``"step"``) to ``g``, ``xi ~ N(0, 1)``.
    """

    a_p: float | np.ndarray = math.inf
    a_d: float | np.ndarray = math.inf
    n_p: int = 100
    n_d: int | None = None
    c2c: float = 0.0
    c2c_mode: str = "sqrt"

    @property
    def nd(self) -> int:
        return self.n_p if self.n_d is None else self.n_d

    def rows(self, rows, shape):
        """The devices of kernel rows ``rows`` (per-device parameters sliced)."""

        def take(a):
            a = _f64(a)
            return a if a.ndim == 0 else np.broadcast_to(a, shape)[rows]

        return dataclasses.replace(self, a_p=take(self.a_p), a_d=take(self.a_d))


def _climb(h, k, a, n):
    """Distance ``h`` from the bound being left after ``k >= 0`` pulses of a curve (A = a, N = n)."""
    a = _f64(a)
    linear = np.isinf(a)
    a_ = np.where(linear, 1.0, a)
    s = 1.0 / -np.expm1(-1.0 / a_)
    with np.errstate(over="ignore", invalid="ignore"):
        curved = h + (s - h) * -np.expm1(-k / (n * a_))
    return np.where(linear, h + k / n, curved)


def apply_pulses(g, n, device: ExpDevice, xi=None):
    """Apply signed pulse counts ``n`` (``> 0`` LTP, ``< 0`` LTD) to conductances ``g``.

    The same function as devsim's ``ExpDevice.apply_pulses`` (without stuck
    devices and pulse counting): each direction follows its own curve from the
    current ``g``, results are clipped to [0, 1] (within `SNAP` of 1 is 1),
    C2C noise (if ``device.c2c > 0``; ``xi`` standard normal, same shape as
    ``g``) is added and clipped again, and ``n == 0`` leaves ``g`` unchanged.
    """
    g = _f64(g)
    n = np.broadcast_to(_f64(n), g.shape)
    up = n > 0
    k = np.abs(n)
    h = np.where(up, g, 1.0 - g)  # distance climbed from the bound the pulses leave
    h_new = np.where(up, _climb(h, k, device.a_p, device.n_p), _climb(h, k, device.a_d, device.nd))
    h_new = np.clip(np.where(h_new > 1.0 - SNAP, 1.0, h_new), 0.0, 1.0)
    g_new = np.where(up, h_new, 1.0 - h_new)
    if device.c2c > 0:
        if xi is None:
            raise ValueError("c2c > 0 needs the standard-normal draws xi")
        sigma = device.c2c * (np.sqrt(k) if device.c2c_mode == "sqrt" else np.abs(g_new - g))
        g_new = np.clip(g_new + sigma * _f64(xi), 0.0, 1.0)
    return np.where(k == 0, g, g_new)


def level(p, device: ExpDevice):
    """Conductance after ``p`` LTP pulses from Gmin (state ``p``)."""
    p = _f64(p)
    return apply_pulses(np.zeros_like(p), p, dataclasses.replace(device, c2c=0.0))


def _step_coefficients(a, n):
    """One pulse moves ``h`` (distance from the bound left) by ``alpha - beta * h``."""
    a = _f64(a)
    linear = np.isinf(a)
    a_ = np.where(linear, 1.0, a)
    k = -np.expm1(-1.0 / (n * a_))  # 1 - exp(-1/(N A))
    s = 1.0 / -np.expm1(-1.0 / a_)
    return np.where(linear, 1.0 / n, s * k), np.where(linear, 0.0, k)


def step_up(g, device: ExpDevice):
    """Noise-free change of ``g`` by one LTP pulse (unclipped): ``(s_p - g) k_p``."""
    alpha, beta = _step_coefficients(device.a_p, device.n_p)
    return alpha - beta * _f64(g)


def step_down(g, device: ExpDevice):
    """Noise-free decrease of ``g`` by one LTD pulse (unclipped): ``(g - 1 + s_d) k_d``."""
    alpha, beta = _step_coefficients(device.a_d, device.nd)
    return alpha - beta * (1.0 - _f64(g))


# ----------------------------------------------------------------------------
# Symmetry point and zero shifting
# ----------------------------------------------------------------------------


def symmetry_point(device: ExpDevice):
    """Closed-form symmetry point ``g*`` of the exponential device, per device.

    ``step_up(g*) == step_down(g*)``. With ``step_up = a_p - b_p g`` and
    ``step_down = b_d g + (a_d - b_d)`` (``a = s k``, ``b = k``,
    ``k = 1 - exp(-1/(N A))``; linear: ``a = 1/N``, ``b = 0``)::

        g* = (a_p - a_d + b_d) / (b_p + b_d)
           = (s_p k_p + (1 - s_d) k_d) / (k_p + k_d)

    NaN where ``b_p + b_d == 0`` (both curves linear: every point is symmetric
    if ``N_p == N_d``, none otherwise). The value may lie outside [0, 1] (then
    there is no symmetry point on the device and alternating pulses drive it to
    a bound); see `symmetry_point_is_attracting` for stability.
    """
    a_p, b_p = _step_coefficients(device.a_p, device.n_p)
    a_d, b_d = _step_coefficients(device.a_d, device.nd)
    den = b_p + b_d
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (a_p - a_d + b_d) / den
    g = np.where(den == 0, np.nan, g)
    return g[()] if np.ndim(g) == 0 else g


def symmetry_point_is_attracting(device: ExpDevice):
    """Whether random up/down pulses drift a device *toward* its symmetry point:
    ``d(step_up - step_down)/dg = -(k_p + k_d) < 0`` (saturating curves). Accelerating
    curves (A < 0) have a repelling symmetry point."""
    _, b_p = _step_coefficients(device.a_p, device.n_p)
    _, b_d = _step_coefficients(device.a_d, device.nd)
    return (b_p + b_d) > 0


def symmetry_point_numeric(step_up_fn, step_down_fn, shape=(), iterations=64):
    """Symmetry point of any device model by vectorized bisection on [0, 1].

    Args:
        step_up_fn, step_down_fn: ``g -> |dg|`` of one LTP / one LTD pulse
            (vectorized, noise-free).
        shape: shape of the population (``g`` arrays of this shape are passed).
        iterations: bisection steps (64 reach float64 resolution).

    Returns:
        ``g*`` where ``step_up - step_down`` changes sign on [0, 1]; NaN elsewhere.
    """
    def f(g):
        return step_up_fn(g) - step_down_fn(g)

    lo, hi = np.zeros(shape), np.ones(shape)
    f0, f1 = f(lo), f(hi)
    bracket = (np.sign(f0) != np.sign(f1)) | (f0 == 0) | (f1 == 0)
    f_lo = f0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        right = np.sign(f_mid) == np.sign(f_lo)  # the root lies right of mid
        lo, f_lo = np.where(right, mid, lo), np.where(right, f_mid, f_lo)
        hi = np.where(right, hi, mid)
    g = np.where(f0 == 0, 0.0, np.where(f1 == 0, 1.0, 0.5 * (lo + hi)))
    return np.where(bracket, g, np.nan)


def symmetry_point_by_pulsing(device: ExpDevice, g0, pairs=2000, average=200, xi=None):
    """Kim et al.'s measurement: alternate one LTP and one LTD pulse and average.

    Args:
        g0: starting conductances.
        pairs: LTP/LTD pairs applied.
        average: the last ``average`` pairs are averaged (both the value after
            the LTP and after the LTD pulse).
        xi: optional C2C draws of shape ``(pairs, 2, *g0.shape)``.

    Returns:
        the estimate (noise-free it is within one pulse step of `symmetry_point`,
        the two-cycle ``g_lo -> g_hi -> g_lo`` around it).
    """
    g = _f64(g0).copy()
    total = np.zeros_like(g)
    for i in range(pairs):  # a loop over pulses, vectorized over devices
        g = apply_pulses(g, 1.0, device, None if xi is None else xi[i, 0])
        up = g
        g = apply_pulses(g, -1.0, device, None if xi is None else xi[i, 1])
        if i >= pairs - average:
            total += up + g
    return total / (2 * average)


def reference_conductance(device: ExpDevice, mode="symmetry", sigma=0.0, xi=None):
    """Conductance of the reference a weight is read against.

    ``mode="mid"``: 0.5 (devsim's ``ReferenceMapping``). ``mode="symmetry"``:
    the device's symmetry point, clipped to [0, 1], 0.5 where it is undefined
    (both curves linear); plus a programming error ``sigma * xi`` (aihwkit's
    ``reference_std``) when ``sigma > 0``.
    """
    if mode == "mid":
        ref = np.asarray(0.5)
    elif mode == "symmetry":
        ref = np.clip(np.nan_to_num(_f64(symmetry_point(device)), nan=0.5), 0.0, 1.0)
    else:
        raise ValueError(f"mode must be 'mid' or 'symmetry', got {mode!r}")
    if sigma > 0:
        ref = ref + sigma * _f64(xi)
    return ref


def weights(g, g_ref=0.5, w_max=1.0):
    """Weights read against a reference: ``w = 2 w_max (g - g_ref)`` (``g_ref = 0.5``:
    devsim's ``w_max (2g - 1)``; ``g_ref = g*``: zero-shifted)."""
    return 2.0 * w_max * (_f64(g) - _f64(g_ref))


def dw_min(device: ExpDevice, w_max=1.0):
    """Weight change of one linear-device pulse under a reference read: ``2 w_max / N``."""
    return 2.0 * w_max / device.n_p


# ----------------------------------------------------------------------------
# Pulse rules (devsim.pulses)
# ----------------------------------------------------------------------------


def sign_pulses(dw):
    return np.sign(_f64(dw))


def proportional_pulses(dw, dw_min_, max_pulses):
    dw = _f64(dw)
    return np.sign(dw) * np.minimum(np.round(np.abs(dw) / dw_min_), max_pulses)


def stochastic_pulses(dw, dw_min_, max_pulses, u):
    """``sign(dw) * min(floor(r) + (u < r - floor(r)), max_pulses)``, ``r = |dw|/dw_min``, ``u ~ U[0, 1)``."""
    dw = _f64(dw)
    r = np.abs(dw) / dw_min_
    whole = np.floor(r)
    return np.sign(dw) * np.minimum(whole + (_f64(u) < r - whole), max_pulses)


# ----------------------------------------------------------------------------
# Quantizers (shared by the periphery and mixed precision)
# ----------------------------------------------------------------------------


def resolution_step(res, bound):
    """Quantization step of an aihwkit resolution: ``res`` in (0, 1] is a fraction
    of the full range ``2 * bound`` (``1/126``: 126 steps, 127 levels
    ``k * 2 bound / 126``); ``res > 1`` is a number of steps (``1/res``);
    ``res <= 0`` is no quantization (step 0)."""
    r = max(float(res), 0.0)
    r = 1.0 / r if r > 1.0 else r
    return r * 2.0 * bound


def quantize(v, step, u=None):
    """``step * rint(v / step)`` (round half to even), or stochastic rounding
    ``step * rint(v / step + u - 0.5)`` with ``u ~ U[0, 1)``; identity when ``step <= 0``."""
    v = _f64(v)
    if step <= 0:
        return v
    if u is None:
        return step * np.rint(v / step)
    return step * np.rint(v / step + _f64(u) - 0.5)


# ----------------------------------------------------------------------------
# Transfer algorithms: Tiki-Taka (TTv1), TTv2, chopped TTv2, AGAD
# ----------------------------------------------------------------------------

ALGORITHMS = ("ttv1", "ttv2", "cttv2", "agad")


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Parameters of one transfer tile (aihwkit's name in brackets; docs/algorithms.md).

    Units: steps are optimizer steps (mini-batches); weights in devsim units.
    """

    w_max: float = 1.0  # weight range of both arrays (mapping)
    fast_lr: float = 0.1  # lr of the gradient onto A [fast_lr]
    scale_fast_lr: bool = False  # multiply fast_lr by the optimizer's lr [scale_fast_lr]
    auto_scale: bool = False  # A's lr ~ 1 / EMA(max|G|) [auto_scale]
    auto_momentum: float = 0.99  # EMA momentum of auto_scale, per step [auto_momentum]
    auto_pulses: int = 31  # pulses at the largest gradient under auto_scale [update.desired_bl]
    max_pulses_a: int | None = None  # cap of pulses per A update (None: N of A)
    transfer_every: int = 1  # steps between transfers [transfer_every]
    n_reads_per_transfer: int = 1  # rows of A read per transfer [n_reads_per_transfer]
    transfer_lr: float = 1.0  # [transfer_lr]
    scale_transfer_lr: bool = True  # multiply transfer_lr by the optimizer's lr [scale_transfer_lr]
    buffer_granularity: float = 1.0  # H's threshold in units of A's dw_min [buffer_granularity]
    auto_granularity: float = 0.0  # steps for one A pulse to cross H (0: off) [auto_granularity]
    threshold: float = 1.0  # |H| >= threshold fires (aihwkit: 1; inf: never)
    max_steps: int = 1  # most C pulses per transfer [transfer_update.desired_bl]
    momentum: float = 0.0  # [momentum]
    forget_buffer: bool = True  # [forget_buffer]
    buffer_cap: float = 0.0  # |H| <= buffer_cap * max_steps when not forgetting (0: off) [buffer_cap]
    read_noise: float = 0.0  # sigma of the A read, weight units [transfer_forward.out_noise]
    read_res: float = 0.0  # ADC resolution of the A read [transfer_forward.out_res]
    read_bound: float = math.inf  # ADC bound of the A read [transfer_forward.out_bound]
    gamma: float = 0.0  # forward weight gamma * W_A + W_C [gamma]
    in_chop_prob: float = 0.0  # [in_chop_prob]
    in_chop_random: bool = True  # [in_chop_random] (AGAD default False)
    out_chop_prob: float = 0.0  # [out_chop_prob] (c-TTv2 only)
    tail_weightening: float = 5.0  # AGAD [tail_weightening]


@dataclasses.dataclass
class TransferState:
    """Everything a transfer tile keeps for one weight matrix ``(n_in, n_out)``."""

    g_a: np.ndarray  # fast array A
    g_c: np.ndarray  # slow array C (the weights)
    ref_a: np.ndarray  # A's reference conductance (symmetry point for TTv1/TTv2/c-TTv2)
    ref_c: np.ndarray  # C's reference conductance
    h: np.ndarray  # digital buffer H (TTv2, c-TTv2, AGAD), dimensionless
    c_in: np.ndarray  # input choppers (n_in,), +-1
    c_out: np.ndarray  # output choppers (n_out,), +-1
    mean: np.ndarray  # AGAD: running mean of A's reads
    past_mean: np.ndarray  # AGAD: mean of the previous chopper period (the dynamic reference)
    switched: np.ndarray  # AGAD: (n_in,) chopper of the row flipped since its last read
    step: int = 0  # optimizer steps so far
    ptr: int = 0  # next row to read
    transfer_counter: int = 0  # full sweeps of A read so far
    m_grad: float = 0.0  # auto_scale EMA of max|G|

    @classmethod
    def new(cls, g_a, g_c, ref_a=0.5, ref_c=0.5):
        g_a, g_c = _f64(g_a).copy(), _f64(g_c).copy()
        n_in, n_out = g_a.shape
        zeros = np.zeros_like(g_a)
        return cls(g_a, g_c, np.broadcast_to(_f64(ref_a), g_a.shape).copy(),
                   np.broadcast_to(_f64(ref_c), g_a.shape).copy(), zeros.copy(),
                   np.ones(n_in), np.ones(n_out), zeros.copy(), zeros.copy(), np.zeros(n_in, bool))

    def copy(self):
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).copy()
                                            for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)})


def transfer_draws(rng, shape):
    """Every random draw one transfer step may use, as a dict (pass it to `transfer_step`).

    ``u_a``: stochastic rounding of A's update; ``xi_a``: A's C2C; ``xi_read``:
    read noise of A (row ``j`` read uses ``xi_read[j]``); ``u_read``: stochastic
    rounding of the read ADC; ``u_c``: TTv1's stochastic rounding of C's update;
    ``xi_c``: C's C2C; ``u_in`` ``(n_in,)``, ``u_out`` ``(n_out,)``: chopper flips.
    """
    n_in, n_out = shape
    return {"u_a": rng.uniform(size=shape), "xi_a": rng.standard_normal(shape),
            "xi_read": rng.standard_normal(shape), "u_read": rng.uniform(size=shape),
            "u_c": rng.uniform(size=shape), "xi_c": rng.standard_normal(shape),
            "u_in": rng.uniform(size=n_in), "u_out": rng.uniform(size=n_out)}


def chop_samples(in_chop_prob):
    """Sweeps per chopper period for regular chopping: ``max(ceil(1/p), 2)`` (2 for p <= 0)."""
    return max(math.ceil(1.0 / in_chop_prob), 2) if in_chop_prob > 0 else 2


def transfer_weights(state: TransferState, cfg: TransferConfig):
    """What the forward and backward passes read: ``gamma * W_A + W_C``."""
    w = weights(state.g_c, state.ref_c, cfg.w_max)
    if cfg.gamma:
        w = w + cfg.gamma * weights(state.g_a, state.ref_a, cfg.w_max)
    return w


def transfer_step(state: TransferState, grad, lr, dev_a: ExpDevice, dev_c: ExpDevice,
                  cfg: TransferConfig, draws: dict, algorithm: str = "ttv2"):
    """One optimizer step of a transfer tile; returns ``(new_state, info)``.

    1. A gets the gradient as whole pulses:
       ``n_A = stochastic_pulses(-lr_A * c * G, dw_min_A)``, ``c = c_in c_out^T``
       (ones unless chopped).
    2. Every ``transfer_every`` steps, ``n_reads_per_transfer`` rows ``j`` of A
       (sequential, wrapping) are read: ``v = 2 w_max (g_A[j] - ref_A[j])`` plus
       read noise and ADC, and

       * ``ttv1``: C row ``j`` gets ``stochastic_pulses(lr_T * v, dw_min_C)``;
       * ``ttv2`` / ``cttv2``: ``H[j] += c[j] * lr_H * v``;
         ``agad``: ``H[j] += c[j] * lr_H * (v - past_mean[j])``;
         where ``|H| >= threshold``: ``n_C = clip(trunc(H / threshold), +-max_steps)``
         pulses on C and ``H <- momentum * H`` (``forget_buffer``) or
         ``H <- H - (1 - momentum) n_C threshold``.

       ``lr_T = transfer_lr (* lr)``, ``lr_H = lr_T / bg``,
       ``bg = buffer_granularity * dw_min_A (* auto_granularity / period)``,
       ``period = transfer_every * n_in / n_reads_per_transfer`` steps.
    3. Choppers flip after their row's read (``cttv2``, ``agad``), the output
       choppers after the last row (``cttv2``), AGAD's dynamic reference takes
       the running mean at each flip.

    Args:
        state: `TransferState` (not modified).
        grad: loss gradient of the forward weights, ``(n_in, n_out)``.
        lr: the optimizer's current learning rate.
        dev_a, dev_c: device models of A and C.
        cfg: `TransferConfig`.
        draws: random draws, see `transfer_draws` (keys not needed may be absent).
        algorithm: one of `ALGORITHMS`.

    Returns:
        ``(state, info)``; ``info`` holds ``n_a`` (A's pulses), ``n_c`` (C's
        pulses, full shape, zero outside the rows read), ``rows`` (rows read,
        in order), ``reads`` (the read values of those rows).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    s = state.copy()
    grad = _f64(grad)
    n_in, n_out = s.g_a.shape
    shape = (n_in, n_out)
    dwa, dwc = dw_min(dev_a, cfg.w_max), dw_min(dev_c, cfg.w_max)
    chopped = algorithm in ("cttv2", "agad")
    info = {"n_c": np.zeros(shape), "rows": np.zeros(0, int), "reads": np.zeros((0, n_out))}

    # 1. the gradient onto A
    lr_a = cfg.fast_lr * (lr if cfg.scale_fast_lr else 1.0)
    if cfg.auto_scale:
        g_max = float(np.max(np.abs(grad)))
        if s.m_grad <= 0:
            s.m_grad = g_max
        elif g_max > 0:
            s.m_grad = cfg.auto_momentum * s.m_grad + (1.0 - cfg.auto_momentum) * g_max
        if s.m_grad > 0:
            lr_a = cfg.fast_lr * cfg.auto_pulses * dwa / s.m_grad
    chop = np.outer(s.c_in, s.c_out) if chopped else 1.0
    max_a = dev_a.n_p if cfg.max_pulses_a is None else cfg.max_pulses_a
    n_a = stochastic_pulses(-lr_a * chop * grad, dwa, max_a, draws["u_a"])
    s.g_a = apply_pulses(s.g_a, n_a, dev_a, draws.get("xi_a"))
    info["n_a"] = n_a

    # 2. transfer
    s.step += 1
    if cfg.transfer_every <= 0 or s.step % cfg.transfer_every != 0:
        return s, info
    n_reads = min(cfg.n_reads_per_transfer, n_in)
    rows = (s.ptr + np.arange(n_reads)) % n_in
    s.ptr = int((s.ptr + n_reads) % n_in)
    lr_t = abs(cfg.transfer_lr * (lr if cfg.scale_transfer_lr else 1.0))
    bg = cfg.buffer_granularity * dwa
    if cfg.auto_granularity > 0:
        bg *= cfg.auto_granularity / (cfg.transfer_every * n_in / n_reads)
    lr_h = lr_t / bg
    n_samples = chop_samples(cfg.in_chop_prob)
    beta = min(cfg.tail_weightening / n_samples, 1.0)
    read_step = resolution_step(cfg.read_res, cfg.read_bound) if cfg.read_res > 0 else 0.0
    wrap = int(np.argmax(rows == n_in - 1)) + 1 if np.any(rows == n_in - 1) else n_reads
    for seg in (rows[:wrap], rows[wrap:]):  # rows before and after the wrap-around
        if seg.size == 0:
            continue
        # read the rows of A (a forward pass with one-hot inputs)
        v = weights(s.g_a[seg], s.ref_a[seg], cfg.w_max)
        if cfg.read_noise > 0:
            v = v + cfg.read_noise * draws["xi_read"][seg]
        if read_step > 0:
            v = np.clip(quantize(v, read_step), -cfg.read_bound, cfg.read_bound)
        info["rows"] = np.concatenate([info["rows"], seg])
        info["reads"] = np.concatenate([info["reads"], v])
        xi_c = None if draws.get("xi_c") is None else draws["xi_c"][seg]
        if algorithm == "ttv1":  # no buffer: C gets the read directly, as stochastic pulses
            n_c = stochastic_pulses(lr_t * v, dwc, dev_c.n_p, draws["u_c"][seg])
        else:
            sign = np.outer(s.c_in[seg], s.c_out) if chopped else 1.0
            if algorithm == "agad":
                was = s.switched[seg][:, None]
                s.past_mean[seg] = np.where(was, s.mean[seg], s.past_mean[seg])
                s.switched[seg] = False
                h = s.h[seg] + sign * (v - s.past_mean[seg]) * lr_h
            else:
                h = s.h[seg] + sign * v * lr_h
            fire = np.abs(h) >= cfg.threshold
            with np.errstate(invalid="ignore"):
                n_c = np.where(fire, np.clip(np.trunc(h / cfg.threshold), -cfg.max_steps, cfg.max_steps), 0.0)
            if cfg.forget_buffer:
                h = np.where(fire, cfg.momentum * h, h)
            else:
                h = np.where(fire, h - (1.0 - min(max(cfg.momentum, 0.0), 1.0)) * n_c * cfg.threshold, h)
                if cfg.buffer_cap > 0:
                    cap = cfg.buffer_cap * cfg.max_steps
                    h = np.clip(h, -cap, cap)
            s.h[seg] = h
            if algorithm == "agad":
                s.mean[seg] = s.mean[seg] * (1.0 - beta) + v * beta
                if s.transfer_counter <= n_samples:  # no write during the first chopper periods
                    n_c = np.zeros_like(n_c)
        s.g_c[seg] = apply_pulses(s.g_c[seg], n_c, dev_c.rows(seg, shape), xi_c)
        info["n_c"][seg] = n_c
        # choppers flip after their row was read
        if algorithm == "cttv2" and cfg.in_chop_prob > 0:
            if cfg.in_chop_random:
                flip = draws["u_in"][seg] < cfg.in_chop_prob
            else:
                flip = np.full(seg.size, (s.transfer_counter % n_samples) + 1 == n_samples)
            s.c_in[seg] = np.where(flip, -s.c_in[seg], s.c_in[seg])
        if algorithm == "agad":
            flip = np.full(seg.size, (s.transfer_counter % n_samples) + 1 == n_samples)
            if cfg.in_chop_random:
                flip = flip | (draws["u_in"][seg] < cfg.in_chop_prob)
            s.c_in[seg] = np.where(flip, -s.c_in[seg], s.c_in[seg])
            s.switched[seg] = flip
        if seg[-1] == n_in - 1:  # a full sweep of A is done
            if algorithm == "cttv2" and cfg.out_chop_prob > 0:
                s.c_out = np.where(draws["u_out"] < cfg.out_chop_prob, -s.c_out, s.c_out)
            s.transfer_counter += 1
    return s, info


# ----------------------------------------------------------------------------
# Mixed precision (Nandakumar et al. 2020; aihwkit MixedPrecisionCompound)
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MixedPrecisionConfig:
    w_max: float = 1.0
    granularity: float | None = None  # epsilon (None: dw_min of the device) [granularity]
    transfer_lr: float = 1.0  # [transfer_lr]
    transfer_every: int = 1  # steps [transfer_every]
    n_rows_per_transfer: int = -1  # output columns per transfer, -1 all [n_rows_per_transfer]
    n_x_bins: int = 0  # [n_x_bins] (0: no quantization)
    n_d_bins: int = 0  # [n_d_bins]
    stoc_round_x: bool = True  # [stoc_round_x]
    stoc_round_d: bool = True  # [stoc_round_d]
    max_pulses: int | None = None  # cap per transfer (None: N)


@dataclasses.dataclass
class MixedPrecisionState:
    g: np.ndarray  # the device array (the weights)
    ref: np.ndarray  # its reference conductance
    chi: np.ndarray  # float accumulator, weight units
    step: int = 0
    ptr: int = 0

    @classmethod
    def new(cls, g, ref=0.5):
        g = _f64(g).copy()
        return cls(g, np.broadcast_to(_f64(ref), g.shape).copy(), np.zeros_like(g))

    def copy(self):
        return MixedPrecisionState(self.g.copy(), self.ref.copy(), self.chi.copy(), self.step, self.ptr)


def quantize_bins(v, n_bins, u=None):
    """aihwkit's dynamic quantization of a batch of vectors ``v`` ``(B, n)`` to ``n_bins``
    bins symmetric around 0: ``width = max|v_b| / floor(n_bins/2)`` per vector (1 if 0),
    ``q = clip(rint(v / width + (u - 0.5)), +-floor(n_bins/2)) * width`` (``u=None``:
    deterministic rounding). ``n_bins <= 0``: ``v`` unchanged."""
    v = _f64(v)
    if n_bins <= 0:
        return v
    half = n_bins // 2
    width = np.max(np.abs(v), axis=-1, keepdims=True) / half
    width = np.where(width == 0, 1.0, width)
    z = v / width + (0.0 if u is None else _f64(u) - 0.5)
    return np.clip(np.rint(z), -half, half) * width


def mixed_precision_step(state: MixedPrecisionState, lr, device: ExpDevice, cfg: MixedPrecisionConfig,
                         grad=None, x=None, d=None, draws=None):
    """One optimizer step of mixed precision; returns ``(new_state, info)``.

    ``chi += -lr * G`` with ``G = grad``, or ``G = q(x)^T q(d)`` from the layer's
    inputs ``x`` ``(B, n_in)`` and output errors ``d`` ``(B, n_out)`` quantized by
    `quantize_bins` (draws ``u_x``, ``u_d`` for stochastic rounding). Every
    ``transfer_every`` steps the selected output columns transfer::

        n = trunc(chi / eps)           # = sign(chi) floor(|chi| / eps)
        chi -= n * eps                 # open loop: what was asked, not what the device did
        pulses = clip(round(transfer_lr * n * eps / dw_min), +-max_pulses)

    ``info``: ``pulses`` (full shape).
    """
    s = state.copy()
    draws = draws or {}
    if grad is None:
        u_x = draws.get("u_x") if cfg.stoc_round_x else None
        u_d = draws.get("u_d") if cfg.stoc_round_d else None
        grad = quantize_bins(x, cfg.n_x_bins, u_x).T @ quantize_bins(d, cfg.n_d_bins, u_d)
    s.chi = s.chi - lr * _f64(grad)
    s.step += 1
    pulses = np.zeros_like(s.g)
    if cfg.transfer_every > 0 and s.step % cfg.transfer_every == 0:
        n_out = s.g.shape[1]
        k = n_out if cfg.n_rows_per_transfer < 0 else min(cfg.n_rows_per_transfer, n_out)
        cols = (s.ptr + np.arange(k)) % n_out
        s.ptr = int((s.ptr + k) % n_out)
        eps = dw_min(device, cfg.w_max) if cfg.granularity is None else cfg.granularity
        n = np.trunc(s.chi[:, cols] / eps)
        s.chi[:, cols] = s.chi[:, cols] - n * eps
        max_p = device.n_p if cfg.max_pulses is None else cfg.max_pulses
        p = np.clip(np.round(cfg.transfer_lr * n * eps / dw_min(device, cfg.w_max)), -max_p, max_p)
        xi = draws.get("xi")
        dev_cols = dataclasses.replace(device, a_p=_cols(device.a_p, cols, s.g.shape),
                                       a_d=_cols(device.a_d, cols, s.g.shape))
        s.g[:, cols] = apply_pulses(s.g[:, cols], p, dev_cols, None if xi is None else _f64(xi)[:, cols])
        pulses[:, cols] = p
    return s, {"pulses": pulses}


def _cols(a, cols, shape):
    a = _f64(a)
    return a if a.ndim == 0 else np.broadcast_to(a, shape)[:, cols]


# ----------------------------------------------------------------------------
# Analog periphery (aihwkit IOParameters)
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IOConfig:
    """One direction's periphery (aihwkit ``IOParameters``; defaults are aihwkit's)."""

    is_perfect: bool = False
    inp_bound: float = 1.0
    inp_res: float = 1.0 / (2**7 - 2)
    inp_sto_round: bool = False
    inp_noise: float = 0.0
    out_bound: float = 12.0
    out_res: float = 1.0 / (2**9 - 2)
    out_sto_round: bool = False
    out_noise: float = 0.06
    out_scale: float = 1.0
    w_noise: float = 0.0
    w_noise_type: str = "none"  # "none", "additive_constant", "pcm_read"
    noise_management: str = "abs_max"  # "none", "abs_max", "max", "constant"
    nm_thres: float = 0.0
    bound_management: str = "iterative"  # "none", "iterative"
    max_bm_factor: int = 1000
    max_bm_res: float = 0.25
    bm_test_negative_bound: bool = True

    @classmethod
    def preset(cls, **fields):
        """aihwkit's ``PresetIOParameters`` (every ``*Preset`` config's forward and backward)."""
        return cls(**{"out_bound": 20.0, "out_noise": 0.1, **fields})

    @property
    def inp_step(self):
        return resolution_step(self.inp_res, self.inp_bound)

    @property
    def out_step(self):
        return resolution_step(self.out_res, self.out_bound)


def bm_rounds(io: IOConfig, backward=False):
    """Passes bound management may take: input scale factors ``1, 2, 4, ...`` until
    ``factor > max_bm_factor`` or ``factor > max_bm_res / inp_step`` (``inp_step``: the
    DAC step, `resolution_step`). Defaults: 1/126 -> step 1/63 -> 15.75 -> factors
    1..16, 5 passes. 1 pass without bound management or backward."""
    if backward or io.bound_management == "none":
        return 1
    factor, rounds = 1, 1
    step = io.inp_step
    while not (factor > io.max_bm_factor or (step > 0 and factor > io.max_bm_res / step)):
        factor *= 2
        rounds += 1
    return rounds


def mvm_draws(rng, io: IOConfig, batch, n_in, n_out, backward=False):
    """Random draws of one `analog_mvm` call (shapes ``(rounds, batch, size)``)."""
    r = bm_rounds(io, backward)
    return {"xi_out": rng.standard_normal((r, batch, n_out)), "xi_w": rng.standard_normal((r, batch, n_out)),
            "xi_inp": rng.standard_normal((r, batch, n_in)), "u_inp": rng.uniform(size=(r, batch, n_in)),
            "u_out": rng.uniform(size=(r, batch, n_out))}


def noise_management_scale(x, io: IOConfig):
    """Per-vector ``alpha`` of noise management (``x`` ``(B, n)``); inputs are divided by it
    before the DAC and outputs multiplied by it after the ADC. ``none``: 1."""
    x = _f64(x)
    nm = io.noise_management
    if nm == "none":
        return np.ones(x.shape[0])
    if nm == "abs_max":
        a = np.max(np.abs(x), axis=1)
    elif nm == "max":
        a = np.max(x, axis=1)
    elif nm == "constant":
        return np.full(x.shape[0], io.nm_thres if io.nm_thres > 0 else 1.0)
    else:
        raise ValueError(f"unknown noise_management {nm!r}")
    return np.minimum(a, io.nm_thres) if io.nm_thres > 0 else a


def analog_mvm(x, w, io: IOConfig, draws: dict | None = None, backward=False):
    """One analog matrix-vector product per row of ``x``, with the periphery of ``io``.

    Forward: ``x`` ``(B, n_in)``, ``w`` the kernel ``(n_in, n_out)``, ``y ~ x @ w``.
    Backward (``backward=True``): ``x`` are the errors ``(B, n_out)``, ``y ~ x @ w.T``
    (bound management is off, as in aihwkit).

    Per vector: ``alpha`` = `noise_management_scale`; for bound-management pass
    ``r`` (factor ``f = 2**r``)::

        x' = clip(Q_in(x / (alpha f)), +-inp_bound) + inp_noise * xi_inp
        y  = x' @ W  + weight noise + out_noise * xi_out
        y  = Q_out(y);   passed = all(y <= out_bound) [and all(y >= -out_bound)]
        y  = clip(y, +-out_bound)

    stopping at the first pass that passed (or the last allowed); the result is
    ``y * out_scale * alpha * f``. A vector whose ``alpha <= 0`` (with noise
    management on and no input noise) gives 0.

    Args:
        draws: see `mvm_draws`; keys for disabled effects may be absent.

    Returns:
        ``(y, factor)``: outputs ``(B, n_out)`` and each vector's final factor ``f``.
    """
    x = _f64(x)
    mat = _f64(w).T if backward else _f64(w)
    batch, n_out = x.shape[0], mat.shape[1]
    if io.is_perfect:
        return io.out_scale * (x @ mat), np.ones(batch)
    draws = draws or {}
    rounds = bm_rounds(io, backward)
    alpha = noise_management_scale(x, io)
    zero = (io.noise_management != "none") & (alpha <= 0) & (io.inp_noise <= 0)
    if np.all(zero):  # aihwkit's short cut: nothing is drawn
        return np.zeros((batch, n_out)), np.ones(batch)
    alpha_safe = np.where(alpha > 0, alpha, 1.0)
    in_step, out_step = io.inp_step, io.out_step
    bound_in = io.inp_bound if io.inp_bound > 0 else math.inf
    bound_out = io.out_bound if io.out_bound > 0 else math.inf
    y_final = np.zeros((batch, n_out))
    factor_final = np.ones(batch)
    done = np.zeros(batch, bool)
    for r in range(rounds):  # bound-management passes, vectorized over the batch
        f = 2.0**r if io.bound_management != "none" and not backward else 1.0
        xs = x / (alpha_safe * f)[:, None]
        xq = quantize(xs, in_step, draws["u_inp"][r] if io.inp_sto_round else None)
        xq = np.clip(xq, -bound_in, bound_in)
        if io.inp_noise > 0:
            xq = xq + io.inp_noise * draws["xi_inp"][r]
        y = xq @ mat
        if io.w_noise > 0 and io.w_noise_type == "additive_constant":
            y = y + io.w_noise * np.linalg.norm(xq, axis=1, keepdims=True) * draws["xi_w"][r]
        elif io.w_noise > 0 and io.w_noise_type == "pcm_read":
            y = y + io.w_noise * np.sqrt((xq**2) @ np.abs(mat)) * draws["xi_w"][r]
        if io.out_noise > 0:
            y = y + io.out_noise * draws["xi_out"][r]
        y = quantize(y, out_step, draws["u_out"][r] if io.out_sto_round else None)
        passed = np.all(y <= bound_out, axis=1)
        if io.bm_test_negative_bound:
            passed &= np.all(y >= -bound_out, axis=1)
        y = np.clip(y, -bound_out, bound_out)
        take = ~done & (passed | (r == rounds - 1))
        y_final[take] = y[take]
        factor_final[take] = f
        done |= take
    y = y_final * (io.out_scale * alpha_safe * factor_final)[:, None]
    y[zero] = 0.0
    return y, factor_final
