"""Initial device states: uniform random states (the original study) or a
Glorot-scaled initialization quantized to the nearest state."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from devsim.devices import ExpDevice, device_from_config
from devsim.mapping import ReferenceMapping

INITS = ("uniform", "glorot")


def glorot_weights(shape, seed=None) -> np.ndarray:
    """Glorot-uniform weights drawn with numpy, the same on every Keras backend::

        receptive = prod(shape[:-2])                       # 1 for a Dense kernel
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        w ~ U(-limit, limit),  limit = sqrt(6 / (fan_in + fan_out))

    (`keras.initializers.GlorotUniform`'s distribution; its draws depend on the backend.)
    """
    shape = tuple(int(d) for d in shape)
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return np.random.default_rng(seed).uniform(-limit, limit, size=shape).astype(np.float32)


def initial_states(shape, device: ExpDevice, method: str = "uniform", seed=None, w_max: float = 1.0):
    """Integer state indices ``p`` (0..N: LTP pulses from Gmin) for a weight tensor.

    Args:
        shape: weight shape.
        device: the device whose states are meant (its N, and for "glorot" its curve).
        method: ``"uniform"``: every state equally likely (the original study);
            ``"glorot"``: Glorot-uniform weights (`glorot_weights`) snapped to the
            nearest state of ``device`` under ``w = w_max (2g - 1)``.
        seed: int seed (numpy ``default_rng``: the same states on every backend).
        w_max: weight range of the reference mapping (for "glorot").

    Returns:
        ``int32`` numpy array of state indices.
    """
    if method == "uniform":
        return np.random.default_rng(seed).integers(0, device.num_pulses + 1, size=shape).astype(np.int32)
    if method == "glorot":
        w = glorot_weights(shape, seed)
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


def glibc_rand(seed: int, count: int) -> np.ndarray:
    """The first ``count`` values of glibc's ``rand()`` after ``srand(seed)`` (int64 array).

    glibc's default generator is an additive lagged-Fibonacci one: ``s[0] = seed``
    (0 counts as 1), ``s[i] = 16807 s[i-1] mod (2^31 - 1)`` for i < 31, ``s[i] =
    s[i-31]`` for i = 31..33, then ``s[i] = s[i-3] + s[i-31] mod 2^32``; ``rand()``
    returns ``s[i] >> 1`` from i = 344 on. MLP+NeuroSim draws its initial weights
    with it (Mapping.cpp ``WeightInitialize``, after ``srand(2)``).
    """
    seed = int(seed) % 2**32 or 1
    state = [seed]
    for _ in range(1, 31):
        state.append((16807 * state[-1]) % 2147483647)
    state += state[:3]
    out = np.empty(count, dtype=np.int64)
    for i in range(310 + count):
        value = (state[-3] + state[-31]) & 0xFFFFFFFF
        state.append(value)
        if len(state) > 64:
            del state[:-34]
        if i >= 310:
            out[i - 310] = value >> 1
    return out


def neurosim_weights(shapes, seed: int = 0, w_max: float = 1.0) -> list:
    """NeuroSim's initial weights ``(rand() % 7 - 3) / 3`` (Mapping.cpp ``WeightInitialize``).

    ``srand(2 + seed)`` (seed 0 is NeuroSim's ``srand(2)``), then for each layer in
    order, for each output ``j`` and each input ``k`` (k fastest), one draw:
    values -1, -2/3, ..., 1, each with probability 1/7, times ``w_max``.

    Args:
        shapes: Keras kernel shapes ``(inputs, outputs)``, first layer first.

    Returns:
        float32 kernels of those shapes.
    """
    sizes = [int(np.prod(s)) for s in shapes]
    draws = glibc_rand(2 + int(seed), sum(sizes))
    out, start = [], 0
    for shape, size in zip(shapes, sizes):
        w = ((draws[start:start + size] % 7) - 3).astype(np.float64) / 3.0
        out.append((w_max * w.reshape(shape[1], shape[0]).T).astype(np.float32))
        start += size
    return out


def gmin_offset(device) -> float:
    """NeuroSim's initial-mapping offset ``Gmin / (Gmax - Gmin) = 1 / (on_off - 1)`` (0 for on_off = inf)."""
    return 0.0 if np.isinf(device.on_off) else 1.0 / (device.on_off - 1.0)
