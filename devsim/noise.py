"""Counter-based random numbers for the device update, computed inside its XLA program.

TensorFlow's CPU random kernels cost about 5 ns per uniform and 11 ns per
normal number, more than the whole device update of a weight. The draws the
optimizer needs every step (stochastic rounding, C2C and read noise) are
instead a hash of (element index, seed, step, stream): integer ops that XLA
fuses with the rest of the update. The mixer is Wellons' `lowbias32`
(https://nullprogram.com/blog/2018/07/31/) applied twice; uniforms keep 23 bits
and normals are ``sqrt(2) * erfinv(2u - 1)``. Same seed, same numbers.
"""

from __future__ import annotations

import math

import numpy as np
from devsim.lazy import ops

_GOLDEN = 0x9E3779B9
_MASK = 0xFFFFFFFF


def _dtype():
    from devsim import backends

    return backends.hash_dtype()


def _u32(x):
    """A 32-bit constant in the hash's dtype (`devsim.backends.hash_dtype`)."""
    dtype = _dtype()
    return ops.convert_to_tensor(np.uint32(x) if dtype == "uint32" else np.int64(int(x) & _MASK), dtype=dtype)


def _wrap(x):
    """Reduce to 32 bits: the identity in uint32; the low 32 bits in int64 (PyTorch), where a
    product of two 32-bit numbers may overflow int64 (it wraps, its low 32 bits stay exact)."""
    if _dtype() == "uint32":
        return x
    return ops.bitwise_and(x, _u32(_MASK))


def _to_u32(x):
    """An integer tensor as 32-bit words of the hash's dtype (non-negative values: modulo 2**32)."""
    return _wrap(ops.cast(x, _dtype()))


def _mix(x):
    """lowbias32: a bijective 32-bit integer hash with low bias."""
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))
    x = _wrap(x * _u32(0x7FEB352D))
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(15)))
    x = _wrap(x * _u32(0x846CA68B))
    return ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))


def _hash(index, key_):
    """The 32 random bits of element ``index`` (32-bit words) under ``key_``."""
    return _mix(ops.bitwise_xor(_mix(_wrap(index * _u32(_GOLDEN) + key_)), key_))


def _bits(shape, key, copies=0):
    """32 random bits per element of ``shape`` for a uint32 ``key``; the ``copies`` leading axes repeat them.
    Dimensions may be scalar tensors (a batch size known only when the compiled step runs)."""
    if all(isinstance(d, (int, np.integer)) for d in shape):
        size = int(np.prod(shape)) if len(shape) else 1
    else:
        size = 1
        for d in shape:
            size = size * d
    index = ops.arange(size, dtype="int32")
    if copies:  # every copy draws the numbers of one copy (computed per element, not broadcast: see `normal`)
        index = index % int(np.prod(shape[copies:]))
    return _hash(_to_u32(ops.reshape(index, shape)), key)


def _bits_at(index, key_):
    """The 32 random bits `_bits` gives the elements at flat positions ``index`` (any int tensor)."""
    return _hash(_to_u32(index), key_)


def _unit(bits):
    """Uniforms in (0, 1) of 32 random bits: ``(b + 0.5) / 2**23`` of their top 23 bits ``b``."""
    return (ops.cast(ops.right_shift(bits, _u32(9)), "float32") + 0.5) * (1.0 / 2**23)


def uniform_at(index, key_):
    """The uniforms `uniform` gives the elements at flat positions ``index`` (any int tensor), computed for
    those elements only."""
    return _unit(_bits_at(index, key_))


def normal_at(index, key_):
    """The standard normals `normal` gives the elements at flat positions ``index``: the same
    numbers as ``ops.take(normal(shape, key_).ravel(), index)``, computed for those elements only."""
    return _inverse_normal_cdf(uniform_at(index, key_))


def key(seed: int, step, stream: int):
    """A 32-bit key (uint32; int64 below 2**32 on PyTorch) from the run's seed, a step counter
    (int tensor; int32 on JAX without x64, `devsim.backends.counter_dtype`) and a stream number."""
    base = _mix(_u32((seed * 0x85EBCA6B + stream * 0xC2B2AE35) & _MASK))
    return _mix(ops.bitwise_xor(base, _wrap(_to_u32(step) * _u32(_GOLDEN))))


def uniform(shape, key_, copies=0):
    """Uniform numbers in (0, 1), float32: ``(b + 0.5) / 2**23`` for 23 random bits ``b``,
    all exactly representable (24 bits would round the largest to 1.0).

    Args:
        copies: leading axes of ``shape`` over which the numbers repeat (stacked
            copies of one array draw the same numbers, `devsim.stacked`).
    """
    return _unit(_bits(shape, key_, copies))


def normal(shape, key_, copies=0):
    """Standard normal numbers, float32: ``sqrt(2) erfinv(2u - 1)`` of a `uniform` (|z| < 5.3).

    With ``copies``, the numbers repeat over the leading axes, computed for every
    element rather than drawn once and broadcast: XLA fuses an operand that is a
    broadcast differently (it may or may not contract ``g + sigma * xi`` into one
    fused multiply-add), and stacked copies must compute exactly what each run
    computes alone.
    """
    return _inverse_normal_cdf(uniform(shape, key_, copies))


# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011), single
# precision: the algorithm of XLA's erfinv, with log((1 - x)(1 + x)) for its
# log1p(-x^2), which XLA CPU evaluates about 1.5x slower.
_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
            -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
         -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _horner(coefficients, x):
    p = coefficients[0]
    for c in coefficients[1:]:
        p = c + p * x
    return p


def _inverse_normal_cdf(u):
    """``sqrt(2) erfinv(2u - 1)`` for u in (0, 1), float32, relative error < 1e-6."""
    x = 2.0 * u - 1.0
    w = -ops.log((1.0 - x) * (1.0 + x))
    central = _horner(_CENTRAL, w - 2.5)
    tail = _horner(_TAIL, ops.sqrt(w) - 3.0)
    return math.sqrt(2.0) * ops.where(w < 5.0, central, tail) * x
