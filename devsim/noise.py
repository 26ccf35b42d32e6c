"""Counter-based random numbers for the device update, computed inside its XLA program.

TensorFlow's CPU random kernels cost about 5 ns per uniform and 11 ns per
normal number, more than the whole device update of a weight. The draws the
optimizer needs every step (stochastic rounding, C2C and read noise) are
instead a hash of (element index, seed, step, stream): integer ops that XLA
fuses with the rest of the update. The mixer is Wellons' `lowbias32`
(https://nullprogram.com/blog/2018/07/31/) applied twice; uniforms keep 24 bits
and normals are ``sqrt(2) * erfinv(2u - 1)``. Same seed, same numbers.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

_GOLDEN = 0x9E3779B9


def _u32(x):
    return ops.convert_to_tensor(np.uint32(x), dtype="uint32")


def _mix(x):
    """lowbias32: a bijective 32-bit integer hash with low bias."""
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))
    x = x * _u32(0x7FEB352D)
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(15)))
    x = x * _u32(0x846CA68B)
    return ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))


def _bits(shape, key):
    """32 random bits per element of ``shape`` for a uint32 ``key``."""
    size = int(np.prod(shape)) if len(shape) else 1
    index = ops.cast(ops.reshape(ops.arange(size, dtype="int32"), shape), "uint32")
    return _mix(_mix(index * _u32(_GOLDEN) + key) ^ key)


def key(seed: int, step, stream: int):
    """A uint32 key from the run's seed, a step counter (tensor) and a stream number."""
    base = _mix(_u32((seed * 0x85EBCA6B + stream * 0xC2B2AE35) & 0xFFFFFFFF))
    return _mix(base ^ (ops.cast(step, "uint32") * _u32(_GOLDEN)))


def uniform(shape, key_):
    """Uniform numbers in (0, 1), float32, 24 bits."""
    bits = ops.right_shift(_bits(shape, key_), _u32(8))
    return (ops.cast(bits, "float32") + 0.5) * (1.0 / 2**24)


def normal(shape, key_):
    """Standard normal numbers, float32 (inverse CDF of a 24-bit uniform)."""
    return math.sqrt(2.0) * ops.erfinv(2.0 * uniform(shape, key_) - 1.0)
