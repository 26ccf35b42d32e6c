"""Tiles: one weight array on devices, with everything it owns.

A tile is what aihwkit calls an analog tile and NeuroSim a synaptic array: the
devices behind one device-mapped variable (a Dense or Conv kernel). It owns

- the `DevicePopulation` (the device model with each device's own draws),
- the conductance state (one float32 per device, an optimizer variable),
- the pulse counters (applied, lost at the bounds),
- its random streams (counter-based, `devsim.noise`),

and offers the three things training needs::

    w = tile.read()                  # weights the devices hold (with fresh read noise)
    tile.update(w_before, step)      # batch update: the float step -> pulses -> devices
    tile.program_drift(step)         # epoch update: the drift since the last programming

`DeviceTile` is the plain kind (one array, pulses from the proposed weight
change). Training algorithms that keep two arrays per weight or a digital
accumulator are other tile kinds with the same interface; `DeviceOptimizer`
only sees tiles.
"""

from __future__ import annotations

import numpy as np

from devsim import noise
from devsim.lazy import ops
from devsim.pulses import PULSE_RULES, RANDOM_RULES

UPDATES = ("batch", "epoch")
"""When tiles are programmed: after every training step, or at epoch end (the drift of a float epoch)."""

ROW_BUCKETS = (0.125, 0.25, 0.375, 0.5, 0.75)
"""Row buckets of ``skip_zero_rows``, as fractions of a kernel's rows (the full kernel is the last)."""

READ_STREAM = 1 << 20
"""Noise streams of evaluation reads start here, apart from the updates' 3 per tile."""


def layer_name(variable) -> str:
    """The name of the layer that owns `variable`: ``"dense_1"`` for ``"mlp/dense_1/kernel"``."""
    parts = variable.path.split("/")
    return parts[-2] if len(parts) > 1 else variable.name


class DeviceTile:
    """One device variable on one array of devices (the plain kind).

    Per update, with ``g`` the conductances and ``w`` the variable::

        dw = w_proposed - w_anchor                   # batch: the float step; epoch: the drift
        n = mapping.route(pulse_rule(dw, dw_min, max_pulses, u))
        g, lost = population.apply_pulses(g, n, xi_c2c)
        w = mapping.weights(population.read(g, xi_read))

    Random draws (``u`` of stochastic rounding, ``xi_c2c``, ``xi_read``) are
    counter-based hashes of (seed, step, stream): stream ``3 index + k`` for
    the update, ``READ_STREAM + index`` for evaluation reads. With
    ``stack_axes`` leading axes that index independent copies (`devsim.stacked`)
    every draw has one copy's shape and is shared by the copies, and pulse
    counts are kept per copy.

    Args:
        variable: the Keras variable whose values live on the devices.
        device: the device model (`ExpDevice`) of its devices.
        mapping: conductance <-> weight (`devsim.mapping`).
        pulses: pulse rule name (`devsim.pulses.PULSE_RULES`).
        max_pulses: most pulses per device per update (None: a full sweep, N).
        index: the tile's number in its optimizer (names its random streams).
        seed: the optimizer's base seed (int).
        stack_axes: leading axes of stacked copies.
        count_pulses: keep the pulse counters.
        read_noise_in_steps: draw read noise on every update (batch updates:
            the next forward pass reads the devices afresh).
        snap_initial: put the variable's initial value on the nearest device
            state (else its conductance is taken as a float, unquantized).
        pulse_truncation: NeuroSim's ``(int)((k/N) N)`` in the ``neurosim`` rule.
        count_lost: with ``count_pulses``, also count the pulses applied and those
            lost at the bounds (a logarithm per device); off: only the LTP and LTD
            pulses sent.
        skip_zero_rows: batch updates program only the rows (inputs) whose
            weight change is not all zero, gathered into the smallest of a few
            row buckets that holds them (`ROW_BUCKETS`); the same numbers, faster
            when most inputs are 0 (binary inputs). Used for 2-D kernels of
            devices without per-device variation or read noise; else ignored.
    """

    kind = "device"

    def __init__(self, variable, device, mapping, pulses, max_pulses, index, seed, stack_axes=0, count_pulses=False,
                 read_noise_in_steps=True, snap_initial=True, pulse_truncation=False, skip_zero_rows=False,
                 count_lost=True):
        self.variable, self.device, self.mapping = variable, device, mapping
        self.skip_zero_rows, self.count_lost = bool(skip_zero_rows), bool(count_lost)
        self.snap_initial, self.pulse_truncation = bool(snap_initial), bool(pulse_truncation)
        self.rule, self.pulses, self.max_pulses = PULSE_RULES[pulses], pulses, max_pulses
        self.index, self.seed, self.stack_axes = index, int(seed), int(stack_axes)
        self.count_pulses, self.read_noise_in_steps = bool(count_pulses), bool(read_noise_in_steps)
        self.layer = layer_name(variable)
        self.population = None

    # ------------------------------------------------------------------ state

    def build(self, optimizer):
        """Draw the devices, create the state variables (through ``optimizer.add_variable``) and
        put the variable on the devices: its value snapped to the nearest state (unless
        ``snap_initial`` is off), then read back."""
        shape = self.mapping.state_shape(self.variable.shape)
        # D2D draws, fixed for life; stacked copies draw what each draws alone (one copy's shape, shared)
        self.population = self.device.sample(shape, seed=[self.seed, self.index], copies=self.stack_axes)
        g0 = self.mapping.conductances(ops.cast(self.variable.value, "float32"))
        if self.snap_initial:
            _, g0 = self.population.nearest_state(g0)
        g0 = self.population.stuck_values(g0)
        self.conductance = optimizer.add_variable(
            shape=shape, initializer=lambda shape, dtype: ops.cast(g0, dtype), dtype="float32",
            name=f"{self.layer}_conductance",
        )
        self.variable.assign(ops.cast(self.mapping.weights(self.population.read(g0)), self.variable.dtype))
        copies = tuple(self.variable.shape[: self.stack_axes])
        self.applied = optimizer.add_variable(copies, "zeros", "int64", name=f"{self.layer}_pulses")
        self.lost = optimizer.add_variable(copies, "zeros", "int64", name=f"{self.layer}_lost")
        self.ltp = optimizer.add_variable(copies, "zeros", "int64", name=f"{self.layer}_pulses_ltp")
        self.ltd = optimizer.add_variable(copies, "zeros", "int64", name=f"{self.layer}_pulses_ltd")

    def state(self) -> dict:
        """The tile's device state as numpy arrays: ``{"g": conductances}``."""
        return {"g": self.conductance.numpy()}

    # ------------------------------------------------------------------ updates

    def _draw_shape(self, shape):
        return tuple(shape[self.stack_axes:])

    def _noise(self, step):
        """The draws this update needs: (rounding u, C2C xi, read xi), None where off.

        Stacked copies share the draws: the rounding uniforms have one copy's
        shape and broadcast (they are only compared, exactly); the normals are
        computed per element, repeating over the copies (`devsim.noise.normal`).
        """
        shape = self._draw_shape(self.variable.shape)
        state_shape, copies = tuple(self.conductance.shape), self.stack_axes
        stream = 3 * self.index
        u = noise.uniform(shape, noise.key(self.seed, step, stream)) if self.pulses in RANDOM_RULES else None
        xi_c2c = noise.normal(state_shape, noise.key(self.seed, step, stream + 1), copies) if self.population.c2c > 0 else None
        noisy_read = self.population.read_noise > 0 and self.read_noise_in_steps
        xi_read = noise.normal(state_shape, noise.key(self.seed, step, stream + 2), copies) if noisy_read else None
        return u, xi_c2c, xi_read

    def _count(self, x):
        """Sum over everything but the stacked copies."""
        axes = tuple(range(self.stack_axes, len(x.shape)))
        return ops.cast(ops.sum(x, axis=axes), "int64")

    def _compacts(self, anchor):
        import keras

        return (self.skip_zero_rows and anchor is not None and keras.backend.backend() == "tensorflow"
                and len(self.variable.shape) == 2 and self.stack_axes == 0 and self.mapping.name == "reference"
                and getattr(self.device, "kind", None) == "exp" and not self.device.needs_sampling
                and np.ndim(self.device.a_p) == 0 and np.ndim(self.device.a_d) == 0
                and self.population.read_noise == 0 and self.pulses not in RANDOM_RULES
                and self.variable.shape[0] > ROW_BUCKETS[0] * 2)

    def update(self, anchor, step):
        """Program the change of the variable from ``anchor`` (its weights before the
        float step) into the devices, and set the variable to what they hold."""
        if self._compacts(anchor):
            return self._update_rows(anchor, step)
        u, xi_c2c, xi_read = self._noise(step)
        g_old = self.conductance.value
        if anchor is None:  # epoch updates: the drift from the devices' (noise-free) value
            anchor = ops.cast(self.mapping.weights(self.population.read(g_old)), self.variable.dtype)
        dw = ops.cast(self.variable.value - anchor, "float32")
        population = self.population
        max_pulses = population.num_pulses if self.max_pulses is None else self.max_pulses
        n = self.mapping.route(self._pulses(dw, population, u))
        g_new, n_lost = population.apply_pulses(g_old, n, xi=xi_c2c)
        if self.count_pulses:
            if self.count_lost:
                self.applied.assign_add(self._count(ops.abs(n) - n_lost))
                self.lost.assign_add(self._count(n_lost))
            self.ltp.assign_add(self._count(ops.relu(n)))
            self.ltd.assign_add(self._count(ops.relu(-n)))
        self.conductance.assign(g_new)
        self.variable.assign(ops.cast(self.mapping.weights(population.read(g_new, xi=xi_read)), self.variable.dtype))

    def _pulses(self, dw, population, u):
        """Signed pulses per weight for the weight change ``dw``, by the tile's rule."""
        dw_min = self.mapping.dw_min(population, dw)
        if self.pulses == "neurosim":  # NeuroSim: no cap, (|dw| / w_range) N in double precision
            levels = (population.num_pulses, population.num_pulses_ltd)
            w_range = 2.0 * self.mapping.w_max if self.mapping.name == "reference" else None
            return self.rule(dw, dw_min, self.max_pulses, levels=levels, w_range=w_range,
                             truncation=self.pulse_truncation)
        max_pulses = population.num_pulses if self.max_pulses is None else self.max_pulses
        return self.rule(dw, dw_min, max_pulses, u=u)

    def _update_rows(self, anchor, step):
        """`update` for the rows whose weight change is not all zero only (``skip_zero_rows``).

        The rows that changed are gathered (``top_k`` of the row activity) into the
        smallest bucket of `ROW_BUCKETS` x rows that holds them (``tf.switch_case``; the
        last bucket is every row), updated with the element-indexed draws the full
        update would use (`devsim.noise.normal_at`), and scattered back. Rows padding
        a bucket have no change: their pulses are 0 and their devices stay as they are.
        """
        import tensorflow as tf

        rows, cols = (int(d) for d in self.variable.shape)
        w_proposed = self.variable.value
        dw = ops.cast(w_proposed - anchor, "float32")
        active = tf.reduce_any(tf.not_equal(dw, 0.0), axis=1)
        count = tf.reduce_sum(tf.cast(active, tf.int32))
        sizes = sorted({max(1, int(round(f * rows))) for f in ROW_BUCKETS if int(round(f * rows)) < rows})
        key = noise.key(self.seed, step, 3 * self.index + 1)
        g_old = self.conductance.value
        population = self.population

        def bucket(size):
            def program():
                if size == rows:
                    idx = tf.range(rows, dtype=tf.int32)
                    g_rows, dw_rows = g_old, dw
                else:
                    idx = tf.math.top_k(tf.cast(active, tf.float32), k=size, sorted=False).indices
                    g_rows, dw_rows = tf.gather(g_old, idx), tf.gather(dw, idx)
                n = self._pulses(dw_rows, population, None)
                xi = None
                if population.c2c > 0:
                    flat = idx[:, None] * cols + tf.range(cols, dtype=tf.int32)[None, :]
                    xi = noise.normal_at(flat, key)
                g_new, n_lost = population.apply_pulses(g_rows, n, xi=xi)
                w_new = ops.cast(self.mapping.weights(population.read(g_new)), "float32")
                # one tensor holds every per-element result, so XLA computes the update once (not once
                # per consumer: the scatter, the weights and each counter)
                parts = [g_new, w_new]
                if self.count_pulses:
                    lost_terms = [ops.abs(n) - n_lost, n_lost] if self.count_lost else [ops.zeros_like(n)] * 2
                    parts += [*lost_terms, ops.relu(n), ops.relu(-n)]
                out = tf.stack(parts)
                counts = [ops.zeros((), "int64")] * 4
                if self.count_pulses:
                    counts = tf.unstack(tf.cast(tf.reduce_sum(out[2:], axis=(1, 2)), tf.int64))
                g_new, w_new = out[0], ops.cast(out[1], self.variable.dtype)
                if size == rows:
                    return (g_new, w_new, *counts)
                where = idx[:, None]
                return (tf.tensor_scatter_nd_update(g_old, where, g_new),
                        tf.tensor_scatter_nd_update(w_proposed, where, w_new), *counts)
            return program

        branch = tf.reduce_sum(tf.cast(tf.constant(sizes, tf.int32) < count, tf.int32))
        g_new, w_new, applied, lost, ltp, ltd = tf.switch_case(branch, [bucket(s) for s in [*sizes, rows]])
        if self.count_pulses:
            if self.count_lost:
                self.applied.assign_add(applied)
                self.lost.assign_add(lost)
            self.ltp.assign_add(ltp)
            self.ltd.assign_add(ltd)
        self.conductance.assign(g_new)
        self.variable.assign(w_new)

    def program_drift(self, step):
        """Epoch updates: program the drift ``w - weights(read(g))`` since the last programming."""
        self.update(None, step)

    # ------------------------------------------------------------------ reads and counts

    def read(self, reads=None):
        """Set the variable to a read of the devices: noisy (a fresh draw from the
        evaluation stream, counter ``reads``) when ``reads`` is given and read noise is on."""
        xi = None
        if reads is not None and self.population.read_noise > 0:
            xi = noise.normal(tuple(self.conductance.shape), noise.key(self.seed, reads, READ_STREAM + self.index),
                              self.stack_axes)
        self.variable.assign(ops.cast(self.mapping.weights(self.population.read(self.conductance.value, xi=xi)),
                                      self.variable.dtype))

    def pulse_counts(self, reset=False) -> dict:
        """``{"pulses_applied_<layer>": n, "pulses_lost_<layer>": n, "pulses_ltp_<layer>": n,
        "pulses_ltd_<layer>": n}`` (per copy when stacked); LTP and LTD are the pulses sent
        in each direction, applied or lost."""
        counts = {}
        kept = (("applied", self.applied), ("lost", self.lost)) if self.count_lost else ()
        for key, var in (*kept, ("ltp", self.ltp), ("ltd", self.ltd)):
            value = var.numpy()
            counts[f"pulses_{key}_{self.layer}"] = int(value) if value.ndim == 0 else value.copy()
            if reset:
                var.assign(ops.zeros_like(var))
        return counts

    def stuck_counts(self) -> dict:
        low, high = self.population.stuck_counts()
        return {f"stuck_gmin_{self.layer}": low, f"stuck_gmax_{self.layer}": high}

    @property
    def has_read_noise(self) -> bool:
        return self.population.read_noise > 0


TILES = {"device": DeviceTile}
"""Tile kinds by name."""

