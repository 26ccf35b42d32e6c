"""Initial device states: uniform random states (the original study) or a
Glorot-scaled initialization quantized to the nearest state."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from devsim.devices import ExpDevice, device_from_config
from devsim.mapping import ReferenceMapping

INITS = ("uniform", "glorot")


def initial_states(shape, device: ExpDevice, method: str = "uniform", seed=None, w_max: float = 1.0):
    """Integer state indices ``p`` (0..N: LTP pulses from Gmin) for a weight tensor.

    Args:
        shape: weight shape.
        device: the device whose states are meant (its N, and for "glorot" its curve).
        method: ``"uniform"``: every state equally likely (the original study);
            ``"glorot"``: Glorot-uniform weights snapped to the nearest state of
            ``device`` under ``w = w_max (2g - 1)``.
        seed: int seed (numpy ``default_rng`` for "uniform", Keras for "glorot").
        w_max: weight range of the reference mapping (for "glorot").

    Returns:
        ``int32`` numpy array of state indices.
    """
    if method == "uniform":
        return np.random.default_rng(seed).integers(0, device.num_pulses + 1, size=shape).astype(np.int32)
    if method == "glorot":
        w = keras.initializers.GlorotUniform(seed=seed)(shape)
        p, _ = device.nearest_state(ReferenceMapping(w_max).conductances(w))
        return ops.convert_to_numpy(p).astype(np.int32)
    raise ValueError(f"init must be one of {', '.join(INITS)}, got {method!r}")


class StateInitializer(keras.initializers.Initializer):
    """Kernel initializer that puts each weight on a device state.

    ``w = w_max * (2 * device.level(p) - 1)`` with ``p`` from `initial_states`.

    Args:
        device: the device model.
        w_max: weight range (reference mapping).
        method: "uniform" or "glorot" (see `initial_states`).
        seed: int seed.
    """

    def __init__(self, device: ExpDevice, w_max: float = 1.0, method: str = "uniform", seed=None):
        self.device, self.w_max, self.method, self.seed = device, w_max, method, seed

    def __call__(self, shape, dtype=None):
        p = initial_states(shape, self.device, self.method, self.seed, self.w_max)
        g = self.device.level(p.astype(np.float32))
        return ops.cast(ReferenceMapping(self.w_max).weights(g), dtype or "float32")

    def get_config(self):
        return {"device": self.device.get_config(), "w_max": self.w_max, "method": self.method, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["device"] = device_from_config(config["device"])
        return cls(**config)
