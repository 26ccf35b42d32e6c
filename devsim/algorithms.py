"""Training algorithms for non-ideal devices: their parameters, declared once.

Each algorithm is a frozen dataclass whose fields are options of ``devsim run``
and ``devsim sweep`` (``--algorithm NAME`` plus the fields, `devsim.config`)
and of the Python API::

    devsim.DeviceOptimizer(keras.optimizers.SGD(0.05), device,
                           algorithm=devsim.algorithms.TikiTakaV2(transfer_every=1, n_reads_per_transfer=32))

The update equations are in docs/algorithms.md (the specification, with
aihwkit's names and defaults) and in each class's docstring; the tile kind that
runs an algorithm is `Algorithm.tile` (`devsim.tiles.TILES`). Bad values raise
`devsim.options.FieldError` (a ValueError naming the field).

| name | class | paper | tile | state per weight (besides the weight) |
|---|---|---|---|---|
| ``sgd`` | `SGD` | (devsim's pulse rules) | ``device`` | 1 float: ``g`` |
| ``zero-shift`` | `ZeroShift` | Kim et al. 2019 | ``zero-shift`` | 2: ``g``, ``g_ref`` |
| ``ttv2`` | `TikiTakaV2` | Gokmen 2021 | ``transfer`` | 5: ``g_C``, ``g_A``, ``H``, ``g_ref_A``, ``g_ref_C`` |
| ``c-ttv2`` | `ChoppedTTv2` | Rasch et al. 2024 | ``transfer`` | 5, + a sign per row and per column |
| ``agad`` | `AGAD` | Rasch et al. 2024 | ``transfer`` | 7: + ``mean``, ``past_mean``; + 2 flags per row |
| ``mixed-precision`` | `MixedPrecision` | Nandakumar et al. 2020 | ``mixed-precision`` | 2: ``g``, ``chi`` |

This module is numpy-free and Keras-free: the command line reads it for ``--help``.
"""

from __future__ import annotations

import dataclasses
import math

from devsim.options import FieldError, check_all, option, parameters

ALGORITHM = "algorithm"  # option group
REFERENCES = ("symmetry", "mid")


def _opt(default, help, **spec):
    return option(default, help, group=ALGORITHM, **spec)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """Base of the algorithm parameter classes (`SGD` has no parameters)."""

    name = "sgd"
    tile = "device"
    needs_batch = False
    """Whether the algorithm needs ``update="batch"`` (the gradient of every step)."""

    def __post_init__(self):
        check_all(self)
        self.check()

    def check(self):
        """Rules between fields (after each field's own check)."""

    def get_config(self) -> dict:
        config = {"name": self.name}
        config.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Algorithm":
        return algorithm_from_config(config)


@dataclasses.dataclass(frozen=True)
class SGD(Algorithm):
    """Plain device SGD (devsim's default): the inner optimizer's step becomes pulses,
    ``n = rule(w_proposed - w, dw_min)``, ``g = pulse(g, n)``, read against a mid-range reference."""

    name = "sgd"


@dataclasses.dataclass(frozen=True)
class ZeroShift(Algorithm):
    """SGD with each weight read against its device's symmetry point (zero shifting).

    Kim et al., arXiv:1907.10228 (2019); docs/algorithms.md section 1::

        w     = 2 w_max (read(g) - g_ref),    g_ref = g* (+ reference_std xi, drawn once)
        n     = rule(w_proposed - w, dw_min); g = pulse(g, n)        # as SGD

    ``g*`` per device (closed form for the exponential model, numeric
    otherwise; `devsim.symmetry`). The weight range becomes
    ``[-2 w_max g*, 2 w_max (1 - g*)]``; a pulse still moves a weight by about
    ``dw_min``. Needs the reference mapping (one device per weight).
    """

    name = "zero-shift"
    tile = "zero-shift"
    reference_std: float = _opt(
        0.0, "Zero shifting: programming error of each reference conductance, drawn once per device: "
        "g_ref = g* + reference_std xi (aihwkit reference_std).", unit="sigma, fraction of the conductance range",
        minimum=0.0, maximum=1.0)


@dataclasses.dataclass(frozen=True)
class TikiTakaV2(Algorithm):
    """Tiki-Taka v2 (Gokmen, Front. Artif. Intell. 4:699148, 2021); docs/algorithms.md section 3.

    Two device arrays per weight, A (fast, gets the gradient) and C (slow, the
    weights the network uses), and a digital buffer H (one float per weight)::

        lr_A = fast_lr (x lr if scale_fast_lr)
        g_A  = pulse(g_A, rule(-lr_A G, dw_min))                       # every step
        every transfer_every steps, rows j = ptr .. ptr + n_reads_per_transfer - 1 (wrapping):
            v      = 2 w_max (read(g_A[j]) - g_ref_A[j]) + read_noise xi        # one-hot read of A
            H[j]  += lr_H v,     lr_H = transfer_lr (x lr) / bg,
                                 bg = buffer_granularity dw_min (x auto_granularity / period)
            n_C    = where(|H[j]| >= threshold, clip(trunc(H[j]/threshold), +-max_steps), 0)
            H[j]   = momentum H[j] where fired  (forget_buffer)
            g_C[j] = pulse(g_C[j], n_C)                                 # exactly n_C pulses
        W = 2 w_max (read(g_C) - g_ref_C)  (+ gamma 2 w_max (read(g_A) - g_ref_A))

    ``period = transfer_every n_in / n_reads_per_transfer`` steps (a sweep of A).
    A's reference is at its symmetry point (``reference_a``). With every
    threshold infinite C never changes and this is SGD on A alone.
    """

    name = "ttv2"
    tile = "transfer"
    needs_batch = True
    fast_lr: float = _opt(
        0.1, "Transfer algorithms: learning rate of the gradient onto A, lr_A = fast_lr (x lr with --scale-fast-lr): "
        "A gets rule(-lr_A G, dw_min) pulses every step.", minimum=0.0, exclusive_minimum=True, finite=True)
    scale_fast_lr: bool = _opt(False, "Transfer algorithms: multiply fast_lr by the optimizer's learning rate.", cli="switch")
    auto_scale: bool = _opt(
        False, "Transfer algorithms: lr_A = fast_lr auto_pulses dw_min / m, m an EMA of max|G| over steps "
        "(aihwkit auto_scale, per step).", cli="switch")
    auto_momentum: float = _opt(0.99, "Transfer algorithms: EMA momentum of --auto-scale, per step.", minimum=0.0, maximum=1.0)
    auto_pulses: int = _opt(31, "Transfer algorithms: pulses the largest gradient gets under --auto-scale (aihwkit desired_bl).",
                            unit="pulses", minimum=1, maximum=1_000_000)
    transfer_every: int = _opt(
        1, "Transfer algorithms and mixed precision: optimizer steps between transfers.", unit="steps",
        minimum=1, maximum=1_000_000)
    n_reads_per_transfer: int = _opt(
        1, "Transfer algorithms: rows of A (kernel rows, one per input) read per transfer, sequentially, wrapping "
        "(aihwkit reads one column per sample: batch size / transfer_every rows per step is the same rate).",
        unit="rows", minimum=1, maximum=1_000_000)
    transfer_lr: float = _opt(
        1.0, "Transfer algorithms: lr_T of the reads of A into H (x lr unless --no-scale-transfer-lr); "
        "mixed precision: factor on the transferred change (pulses = round(transfer_lr n eps / dw_min)).",
        minimum=0.0, exclusive_minimum=True, finite=True)
    scale_transfer_lr: bool = _opt(True, "Transfer algorithms: multiply transfer_lr by the optimizer's learning rate.",
                                   cli="switch")
    buffer_granularity: float = _opt(
        1.0, "Transfer algorithms: H's threshold in units of A's dw_min: lr_H = lr_T / (buffer_granularity dw_min).",
        unit="dw_min of A", minimum=0.0, exclusive_minimum=True, finite=True)
    auto_granularity: float = _opt(
        0.0, "Transfer algorithms: if > 0, bg is scaled by auto_granularity / period, so a constant one-pulse "
        "signal in A crosses H after auto_granularity / lr_T steps whatever the layer size (0: off).",
        unit="steps", minimum=0.0, finite=True)
    threshold: float = _opt(
        1.0, "Transfer algorithms: |H| >= threshold fires whole pulses on C (inf: never; C stays as initialized).",
        minimum=0.0, exclusive_minimum=True)
    max_steps: int = _opt(1, "Transfer algorithms: most pulses one transfer writes to a device of C.", unit="pulses",
                          minimum=1, maximum=1_000_000)
    momentum: float = _opt(0.0, "Transfer algorithms: fraction of H kept after it fired.", minimum=0.0, maximum=1.0)
    forget_buffer: bool = _opt(
        True, "Transfer algorithms: after firing H <- momentum H; --no-forget-buffer: H <- H - (1 - momentum) n_C threshold.",
        cli="switch")
    buffer_cap: float = _opt(
        0.0, "Transfer algorithms with --no-forget-buffer: |H| <= buffer_cap max_steps threshold (0: no cap).",
        minimum=0.0, finite=True)
    read_noise_a: float = _opt(
        0.0, "Transfer algorithms: additive Gaussian noise of each read of A (aihwkit transfer_forward.out_noise x w_max).",
        unit="weight units", minimum=0.0, finite=True)
    gamma: float = _opt(
        0.0, "Transfer algorithms: the network reads W = W_C + gamma W_A (aihwkit gamma; 0 in every preset).",
        minimum=0.0, finite=True)
    reference_a: str = _opt(
        "symmetry", "Transfer algorithms: A's reference conductance: symmetry (its symmetry point, zero-shifted) or mid.",
        choices=REFERENCES)
    reference_c: str = _opt(
        "mid", "Transfer algorithms: C's reference conductance: mid (as SGD, the same weight range) or symmetry.",
        choices=REFERENCES)

    def lr_a(self, lr):
        return self.fast_lr * (lr if self.scale_fast_lr else 1.0)

    def check(self):
        if self.gamma > 0 and getattr(self, "in_chop_prob", 0.0) > 0:
            raise FieldError("gamma", "must be 0 with choppers (A's content flips sign with them)")


@dataclasses.dataclass(frozen=True)
class ChoppedTTv2(TikiTakaV2):
    """Chopped Tiki-Taka v2 (Rasch et al., Nat. Commun. 15:7133, 2024); docs/algorithms.md section 4.

    TTv2 with a sign ``c = c_in[j] c_out[k]`` per weight (choppers): A gets
    ``rule(-lr_A c G, dw_min)`` and H gets ``c[j] lr_H v``, so a static offset
    of A (a reference error) alternates in sign in H and averages out. After
    its read a row's input chopper flips with probability ``in_chop_prob``
    (``in_chop_random``) or all rows every ``max(ceil(1/in_chop_prob), 2)``
    sweeps; output choppers flip with ``out_chop_prob`` after each sweep.
    """

    name = "c-ttv2"
    in_chop_prob: float = _opt(
        0.1, "c-TTv2 and AGAD: probability that a row's input chopper flips after its read (regular chopping: "
        "every max(ceil(1/p), 2) sweeps).", unit="per read", minimum=0.0, maximum=1.0)
    in_chop_random: bool = _opt(
        True, "c-TTv2 and AGAD: random (geometric) chopper periods per row; --no-in-chop-random: regular periods "
        "(AGAD's default; AGAD flips regularly and, with this, also at random).", cli="switch")
    out_chop_prob: float = _opt(
        0.0, "c-TTv2: probability that an output chopper flips after each sweep of A.", unit="per sweep",
        minimum=0.0, maximum=1.0)

    def samples(self) -> int:
        """Sweeps per regular chopper period: ``max(ceil(1/in_chop_prob), 2)``."""
        return max(math.ceil(1.0 / self.in_chop_prob), 2) if self.in_chop_prob > 0 else 2


@dataclasses.dataclass(frozen=True)
class AGAD(ChoppedTTv2):
    """AGAD, analog gradient accumulation with dynamic reference (Rasch et al. 2024); docs/algorithms.md section 5.

    c-TTv2's A update; per row read, with ``n_samples = max(ceil(1/in_chop_prob), 2)``
    sweeps per chopper period and ``beta = min(tail_weightening / n_samples, 1)``::

        past_mean[j] = mean[j] if the row's chopper flipped since its last read
        H[j]        += c[j] lr_H (v - past_mean[j])
        threshold and pulses on C as TTv2, but none in the first n_samples sweeps
        mean[j]      = (1 - beta) mean[j] + beta v
        c_in[j] flips every n_samples sweeps (and at random with in_chop_random)

    ``v - past_mean`` is the change of A since the last period, so A's offset
    cancels without a symmetry-point reference (A reads against mid-range).
    """

    name = "agad"
    in_chop_random: bool = _opt(
        False, "c-TTv2 and AGAD: random (geometric) chopper periods per row; --no-in-chop-random: regular periods "
        "(AGAD's default; AGAD flips regularly and, with this, also at random).", cli="switch")
    reference_a: str = _opt(
        "mid", "Transfer algorithms: A's reference conductance: symmetry (its symmetry point, zero-shifted) or mid.",
        choices=REFERENCES)
    tail_weightening: float = _opt(
        5.0, "AGAD: the running mean of A's reads weighs the last n_samples / tail_weightening reads of a period "
        "(beta = min(tail_weightening / n_samples, 1)).", minimum=0.0, exclusive_minimum=True, finite=True)

    def check(self):
        super().check()
        if self.in_chop_prob <= 0:
            raise FieldError("in_chop_prob", "AGAD needs in_chop_prob > 0 (its chopper period)")

    def beta(self) -> float:
        return min(self.tail_weightening / self.samples(), 1.0)


@dataclasses.dataclass(frozen=True)
class MixedPrecision(Algorithm):
    """Mixed precision (Nandakumar et al., Front. Neurosci. 14:406, 2020); docs/algorithms.md section 6.

    The gradient accumulates in a float matrix ``chi``; a device gets whole
    pulses once its accumulated change reaches ``eps``::

        chi += -lr G                                    # every step
        every transfer_every steps, on the next n_rows_per_transfer kernel columns (all by default):
            n    = trunc(chi / eps)                     # eps = granularity, default dw_min
            chi -= n eps                                # what was asked, not what the device did
            g    = pulse(g, clip(round(transfer_lr n eps / dw_min), +-max_pulses))
        W = 2 w_max (read(g) - 0.5)
    """

    name = "mixed-precision"
    tile = "mixed-precision"
    needs_batch = True
    granularity: float | None = _opt(
        None, "Mixed precision: eps, the accumulated change that earns one pulse (default dw_min = 2 wmax / N).",
        unit="weight units", minimum=0.0, exclusive_minimum=True, finite=True)
    transfer_every: int = _opt(
        1, "Transfer algorithms and mixed precision: optimizer steps between transfers.", unit="steps",
        minimum=1, maximum=1_000_000)
    transfer_lr: float = _opt(
        1.0, "Transfer algorithms: lr_T of the reads of A into H (x lr unless --no-scale-transfer-lr); "
        "mixed precision: factor on the transferred change (pulses = round(transfer_lr n eps / dw_min)).",
        minimum=0.0, exclusive_minimum=True, finite=True)
    n_rows_per_transfer: int = _opt(
        -1, "Mixed precision: kernel columns (aihwkit's rows) transferred per transfer, sequentially (-1: all).",
        unit="columns", minimum=-1, maximum=1_000_000)

    def check(self):
        if self.n_rows_per_transfer == 0:
            raise FieldError("n_rows_per_transfer", "must be -1 (all) or >= 1, got 0")


ALGORITHMS = {cls.name: cls for cls in (SGD, ZeroShift, TikiTakaV2, ChoppedTTv2, AGAD, MixedPrecision)}
"""Algorithm classes by name (``--algorithm``)."""

NAMES = tuple(ALGORITHMS)


def get(algorithm) -> Algorithm:
    """An `Algorithm` from an instance, a name (``"ttv2"``, default parameters) or None (`SGD`)."""
    if algorithm is None:
        return SGD()
    if isinstance(algorithm, Algorithm):
        return algorithm
    if isinstance(algorithm, str):
        if algorithm not in ALGORITHMS:
            raise FieldError("algorithm", f"unknown algorithm {algorithm!r}; choose from {', '.join(NAMES)}")
        return ALGORITHMS[algorithm]()
    if isinstance(algorithm, dict):
        return algorithm_from_config(algorithm)
    raise FieldError("algorithm", f"must be an algorithm name or a devsim.algorithms class instance, got {algorithm!r}")


def algorithm_from_config(config: dict) -> Algorithm:
    """Inverse of `Algorithm.get_config` (``{"name": ..., fields}``)."""
    config = dict(config)
    name = config.pop("name", "sgd")
    if name not in ALGORITHMS:
        raise FieldError("algorithm", f"unknown algorithm {name!r}; choose from {', '.join(NAMES)}")
    cls = ALGORITHMS[name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise FieldError(unknown[0], f"not a parameter of algorithm {name} (its parameters: {', '.join(sorted(known)) or 'none'})")
    return cls(**config)


def option_fields() -> dict:
    """Every algorithm parameter once (name -> the first declaration), for the option table."""
    fields = {}
    for cls in ALGORITHMS.values():
        for name, f in parameters(cls).items():
            fields.setdefault(name, f)
    return fields


def owners(field_name: str) -> list[str]:
    """Names of the algorithms that have a parameter."""
    return [n for n, cls in ALGORITHMS.items() if field_name in parameters(cls)]
