"""Plain-numpy reference of MLP+NeuroSim V3.0's online training procedure.

The specification is ``docs/neurosim.md``; every function below names the
NeuroSim file and function it reimplements (MLP_NeuroSim_V3.0, release with
``alpha1 = 0.4``, ``alpha2 = 0.2``, ``optimization_type = "SGD"``). This module
imports nothing from devsim: it is the yardstick devsim's ``--protocol
neurosim`` is tested against.

Units. A device's conductance is stored normalized, ``g = (G - Gmin) / (Gmax -
Gmin)`` in [0, 1] (devsim's convention); read currents are in units of
``Vr * Gmax``; resistances in units of ``1 / Gmax`` (``rho = R * Gmax``). The
read voltage cancels everywhere (the ADC and the weight read-back use current
ratios only).

Arrays follow NeuroSim's layout: a layer's conductances ``g[j, k]`` have one
row per output neuron ``j`` (NeuroSim's array column ``x``) and one column per
input ``k`` (NeuroSim's array row ``y``): ``(nHide, nInput)`` and
``(nOutput, nHide)``.

Everything is vectorized over weights; loops run over images only. A 16-8-10
network trains on a few images in milliseconds.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

# ----------------------------------------------------------------------------
# Constants (Param.cpp, Cell.cpp, Array.h of MLP_NeuroSim_V3.0)
# ----------------------------------------------------------------------------

NUM_BIT_PARTIAL_SUM = 8
PSUM_MAX_HARDWARE = 2**NUM_BIT_PARTIAL_SUM - 1  # pSumMaxHardware = 255: ADC full-scale code
BW_THRESHOLD = 0.5  # BWthreshold: input binarization
H_THRESHOLD = 0.5  # Hthreshold: hidden-layer digitization
MAX_WEIGHT, MIN_WEIGHT = 1.0, -1.0  # maxWeight, minWeight

NL_UNIT = 0.07 * math.sqrt(2.0)
"""Vertical gap (normalized conductance) of one NL unit that reproduces NeuroSim's
table to all its 6 decimals (0.0989949...; devsim uses 0.098995)."""

TABLE_LABELS = np.round(np.arange(1, 901) * 0.01, 2)
"""Labels of getParamA's table: 0.01 ... 9.00 (index = label * 100 - 1)."""

R_ACCESS = 15e3  # resistanceAccess (Ohm), 1T1R access transistor
WIRE_RESISTIVITY_100NM = 2.73e-8 / (100e-9 * 100e-9 * 2.30)  # Array.h, wireWidth = 100 nm (Ohm/m)
R_WIRE_PER_CELL = WIRE_RESISTIVITY_100NM * 4 * 100e-9
"""Wire resistance per cell pitch (Ohm), estimated for a 4F 1T1R cell at F = 100 nm;
NeuroSim recomputes it from its layout in NeuroSimSubArrayInitialize (NeuroSim.cpp)."""


# ----------------------------------------------------------------------------
# glibc rand() (used by Mapping.cpp WeightInitialize and Train.cpp's sampling)
# ----------------------------------------------------------------------------


class GlibcRand:
    """glibc's ``srand(seed)`` / ``rand()`` (the TYPE_3 additive feedback generator).

    ``r[0] = seed`` (0 is replaced by 1, as glibc does), ``r[i] = 16807 r[i-1]
    mod (2^31 - 1)`` for ``i < 31``, ``r[i] = r[i-31]`` for ``31 <= i < 34``,
    ``r[i] = r[i-3] + r[i-31] mod 2^32`` after that; the k-th output of
    ``rand()`` is ``r[k + 344] >> 1``.

    NeuroSim calls ``srand(2)`` before drawing the initial weights and
    ``srand(0)`` (= ``srand(1)`` in glibc) before training.
    """

    def __init__(self, seed: int):
        seed = int(seed) % 2**32
        if seed == 0:
            seed = 1
        if seed >= 2**31:
            raise ValueError("seeds >= 2^31 are not supported")
        r = [seed]
        for _ in range(1, 31):
            hi, lo = divmod(r[-1], 127773)
            word = 16807 * lo - 2836 * hi
            r.append(word + 2147483647 if word < 0 else word)
        r += r[:3]
        self._ring = r  # the last 34 values, oldest first
        self.rand(310)  # glibc discards the first 310 outputs

    def rand(self, n: int) -> np.ndarray:
        """The next ``n`` values of ``rand()`` (int64 array, each in [0, 2^31))."""
        r = self._ring
        out = np.empty(n, dtype=np.int64)
        for t in range(n):
            v = (r[-3] + r[-31]) & 0xFFFFFFFF
            r.append(v)
            out[t] = v >> 1
        del r[:-34]
        return out


def image_indices(rng: GlibcRand, num_images: int, count: int) -> np.ndarray:
    """Train.cpp ``Train()``: each step trains ``rand() % numMnistTrainImages`` (with replacement)."""
    return rng.rand(count) % num_images


# ----------------------------------------------------------------------------
# Rounding helpers (formula.cpp)
# ----------------------------------------------------------------------------


def truncate(x, num_level, threshold=0.5):
    """formula.cpp ``truncate()``: round ``x`` to a multiple of ``1/num_level``.

    ``v = (x * num_level) * sign(x)``; ``v -> floor(v) + 1`` if ``v - floor(v) >=
    threshold`` else ``floor(v)``; result ``(v * sign(x)) / num_level``. This is
    rounding half away from zero in the magnitude, in double precision as C does
    it. ``num_level <= 0`` returns ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    num_level = np.asarray(num_level)
    sign = np.where(x < 0, -1.0, 1.0)
    val = x * num_level * sign
    r = np.trunc(val)
    val = np.where(val - r >= threshold, r + 1.0, r)
    return np.where(num_level <= 0, x, val * sign / np.where(num_level <= 0, 1, num_level))


def round_th(x, threshold):
    """formula.cpp ``round_th()``: the same rounding of ``x`` to an integer (as a float)."""
    x = np.asarray(x, dtype=np.float64)
    sign = np.where(x < 0, -1.0, 1.0)
    val = x * sign
    r = np.trunc(val)
    return np.where(val - r >= threshold, r + 1.0, r) * sign


def sigmoid(x):
    """formula.cpp ``sigmoid()``: ``1 / (1 + exp(-x))``."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# ----------------------------------------------------------------------------
# Nonlinearity label -> A (formula.cpp getParamA and its table)
# ----------------------------------------------------------------------------


def nl_of_a(a):
    """NeuroSim label magnitude of a curve of normalized curvature ``|a|``.

    ``NL = max_x (g(x) - x) / NL_UNIT`` with ``g(x) = (1 - exp(-x/a)) / (1 - exp(-1/a))``;
    the maximum is at ``x* = -a log(a (1 - exp(-1/a)))``. ``inf`` gives 0.
    """
    a = np.abs(np.asarray(a, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = -np.expm1(-1.0 / a)
        x_star = -a * np.log(a * d)
        gap = -np.expm1(-x_star / a) / d - x_star
    return np.where(np.isinf(a), 0.0, gap / NL_UNIT)


def a_of_nl(label):
    """The positive normalized ``A`` whose label is ``|label|`` (exact; ``inf`` for 0).

    Bisection in ``log A`` on [1e-4, 1e12] (vectorized, 200 halvings).
    """
    label = np.abs(np.asarray(label, dtype=np.float64))
    lo = np.full(label.shape, math.log(1e-4))
    hi = np.full(label.shape, math.log(1e12))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        too_curved = nl_of_a(np.exp(mid)) > label  # the label falls as A grows
        lo, hi = np.where(too_curved, mid, lo), np.where(too_curved, hi, mid)
    out = np.where(label == 0, np.inf, np.exp(0.5 * (lo + hi)))
    return out[()] if out.ndim == 0 else out


@functools.cache
def param_a_table() -> np.ndarray:
    """getParamA's table: normalized A for labels 0.01..9.00, 6 decimals (regenerated, not copied).

    ``table[i] = round(a_of_nl(0.01 (i + 1)), 6)``; with ``NL_UNIT = 0.07 sqrt 2``
    this equals the printed table (see tests/test_neurosim_reference.py).
    """
    table = np.round(a_of_nl(TABLE_LABELS), 6)
    table.setflags(write=False)
    return table


def table_index(label):
    """getParamA's index ``(int)(|NL| * 100) - 1``, clamped to [0, 899].

    The product is a double, so e.g. 0.29 * 100 = 28.999999999999996 gives index 27
    (the A of label 0.28), and 0.105 gives index 9 (label 0.10).
    """
    label = np.asarray(label, dtype=np.float64)
    return np.clip(np.trunc(np.abs(label) * 100).astype(np.int64) - 1, 0, 899)


def param_a(label, exact=False):
    """formula.cpp ``getParamA(NL)``: signed normalized A, ``+`` for NL > 0, ``-`` otherwise.

    NeuroSim multiplies it by the branch's maxNumLevel to get A in pulses
    (Cell.cpp ``RealDevice::RealDevice``). ``exact=True`` replaces the table
    lookup by the exact inverse :func:`a_of_nl` (label 0 gives ``-inf``,
    NeuroSim's table gives ``-126.268958``).
    """
    label = np.asarray(label, dtype=np.float64)
    sign = np.where(label > 0, 1.0, -1.0)
    magnitude = a_of_nl(label) if exact else param_a_table()[table_index(label)]
    out = sign * magnitude
    return out[()] if out.ndim == 0 else out


# ----------------------------------------------------------------------------
# The device (Cell.cpp RealDevice)
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Device:
    """NeuroSim's ``RealDevice`` (Cell.cpp), in normalized units.

    Args:
        levels_ltp: ``maxNumLevelLTP``: LTP pulses of a full Gmin -> Gmax sweep.
        levels_ltd: ``maxNumLevelLTD``: LTD pulses of a full Gmax -> Gmin sweep.
        nl_ltp, nl_ltd: NeuroSim labels (``NL_LTP``, ``NL_LTD``).
        g_max, g_min: ``maxConductance``, ``minConductance`` (S).
        c2c: cycle-to-cycle sigma as a fraction of ``Gmax - Gmin``
            (``sigmaCtoC = c2c * (Gmax - Gmin)``).
        nonlinear: ``nonlinearWrite``; ``False`` is NeuroSim's linear device.
        exact_a: use the exact label -> A instead of the truncated table lookup.
        r_access: access-transistor resistance (Ohm) in series with every read.
        r_wire: wire resistance per cell pitch (Ohm), rows and columns alike.
        fefet: NeuroSim's ``FeFET`` flag: the cell read skips ``r_access`` (but
            Imax/Imin still include it).
        name: label for printing.
    """

    levels_ltp: int = 97
    levels_ltd: int = 100
    nl_ltp: float = 2.4
    nl_ltd: float = -4.88
    g_max: float = 3.8462e-8
    g_min: float = 3.0769e-9
    c2c: float = 0.035
    nonlinear: bool = True
    exact_a: bool = False
    r_access: float = R_ACCESS
    r_wire: float = R_WIRE_PER_CELL
    fefet: bool = False
    name: str = "ag-si"

    @property
    def on_off(self) -> float:
        return self.g_max / self.g_min

    @property
    def f(self) -> float:
        """``Gmin / Gmax``."""
        return self.g_min / self.g_max

    @functools.cached_property
    def a_ltp(self) -> float:
        """Normalized signed A of LTP (``paramALTP / maxNumLevelLTP``)."""
        return float(param_a(self.nl_ltp, self.exact_a))

    @functools.cached_property
    def a_ltd(self) -> float:
        """Normalized signed A of LTD (``paramALTD / maxNumLevelLTD``); negative for NL_LTD < 0."""
        return float(param_a(self.nl_ltd, self.exact_a))

    def replace(self, **fields) -> "Device":
        return dataclasses.replace(self, **fields)


def preset(name: str, **fields) -> Device:
    """NeuroSim V3.0 devices (manual Table II: levels, NL, R_on, on/off, C2C).

    ``ag-si`` is RealDevice's default in Cell.cpp (97 LTP / 100 LTD pulses,
    Gmax 3.8462e-8 S, Gmin 3.0769e-9 S, C2C 3.5 %). Other devices use the
    table's levels for both branches, ``Gmax = 1/R_on``, ``Gmin = Gmax/on_off``;
    "<1 %" is taken as 1 %, "<0.5 %" as 0.5 %. ``linear`` is Ag:a-Si with
    ``nonlinearWrite = false`` and no C2C.
    """
    table = {
        "ag-si": Device(),
        "taox-hfox": Device(128, 128, 0.04, -0.63, 1 / 100e3, 1 / 100e3 / 10, 0.037, name="taox-hfox"),
        "pcmo": Device(50, 50, 3.68, -6.76, 1 / 23e6, 1 / 23e6 / 6.84, 0.01, name="pcmo"),
        "alox-hfo2": Device(40, 40, 1.94, -0.61, 1 / 16.9e3, 1 / 16.9e3 / 4.43, 0.05, name="alox-hfo2"),
        "gst-pcm": Device(100, 100, 0.105, 2.4, 1 / 4.71e3, 1 / 4.71e3 / 19.8, 0.015, name="gst-pcm"),
        "epiram": Device(64, 64, 0.5, -0.5, 1 / 81e3, 1 / 81e3 / 50.2, 0.02, name="epiram"),
        "hzo-fefet": Device(32, 32, 1.75, 1.46, 1 / 559.28e3, 1 / 559.28e3 / 45, 0.005, fefet=True, name="hzo-fefet"),
        "linear": Device(nonlinear=False, c2c=0.0, name="linear"),
    }
    return table[name].replace(**fields)


# ----------------------------------------------------------------------------
# Reading the array (Array.cpp ReadCell, GetMax/Min/MediumCellReadCurrent, ConductanceToWeight)
# ----------------------------------------------------------------------------


def series_rho(shape, device: Device) -> np.ndarray:
    """Series resistance of every cell in units of ``1/Gmax`` (Array.cpp ``ReadCell``).

    ``R[j, k] = (j + 1) r_wire + (nRows - k) r_wire + r_access`` (no ``r_access``
    for FeFET), ``j`` the output (NeuroSim column ``x``), ``k`` the input (row ``y``).
    """
    n_out, n_in = shape
    j = np.arange(n_out)[:, None]
    k = np.arange(n_in)[None, :]
    r = (j + 1) * device.r_wire + (n_in - k) * device.r_wire + (0.0 if device.fefet else device.r_access)
    return r * device.g_max


def cell_current(g, device: Device, rho):
    """Read current ``Vr / (1/G + R)`` in units of ``Vr Gmax``: ``1 / (1/(f + (1-f) g) + rho)``."""
    conductance = device.f + (1.0 - device.f) * np.asarray(g, dtype=np.float64)
    return 1.0 / (1.0 / conductance + rho)


def current_bounds(device: Device):
    """``(Imin, Imax)``: AnalogNVM ``GetMinReadCurrent`` / ``GetMaxReadCurrent`` (Cell.h).

    ``Vr / (1/Gmin + r_access)`` and ``Vr / (1/Gmax + r_access)`` (1T1R: the access
    resistance only, no wires), in units of ``Vr Gmax``.
    """
    rho_access = device.r_access * device.g_max
    return 1.0 / (1.0 / device.f + rho_access), 1.0 / (1.0 + rho_access)


def conductance_to_weight(g, device: Device, rho):
    """Array.cpp ``ConductanceToWeight``: ``w = (I - Imin)/(Imax - Imin) (wmax - wmin) + wmin``.

    ``I`` is the cell's read current (series resistance included), clipped to
    ``[Imin, Imax]``. Without series resistance this is ``w = 2g - 1``.
    """
    i_min, i_max = current_bounds(device)
    i = np.clip(cell_current(g, device, rho), i_min, i_max)
    return (i - i_min) / (i_max - i_min) * (MAX_WEIGHT - MIN_WEIGHT) + MIN_WEIGHT


def array_read(bits, g, device: Device, rho, return_digits=False, currents=None):
    """One layer's hardware weighted sum (Train.cpp ``Train()`` / Test.cpp ``Validate()``, analog eNVM).

    For binary inputs ``b_k`` (NeuroSim's ``numBitInput = 1``) and an array of
    ``R`` rows, per output ``j``::

        Isum_j = sum_k b_k I[j, k]                   (the column's current)
        Iref   = sum_k b_k (Imax + Imin) / 2         (GetMediumCellReadCurrent: the reference)
        step   = (R Imax - R Imin) / 255             (IsumMax - IsumMin over all R rows)
        D_j    = 2 (floor(Isum_j / step) - floor(Iref / step))     (CurrentToDigits, Mapping.cpp)
        out_j  = D_j / 255 * R                       (DigitsToAlgorithm, pSumMaxAlgorithm = R)

    The ADC codes are not clipped to 255. Without series resistance
    ``out_j ~ sum_k b_k (2 g_jk - 1)``, quantized in steps of ``2R/255``.

    Args:
        bits: ``(R,)`` or ``(R, n)`` 0/1 inputs (n images at once).
        g: ``(C, R)`` conductances.
        currents: ``cell_current(g, device, rho)`` if already known.

    Returns:
        ``out`` of shape ``(C,)`` or ``(C, n)`` (and the digits ``D`` if asked).
    """
    bits = np.asarray(bits, dtype=np.float64)
    n_rows = g.shape[1]
    i_min, i_max = current_bounds(device)
    step = (n_rows * i_max - n_rows * i_min) / PSUM_MAX_HARDWARE
    if currents is None:
        currents = cell_current(g, device, rho)
    i_sum = currents @ bits
    i_ref = bits.sum(axis=0) * ((i_max + i_min) / 2.0)
    digits = 2 * (np.floor(i_sum / step) - np.floor(i_ref / step))
    out = digits / PSUM_MAX_HARDWARE * n_rows
    return (out, digits) if return_digits else out


# ----------------------------------------------------------------------------
# Data, initialization (IO.cpp, Mapping.cpp)
# ----------------------------------------------------------------------------


def prepare_images(images, size=20, threshold=BW_THRESHOLD):
    """Central ``size x size`` pixels, flattened row-major, binarized (IO.cpp ``ReadTrainingDataFromFile``).

    ``images``: ``(n, 28, 28)`` in [0, 1]. Binarization is ``truncate(x, 1,
    BWthreshold)``: 1 where ``x >= 0.5``. Returns uint8 ``(n, size*size)``.
    """
    images = np.asarray(images, dtype=np.float64)
    top = (images.shape[1] - size) // 2
    left = (images.shape[2] - size) // 2
    crop = images[:, top:top + size, left:left + size].reshape(len(images), size * size)
    return truncate(crop, 1, threshold).astype(np.uint8)


def initial_weights(n_in=400, n_hidden=100, n_out=10, seed=2):
    """Mapping.cpp ``WeightInitialize()``: ``srand(2)``, then ``(rand() % 7 - 3) / 3`` for
    ``weight1[j][k]`` (j over hidden, k over inputs) and then ``weight2``.

    Returns ``(w1, w2)`` of shapes ``(n_hidden, n_in)`` and ``(n_out, n_hidden)``,
    values in {-1, -2/3, ..., 1}.
    """
    r = GlibcRand(seed).rand(n_hidden * n_in + n_out * n_hidden)
    w = ((r % 7) - 3).astype(np.float64) / 3.0
    return w[: n_hidden * n_in].reshape(n_hidden, n_in), w[n_hidden * n_in:].reshape(n_out, n_hidden)


def weight_to_conductance(w, device: Device, gmin_offset_bug=True):
    """Mapping.cpp ``WeightToConductance()`` via Array.cpp ``WriteCell(..., regular=false)``.

    NeuroSim sets ``G = (w - wmin)/(wmax - wmin) (Gmax - Gmin)`` (no ``+ Gmin``)
    and clips it to ``[Gmin, Gmax]``; in normalized units
    ``g = max(0, (w + 1)/2 - Gmin/(Gmax - Gmin))``. ``gmin_offset_bug=False``
    gives the intended ``g = (w + 1)/2``.
    """
    w = np.asarray(w, dtype=np.float64)
    dg = device.g_max - device.g_min
    conductance = (w - MIN_WEIGHT) / (MAX_WEIGHT - MIN_WEIGHT) * dg
    if not gmin_offset_bug:
        conductance = conductance + device.g_min
    conductance = np.clip(conductance, device.g_min, device.g_max)
    return (conductance - device.g_min) / dg


# ----------------------------------------------------------------------------
# Pulses and the device write (Cell.cpp RealDevice::Write)
# ----------------------------------------------------------------------------


def pulse_counts(dw, device: Device):
    """deltaW -> signed integer pulse count (RealDevice ``Write``).

    ``dw > 0`` is LTP with ``N = maxNumLevelLTP``, otherwise LTD with
    ``N = maxNumLevelLTD``; ``d = truncate(dw / (wmax - wmin), N)`` (round half
    away from zero to a multiple of 1/N) and ``numPulse = (int)(d * N)`` (C
    truncation toward zero; ``(k/N)*N`` can fall one ulp below ``k``, so e.g.
    N = 97 applies 6 pulses for 7 requested). No cap.

    Returns int64 array, ``> 0`` LTP, ``< 0`` LTD.
    """
    dw = np.asarray(dw, dtype=np.float64)
    x = dw / (MAX_WEIGHT - MIN_WEIGHT)
    n_levels = np.where(dw > 0, device.levels_ltp, device.levels_ltd)
    out = np.zeros(dw.shape, dtype=np.int64)
    some = np.abs(x) * n_levels >= 0.5  # truncate's value, exactly; below 0.5 it rounds to 0
    n_levels = n_levels[some]
    out[some] = np.trunc(truncate(x[some], n_levels) * n_levels).astype(np.int64)
    return out


def write(g, n, device: Device, xi=None):
    """Apply signed pulse counts ``n`` to conductances ``g`` (RealDevice ``Write``).

    Nonlinear (``nonlinearWrite``), with the branch's ``N`` and ``A = a N``
    (pulses, signed, from :func:`param_a`) and ``s = 1 / (1 - exp(-N/A))``
    (NeuroSim's ``B / (Gmax - Gmin)``)::

        x     = -A log(1 - g / s)            (InvNonlinearWeight: g's pulse position)
        g_new = s (1 - exp(-(x + n) / A))    (NonlinearWeight)
              = g + (s - g)(1 - exp(-n / A))

    Linear: ``g_new = g + n / N``. LTD is the same curve traversed with
    ``n < 0``; a negative LTD label gives ``A < 0``, i.e. saturating depression
    (devsim's ``A_d = |A|``). Then, if ``n != 0``, C2C noise
    ``g_new += c2c * xi * sqrt(|n|)``, and the result is clipped to [0, 1].
    ``n == 0`` leaves ``g`` as it is (NeuroSim round-trips it through the
    curve: a change of about one ulp).

    Args:
        g: conductances in [0, 1].
        n: signed pulse counts (same shape).
        xi: standard-normal draws (same shape) for C2C; ``None`` means no noise.

    The branch is the sign of ``n`` (NeuroSim branches on ``deltaW > 0``; the
    two differ only where ``n == 0``, which changes nothing).
    """
    g = np.asarray(g, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    out = g.copy()
    moved = n != 0  # only these cells change; computing on them alone is the same result
    if not moved.any():
        return out
    g, n = g[moved], n[moved]
    ltp = n > 0
    n_levels = np.where(ltp, device.levels_ltp, device.levels_ltd).astype(np.float64)
    if device.nonlinear:
        a = np.where(ltp, device.a_ltp, device.a_ltd) * n_levels
        s = 1.0 / -np.expm1(-n_levels / a)
        x = -a * np.log(1.0 - g / s)
        g_new = s * -np.expm1(-(x + n) / a)
    else:
        g_new = (g * n_levels + n) / n_levels
    if xi is not None and device.c2c > 0:
        g_new = g_new + device.c2c * np.asarray(xi, dtype=np.float64)[moved] * np.sqrt(np.abs(n))
    out[moved] = np.clip(g_new, 0.0, 1.0)
    return out


# ----------------------------------------------------------------------------
# Optimizers (Train.cpp: SGD, Momentum, Adagrad, RMSprop, Adam and their use in Train())
# ----------------------------------------------------------------------------

OPTIMIZERS = ("SGD", "Momentum", "Adagrad", "RMSprop", "Adam")


class Optimizer:
    """deltaW from a gradient as Train.cpp computes it, per layer.

    ``grad`` is ``s1[j] * Input[k]`` or ``s2[j] * a1[k]``; every step adds it to
    ``gradSum``. ``first`` is NeuroSim's ``batchSize % numTrain == 0``: true only
    for the first image of each ``Train()`` call, i.e. of each epoch; only then
    are the optimizer states updated (from the epoch's summed gradient) and
    ``gradSum`` reset::

        SGD       dW = -alpha g
        Momentum  dW = -alpha g;  first: dW = -(0.1 m + alpha g),  m <- 0.9 m + alpha gradSum
        Adagrad   dW = -alpha g / (sqrt(G) + 0.1);  first: G <- G + gradSum^2
        RMSprop   dW = -alpha g / (sqrt(0.5 v + 0.5 g^2) + 0.2);  first: v <- 0.9 v + 0.1 gradSum^2
        Adam      dW = adam(g, m=0, v);  first: dW = adam(g, m, v),
                  m <- 0.1 m + 0.9 gradSum,  v <- 0.7 v + 0.3 gradSum^2
                  adam(g, m, v) = -alpha (0.1 m + 0.9 g)/0.9 / (sqrt((0.7 v + 0.3 g^2)/0.3) + 0.2)

    (G, v, m start at 0; in the ``first`` branches dW is computed with the
    states before their update.)
    """

    def __init__(self, kind="SGD", alphas=(0.4, 0.2)):
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {kind!r}")
        self.kind, self.alphas = kind, tuple(alphas)
        self.state = {}

    def delta(self, layer: int, grad, first: bool):
        grad = np.asarray(grad, dtype=np.float64)
        alpha = self.alphas[layer]
        kind = self.kind
        if kind == "SGD":  # NeuroSim sums the gradients for SGD too, but never uses the sum
            return -alpha * grad
        if layer not in self.state:
            self.state[layer] = {k: np.zeros_like(grad) for k in ("sum", "m", "v")}
        st = self.state[layer]
        st["sum"] = st["sum"] + grad
        if kind == "Momentum":
            dw = -alpha * grad
            if first:
                dw = -(0.1 * st["m"] + alpha * grad)
                st["m"] = 0.9 * st["m"] + alpha * st["sum"]
                st["sum"] = np.zeros_like(grad)
            return dw
        if kind == "Adagrad":
            dw = -alpha / (np.sqrt(st["v"]) + 1e-1) * grad
            if first:
                st["v"] = st["v"] + st["sum"] ** 2
                st["sum"] = np.zeros_like(grad)
            return dw
        if kind == "RMSprop":
            dw = -alpha / (np.sqrt(0.5 * st["v"] + 0.5 * grad**2) + 2e-1) * grad
            if first:
                st["v"] = 0.9 * st["v"] + 0.1 * st["sum"] ** 2
                st["sum"] = np.zeros_like(grad)
            return dw

        def adam(m, v):
            mt = (0.1 * m + 0.9 * grad) / 0.9
            vt = (0.7 * v + 0.3 * grad**2) / 0.3
            return -alpha * mt / (np.sqrt(vt) + 2e-1)

        dw = adam(0.0, st["v"])
        if first:
            dw = adam(st["m"], st["v"])
            st["m"] = 0.1 * st["m"] + 0.9 * st["sum"]
            st["v"] = 0.7 * st["v"] + 0.3 * st["sum"] ** 2
            st["sum"] = np.zeros_like(grad)
        return dw


# ----------------------------------------------------------------------------
# The network and its training (Train.cpp Train, Test.cpp Validate, main.cpp)
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Network:
    """State of NeuroSim's 2-layer MLP.

    ``device=None`` is NeuroSim's software ("algorithm") mode: float weights,
    float forward pass with the continuous a1, SGD with clipping to [-1, 1]
    (all ``useHardwareIn*`` flags false). ``w1``, ``w2`` are NeuroSim's
    ``weight1``/``weight2``: in hardware mode the weight copy read back after
    each write (used by the backward pass for s1), the initial grid values
    before the first write.
    """

    w1: np.ndarray
    w2: np.ndarray
    device: Device | None
    optimizer: Optimizer
    g1: np.ndarray | None = None
    g2: np.ndarray | None = None
    rho1: np.ndarray | None = None
    rho2: np.ndarray | None = None
    read_back: bool = False  # whether w1, w2 hold device read-backs yet (after the first write)
    i1: np.ndarray | None = None  # cached cell currents (a function of g1, g2)
    i2: np.ndarray | None = None

    @property
    def hardware(self) -> bool:
        return self.device is not None


def init_network(n_in=400, n_hidden=100, n_out=10, device: Device | None = None, optimizer="SGD",
                 alphas=(0.4, 0.2), weight_seed=2, gmin_offset_bug=True, series_resistance=True) -> Network:
    """main.cpp: ``WeightInitialize()`` then ``WeightToConductance()`` (hardware mode).

    ``series_resistance=False`` drops the access and wire resistances (the read
    current is then exactly ``Gmin + (Gmax - Gmin) g``).
    """
    w1, w2 = initial_weights(n_in, n_hidden, n_out, weight_seed)
    net = Network(w1, w2, device, optimizer if isinstance(optimizer, Optimizer) else Optimizer(optimizer, alphas))
    if device is not None:
        if not series_resistance:
            device = device.replace(r_access=0.0, r_wire=0.0)
            net.device = device
        net.g1 = weight_to_conductance(w1, device, gmin_offset_bug)
        net.g2 = weight_to_conductance(w2, device, gmin_offset_bug)
        net.rho1, net.rho2 = series_rho(w1.shape, device), series_rho(w2.shape, device)
        net.i1, net.i2 = cell_current(net.g1, device, net.rho1), cell_current(net.g2, device, net.rho2)
    return net


def forward(net: Network, x):
    """Forward pass of one image (or of ``(n_in, n)`` images at once).

    Hardware (Train.cpp / Test.cpp, ``useHardwareInTrainingFF``): ``out1 =
    array_read(x, g1)``, ``a1 = sigmoid(out1)``, ``da1 = round_th(a1, 0.5)`` (1
    iff ``a1 >= 0.5``, i.e. ``out1 >= 0``), ``out2 = array_read(da1, g2)``,
    ``a2 = sigmoid(out2)``. Software: ``a1 = sigmoid(w1 x)``, ``a2 =
    sigmoid(w2 a1)`` (continuous a1).

    Returns ``(a1, da1, a2)`` (``da1`` is ``a1`` in software mode).
    """
    x = np.asarray(x, dtype=np.float64)
    if not net.hardware:
        a1 = sigmoid(net.w1 @ x)
        return a1, a1, sigmoid(net.w2 @ a1)
    a1 = sigmoid(array_read(x, net.g1, net.device, net.rho1, currents=net.i1))
    da1 = round_th(a1, H_THRESHOLD)
    a2 = sigmoid(array_read(da1, net.g2, net.device, net.rho2, currents=net.i2))
    return a1, da1, a2


def backward(net: Network, a1, a2, label: int):
    """Train.cpp error signals: ``s2 = -2 a2 (1 - a2)(t - a2)`` (t one-hot) and
    ``s1_j = a1_j (1 - a1_j) sum_k w2[k, j] s2_k`` with NeuroSim's weight copy ``w2``.

    The gradients are ``s1 x^T`` and ``s2 a1^T`` (continuous a1, not da1).
    """
    target = np.zeros_like(a2)
    target[label] = 1.0
    s2 = -2.0 * a2 * (1.0 - a2) * (target - a2)
    s1 = a1 * (1.0 - a1) * (net.w2.T @ s2)
    return s1, s2


def _write_stats(n, batch_cols=None):
    """Per-layer pulse bookkeeping of one update.

    ``pulses_ltp``/``pulses_ltd``: sum of ``n > 0`` / ``|n < 0|``; ``cells``:
    cells with ``n != 0``; ``latency_pulses``: NeuroSim's write-latency count,
    per input row and write batch of ``batch_cols`` adjacent outputs, the max
    LTP plus the max LTD pulse count (``numBatchWriteSynapse = ceil(nOut / 16)``).
    """
    moved = n[n != 0]
    stats = {"pulses_ltp": int(moved[moved > 0].sum()), "pulses_ltd": int(-moved[moved < 0].sum()), "cells": moved.size}
    if batch_cols:
        n_out, n_in = n.shape
        pad = (-n_out) % batch_cols
        padded = np.concatenate([n, np.zeros((pad, n_in), n.dtype)]).reshape(-1, batch_cols, n_in)
        stats["latency_pulses"] = int(np.maximum(padded, 0).max(axis=1).sum() + np.maximum(-padded, 0).max(axis=1).sum())
    return stats


def _draws(xi, n):
    """C2C draws for a layer: an array shaped like the layer, or a Generator (drawn
    for the cells that move only, in C order of the flattened layer), or None."""
    if xi is None or isinstance(xi, np.ndarray):
        return xi
    out = np.zeros(n.shape)
    moved = n != 0
    out[moved] = xi.standard_normal(int(moved.sum()))
    return out


def train_step(net: Network, x, label: int, first=False, xi1=None, xi2=None) -> dict:
    """One image of Train.cpp ``Train()``: forward, error signals, layer-1 write, layer-2 write.

    Hardware write per layer: ``dW = optimizer(grad)``, ``n = pulse_counts(dW)``,
    ``g = write(g, n, xi)``, ``w = conductance_to_weight(g)``. Every cell is
    written (NeuroSim calls WriteCell for all of them; ``n = 0`` is a no-op).
    Software: ``w = clip(w - alpha grad, -1, 1)`` (always SGD).

    Args:
        x: ``(n_in,)`` 0/1 input.
        first: first image of the epoch (optimizer state update).
        xi1, xi2: standard-normal C2C draws shaped like ``g1``, ``g2`` (``None``: no C2C),
            or a ``numpy.random.Generator`` to draw them for the moving cells only.

    Returns:
        ``{"n1": pulses, "n2": pulses, "a2": output}`` (pulse arrays ``None`` in software mode).
    """
    x = np.asarray(x, dtype=np.float64)
    a1, da1, a2 = forward(net, x)
    s1, s2 = backward(net, a1, a2, label)
    grad1, grad2 = np.outer(s1, x), np.outer(s2, a1)
    if not net.hardware:
        net.w1 = np.clip(net.w1 - net.optimizer.alphas[0] * grad1, MIN_WEIGHT, MAX_WEIGHT)
        net.w2 = np.clip(net.w2 - net.optimizer.alphas[1] * grad2, MIN_WEIGHT, MAX_WEIGHT)
        return {"n1": None, "n2": None, "a2": a2}
    dev = net.device
    n1 = pulse_counts(net.optimizer.delta(0, grad1, first), dev)
    net.g1 = write(net.g1, n1, dev, _draws(xi1, n1))
    n2 = pulse_counts(net.optimizer.delta(1, grad2, first), dev)
    net.g2 = write(net.g2, n2, dev, _draws(xi2, n2))
    if not net.read_back:  # the first write reads every cell back: the grid values are gone
        net.w1 = conductance_to_weight(net.g1, dev, net.rho1)
        net.w2 = conductance_to_weight(net.g2, dev, net.rho2)
        net.read_back = True
    for n, g, w, rho, i in ((n1, net.g1, net.w1, net.rho1, net.i1), (n2, net.g2, net.w2, net.rho2, net.i2)):
        moved = n != 0  # later read-backs of unchanged cells give the same weight again
        w[moved] = conductance_to_weight(g[moved], dev, rho[moved])
        i[moved] = cell_current(g[moved], dev, rho[moved])
    return {"n1": n1, "n2": n2, "a2": a2}


def train_epoch(net: Network, x_bits, labels, indices, noise_rng=None, full_noise=False, latency=False) -> dict:
    """One ``Train(numTrainImagesPerEpoch, 1, optimization_type)`` call.

    Args:
        x_bits: ``(n_images, n_in)`` 0/1 training inputs.
        labels: ``(n_images,)`` integer labels.
        indices: the images to train, in order (see :func:`image_indices`).
        noise_rng: ``numpy.random.Generator`` for the C2C draws; ``None`` or a
            device with ``c2c = 0``: no C2C.
        full_noise: draw one full standard-normal array per layer and image
            (layer 1 first; the layout to hand the same draws to another
            implementation) instead of draws for the moving cells only (faster).
        latency: also count NeuroSim's write-latency pulses (``_write_stats``).

    Returns:
        Pulse statistics per layer summed over the epoch (see ``_write_stats``),
        and the training squared error ``sse`` and accuracy ``train_accuracy``
        of the forward passes (before each update).
    """
    batch = {1: -(-net.w1.shape[0] // 16), 2: -(-net.w2.shape[0] // 16)} if latency else {1: None, 2: None}
    totals = {1: {}, 2: {}}
    correct, sse = 0, 0.0
    use_noise = net.hardware and noise_rng is not None and net.device.c2c > 0
    for t, i in enumerate(indices):
        xi1 = xi2 = noise_rng if use_noise else None
        if use_noise and full_noise:
            xi1, xi2 = noise_rng.standard_normal(net.g1.shape), noise_rng.standard_normal(net.g2.shape)
        out = train_step(net, x_bits[i], int(labels[i]), first=(t == 0), xi1=xi1, xi2=xi2)
        a2 = out["a2"]
        correct += int(np.argmax(a2) == labels[i])
        sse += float(np.sum(a2**2) - 2 * a2[labels[i]] + 1)
        if net.hardware:
            for layer in (1, 2):
                for key, value in _write_stats(out[f"n{layer}"], batch[layer]).items():
                    totals[layer][key] = totals[layer].get(key, 0) + value
    stats = {f"layer{layer}_{k}": v for layer in (1, 2) for k, v in totals[layer].items()}
    stats.update(train_accuracy=correct / len(indices), sse=sse / len(indices))
    return stats


def predict(net: Network, x_bits) -> np.ndarray:
    """Test.cpp ``Validate()``: the class of the largest output, the first on ties
    (NeuroSim keeps the running max with a strict ``>``)."""
    x = np.asarray(x_bits, dtype=np.float64).T
    _, _, a2 = forward(net, x)
    return np.argmax(a2, axis=0)


def evaluate(net: Network, x_bits, labels) -> float:
    """Test accuracy on the whole test set (Validate: ``correct / numMnistTestImages``)."""
    return float(np.mean(predict(net, x_bits) == np.asarray(labels)))
