"""The periphery of an analog array: how inputs reach it and column sums leave it.

A device layer's weights ``w = w_max (2g - 1)`` (reference mapping) are
conductances; the periphery decides what the forward pass computes from
them. Every piece is an option of `Periphery`, off by default, and exactly
the identity when off (the model builder then uses plain ``keras.layers.Dense``):

- input DAC of 1 bit (`Binarize`, option ``binarize``): inputs become
  ``x >= threshold``;
- thresholded hidden activations (``hidden_threshold``): a layer after the
  first receives ``x >= threshold`` of the previous layer's activation;
- series resistance in every read (``r_access``, ``r_wire``, the device's
  ``r_on`` and ``cell``): a cell conducts ``I = 1 / (1/G + R)``;
- the virtual reference column and the ADC (``adc_bits``): per output the
  column current ``Isum = sum_k b_k I_k`` and the reference ``Iref = sum_k
  b_k (Imax + Imin)/2`` are each floored in steps of ``R (Imax - Imin) /
  (2^bits - 1)`` for ``R`` rows (not clipped) and subtracted.

In units of ``Vr Gmax`` (currents) and ``1/Gmax = R_on`` (resistances), with
``f = 1/on_off``, ``G = f + (1 - f) g``, ``rho = R / R_on``::

    I[k, j]  = 1 / (1/G[k, j] + rho_cell[k, j])      rho_cell = rho_access (1t1r; 0 for fefet) + (j + 1 + R - k) rho_wire
    Imin     = 1 / (1/f + rho_access),  Imax = 1 / (1 + rho_access)
    w_read   = w_max ((clip(I, Imin, Imax) - Imin) / (Imax - Imin) 2 - 1)        (the weight read back)
    y_hw[j]  = w_max 2 (Q(Isum_j) - Q(Iref)) / (Imax - Imin)                     (Q: the ADC, or the identity)

which is MLP+NeuroSim V3.0's read (docs/neurosim.md, sections 6 and 7: Array.cpp
``ReadCell``, ``GetMediumCellReadCurrent``, ``ConductanceToWeight``; Mapping.cpp
``CurrentToDigits``, ``DigitsToAlgorithm``). Without series resistance and ADC,
``y_hw = b . w`` exactly (up to float rounding).

Gradients are those of NeuroSim's backward pass, through a straight-through
formulation: with ``x`` the layer's input (the continuous activation) and
``b`` what the array sees (``x`` or its thresholded bits)::

    y = x . (w + sg(w_read - w)) + sg(y_hw - x . w_read)

so ``dL/dw = x^T s`` (the continuous input; e.g. NeuroSim's grad2 = s2 a1)
and ``dL/dx = s w_read^T`` (the read-back weights), while the value is the
hardware's ``y_hw``.

The module is meant to grow: aihwkit's IO non-idealities (input DAC
resolution and range, output ADC bound, output noise, noise and bound
management) are further fields of `Periphery` acting in `AnalogDense.call`.
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import ops

CELLS = ("1t1r", "fefet")


@dataclasses.dataclass(frozen=True)
class Periphery:
    """The read periphery of device layers (all off by default: the identity).

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

    def layer(self, index: int) -> "Periphery":
        """The periphery of the ``index``-th device layer (0: the first, which gets no hidden threshold)."""
        return self if index > 0 else dataclasses.replace(self, hidden_threshold=None)


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
    """A Dense layer read through a `Periphery` (the module docstring gives the equations).

    The kernel holds the weights the devices hold (``w_max (2g - 1)``), as for
    ``Dense`` under a `devsim.DeviceOptimizer`; the layer turns them back into
    conductances and currents for the hardware forward pass.

    Args:
        units, activation, use_bias, ...: as ``keras.layers.Dense``.
        periphery: a `Periphery` or its config dict.
    """

    def __init__(self, units, periphery=None, **kwargs):
        super().__init__(units, **kwargs)
        if isinstance(periphery, dict):
            periphery = Periphery(**periphery)
        self.periphery = periphery or Periphery()

    def get_config(self):
        return {**super().get_config(), "periphery": self.periphery.get_config()}

    def _currents(self, w, n_in):
        """Cell currents, their bounds and the read-back weights (units of Vr Gmax)."""
        p = self.periphery
        f = 0.0 if math.isinf(p.on_off) else 1.0 / p.on_off
        g = (w / p.w_max + 1.0) * 0.5
        conductance = f + (1.0 - f) * g
        rho_access = p.r_access / p.r_on if p.r_on else 0.0
        i_min = 0.0 if f == 0 else 1.0 / (1.0 / f + rho_access)
        i_max = 1.0 / (1.0 + rho_access)
        if not p.has_series_resistance:
            return conductance, i_min, i_max, w
        rho = 0.0 if p.cell == "fefet" else rho_access
        if p.r_wire:
            k = ops.arange(n_in, dtype="float32")[:, None]
            j = ops.arange(self.units, dtype="float32")[None, :]
            rho = rho + (j + 1.0 + n_in - k) * (p.r_wire / p.r_on)
        current = 1.0 / (1.0 / conductance + rho)
        read = p.w_max * ((ops.clip(current, i_min, i_max) - i_min) * (2.0 / (i_max - i_min)) - 1.0)
        return current, i_min, i_max, read

    def call(self, inputs):
        p = self.periphery
        x = inputs
        w = ops.cast(self.kernel, x.dtype)
        bits = x if p.hidden_threshold is None else ops.cast(x >= p.hidden_threshold, x.dtype)
        if not p.reads_currents:
            y = ops.matmul(x, w)
            if p.hidden_threshold is not None:
                y = y + ops.stop_gradient(ops.matmul(bits, w) - y)
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
            w_eff = w + ops.stop_gradient(read - w) if p.has_series_resistance else w
            soft = ops.matmul(x, w_eff)
            y = soft + ops.stop_gradient(hardware - soft)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y) if self.activation is not None else y
