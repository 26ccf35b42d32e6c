"""Weight mapping: from device conductances to a network weight and back.

Two schemes (docs/devices.md, section 3):

- :class:`ReferenceMapping` (default, the original study): one device per
  weight against a mid-range reference, ``w = w_max * (2g - 1)``.
- :class:`DifferentialMapping`: a pair per weight, ``w = w_max * (g_plus - g_minus)``.

A mapping also says how a signed pulse count for the *weight* reaches its
device(s) (:meth:`route`) and the weight change of one pulse of a linear
device, ``dw_min``, which the pulse rules divide by. Device states of a weight
of shape ``S`` have shape ``S`` (reference) or ``(2, *S)`` (differential).
"""

from __future__ import annotations

from devsim.lazy import ops


def _check_w_max(w_max):
    if not (float(w_max) > 0):  # also rejects NaN
        raise ValueError(f"w_max must be > 0, got {w_max!r}")
    return float(w_max)


class ReferenceMapping:
    """One device per weight against a mid-range reference device.

    ``w = w_max * (2 g - 1)``: g = 0 is ``-w_max``, g = 1 is ``+w_max``. A weight
    increase is an LTP pulse, a decrease an LTD pulse.

    Args:
        w_max: largest weight magnitude (weight units), > 0.
    """

    name = "reference"
    devices_per_weight = 1

    def __init__(self, w_max: float = 1.0):
        self.w_max = _check_w_max(w_max)

    def state_shape(self, weight_shape):
        return tuple(weight_shape)

    def weights(self, g):
        """Weights of devices at ``g``."""
        return self.w_max * (2.0 * g - 1.0)

    def conductances(self, w):
        """The (unquantized) conductances that represent weights ``w``, clipped to [0, 1]."""
        return ops.clip((w / self.w_max + 1.0) * 0.5, 0.0, 1.0)

    def route(self, n):
        """Signed pulses per weight -> signed pulses per device (the same here)."""
        return n

    def dw_min(self, device, dw=None):
        """Weight change of one linear-device pulse: ``2 w_max / N`` (``N_p`` for
        increases, ``N_d`` for decreases when the device's LTD has its own levels)."""
        if device.num_pulses == device.num_pulses_ltd or dw is None:
            return 2.0 * self.w_max / device.num_pulses
        return ops.where(dw > 0, 2.0 * self.w_max / device.num_pulses, 2.0 * self.w_max / device.num_pulses_ltd)

    def get_config(self):
        return {"scheme": self.name, "w_max": self.w_max}


class DifferentialMapping:
    """A pair of devices per weight, ``w = w_max * (g_plus - g_minus)``.

    Args:
        w_max: largest weight magnitude (weight units), > 0.
        scheme: how a weight change is programmed.
            ``"one-sided"`` (NeuroSim-style, LTP only): an increase potentiates
            ``g_plus``, a decrease potentiates ``g_minus``; a weight starts with
            one device at Gmin. Pairs drift up and saturate with time (real
            systems refresh them; devsim does not).
            ``"push-pull"``: an increase potentiates ``g_plus`` and depresses
            ``g_minus`` by the same number of pulses, a decrease the opposite;
            a weight starts around g = 0.5 on both.
    """

    name = "differential"
    devices_per_weight = 2
    SCHEMES = ("one-sided", "push-pull")

    def __init__(self, w_max: float = 1.0, scheme: str = "one-sided"):
        self.w_max = _check_w_max(w_max)
        if scheme not in self.SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(self.SCHEMES)}, got {scheme!r}")
        self.scheme = scheme

    def state_shape(self, weight_shape):
        return (2, *weight_shape)

    def weights(self, g):
        return self.w_max * (g[0] - g[1])

    def conductances(self, w):
        x = ops.clip(w / self.w_max, -1.0, 1.0)
        if self.scheme == "one-sided":
            return ops.stack([ops.relu(x), ops.relu(-x)])
        return ops.stack([0.5 + 0.5 * x, 0.5 - 0.5 * x])

    def route(self, n):
        if self.scheme == "one-sided":
            return ops.stack([ops.relu(n), ops.relu(-n)])
        return ops.stack([n, -n])

    def dw_min(self, device, dw=None):
        """``w_max / N_p`` (one-sided: LTP only) or ``w_max (1/N_p + 1/N_d)``
        (push-pull: an LTP and an LTD pulse)."""
        if self.scheme == "one-sided":
            return self.w_max / device.num_pulses
        return self.w_max * (1.0 / device.num_pulses + 1.0 / device.num_pulses_ltd)

    def get_config(self):
        return {"scheme": self.name, "w_max": self.w_max, "pair_scheme": self.scheme}


MAPPINGS = {"reference": ReferenceMapping, "differential": DifferentialMapping}


def mapping_from_config(config):
    config = dict(config)
    cls = MAPPINGS[config.pop("scheme")]
    if "pair_scheme" in config:
        config["scheme"] = config.pop("pair_scheme")
    return cls(**config)
