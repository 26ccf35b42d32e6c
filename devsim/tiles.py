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

import math

import numpy as np

from devsim import backends, noise, symmetry
from devsim import algorithms as algorithms_mod
from devsim.lazy import ops
from devsim.pulses import PULSE_RULES, RANDOM_RULES

UPDATES = ("batch", "epoch")
"""When tiles are programmed: after every training step, or at epoch end (the drift of a float epoch)."""

CHUNKS = (512, 128, 32)
"""Cells ``skip_zero_rows`` programs per step of its loops: a chunk size is used while it would be at
least half full, the smallest for the rest (NeuroSim's protocol: most images pulse no cell, 99 % fewer
than 1200 of a 400 x 100 kernel)."""

SPARSE_BLOCK = 16
"""Devices per block of the sparse batch update (`DeviceTile.updates_pulsed_blocks`): one 512-bit vector of float32."""

SPARSE_CHUNKS = (1 / 8, 1 / 32)
"""Blocks the sparse batch update programs per pass of its loops, fractions of the tile's. Stochastic rounding
pulses 0.2-0.8 % of the devices per step on the MLPs of `benchmarks/peers.py`: 3-12 % of the blocks."""

SPARSE_MIN_SIZE = 64 * SPARSE_BLOCK
"""Smallest tile (devices) the sparse batch update is used for: a smaller one gains nothing from it."""

ROUNDING, C2C, STEP_READ = 0, 1, 2
"""An update's three draws (its rounding uniforms, C2C normals, read normals): stream ``3 index + draw``."""

READ_STREAM = 1 << 20
"""Noise streams of evaluation reads start here, apart from the updates' 3 per tile."""

EXTRA_STREAM = 1 << 21
"""Noise streams of the algorithms' further draws (transfers, choppers, references): 16 per tile from here."""


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
        skip_zero_rows: batch updates program only the cells that get pulses:
            the block of the rows and columns holding a nonzero pulse, in chunks
            (`CHUNKS`), nothing when no weight gets a pulse; the same pulses and,
            to float32 rounding, conductances, faster when few devices are
            pulsed per update (NeuroSim's protocol). Used for 2-D kernels of
            devices without per-device variation or read noise; else ignored.
        sparse_update: batch updates run the device math on the blocks of
            `SPARSE_BLOCK` devices that get a pulse only (`updates_pulsed_blocks`
            says where it applies); the same numbers.
    """

    kind = "device"

    needs_gradient = False
    """Whether `update` needs the raw gradient and the learning rate (not only the proposed step)."""

    def __init__(self, variable, device, mapping, pulses, max_pulses, index, seed, stack_axes=0, count_pulses=False,
                 read_noise_in_steps=True, snap_initial=True, pulse_truncation=False, skip_zero_rows=False,
                 count_lost=True, algorithm=None, sparse_update=True):
        self.variable, self.device, self.mapping = variable, device, mapping
        self.sparse_update = bool(sparse_update)
        self.skip_zero_rows, self.count_lost = bool(skip_zero_rows), bool(count_lost)
        self.snap_initial, self.pulse_truncation = bool(snap_initial), bool(pulse_truncation)
        self.algorithm = algorithms_mod.get(algorithm)
        self.rule, self.pulses, self.max_pulses = PULSE_RULES[pulses], pulses, max_pulses
        self.index, self.seed, self.stack_axes = index, int(seed), int(stack_axes)
        self.count_pulses, self.read_noise_in_steps = bool(count_pulses), bool(read_noise_in_steps)
        self.layer = layer_name(variable)
        self.population = None
        self.read_cache = None
        """A `devsim.periphery.ReadCache` of the layer reading this tile's array, or None: while it is
        active, updates write the read currents of the cells they program into it (`programs_pulsed_cells_only`)."""

    # ------------------------------------------------------------------ state

    def build(self, optimizer):
        """Draw the devices, create the state variables (through ``optimizer.add_variable``) and
        put the variable on the devices: its value snapped to the nearest state (unless
        ``snap_initial`` is off), then read back."""
        shape = self.mapping.state_shape(self.variable.shape)
        # D2D draws, fixed for life; stacked copies draw what each draws alone (one copy's shape, shared)
        self.population = self.device.sample(shape, seed=[self.seed, self.index], copies=self.stack_axes)
        self._build_reference(optimizer)
        g0 = self._conductances(ops.cast(self.variable.value, "float32"))
        if self.snap_initial:
            _, g0 = self.population.nearest_state(g0)
        g0 = self.population.stuck_values(g0)
        self.conductance = optimizer.add_variable(
            shape=shape, initializer=lambda shape, dtype: ops.cast(g0, dtype), dtype="float32",
            name=f"{self.layer}_conductance",
        )
        self._build_state(optimizer)
        self.variable.assign(ops.cast(self._weights(self.population.read(g0)), self.variable.dtype))
        copies = tuple(self.variable.shape[: self.stack_axes])
        self.applied = optimizer.add_variable(copies, "zeros", backends.counter_dtype(), name=f"{self.layer}_pulses")
        self.lost = optimizer.add_variable(copies, "zeros", backends.counter_dtype(), name=f"{self.layer}_lost")
        self.ltp = optimizer.add_variable(copies, "zeros", backends.counter_dtype(), name=f"{self.layer}_pulses_ltp")
        self.ltd = optimizer.add_variable(copies, "zeros", backends.counter_dtype(), name=f"{self.layer}_pulses_ltd")

    def _build_reference(self, optimizer):
        """Kinds with their own reference conductance create it here (before the initial states)."""

    def _build_state(self, optimizer):
        """Kinds with further arrays create them here (after the conductances)."""

    def _weights(self, g):
        """Weights of (read) conductances: the mapping's (``w_max (2g - 1)`` for the reference mapping)."""
        return self.mapping.weights(g)

    def _conductances(self, w):
        """The (unquantized) conductances that represent weights ``w``."""
        return self.mapping.conductances(w)

    def state(self) -> dict:
        """The tile's device state as numpy arrays: ``{"g": conductances}`` (kinds add their arrays)."""
        return {"g": self.conductance.numpy()}

    # ------------------------------------------------------------------ updates

    def _draw_shape(self, shape):
        return tuple(shape[self.stack_axes:])

    def _key(self, step, draw):
        """The key of an update's draws: stream ``3 index + draw`` (`ROUNDING`, `C2C`, `STEP_READ`)."""
        return noise.key(self.seed, step, 3 * self.index + draw)

    def _noise(self, step):
        """The draws this update needs: (rounding u, C2C xi, read xi), None where off.

        Stacked copies share the draws: the rounding uniforms have one copy's
        shape and broadcast (they are only compared, exactly); the normals are
        computed per element, repeating over the copies (`devsim.noise.normal`).
        """
        shape = self._draw_shape(self.variable.shape)
        state_shape, copies = tuple(self.conductance.shape), self.stack_axes
        u = noise.uniform(shape, self._key(step, ROUNDING)) if self.pulses in RANDOM_RULES else None
        xi_c2c = noise.normal(state_shape, self._key(step, C2C), copies) if self.population.c2c > 0 else None
        noisy_read = self.population.read_noise > 0 and self.read_noise_in_steps
        xi_read = noise.normal(state_shape, self._key(step, STEP_READ), copies) if noisy_read else None
        return u, xi_c2c, xi_read

    def _count(self, x):
        """Sum over everything but the stacked copies."""
        axes = tuple(range(self.stack_axes, len(x.shape)))
        return ops.cast(ops.sum(x, axis=axes), backends.counter_dtype())

    @property
    def _identical_devices(self) -> bool:
        """Exponential devices that do not differ from each other (no D2D, no stuck ones, scalar curve
        constants): what the updates that program only some cells need."""
        return (getattr(self.device, "kind", None) == "exp" and not self.device.needs_sampling
                and np.ndim(self.device.a_p) == 0 and np.ndim(self.device.a_d) == 0)

    @property
    def programs_pulsed_cells_only(self) -> bool:
        """Whether batch updates program only the cells they pulse (``skip_zero_rows`` in effect: a
        2-D kernel of exponential devices without per-device variation or read noise, a
        deterministic pulse rule, TensorFlow). Such a tile can also keep its layer's read currents
        (`read_cache`). Needs the devices drawn (`build`)."""
        import keras

        return (self.skip_zero_rows and self.kind == "device" and self.population is not None
                and keras.backend.backend() == "tensorflow"
                and len(self.variable.shape) == 2 and self.stack_axes == 0 and self.mapping.name == "reference"
                and self._identical_devices and self.population.read_noise == 0 and self.pulses not in RANDOM_RULES
                and min(self.variable.shape) > 1)

    def update(self, anchor, step, grad=None, lr=None):
        """Program the change of the variable from ``anchor`` (its weights before the
        float step) into the devices, and set the variable to what they hold.

        Args:
            anchor: the weights before the inner optimizer's step (batch updates), or
                None (epoch updates: the drift from the devices' noise-free value).
            step: the optimizer's update counter (int tensor; keys the random draws).
            grad, lr: the loss gradient of the variable and the current learning rate
                (given to every tile; kinds with ``needs_gradient`` use them).
        """
        if anchor is not None and self.programs_pulsed_cells_only:
            return self._update_rows(anchor, step)
        if anchor is not None and self.updates_pulsed_blocks:
            return self._update_blocks(anchor, step)
        u, xi_c2c, xi_read = self._noise(step)
        if anchor is None:  # epoch updates: the drift from the devices' (noise-free) value
            anchor = ops.cast(self._weights(self.population.read(self.conductance.value)), self.variable.dtype)
        self._assign(*self._dense_update(anchor, u, xi_c2c, xi_read))

    @property
    def updates_pulsed_blocks(self) -> bool:
        """Whether batch updates run the device math only on the blocks of `SPARSE_BLOCK` devices
        that get a pulse (`_update_blocks`): plain tiles of devices that do not differ from each other
        (no D2D, no stuck devices), with scalar curve constants, the reference mapping, no read noise in
        the steps (a weight that gets no pulse keeps its value), no stacked copies, a size that is a
        multiple of the block and at least `SPARSE_MIN_SIZE`, compiled on JAX or TensorFlow (XLA).
        Needs the devices drawn (`build`)."""
        import keras

        size = int(np.prod(self.variable.shape))
        return (self.sparse_update and self.kind == "device" and self.population is not None
                and keras.backend.backend() in ("jax", "tensorflow")
                and self.stack_axes == 0 and self.mapping.name == "reference"
                and self._identical_devices and not (self.population.read_noise > 0 and self.read_noise_in_steps)
                and size % SPARSE_BLOCK == 0 and size >= SPARSE_MIN_SIZE)

    def _dense_update(self, anchor, u, xi_c2c, xi_read):
        """``(g_new, w_new, counts)`` of the update from ``anchor`` for every device; ``counts``: the LTP
        and LTD pulses sent, then (``count_lost``) those applied and lost; empty without ``count_pulses``."""
        g_old = self.conductance.value
        dw = ops.cast(self.variable.value - anchor, "float32")
        population = self.population
        n = self.mapping.route(self._pulses(dw, population, u))
        g_new, n_lost = population.apply_pulses(g_old, n, xi=xi_c2c)
        counts = []
        if self.count_pulses:
            counts = [self._count(ops.relu(n)), self._count(ops.relu(-n))]
            if self.count_lost:
                counts += [self._count(ops.abs(n) - n_lost), self._count(n_lost)]
        w_new = ops.cast(self._weights(population.read(g_new, xi=xi_read)), self.variable.dtype)
        return g_new, w_new, counts

    def _assign(self, g_new, w_new, counts):
        """Set the conductances and the variable, and add ``counts`` (`_dense_update`'s) to the counters."""
        if counts:
            self.ltp.assign_add(counts[0])
            self.ltd.assign_add(counts[1])
            if self.count_lost:
                self.applied.assign_add(counts[2])
                self.lost.assign_add(counts[3])
        self.conductance.assign(g_new)
        self.variable.assign(w_new)

    def _update_blocks(self, anchor, step):
        """`update` with the device math on the blocks of devices that get a pulse only.

        The pulses are worked out for every weight (the rounding draws and a comparison) only to
        flag the blocks of `SPARSE_BLOCK` consecutive devices (row-major) that hold one. The
        flagged blocks are listed (a prefix sum of the flags) and programmed in loops,
        `SPARSE_CHUNKS` of the blocks per pass (a chunk size while it would be at least half
        full, the smallest for the rest; none when no device gets a pulse): their weight changes
        and devices gathered, their pulses and C2C noise computed again from the element-indexed
        draws the dense update uses (`devsim.noise.uniform_at`, `normal_at`), the devices updated
        and scattered back. Weights outside them keep their value ``anchor``, the read of their
        unchanged devices. The same pulses and conductances as the dense update, bit for bit.
        """
        size, block = int(np.prod(self.variable.shape)), SPARSE_BLOCK
        blocks = size // block
        population, random_rule = self.population, self.pulses in RANDOM_RULES
        u_key = self._key(step, ROUNDING)
        c2c_key = self._key(step, C2C) if population.c2c > 0 else None
        w_rows = ops.reshape(self.variable.value, (blocks, block))
        anchor_rows = ops.reshape(anchor, (blocks, block))

        def pulses(w, a, cells):
            dw = ops.cast(w - a, "float32")
            u = noise.uniform_at(cells, u_key) if random_rule else None
            return self.mapping.route(self._pulses(dw, population, u))

        every = ops.reshape(ops.arange(size, dtype="int32"), (blocks, block))
        flags = ops.cast(ops.any(ops.not_equal(pulses(w_rows, anchor_rows, every), 0.0), axis=1), "int32")
        flagged = ops.sum(flags)
        chunks = sorted({max(1, int(blocks * c)) for c in SPARSE_CHUNKS}, reverse=True)
        length = blocks + chunks[0]  # room for the last pass of any chunk size
        # entry k of the list is the k-th flagged block; the entries after the last hold `blocks` (out of
        # range: gathers take the last block, scatters leave them out)
        slot = ops.where(flags > 0, _exclusive_prefix_sum(flags), length)
        listed = ops.scatter(slot[:, None], ops.arange(blocks, dtype="int32") - blocks, (length + 1,))[:length] + blocks
        counting = 4 if self.count_pulses and self.count_lost else 2 if self.count_pulses else 0
        lane = ops.arange(block, dtype="int32")[None, :]

        def program(chunk):
            def body(start, g, w, counts):
                rows = ops.slice(listed, (start,), (chunk,))
                inside = ops.minimum(rows, blocks - 1)
                cells = inside[:, None] * block + lane
                # the anchor rows from the loop's weights: a block is listed once, so rows not yet programmed
                # still hold the anchor (the spare rows may not, but they are neither counted nor written)
                n_b = pulses(ops.take(w_rows, inside, axis=0), ops.take(w, inside, axis=0), cells)
                xi_b = noise.normal_at(cells, c2c_key) if c2c_key is not None else None
                g_b, lost_b = population.apply_pulses(ops.take(g, inside, axis=0), n_b, xi=xi_b)
                w_b = ops.cast(self._weights(population.read(g_b)), self.variable.dtype)
                if counting:
                    valid = ops.cast(rows < blocks, "float32")[:, None]
                    parts = [ops.relu(n_b), ops.relu(-n_b), ops.abs(n_b) - lost_b, lost_b][:counting]
                    counts = counts + ops.cast(ops.stack([ops.sum(p * valid) for p in parts]), counts.dtype)
                return start + chunk, _scatter_rows(g, rows, g_b), _scatter_rows(w, rows, w_b), counts
            return body

        state = (ops.convert_to_tensor(0, "int32"), ops.reshape(self.conductance.value, (blocks, block)),
                 anchor_rows, ops.zeros((counting,), backends.counter_dtype()))
        for k, chunk in enumerate(chunks):
            last = k == len(chunks) - 1
            state = ops.while_loop(lambda start, *_, c=chunk, e=last: flagged - start > (0 if e else c // 2),
                                   program(chunk), state)
        _, g_new, w_new, counts = state
        counts = [counts[i] for i in range(counting)]
        self._assign(ops.reshape(g_new, self.variable.shape), ops.reshape(w_new, self.variable.shape), counts)

    def _pulses(self, dw, population, u, truncation=None):
        """Signed pulses per weight for the weight change ``dw``, by the tile's rule (``truncation``:
        override ``pulse_truncation``)."""
        dw_min = self.mapping.dw_min(population, dw)
        if self.pulses == "neurosim":  # NeuroSim: no cap, (|dw| / w_range) N in double precision
            levels = (population.num_pulses, population.num_pulses_ltd)
            w_range = 2.0 * self.mapping.w_max if self.mapping.name == "reference" else None
            return self.rule(dw, dw_min, self.max_pulses, levels=levels, w_range=w_range,
                             truncation=self.pulse_truncation if truncation is None else truncation)
        max_pulses = population.num_pulses if self.max_pulses is None else self.max_pulses
        return self.rule(dw, dw_min, max_pulses, u=u)

    def _update_rows(self, anchor, step):
        """`update` for the cells that get pulses only (``skip_zero_rows``).

        The pulses are worked out for every weight (cheap arithmetic). The cells to
        program are the block of the rows and the columns that hold a nonzero pulse
        (NeuroSim's outer-product update pulses whole rows of inputs that were 1 on
        whole columns of errors that were large). The device update runs on that
        block, `CHUNKS` cells at a time in ``tf.while_loop`` s (none when no weight
        gets a pulse, the common case), with the element-indexed draws the full
        update would use (`devsim.noise.normal_at`), and each chunk is scattered back
        in place. Cells of the block without a pulse stay as they are; so do the
        weights outside it, which keep their read-back value ``anchor``.
        """
        import tensorflow as tf

        rows, cols = (int(d) for d in self.variable.shape)
        dw = ops.cast(self.variable.value - anchor, "float32")
        population = self.population
        # A row (column) holds a pulse when its largest or its smallest dw gets one: the pulse rules'
        # counts grow with |dw| on either side of 0, so four reductions of dw and the rule on their
        # 2 (rows + cols) values find the block. The truncation quirk only lowers a count: without it
        # the pulsed cells are a superset.
        def holds_pulse(axis):
            extremes = tf.stack([tf.reduce_max(dw, axis=axis), tf.reduce_min(dw, axis=axis)])
            pulsed = ops.abs(self._pulses(extremes, population, None, truncation=False))
            return tf.cast(tf.reduce_max(pulsed, axis=0) > 0, tf.float32)

        row_active, col_active = holds_pulse(1), holds_pulse(0)
        n_cols = tf.cast(tf.reduce_sum(col_active), tf.int32)
        cells = tf.cast(tf.reduce_sum(row_active), tf.int32) * n_cols
        key = self._key(step, C2C)
        counter = backends.counter_dtype()

        def compact(active):
            # the indices of the active entries first: active entry k goes to slot
            # (active entries before it); the others pile up in a spare slot
            length = int(active.shape[0])
            slot = tf.where(active > 0, tf.cast(tf.cumsum(active, exclusive=True), tf.int32), length)
            return tf.scatter_nd(slot[:, None], tf.range(length, dtype=tf.int32), [length + 1])[:length]

        # only images that pulse anything pay for the compaction
        ridx, cidx = tf.cond(cells > 0, lambda: (compact(row_active), compact(col_active)),
                             lambda: (tf.zeros((rows,), tf.int32), tf.zeros((cols,), tf.int32)))

        cache = self.read_cache if self.read_cache is not None and self.read_cache.active else None

        def program(chunk):
            def body(state):
                done, g = state["done"], state["g"]
                # lane k of the chunk is cell done + k of the block (active rows x active columns),
                # taken modulo the cells left (the last chunk's spare lanes repeat its cells,
                # computing the same values: the scatter writes them twice, the counts skip them)
                lane = tf.range(chunk, dtype=tf.int32)
                cell = done + lane % tf.minimum(chunk, cells - done)
                r, c = tf.gather(ridx, cell // n_cols), tf.gather(cidx, cell % n_cols)
                where = tf.stack([r, c], axis=-1)
                n = self._pulses(tf.gather_nd(dw, where), population, None)
                xi = noise.normal_at(r * cols + c, key) if population.c2c > 0 else None
                g_new, n_lost = population.apply_pulses(tf.gather_nd(g, where), n, xi=xi)
                w_new = ops.cast(self.mapping.weights(population.read(g_new)), "float32")
                # one tensor holds every per-element result, so XLA computes the update once (not
                # once per consumer: the scatters and each counter)
                first = tf.cast(lane < cells - done, tf.float32)
                parts = [g_new, w_new]
                if self.count_pulses:
                    parts += [tf.nn.relu(n) * first, tf.nn.relu(-n) * first]
                    if self.count_lost:
                        parts += [(ops.abs(n) - n_lost) * first, n_lost * first]
                out = tf.stack(parts)
                new = {"done": done + chunk, "g": tf.tensor_scatter_nd_update(g, where, out[0]),
                       "w": tf.tensor_scatter_nd_update(state["w"], where, ops.cast(out[1], self.variable.dtype))}
                if self.count_pulses:
                    new["counts"] = state["counts"] + tf.cast(tf.reduce_sum(out[2:], axis=1), counter)
                if cache is not None:  # the read currents of the cells just programmed
                    new["currents"] = tf.tensor_scatter_nd_update(state["currents"], where,
                                                                  cache.currents_at(out[1], r, c))
                return (new,)
            return body

        # the loop carries only what this tile keeps (a loop value passed through unchanged, such as an
        # empty counter, makes TensorFlow's XLA bridge lose the loop body)
        state = {"done": tf.constant(0, tf.int32), "g": tf.identity(self.conductance.value), "w": tf.identity(anchor)}
        if self.count_pulses:
            state["counts"] = tf.zeros((4 if self.count_lost else 2,), counter)
        if cache is not None:
            state["currents"] = tf.identity(cache.currents())
        # big chunks while they would be at least half full, then smaller ones (`CHUNKS`)
        sizes = sorted({min(c, rows * cols) for c in CHUNKS}, reverse=True)
        for k, chunk in enumerate(sizes):
            last = k == len(sizes) - 1
            state, = tf.while_loop(lambda st, c=chunk, e=last: cells - st["done"] > (0 if e else c // 2),
                                   program(chunk), (state,))
        g_new, w_new, counts = state["g"], state["w"], state.get("counts")
        if cache is not None:
            cache.variable.assign(state["currents"])
        if self.count_pulses:
            self.ltp.assign_add(counts[0])
            self.ltd.assign_add(counts[1])
            if self.count_lost:
                self.applied.assign_add(counts[2])
                self.lost.assign_add(counts[3])
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
        self.variable.assign(ops.cast(self._weights(self.population.read(self.conductance.value, xi=xi)),
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
                var.assign(ops.zeros(var.shape, var.dtype))
        return counts

    def stuck_counts(self) -> dict:
        low, high = self.population.stuck_counts()
        return {f"stuck_gmin_{self.layer}": low, f"stuck_gmax_{self.layer}": high}

    @property
    def has_read_noise(self) -> bool:
        return self.population.read_noise > 0





def _exclusive_prefix_sum(flags, width=128):
    """``cumsum(flags) - flags`` of a 1-D int32 tensor of 0s and 1s: within rows of ``width`` entries a
    matrix product with triangular ones (float32, exact), a cumsum over the rows (XLA:CPU's cumsum is a
    scan of log2(n) passes over the whole array, several times slower)."""
    size = int(flags.shape[0])
    rows = -(-size // width)
    x = ops.reshape(ops.pad(ops.cast(flags, "float32"), [(0, rows * width - size)]), (rows, width))
    before = ops.matmul(x, np.triu(np.ones((width, width), np.float32), 1))  # [i, j] = 1 where i < j
    totals = ops.cast(ops.sum(x, axis=1), "int32")
    earlier = ops.cumsum(totals) - totals  # flags in the rows before
    return ops.reshape(ops.cast(before, "int32") + earlier[:, None], (-1,))[:size]


def _scatter_rows(base, rows, values):
    """``base`` (2-D) with its rows ``rows`` set to ``values``; rows out of range are left out
    (JAX's ``mode="drop"``; XLA's scatter semantics on TensorFlow, whose device updates are compiled)."""
    import keras

    if keras.backend.backend() == "jax":
        return base.at[rows].set(values, mode="drop")
    import tensorflow as tf

    return tf.tensor_scatter_nd_update(base, rows[:, None], values)


def _reference_mapping_only(tile):
    from devsim.mapping import ReferenceMapping

    if not isinstance(tile.mapping, ReferenceMapping):
        raise ValueError(f"algorithm {tile.algorithm.name} needs the reference mapping (one device per weight), "
                         f"got {tile.mapping.name}")
    if tile.stack_axes:
        raise ValueError(f"algorithm {tile.algorithm.name} does not train stacked copies (stack_axes must be 0)")


def _reference_array(population, shape, mode, extra=None):
    """A reference conductance per device (float32 numpy of ``shape``): mid-range or each device's symmetry point."""
    ref = np.broadcast_to(symmetry.reference_conductance(population, shape, mode), shape).astype(np.float64)
    if extra is not None:
        ref = np.clip(ref + extra, 0.0, 1.0)
    return np.ascontiguousarray(ref, dtype=np.float32)


class ZeroShiftTile(DeviceTile):
    """Plain SGD with every weight read against its device's symmetry point (zero shifting).

    ``w = 2 w_max (read(g) - g_ref)``, ``g_ref = g*`` per device
    (`devsim.symmetry`; plus ``reference_std xi`` drawn once). The update is
    `DeviceTile`'s. Extra state: ``g_ref`` (1 float per weight, constant).
    """

    kind = "zero-shift"

    def _build_reference(self, optimizer):
        _reference_mapping_only(self)
        shape = tuple(self.variable.shape)
        extra = None
        if self.algorithm.reference_std > 0:
            xi = noise.normal(shape, noise.key(self.seed, 0, EXTRA_STREAM + 16 * self.index))
            extra = self.algorithm.reference_std * np.asarray(ops.convert_to_numpy(xi), np.float64)
        ref = _reference_array(self.population, shape, "symmetry", extra)
        self.reference = optimizer.add_variable(
            shape=shape, initializer=lambda shape, dtype: ops.cast(ref, dtype), dtype="float32",
            name=f"{self.layer}_reference")

    def _weights(self, g):
        return 2.0 * self.mapping.w_max * (g - self.reference.value)

    def _conductances(self, w):
        return ops.clip(self.reference.value + w / (2.0 * self.mapping.w_max), 0.0, 1.0)

    def state(self) -> dict:
        return {"g": self.conductance.numpy(), "g_ref": self.reference.numpy()}


class TransferTile(DeviceTile):
    """Tiki-Taka v2, chopped TTv2 and AGAD: arrays A and C, buffer H (`devsim.algorithms`).

    The kernel is seen as a matrix ``(n_in, n_out)`` (Conv kernels: every axis
    but the last are the rows). Per step (docs/algorithms.md sections 3-5),
    all in keras ops inside the compiled step: A's pulse-rule update of every
    weight, then (every ``transfer_every`` steps) a gather of
    ``n_reads_per_transfer`` rows of A, their read, the H update, the threshold,
    exact pulses on those rows of C, the choppers, and a scatter back. The
    network's weight is C's (``+ gamma A``).

    Optimizer variables (saved with the model): ``<layer>_conductance`` (C),
    ``_conductance_a`` (A), ``_buffer`` (H), ``_reference_a``, ``_reference_c``
    (per weight); c-TTv2/AGAD ``_chop_in`` (n_in), ``_chop_out`` (n_out); AGAD
    ``_mean``, ``_past_mean`` (per weight), ``_switched`` (n_in); scalars
    ``_row`` (next row), ``_sweeps`` (full sweeps of A read), ``_grad_scale``.

    Random draws: A's rounding and C2C and the forward read noise use
    `DeviceTile`'s streams; the transfer's draws (read noise of A's rows, C's
    C2C, chopper uniforms) come from ``EXTRA_STREAM + 16 index + k``, shaped by
    the rows read (`transfer_draws` lays them out as the numpy reference wants).
    """

    kind = "transfer"
    needs_gradient = True

    # ------------------------------------------------------------------ build

    def build(self, optimizer):
        _reference_mapping_only(self)
        alg = self.algorithm
        shape = tuple(self.variable.shape)
        self.n_out = int(shape[-1])
        self.n_in = int(np.prod(shape[:-1]))
        self.matrix = (self.n_in, self.n_out)
        self.n_reads = min(int(alg.n_reads_per_transfer), self.n_in)
        self.chopped = isinstance(alg, algorithms_mod.ChoppedTTv2)
        self.agad = isinstance(alg, algorithms_mod.AGAD)
        self.population = self.device.sample(shape, seed=[self.seed, self.index])  # C: the devices SGD would have
        self.population_a = self.device.sample(shape, seed=[self.seed, self.index, 1])
        ref_a = _reference_array(self.population_a, shape, alg.reference_a).reshape(self.matrix)
        ref_c = _reference_array(self.population, shape, alg.reference_c)
        self.rows_path = self._homogeneous(self.population)

        def var(name, value, dtype="float32", var_shape=None):
            value = np.asarray(value)
            return optimizer.add_variable(
                shape=var_shape if var_shape is not None else value.shape,
                initializer=lambda shape, dtype: ops.cast(value, dtype), dtype=dtype, name=f"{self.layer}_{name}")

        self.reference_c = var("reference_c", ref_c)
        self.reference_a = var("reference_a", ref_a)
        w0 = ops.cast(self.variable.value, "float32")
        _, g0 = self.population.nearest_state(ops.clip(ops.convert_to_tensor(ref_c) + w0 / (2.0 * self.mapping.w_max), 0.0, 1.0))
        g0 = self.population.stuck_values(g0)
        self.conductance = var("conductance", ops.convert_to_numpy(g0))
        g_a0 = ops.convert_to_numpy(self.population_a.stuck_values(ref_a.reshape(shape))).reshape(self.matrix)
        self.conductance_a = var("conductance_a", g_a0)  # A starts at its reference: weight 0
        self.buffer = var("buffer", np.zeros(self.matrix, np.float32))
        if self.chopped:
            self.chop_in = var("chop_in", np.ones(self.n_in, np.float32))
            self.chop_out = var("chop_out", np.ones(self.n_out, np.float32))
        if self.agad:
            self.mean = var("mean", np.zeros(self.matrix, np.float32))
            self.past_mean = var("past_mean", np.zeros(self.matrix, np.float32))
            self.switched = var("switched", np.zeros(self.n_in, np.float32))
        self.row = var("row", np.int32(0), "int32")
        self.sweeps = var("sweeps", np.int32(0), "int32")
        self.grad_scale = var("grad_scale", np.float32(0.0))
        self.variable.assign(ops.cast(self._forward(g0, self.conductance_a.value), self.variable.dtype))
        self.applied = optimizer.add_variable((), "zeros", backends.counter_dtype(), name=f"{self.layer}_pulses")
        self.lost = optimizer.add_variable((), "zeros", backends.counter_dtype(), name=f"{self.layer}_lost")

    @staticmethod
    def _homogeneous(population):
        """Whether all devices share one model (rows of C can be pulsed without per-device constants);
        else C's pulses are scattered into a full-shape update (n = 0 leaves a device exactly as it is)."""
        model = population.model
        same = np.ndim(getattr(model, "a_p", 0.0)) == 0 and np.ndim(getattr(model, "a_d", 0.0)) == 0
        return same and population.stuck is None and getattr(model, "kind", None) == "exp"

    # ------------------------------------------------------------------ reads

    def _forward(self, g_c, g_a=None, xi=None, xi_a=None):
        """The network's weights: ``2 w_max (read(g_C) - g_ref_C) (+ gamma 2 w_max (read(g_A) - g_ref_A))``."""
        w_max = self.mapping.w_max
        w = 2.0 * w_max * (self.population.read(g_c, xi=xi) - self.reference_c.value)
        if self.algorithm.gamma > 0 and g_a is not None:
            shape = tuple(self.variable.shape)
            a = self.population_a.read(ops.reshape(g_a, shape), xi=xi_a)
            w = w + self.algorithm.gamma * 2.0 * w_max * (a - ops.reshape(self.reference_a.value, shape))
        return w

    def read(self, reads=None):
        xi = None
        if reads is not None and self.population.read_noise > 0:
            xi = noise.normal(tuple(self.variable.shape), noise.key(self.seed, reads, READ_STREAM + self.index))
        self.variable.assign(ops.cast(self._forward(self.conductance.value, self.conductance_a.value, xi=xi),
                                      self.variable.dtype))

    def state(self) -> dict:
        out = {"g": self.conductance.numpy(), "g_a": self.conductance_a.numpy(), "h": self.buffer.numpy(),
               "g_ref_a": self.reference_a.numpy(), "g_ref_c": self.reference_c.numpy(),
               "row": int(self.row.numpy()), "sweeps": int(self.sweeps.numpy())}
        if self.chopped:
            out.update(c_in=self.chop_in.numpy(), c_out=self.chop_out.numpy())
        if self.agad:
            out.update(mean=self.mean.numpy(), past_mean=self.past_mean.numpy(), switched=self.switched.numpy() > 0.5)
        return out

    # ------------------------------------------------------------------ draws

    def _stream(self, k):
        return EXTRA_STREAM + 16 * self.index + k

    def _transfer_noise(self, step):
        """(read noise of A's rows (device, additive), C's C2C, input-chopper and output-chopper uniforms)."""
        alg = self.algorithm
        rows = (self.n_reads, self.n_out)
        xi_dev = noise.normal(rows, noise.key(self.seed, step, self._stream(0))) if self.population_a.read_noise > 0 else None
        xi_add = noise.normal(rows, noise.key(self.seed, step, self._stream(1))) if alg.read_noise_a > 0 else None
        xi_c = noise.normal(rows, noise.key(self.seed, step, self._stream(2))) if self.population.c2c > 0 else None
        u_in = u_out = None
        if self.chopped and alg.in_chop_prob > 0 and alg.in_chop_random:
            u_in = noise.uniform((self.n_reads,), noise.key(self.seed, step, self._stream(3)))
        if self.chopped and not self.agad and alg.out_chop_prob > 0:
            u_out = noise.uniform((self.n_out,), noise.key(self.seed, step, self._stream(4)))
        return xi_dev, xi_add, xi_c, u_in, u_out

    def transfer_draws(self, step) -> dict:
        """The draws of update number ``step`` laid out as tests/algorithms_reference.py's
        ``transfer_step`` takes them (full-shape arrays indexed by row; numpy)."""
        u, xi_a, _ = self._noise(step)
        _, xi_add, xi_c, u_in, u_out = self._transfer_noise(step)
        out = {}
        if u is not None:
            out["u_a"] = ops.convert_to_numpy(u).reshape(self.matrix)
        if xi_a is not None:
            out["xi_a"] = ops.convert_to_numpy(xi_a).reshape(self.matrix)
        rows = (int(self.row.numpy()) + np.arange(self.n_reads)) % self.n_in
        for key, value, size in (("xi_read", xi_add, self.matrix), ("xi_c", xi_c, self.matrix), ("u_in", u_in, (self.n_in,))):
            if value is not None:
                full = np.zeros(size, np.float32)
                full[rows] = ops.convert_to_numpy(value)
                out[key] = full
        if u_out is not None:
            out["u_out"] = ops.convert_to_numpy(u_out)
        return out

    # ------------------------------------------------------------------ the step

    def update(self, anchor, step, grad=None, lr=None):
        if grad is None or lr is None:
            raise ValueError(f"algorithm {self.algorithm.name} needs update='batch' (the gradient of every step)")
        alg = self.algorithm
        n_in, n_reads = self.n_in, self.n_reads
        shape = tuple(self.variable.shape)
        w_max = self.mapping.w_max
        dw_min = 2.0 * w_max / self.population.num_pulses
        lr = ops.cast(lr, "float32")
        grad = ops.reshape(ops.cast(grad, "float32"), self.matrix)
        u, xi_a, xi_read = self._noise(step)
        xi_dev, xi_add, xi_c, u_in, u_out = self._transfer_noise(step)

        # 1. the gradient onto A (pulse rule, every weight)
        lr_a = alg.fast_lr * lr if alg.scale_fast_lr else ops.convert_to_tensor(np.float32(alg.fast_lr))
        if alg.auto_scale:
            g_max = ops.max(ops.abs(grad))
            m = self.grad_scale.value
            m_new = ops.where(m <= 0, g_max, ops.where(g_max > 0, alg.auto_momentum * m + (1.0 - alg.auto_momentum) * g_max, m))
            self.grad_scale.assign(m_new)
            lr_a = ops.where(m_new > 0, alg.fast_lr * alg.auto_pulses * dw_min / ops.where(m_new > 0, m_new, 1.0), lr_a)
        dw_a = -lr_a * grad
        if self.chopped:
            dw_a = dw_a * (self.chop_in.value[:, None] * self.chop_out.value[None, :])
        max_a = self.population_a.num_pulses if self.max_pulses is None else self.max_pulses
        n_a = self.rule(dw_a, dw_min, max_a, u=None if u is None else ops.reshape(u, self.matrix))
        g_a_old = ops.reshape(self.conductance_a.value, shape)
        g_a, lost_a = self.population_a.apply_pulses(
            g_a_old, ops.reshape(n_a, shape), xi=None if xi_a is None else ops.reshape(xi_a, shape))
        g_a = ops.reshape(g_a, self.matrix)

        # 2. the transfer: rows ptr .. ptr + n_reads - 1 of A, read into H, thresholded onto C
        do = ops.equal(ops.mod(ops.cast(step, backends.counter_dtype()) + 1, alg.transfer_every), 0)
        ptr, sweeps = self.row.value, self.sweeps.value
        index = ptr + ops.arange(n_reads, dtype="int32")
        wrapped = index >= n_in  # positions after the sweep's end (at most one wrap: n_reads <= n_in)
        rows = ops.where(wrapped, index - n_in, index)
        sweep_of_row = sweeps + ops.cast(wrapped, "int32")
        completed = ptr + n_reads >= n_in  # the last row was read in this transfer
        g_rows = ops.take(g_a, rows, axis=0)
        ref_rows = ops.take(self.reference_a.value, rows, axis=0)
        range_rows = None
        if self.population_a.range_scale is not None:
            range_rows = ops.take(ops.reshape(ops.convert_to_tensor(self.population_a.range_scale), self.matrix), rows, axis=0)
        v = 2.0 * w_max * (self.population_a.model.read(g_rows, xi=xi_dev, range_scale=range_rows) - ref_rows)
        if xi_add is not None:
            v = v + alg.read_noise_a * xi_add
        lr_t = abs(alg.transfer_lr) * lr if alg.scale_transfer_lr else np.float32(abs(alg.transfer_lr))
        bg = alg.buffer_granularity * dw_min
        if alg.auto_granularity > 0:
            bg *= alg.auto_granularity / (alg.transfer_every * n_in / n_reads)
        lr_h = lr_t / bg
        h_rows = ops.take(self.buffer.value, rows, axis=0)
        sign = 1.0
        if self.chopped:
            c_out = self.chop_out.value
            c_out_next = c_out
            if u_out is not None:
                c_out_next = ops.where(u_out < alg.out_chop_prob, -c_out, c_out)
            c_in_rows = ops.take(self.chop_in.value, rows, axis=0)
            sign = c_in_rows[:, None] * ops.where(wrapped[:, None], c_out_next[None, :], c_out[None, :])
        if self.agad:
            was = ops.take(self.switched.value, rows, axis=0) > 0.5
            mean_rows = ops.take(self.mean.value, rows, axis=0)
            past_rows = ops.where(was[:, None], mean_rows, ops.take(self.past_mean.value, rows, axis=0))
            h = h_rows + sign * (v - past_rows) * lr_h
        else:
            h = h_rows + sign * v * lr_h
        threshold = alg.threshold
        fire = ops.abs(h) >= threshold
        if math.isinf(threshold):
            n_c = ops.zeros_like(h)
        else:
            n_c = ops.where(fire, ops.clip(ops.trunc(h / threshold), -alg.max_steps, alg.max_steps), 0.0)
            if alg.forget_buffer:
                h = ops.where(fire, alg.momentum * h, h)
            else:
                h = ops.where(fire, h - (1.0 - alg.momentum) * n_c * threshold, h)
                if alg.buffer_cap > 0:
                    cap = alg.buffer_cap * alg.max_steps * threshold
                    h = ops.clip(h, -cap, cap)
        if self.agad:
            mean_new = mean_rows * (1.0 - alg.beta()) + v * alg.beta()
            n_c = ops.where((sweep_of_row <= alg.samples())[:, None], 0.0, n_c)  # warm-up: no reference yet
        n_c = ops.where(do, n_c, 0.0)

        def scatter(variable, values):
            variable.assign(ops.scatter_update(variable.value, rows[:, None], values))

        # C: exactly n_C pulses on the rows read
        g_c_old = self.conductance.value
        if self.rows_path:
            g_c_mat = ops.reshape(g_c_old, self.matrix)
            g_c_rows, lost_c = self.population.model.apply_pulses(ops.take(g_c_mat, rows, axis=0), n_c, xi=xi_c)
            g_c = ops.reshape(ops.scatter_update(g_c_mat, rows[:, None], g_c_rows), shape)
        else:
            zeros = ops.zeros(self.matrix, "float32")
            n_full = ops.reshape(ops.scatter_update(zeros, rows[:, None], n_c), shape)
            xi_full = None if xi_c is None else ops.reshape(ops.scatter_update(zeros, rows[:, None], xi_c), shape)
            g_c, lost_c = self.population.apply_pulses(g_c_old, n_full, xi=xi_full)

        # the state: H and AGAD's means on the rows read, the choppers, the row pointer
        scatter(self.buffer, ops.where(do, h, h_rows))
        if self.agad:
            scatter(self.mean, ops.where(do, mean_new, mean_rows))
            scatter(self.past_mean, ops.where(do, past_rows, ops.take(self.past_mean.value, rows, axis=0)))
        if self.chopped and alg.in_chop_prob > 0:
            regular = ops.equal(ops.mod(sweep_of_row, alg.samples()) + 1, alg.samples())
            if self.agad:
                flip = regular if u_in is None else (regular | (u_in < alg.in_chop_prob))
            else:
                flip = (u_in < alg.in_chop_prob) if alg.in_chop_random else regular
            flip = flip & do
            scatter(self.chop_in, ops.where(flip, -c_in_rows, c_in_rows))
            if self.agad:
                scatter(self.switched, ops.where(do, ops.cast(flip, "float32"), ops.take(self.switched.value, rows, axis=0)))
        if self.chopped and u_out is not None:
            self.chop_out.assign(ops.where(do & completed, c_out_next, c_out))
        self.row.assign(ops.where(do, ops.mod(ptr + n_reads, n_in), ptr))
        self.sweeps.assign(ops.where(do & completed, sweeps + 1, sweeps))
        self.conductance_a.assign(g_a)
        self.conductance.assign(g_c)
        if self.count_pulses:
            pulses = ops.sum(ops.abs(n_a)) + ops.sum(ops.abs(n_c))
            lost = ops.sum(lost_a) + ops.sum(lost_c)
            self.applied.assign_add(ops.cast(pulses - lost, backends.counter_dtype()))
            self.lost.assign_add(ops.cast(lost, backends.counter_dtype()))
        self.variable.assign(ops.cast(self._forward(g_c, g_a, xi=xi_read), self.variable.dtype))

    def program_drift(self, step):
        raise ValueError(f"algorithm {self.algorithm.name} needs update='batch' (the gradient of every step)")

    def pulse_counts(self, reset=False) -> dict:
        """``{"pulses_applied_<layer>": n, "pulses_lost_<layer>": n}``: the pulses on A and C together."""
        counts = {}
        for key, var in (("applied", self.applied), ("lost", self.lost)):
            counts[f"pulses_{key}_{self.layer}"] = int(var.numpy())
            if reset:
                var.assign(ops.zeros(var.shape, var.dtype))
        return counts


class MixedPrecisionTile(DeviceTile):
    """Mixed precision (`devsim.algorithms.MixedPrecision`): a float accumulator ``chi`` per weight.

    Per step ``chi -= lr G``; every ``transfer_every`` steps the next
    ``n_rows_per_transfer`` kernel columns (all by default) get
    ``n = trunc(chi / eps)`` whole pulses (times ``transfer_lr``), and ``chi -= n eps``.
    Extra state: ``<layer>_accumulator`` (chi, 1 float per weight) and ``_column`` (next column).
    """

    kind = "mixed-precision"
    needs_gradient = True

    def _build_state(self, optimizer):
        _reference_mapping_only(self)
        shape = tuple(self.variable.shape)
        self.accumulator = optimizer.add_variable(shape=shape, initializer="zeros", dtype="float32",
                                                  name=f"{self.layer}_accumulator")
        self.column = optimizer.add_variable((), "zeros", "int32", name=f"{self.layer}_column")

    def state(self) -> dict:
        return {"g": self.conductance.numpy(), "chi": self.accumulator.numpy(), "column": int(self.column.numpy())}

    def update(self, anchor, step, grad=None, lr=None):
        if grad is None or lr is None:
            raise ValueError("algorithm mixed-precision needs update='batch' (the gradient of every step)")
        alg = self.algorithm
        population = self.population
        _, xi_c2c, xi_read = self._noise(step)
        dw_min = self.mapping.dw_min(population)
        eps = dw_min if alg.granularity is None else alg.granularity
        chi = self.accumulator.value - ops.cast(lr, "float32") * ops.cast(grad, "float32")
        do = ops.equal(ops.mod(ops.cast(step, backends.counter_dtype()) + 1, alg.transfer_every), 0)
        n = ops.trunc(chi / eps)
        n_out = int(self.variable.shape[-1])
        take = do
        if 0 < alg.n_rows_per_transfer < n_out:
            k = alg.n_rows_per_transfer
            ptr = self.column.value
            offset = ops.mod(ops.arange(n_out, dtype="int32") - ptr, n_out)
            take = do & (offset < k)
            self.column.assign(ops.where(do, ops.mod(ptr + k, n_out), ptr))
        n = ops.where(take, n, 0.0)
        chi = chi - n * eps
        max_pulses = population.num_pulses if self.max_pulses is None else self.max_pulses
        pulses = ops.clip(ops.round(alg.transfer_lr * n * eps / dw_min), -max_pulses, max_pulses)
        g_new, n_lost = population.apply_pulses(self.conductance.value, pulses, xi=xi_c2c)
        if self.count_pulses:
            self.applied.assign_add(self._count(ops.abs(pulses) - n_lost))
            self.lost.assign_add(self._count(n_lost))
        self.accumulator.assign(chi)
        self.conductance.assign(g_new)
        self.variable.assign(ops.cast(self._weights(population.read(g_new, xi=xi_read)), self.variable.dtype))

    def program_drift(self, step):
        raise ValueError("algorithm mixed-precision needs update='batch' (the gradient of every step)")


TILES = {"device": DeviceTile, "zero-shift": ZeroShiftTile, "transfer": TransferTile, "mixed-precision": MixedPrecisionTile}
"""Tile kinds by name (`devsim.algorithms.Algorithm.tile` names the kind of each algorithm)."""
