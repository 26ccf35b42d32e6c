"""The analog periphery: how inputs reach a device layer's arrays and how its column sums leave them.

A device layer's weights ``w = w_max (2g - 1)`` (reference mapping) are
conductances; the periphery decides what the forward and backward passes
compute from them. Two models of it, each a frozen dataclass of options, off
by default and exactly the identity when off (the model builder then uses
plain ``keras.layers.Dense``); one `AnalogDense` layer applies either:

**`ArrayReads`: how NeuroSim reads an array** (docs/neurosim.md sections 6-7,
docs/protocols.md). A 1-bit input DAC (`Binarize`), thresholded hidden
activations (``hidden_threshold``), series resistance in every read
(``r_access``, ``r_wire``, the device's ``r_on`` and ``cell``), and the
virtual mid-current reference column with an ADC of the column sums
(``adc_bits``). In units of ``Vr Gmax`` (currents) and ``R_on`` (resistances),
with ``f = 1/on_off``, ``G = f + (1 - f) g``, ``rho = R / R_on``::

    I[k, j]  = 1 / (1/G[k, j] + rho_cell[k, j])      rho_cell = rho_access (1t1r; 0 for fefet) + (j + 1 + R - k) rho_wire
    Imin     = 1 / (1/f + rho_access),  Imax = 1 / (1 + rho_access)
    w_read   = w_max ((clip(I, Imin, Imax) - Imin) / (Imax - Imin) 2 - 1)        (the weight read back)
    y_hw[j]  = w_max 2 (Q(Isum_j) - Q(Iref)) / (Imax - Imin)                     (Q: the ADC, or the identity)

(MLP+NeuroSim V3.0: Array.cpp ``ReadCell``, ``GetMediumCellReadCurrent``,
``ConductanceToWeight``; Mapping.cpp ``CurrentToDigits``, ``DigitsToAlgorithm``).
Gradients are NeuroSim's backward pass, a straight-through custom gradient:
with ``x`` the layer's input (the continuous activation) and ``b`` what the array
sees (``x`` or its thresholded bits), the forward value is ``y_hw`` and::

    dL/dw = x^T s        (e.g. NeuroSim's grad2 = s2 a1)
    dL/dx = s w_read^T   (the error goes back through the weights read from the array)

**`IOParameters`: aihwkit's IO non-idealities** (docs/periphery.md). The input
DAC (resolution, range, noise), the array (weight read noise referred to the
outputs), the outputs (additive noise, ADC resolution and bound), and the
digital scaling that keeps signals inside the converters (noise management,
bound management)::

    alpha = noise-management scale of each input vector x (ABS_MAX: max|x|)
    for pass r = 0, 1, ... (f = 2**r with ITERATIVE bound management, else f = 1):
        x' = clip(Q_in(x / (alpha f)), +-inp_bound) + inp_noise xi          # DAC
        y  = x' @ (W / w_max) + w_noise ... + out_noise xi                    # the array
        y  = clip(Q_out(y), +-out_bound)                                      # ADC
        stop at the first pass in which no output saturated (or the last allowed)
    result = w_max alpha f y

The backward pass (the input gradient) is the same chain on ``d @ W.T`` with
the backward parameters and without bound management; the kernel gradient is
the float ``x^T d`` (aihwkit's update sees the digital values).
`IOParameters.aihwkit()` is aihwkit's ``IOParameters()`` and
`IOParameters.preset()` its ``PresetIOParameters``; the numbers are relative to
the device range, as in aihwkit: they act on ``W / w_max`` and the result is
multiplied by ``w_max``.

**Weight noise.** devsim's device ``read_noise`` (`devsim.devices`) is
multiplicative on each device's conductance and drawn once per read of the
array, so every vector of a batch sees the same noisy weights. ``w_noise`` is
aihwkit's output-referred weight noise, drawn anew for every vector:
``ADDITIVE_CONSTANT`` adds ``w_noise ||x'|| xi`` to each output,
``PCM_READ`` adds ``w_noise sqrt(x'^2 @ |W|) xi``. They model the same physics
at two levels; use one of them (both on adds both).

Random draws are counter-based (`devsim.noise`): a layer counts its calls and
keys its draws by (seed, calls, stream), so results are reproducible by seed.
Importing this module does not load Keras (the CLI reads its options):
the layers are made on first use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

from devsim import noise
from devsim.lazy import ops
from devsim.options import FieldError, check_all, option

PERIPHERY = "periphery"  # option group

CELLS = ("1t1r", "fefet")


@dataclasses.dataclass(frozen=True)
class ArrayReads:
    """How NeuroSim reads a device layer's array (all off by default: the identity).

    Args:
        hidden_threshold: a layer after the first sees ``x >= hidden_threshold``
            of its input (None: the input itself).
        adc_bits: ADC resolution of the column sums (None: no quantization).
        r_access: access resistance in series with every read (Ohm).
        r_wire: wire resistance per cell pitch (Ohm).
        r_on: the device's resistance at Gmax (Ohm); needed with series resistance.
        on_off: the device's Gmax / Gmin.
        cell: ``"1t1r"`` or ``"fefet"`` (cells read without ``r_access``, the bounds with it).
        w_max: the weight range of the reference mapping.
    """

    hidden_threshold: float | None = None
    adc_bits: int | None = None
    r_access: float = 0.0
    r_wire: float = 0.0
    r_on: float | None = None
    on_off: float = math.inf
    cell: str = "1t1r"
    w_max: float = 1.0

    def __post_init__(self):
        if (self.r_access or self.r_wire) and not self.r_on:
            raise ValueError("series resistance (r_access, r_wire) needs the device's r_on")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")

    @property
    def is_identity(self) -> bool:
        return self.hidden_threshold is None and not self.reads_currents

    @property
    def reads_currents(self) -> bool:
        """Whether the forward pass reads currents (ADC or series resistance), not just weights."""
        return self.adc_bits is not None or self.has_series_resistance

    @property
    def has_series_resistance(self) -> bool:
        return bool(self.r_access or self.r_wire)

    def get_config(self) -> dict:
        return dataclasses.asdict(self)

    def layer(self, index: int) -> "ArrayReads":
        """The periphery of the ``index``-th device layer (0: the first, which gets no hidden threshold)."""
        return self if index > 0 else dataclasses.replace(self, hidden_threshold=None)


NOISE_MANAGEMENT = ("none", "abs_max", "max", "constant")
BOUND_MANAGEMENT = ("none", "iterative")
W_NOISE_TYPES = ("additive_constant", "pcm_read")


def _opt(default, help, **spec):
    return option(default, help, group=PERIPHERY, **spec)


def resolution_step(res: float, bound: float) -> float:
    """A converter's step: ``res`` in (0, 1] is a fraction of the range ``2 bound``
    (``1/126``: 127 levels, a 7-bit signed DAC); ``res > 1`` is a number of steps;
    ``res <= 0`` is no quantization (0)."""
    r = max(float(res), 0.0)
    r = 1.0 / r if r > 1.0 else r
    return r * 2.0 * bound if r > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class IOParameters:
    """One direction's periphery (aihwkit's ``IOParameters`` names; devsim's defaults: all off).

    `aihwkit` and `preset` give aihwkit's defaults. Validated on creation
    (`devsim.options.FieldError`, naming the field).
    """

    inp_res: float = _opt(
        0.0, "Input DAC resolution: a fraction of the range 2 inp_bound (1/126: 7 bits; aihwkit's default), or a "
        "number of steps if > 1; 0: no DAC.", unit="fraction of the input range", minimum=0.0, finite=True)
    inp_bound: float = _opt(
        math.inf, "Input DAC range [-inp_bound, inp_bound] (aihwkit: 1, with noise management); inf: no clipping.",
        unit="input units (after noise management)", minimum=0.0, exclusive_minimum=True)
    inp_sto_round: bool = _opt(False, "Stochastic (unbiased) rounding in the input DAC.", cli="switch")
    inp_noise: float = _opt(0.0, "Gaussian noise added to each input after the DAC.", unit="sigma, input units",
                            minimum=0.0, finite=True)
    out_res: float = _opt(
        0.0, "Output ADC resolution: a fraction of the range 2 out_bound (1/510: 9 bits; aihwkit's default), or a "
        "number of steps if > 1; 0: no ADC.", unit="fraction of the output range", minimum=0.0, finite=True)
    out_bound: float = _opt(
        math.inf, "Output ADC range [-out_bound, out_bound] (aihwkit: 12; presets 20); inf: no clipping.",
        unit="w_max x input units", minimum=0.0, exclusive_minimum=True)
    out_sto_round: bool = _opt(False, "Stochastic (unbiased) rounding in the output ADC.", cli="switch")
    out_noise: float = _opt(
        0.0, "Gaussian noise added to each analog output before the ADC (aihwkit: 0.06; presets 0.1).",
        unit="sigma, w_max x input units", minimum=0.0, finite=True)
    w_noise: float = _opt(
        0.0, "Output-referred weight read noise, drawn per vector (aihwkit w_noise; devsim's --read-noise is the "
        "per-device, per-read kind).", unit="sigma, fraction of w_max", minimum=0.0, finite=True)
    w_noise_type: str = _opt(
        "additive_constant", "How w_noise scales: additive_constant (w_noise ||x'|| per output) or pcm_read "
        "(w_noise sqrt(x'^2 @ |W|)).", choices=W_NOISE_TYPES)
    noise_management: str = _opt(
        "none", "Input scaling before the DAC, undone after the ADC: abs_max (alpha = max|x| per vector, aihwkit's "
        "default), max, constant (nm_thres) or none.", choices=NOISE_MANAGEMENT)
    nm_thres: float = _opt(0.0, "Cap of the abs_max/max scale, or the constant scale (0: no cap / 1).", minimum=0.0,
                           finite=True)
    bound_management: str = _opt(
        "none", "iterative: repeat a forward pass whose outputs saturate the ADC with the inputs halved "
        "(aihwkit's default); none.", choices=BOUND_MANAGEMENT)
    max_bm_factor: int = _opt(1000, "Bound management: largest input reduction.", minimum=1, maximum=2**30)
    max_bm_res: float = _opt(
        0.25, "Bound management: stop before the inputs would be resolved more coarsely than this fraction of "
        "their range (passes while f <= max_bm_res / input step).", minimum=0.0, exclusive_minimum=True, finite=True)
    bm_test_negative_bound: bool = _opt(True, "Bound management: outputs below -out_bound also saturate.", cli="switch")

    def __post_init__(self):
        check_all(self)
        if self.inp_res > 0 and math.isinf(self.inp_bound):
            raise FieldError("inp_res", "an input DAC needs a finite --inp-bound (aihwkit: 1)")
        if self.out_res > 0 and math.isinf(self.out_bound):
            raise FieldError("out_res", "an output ADC needs a finite --out-bound (aihwkit: 12)")
        if self.bound_management != "none" and math.isinf(self.out_bound):
            raise FieldError("bound_management", "bound management needs a finite --out-bound (it detects saturation)")

    @classmethod
    def aihwkit(cls, **fields) -> "IOParameters":
        """aihwkit's ``IOParameters()`` defaults: 7-bit DAC, 9-bit ADC on +-12, output noise 0.06, ABS_MAX, ITERATIVE."""
        base = dict(inp_res=1 / 126, inp_bound=1.0, out_res=1 / 510, out_bound=12.0, out_noise=0.06,
                    noise_management="abs_max", bound_management="iterative")
        return cls(**{**base, **fields})

    @classmethod
    def preset(cls, **fields) -> "IOParameters":
        """aihwkit's ``PresetIOParameters`` (every ``*Preset`` config): as `aihwkit`, ``out_bound=20``, ``out_noise=0.1``."""
        return cls.aihwkit(**{"out_bound": 20.0, "out_noise": 0.1, **fields})

    @property
    def is_identity(self) -> bool:
        """No effect at all: the layer computes the plain matmul."""
        return (self.inp_res <= 0 and math.isinf(self.inp_bound) and self.inp_noise == 0 and self.out_res <= 0
                and math.isinf(self.out_bound) and self.out_noise == 0 and self.w_noise == 0
                and self.noise_management == "none" and self.bound_management == "none")

    @property
    def inp_step(self) -> float:
        return resolution_step(self.inp_res, self.inp_bound) if math.isfinite(self.inp_bound) else 0.0

    @property
    def out_step(self) -> float:
        return resolution_step(self.out_res, self.out_bound) if math.isfinite(self.out_bound) else 0.0

    def rounds(self, backward=False) -> int:
        """Passes bound management may take: factors 1, 2, 4, ... while ``f <= max_bm_factor``
        and ``f <= max_bm_res / inp_step`` (defaults: 1..16, 5 passes); 1 without it or backward."""
        if backward or self.bound_management == "none":
            return 1
        factor, rounds, step = 1, 1, self.inp_step
        while not (factor > self.max_bm_factor or (step > 0 and factor > self.max_bm_res / step)):
            factor *= 2
            rounds += 1
        return rounds

    def get_config(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(IOParameters))


def _quantize(ops, v, step, u=None):
    """``step rint(v / step)`` (half to even), or stochastic ``step rint(v / step + u - 1/2)``.

    ``v / step`` is computed as ``v * (1 / step)`` with the reciprocal taken in float64: for the
    usual converters (1/126 on +-1: 63 levels per unit) it is exact, so a value on a half level
    (bound management's ``1/2`` of the largest input) rounds as in exact arithmetic."""
    if step <= 0:
        return v
    levels = float(1.0 / step)
    if u is None:
        return step * ops.round(v * levels)
    return step * ops.round(v * levels + u - 0.5)


def analog_mvm(x, w, io: IOParameters, draw=None, backward=False):
    """The periphery's matrix-vector products of a batch (keras ops; docs/periphery.md section 3).

    Args:
        x: ``(B, n_in)`` inputs (``(B, n_out)`` errors when ``backward``).
        w: the kernel ``(n_in, n_out)``, normalized (``W / w_max``).
        io: the direction's `IOParameters`.
        draw: ``draw(kind, r, shape) -> tensor``, the standard-normal (``kind`` ``"xi_*"``)
            or uniform (``"u_*"``) draws of pass ``r``; needed when noise or stochastic
            rounding is on.
        backward: ``y ~ x @ w.T``, no bound management.

    Returns:
        ``y`` ``(B, n_out)`` (``(B, n_in)`` backward), in the units of ``x @ w``.
    """
    from keras import ops

    mat = ops.transpose(w) if backward else w
    if io.is_identity:
        return ops.matmul(x, mat)
    batch, n_out = ops.shape(x)[0], mat.shape[1]
    n_vec = x.shape[1]
    nm = io.noise_management
    if nm == "none":
        alpha = None
    elif nm == "constant":
        alpha = ops.full((batch,), io.nm_thres if io.nm_thres > 0 else 1.0, dtype=x.dtype)
    else:
        alpha = ops.max(ops.abs(x) if nm == "abs_max" else x, axis=1)
        if io.nm_thres > 0:
            alpha = ops.minimum(alpha, io.nm_thres)
    if alpha is not None:
        zero = (alpha <= 0) if io.inp_noise <= 0 else ops.zeros_like(alpha, dtype="bool")
        alpha_safe = ops.where(alpha > 0, alpha, 1.0)
    rounds = io.rounds(backward)
    in_step, out_step = io.inp_step, io.out_step
    bound_in, bound_out = io.inp_bound, io.out_bound
    y_final = factor_final = done = None
    for r in range(rounds):
        f = float(2**r)
        xs = x if alpha is None else x / alpha_safe[:, None]
        if f != 1.0:
            xs = xs / f
        xq = _quantize(ops, xs, in_step, draw("u_inp", r, (batch, n_vec)) if io.inp_sto_round and in_step > 0 else None)
        if math.isfinite(bound_in):
            xq = ops.clip(xq, -bound_in, bound_in)
        if io.inp_noise > 0:
            xq = xq + io.inp_noise * draw("xi_inp", r, (batch, n_vec))
        y = ops.matmul(xq, mat)
        if io.w_noise > 0:
            if io.w_noise_type == "additive_constant":
                spread = ops.sqrt(ops.sum(xq * xq, axis=1, keepdims=True))
            else:
                spread = ops.sqrt(ops.matmul(xq * xq, ops.abs(mat)))
            y = y + io.w_noise * spread * draw("xi_w", r, (batch, n_out))
        if io.out_noise > 0:
            y = y + io.out_noise * draw("xi_out", r, (batch, n_out))
        y = _quantize(ops, y, out_step, draw("u_out", r, (batch, n_out)) if io.out_sto_round and out_step > 0 else None)
        if rounds > 1:
            passed = ops.all(y <= bound_out, axis=1)
            if io.bm_test_negative_bound:
                passed = passed & ops.all(y >= -bound_out, axis=1)
        if math.isfinite(bound_out):
            y = ops.clip(y, -bound_out, bound_out)
        if rounds == 1:
            y_final, factor_final = y, None
            break
        take = passed if r < rounds - 1 else ops.ones_like(passed)
        if done is None:
            y_final, factor_final, done = y, ops.full((batch,), f, dtype=x.dtype), take
        else:
            take = take & ~done
            y_final = ops.where(take[:, None], y, y_final)
            factor_final = ops.where(take, f, factor_final)
            done = done | take
    scale = None if alpha is None else alpha_safe
    if factor_final is not None:
        scale = factor_final if scale is None else scale * factor_final
    y = y_final if scale is None else y_final * scale[:, None]
    if alpha is not None:
        y = ops.where(zero[:, None], 0.0, y)
    return y


STREAMS = {"xi_inp": 0, "xi_w": 1, "xi_out": 2, "u_inp": 3, "u_out": 4}
"""Noise stream of each kind of draw, per pass (``16 * pass + k``) and direction (backward ``+ 8``)."""


def _drawer(seed, counter, layer_index, backward):
    base = (1 << 22) + 1024 * layer_index + (8 if backward else 0)

    def draw(kind, r, shape):
        key = noise.key(seed, counter, base + 16 * r + STREAMS[kind])
        return noise.normal(shape, key) if kind.startswith("xi") else noise.uniform(shape, key)

    return draw


def periphery_matmul(x, kernel, forward: IOParameters, backward: IOParameters, w_max=1.0, seed=0, counter=0,
                     layer_index=0):
    """``x @ kernel`` through the periphery: forward `analog_mvm`, input gradient through the backward
    periphery, kernel gradient ``x^T dy`` (float). Inputs of rank > 2 are flattened to vectors."""
    from keras import ops

    if forward.is_identity and backward.is_identity:
        return ops.matmul(x, kernel)
    kernel = ops.copy(ops.convert_to_tensor(kernel))  # a read of the variable, not the variable
    lead = ops.shape(x)[:-1]
    flat = len(x.shape) > 2
    x2 = ops.reshape(x, (-1, x.shape[-1])) if flat else x

    @ops.custom_gradient
    def mvm(x2, kernel):
        w = kernel / w_max
        y = w_max * analog_mvm(x2, w, forward, _drawer(seed, counter, layer_index, False))

        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            dx = w_max * analog_mvm(dy, w, backward, _drawer(seed, counter, layer_index, True), backward=True)
            return dx, ops.matmul(ops.transpose(x2), dy)

        return y, grad

    y = mvm(x2, kernel)
    return ops.reshape(y, (*lead, kernel.shape[-1])) if flat else y


def _straight_through(x, kernel, w_back, y_hw):
    """``y_hw`` in the forward pass, the gradients of ``x @ w_back`` in the backward pass::

        dL/dx = dy @ w_back^T        dL/dkernel = x^T @ dy

    NeuroSim's backward pass (Train.cpp): the error goes back through the weights read
    from the array (``w_back``), the kernel's gradient is the outer product with the
    layer's input ``x``. Neither ``w_back`` nor ``y_hw`` is differentiated; the forward
    pass computes ``y_hw`` only (no second matmul for the gradient's sake).
    """
    from keras import ops

    w_back, y_hw = ops.stop_gradient(w_back), ops.stop_gradient(y_hw)

    @ops.custom_gradient
    def through(x, kernel):
        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            return ops.matmul(dy, ops.transpose(w_back)), ops.matmul(ops.transpose(x), dy)

        return ops.copy(y_hw), grad

    return through(x, ops.copy(kernel))


def _layer_classes():
    import keras

    @keras.saving.register_keras_serializable(package="devsim")
    class Binarize(keras.layers.Layer):
        """A 1-bit input DAC: ``x -> 1 where x >= threshold, else 0`` (no gradient; NeuroSim's BWthreshold)."""

        def __init__(self, threshold: float = 0.5, **kwargs):
            super().__init__(**kwargs)
            self.threshold = float(threshold)

        def call(self, x):
            return ops.cast(x >= self.threshold, x.dtype)

        def get_config(self):
            return {**super().get_config(), "threshold": self.threshold}

    @keras.saving.register_keras_serializable(package="devsim")
    class AnalogDense(keras.layers.Dense):
        """A Dense layer read through the periphery: NeuroSim's array reads, or aihwkit's IO (the module
        docstring gives the equations).

        The kernel holds the weights the devices hold (``w_max (2g - 1)``), as for
        ``Dense`` under a `devsim.DeviceOptimizer`; the layer turns them into what the
        hardware computes. One periphery model at a time.

        Args:
            units, activation, use_bias, ...: as ``keras.layers.Dense``.
            reads: an `ArrayReads` (or its dict): NeuroSim's reads of the array.
            forward, backward: `IOParameters` (or their dicts) of the forward pass and of the
                input-gradient pass (default: identity; bound management never acts backward).
            w_max: the device weight range (aihwkit's IO acts on ``W / w_max``).
            seed: seed of the IO draws; ``index`` names the layer's noise streams.
        """

        def __init__(self, units, reads=None, forward=None, backward=None, w_max=1.0, seed=0, index=0, **kwargs):
            super().__init__(units, **kwargs)
            self.reads = ArrayReads(**reads) if isinstance(reads, dict) else (reads or ArrayReads())
            self.forward_io = _io(forward)
            self.backward_io = _io(backward)
            self.w_max, self.seed, self.index = float(w_max), int(seed), int(index)
            if not self.reads.is_identity and not (self.forward_io.is_identity and self.backward_io.is_identity):
                raise ValueError("AnalogDense: give NeuroSim's array reads (reads) or aihwkit's IO (forward/backward), "
                                 "not both")

        def build(self, input_shape):
            if not (self.forward_io.is_identity and self.backward_io.is_identity) and keras.backend.backend() == "jax":
                raise ValueError("AnalogDense: the IO periphery (forward/backward) keys its draws by a call counter "
                                 "that JAX's stateless train step cannot advance; it needs KERAS_BACKEND=tensorflow "
                                 "or torch (NeuroSim's array reads, reads=..., run on every backend)")
            super().build(input_shape)
            # The call counter that keys the IO draws; boxed so that Keras neither tracks nor saves it (Dense
            # saves exactly its kernel and bias): a reloaded layer draws from counter 0 again.
            from devsim import backends

            self._counter = _Box(keras.Variable(0, dtype=backends.counter_dtype(), trainable=False, name="calls"))
            self._cache = ReadCache(self)

        @property
        def calls(self):
            return self._counter.value

        def get_config(self):
            return {**super().get_config(), "reads": self.reads.get_config(), "forward": self.forward_io.get_config(),
                    "backward": self.backward_io.get_config(), "w_max": self.w_max, "seed": self.seed,
                    "index": self.index}

        def _bounds(self):
            """``(f, rho_access, i_min, i_max)``: Gmin/Gmax, the access resistance over R_on and the read
            currents of Gmin and Gmax (units of Vr Gmax)."""
            p = self.reads
            f = 0.0 if math.isinf(p.on_off) else 1.0 / p.on_off
            rho_access = p.r_access / p.r_on if p.r_on else 0.0
            i_min = 0.0 if f == 0 else 1.0 / (1.0 / f + rho_access)
            return f, rho_access, i_min, 1.0 / (1.0 + rho_access)

        def _cell_currents(self, w, n_in, rows=None, cols=None):
            """The read currents of the cells holding weights ``w``: the whole kernel, or the cells at
            ``rows``, ``cols`` (index vectors the shape of ``w``)."""
            p = self.reads
            f, rho_access, _, _ = self._bounds()
            conductance = f + (1.0 - f) * ((w / p.w_max + 1.0) * 0.5)
            if not p.has_series_resistance:
                return conductance
            rho = 0.0 if p.cell == "fefet" else rho_access
            if p.r_wire:
                if rows is None:
                    k = ops.arange(n_in, dtype="float32")[:, None]
                    j = ops.arange(self.units, dtype="float32")[None, :]
                else:
                    k, j = ops.cast(rows, "float32"), ops.cast(cols, "float32")
                rho = rho + (j + 1.0 + n_in - k) * (p.r_wire / p.r_on)
            return 1.0 / (1.0 / conductance + rho)

        def _currents(self, w, n_in):
            """Cell currents, their bounds and the read-back weights (units of Vr Gmax)."""
            p = self.reads
            _, _, i_min, i_max = self._bounds()
            current = self._cache.currents() if self._cache.active else self._cell_currents(w, n_in)
            if not p.has_series_resistance:
                return current, i_min, i_max, w
            read = p.w_max * ((ops.clip(current, i_min, i_max) - i_min) * (2.0 / (i_max - i_min)) - 1.0)
            return current, i_min, i_max, read

        def read_cache(self) -> "ReadCache":
            """The layer's `ReadCache` (made on first use; the layer must be built and read currents)."""
            if not self.reads.reads_currents:
                raise ValueError("AnalogDense.read_cache: the layer reads no currents (reads has no ADC and no "
                                 "series resistance)")
            if self._cache.variable is None:
                self._cache.variable = keras.Variable(ops.zeros(tuple(self.kernel.shape), "float32"),
                                                      trainable=False, name="read_currents")
                self._cache.refresh()
            return self._cache

        def call(self, inputs, training=None):
            if not self.reads.is_identity:
                return self._read_call(inputs)
            if self.forward_io.is_identity and self.backward_io.is_identity:
                return super().call(inputs, training=training)
            counter = self.calls.value
            self.calls.assign_add(1)
            y = periphery_matmul(inputs, self.kernel, self.forward_io, self.backward_io, self.w_max, self.seed,
                                 counter, self.index)
            if self.use_bias:
                y = ops.add(y, self.bias)
            return self.activation(y) if self.activation is not None else y

        def _read_call(self, inputs):
            p = self.reads
            x = inputs
            w = ops.cast(self.kernel, x.dtype)
            bits = x if p.hidden_threshold is None else ops.cast(x >= p.hidden_threshold, x.dtype)
            if not p.reads_currents:
                y = ops.matmul(x, w) if p.hidden_threshold is None else _straight_through(x, w, w, ops.matmul(bits, w))
            else:
                n_in = int(w.shape[0])
                current, i_min, i_max, read = self._currents(w, n_in)
                column = ops.matmul(bits, current)
                reference = ops.sum(bits, axis=-1, keepdims=True) * ((i_max + i_min) * 0.5)
                if p.adc_bits is not None:
                    step = n_in * (i_max - i_min) / (2**p.adc_bits - 1)
                    codes = ops.floor(column / step) - ops.floor(reference / step)
                    hardware = codes * (2.0 * p.w_max * n_in / (2**p.adc_bits - 1))
                else:
                    hardware = (column - reference) * (2.0 * p.w_max / (i_max - i_min))
                y = _straight_through(x, w, read if p.has_series_resistance else w, hardware)
            if self.use_bias:
                y = y + self.bias
            return self.activation(y) if self.activation is not None else y

    return {"Binarize": Binarize, "AnalogDense": AnalogDense}


class ReadCache:
    """The read currents of one `AnalogDense` layer's cells, kept between updates.

    Reading an array computes ``I = 1 / (1/G + rho)`` for every cell, on every
    forward pass; under NeuroSim's protocol an image pulses a few hundred of the
    40000 cells of the first layer, or none. A tile that programs only the cells
    it pulses (`devsim.tiles.DeviceTile`, ``skip_zero_rows``) can keep the currents
    instead: it writes the currents of the cells it programs, the layer reads them
    from here while ``active``::

        cache.refresh()                      # I of every cell, from the kernel
        with cache.activated():              # while tracing a training loop:
            y = layer(x)                     #   the forward pass reads cache.currents()
            tile.update(...)                 #   the tile scatters I of the cells it programmed

    The kept currents are those of the kernel to float32 rounding (the forward pass
    computes them as part of its matrix product, the cache elementwise: a few ulps).
    Boxed in the layer: Keras neither tracks nor saves the variable.

    Args:
        layer: the `AnalogDense` layer whose array it keeps.
    """

    def __init__(self, layer):
        self.layer, self.variable, self.active = layer, None, False

    def currents(self):
        return self.variable.value

    def currents_at(self, w, rows, cols):
        """The currents of the cells at ``rows``, ``cols`` (index vectors) holding weights ``w``."""
        return self.layer._cell_currents(w, int(self.layer.kernel.shape[0]), rows, cols)

    def kernel_currents(self):
        """Every cell's current computed from the layer's kernel now (what `refresh` keeps)."""
        kernel = self.layer.kernel
        return self.layer._cell_currents(ops.cast(kernel.value, "float32"), int(kernel.shape[0]))

    def refresh(self):
        """Set every cell's kept current from the layer's kernel."""
        self.variable.assign(self.kernel_currents())

    @contextlib.contextmanager
    def activated(self):
        """A context in which the layer reads the kept currents (and tiles keep them)."""
        self.active = True
        try:
            yield self
        finally:
            self.active = False


class _Box:
    def __init__(self, value):
        self.value = value


def _io(value) -> IOParameters:
    if value is None:
        return IOParameters()
    if isinstance(value, IOParameters):
        return value
    if isinstance(value, dict):
        return IOParameters(**value)
    raise FieldError("periphery", f"must be IOParameters or a dict of its fields, got {value!r}")


_CLASSES = {}


def __getattr__(name):  # the layers are made on first use: importing this module does not load Keras
    if name in ("AnalogDense", "Binarize"):
        if not _CLASSES:
            _CLASSES.update(_layer_classes())
        return _CLASSES[name]
    raise AttributeError(f"module 'devsim.periphery' has no attribute {name!r}")
