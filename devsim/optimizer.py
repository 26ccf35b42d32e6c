"""`DeviceOptimizer`: any Keras optimizer, with the weights living on devices."""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops
from keras.saving import deserialize_keras_object, serialize_keras_object

from devsim.devices import Device, device_from_config
from devsim.mapping import ReferenceMapping, mapping_from_config
from devsim.pulses import PULSE_RULES
from devsim import algorithms as algorithms_mod
from devsim import backends
from devsim.tiles import TILES, UPDATES, layer_name


def _eager_scope():
    """Where the build runs: eagerly on TensorFlow (outside a traced step), without gradient recording on PyTorch."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return backends.no_grad()


def is_kernel(variable) -> bool:
    """Default `include`: Dense and Conv kernels go on devices, everything else stays float."""
    return variable.name == "kernel"


@keras.saving.register_keras_serializable(package="devsim")
class DeviceOptimizer(keras.optimizers.Optimizer):
    """Wraps a Keras optimizer so that weights are programmed into simulated devices.

    The wrapped ("inner") optimizer proposes a float update; the proposal is
    turned into whole pulses, the pulses are applied through the device's
    response, and the weight becomes what the device now holds. Per
    device-mapped variable ``w`` with device states ``g``:

    ```python
    # update="batch": in every training step, all four lines (for every
    # variable) compiled as one XLA program on TensorFlow
    w_float = inner_optimizer.update(w, gradient)    # any Keras optimizer
    n = pulse_rule(w_float - w, dw_min, max_pulses)  # signed whole pulses
    g = device.pulse(g, mapping.route(n))            # through the LTP/LTD curves
    w = mapping.weights(g)                           # e.g. w_max * (2g - 1)

    # update="epoch" (the original study): the steps stay float, and
    # `program()` (called by the `ProgramDevices` callback at each epoch end)
    # does the last three lines with the drift w - mapping.weights(g).
    ```

    The optimizer is Keras plumbing over tiles (`devsim.tiles`): each
    device-mapped variable gets a tile that owns its devices (with their
    device-to-device draws), conductances, pulse counters and random streams;
    ``optimizer.tiles`` lists them. Variables that `include` rejects (biases,
    normalization) are updated in float by the inner optimizer alone. When the
    optimizer is built, each device variable's current value is snapped to the
    nearest device state (unless ``snap_initial=False``), so the model starts on reachable conductances
    (initialize kernels with `devsim.StateInitializer` to start from chosen
    states). The device states are optimizer variables (one float per device)
    and are saved with it; the device-to-device draws follow from the seed,
    which `get_config` records (also when it was drawn at build time).

    With ``count_pulses``, pulse counts per layer (requested pulses that moved
    a device, and pulses lost at the bounds) accumulate in int64 counters
    (int32 on JAX without ``jax_enable_x64``: at most 2**31 - 1 per layer
    between resets, `devsim.backends.counter_dtype`); `pulse_counts()` reads
    them and `ProgramDevices` writes them into each epoch's logs (and resets them).

    It runs unchanged on the TensorFlow, JAX and PyTorch backends of Keras 3
    (`devsim.backends`): every variable it updates is in ``variables``, so the
    Keras JAX trainer's ``stateless_apply`` carries them through its jitted step,
    and the random draws are the same bits on every backend.

    Args:
        optimizer: the Keras optimizer (instance or identifier such as "sgd")
            that proposes the float update.
        device: an `ExpDevice` (conductance model) for every device variable,
            or a dict ``{layer name: ExpDevice}`` for one per layer.
        mapping: `ReferenceMapping` (default, ``w = w_max * (2g - 1)`` with
            ``w_max = 1``) or `DifferentialMapping`.
        pulses: pulse rule, one of ``"sign"``, ``"proportional"``,
            ``"stochastic"`` (see `devsim.pulses`).
        max_pulses: most pulses one update may send to a device (ignored by
            ``"sign"``). Defaults to ``N``, a full sweep.
        update: ``"batch"`` to program after every step, ``"epoch"`` to
            program when `program()` is called (by `ProgramDevices`).
        include: which variables live on devices: a list of layer names, or
            a function ``include(variable) -> bool`` (saved with the optimizer
            only when registered with
            ``keras.saving.register_keras_serializable``). Default: every
            variable named ``kernel`` (Dense and Conv kernels).
        seed: seed of every random draw (device-to-device variation, stochastic
            rounding, C2C and read noise); None draws one from numpy's global
            generator, which ``keras.utils.set_random_seed`` seeds.
        jit_compile: compile the device update with XLA (TensorFlow backend),
            several times faster. The eager path computes the same equations
            but its float32 results may differ in the last bit (XLA fuses and
            reorders elementwise ops), which a long run can amplify. On JAX,
            `program` and `read_devices` are ``jax.jit``-ted with it (the train
            step is always jitted by Keras); PyTorch runs eagerly.
        stack_axes: number of leading axes of every device variable that index
            independent copies trained together (`devsim.stacked`): random
            draws are shared across them, so each copy sees exactly the draws
            it would see alone, and pulse counts are kept per copy.
        snap_initial: put each device variable's initial value on the nearest
            device state when the optimizer is built (False: its conductance is
            the float value the variable maps to, NeuroSim's initial states).
        pulse_truncation: NeuroSim's ``(int)((k/N) N)`` in ``pulses="neurosim"``.
        count_lost: with ``count_pulses``, also count the pulses applied and lost at
            the bounds (a logarithm per device); False: only the LTP and LTD pulses sent.
        skip_zero_rows: batch updates program only the kernel cells that get
            pulses (`devsim.tiles.DeviceTile`): the same numbers, faster when few
            devices are pulsed per update.
        sparse_update: batch updates run the device math (the curve step, the
            C2C normal, the read-back) only on the blocks of 16 devices that get a
            pulse, where it applies (`devsim.tiles.DeviceTile.updates_pulsed_blocks`:
            devices that do not differ from each other, no read noise in the steps,
            compiled): the same numbers bit for bit, faster when few devices are
            pulsed per step (stochastic rounding pulses well under 1 %). False:
            the dense update of every device.
        count_pulses: count, per layer, the pulses applied and those lost at
            the bounds (`pulse_counts`). None: count for ``update="epoch"``,
            where it is free, not for ``update="batch"``, where the extra pass
            over the weights (a logarithm per device) costs about a third of
            the update.
        algorithm: the training algorithm (`devsim.algorithms`): an instance
            such as ``TikiTakaV2(n_reads_per_transfer=32)``, a name (``"sgd"``,
            ``"zero-shift"``, ``"ttv2"``, ``"c-ttv2"``, ``"agad"``,
            ``"mixed-precision"``, default parameters) or None (plain SGD).
            It picks every device variable's tile kind. The transfer algorithms
            and mixed precision use the gradient and the inner optimizer's
            learning rate (``-lr G``, as aihwkit's analog SGD), not its proposed
            step; they need ``update="batch"`` and the reference mapping.
        name: optimizer name.
    """

    def __init__(
        self,
        optimizer,
        device,
        mapping=None,
        pulses: str = "stochastic",
        max_pulses: int | None = None,
        update: str = "batch",
        include=None,
        seed: int | None = None,
        jit_compile: bool = True,
        stack_axes: int = 0,
        count_pulses: bool | None = None,
        snap_initial: bool = True,
        pulse_truncation: bool = False,
        skip_zero_rows: bool = False,
        count_lost: bool = True,
        algorithm=None,
        sparse_update: bool = True,
        name: str = "device_optimizer",
    ):
        super().__init__(learning_rate=0.0, name=name)
        devices = device.values() if isinstance(device, dict) else [device]
        if not devices or not all(isinstance(d, Device) for d in devices):
            raise ValueError(f"device must be a device model (e.g. an ExpDevice) or a dict of them, got {device!r}")
        if pulses not in PULSE_RULES:
            raise ValueError(f"pulses must be one of {', '.join(PULSE_RULES)}, got {pulses!r}")
        if update not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(UPDATES)}, got {update!r}")
        if max_pulses is not None and not (int(max_pulses) == max_pulses and max_pulses >= 1):
            raise ValueError(f"max_pulses must be an integer >= 1 or None, got {max_pulses!r}")
        self.inner_optimizer = keras.optimizers.get(optimizer)
        self.device = device
        self.mapping = mapping if mapping is not None else ReferenceMapping()
        self.pulses = pulses
        self.max_pulses = max_pulses
        self.update = update
        if include is not None and not callable(include):
            if isinstance(include, str) or not all(isinstance(x, str) for x in include):
                raise ValueError(f"include must be a list of layer names or a function of a variable, got {include!r}")
            include = tuple(include)
        self.include = include
        self.seed = seed
        self.stack_axes = int(stack_axes)
        self.jit_compile = bool(jit_compile)
        self.count_pulses = update == "epoch" if count_pulses is None else bool(count_pulses)
        self.snap_initial, self.pulse_truncation = bool(snap_initial), bool(pulse_truncation)
        self.skip_zero_rows, self.count_lost = bool(skip_zero_rows), bool(count_lost)
        self.sparse_update = bool(sparse_update)
        self.algorithm = algorithms_mod.get(algorithm)
        if self.algorithm.needs_batch and update != "batch":
            raise ValueError(f"algorithm {self.algorithm.name} needs update='batch' (the gradient of every step), "
                             f"got update={update!r}")
        if self.algorithm.tile != "device":
            if self.mapping.name != "reference":
                raise ValueError(f"algorithm {self.algorithm.name} needs the reference mapping, got {self.mapping.name}")
            if self.stack_axes:
                raise ValueError(f"algorithm {self.algorithm.name} cannot train stacked copies (stack_axes must be 0)")

    def device_for(self, variable) -> Device:
        """The device model of a device-mapped variable."""
        if isinstance(self.device, dict):
            try:
                return self.device[layer_name(variable)]
            except KeyError:
                raise ValueError(
                    f"no device given for layer {layer_name(variable)!r}; "
                    f"device dict has {sorted(self.device)}"
                ) from None
        return self.device

    def _includes(self, variable) -> bool:
        if self.include is None:
            return is_kernel(variable)
        if isinstance(self.include, tuple):
            return is_kernel(variable) and layer_name(variable) in self.include
        return bool(self.include(variable))

    def build(self, var_list):
        if self.built:
            return
        # Keras may build lazily while tracing the first train step; the initial
        # states are read from the current weights, so read them eagerly.
        with _eager_scope():
            self._build(var_list)

    def _build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)
        if self.seed is None:  # drawn once, then fixed (and saved by get_config)
            self.seed = int(np.random.randint(2**31))
        tile_kind = TILES[self.algorithm.tile]
        self._tiles = [
            tile_kind(
                v, self.device_for(v), self.mapping, self.pulses, self.max_pulses, index=i, seed=self.seed,
                stack_axes=self.stack_axes, count_pulses=self.count_pulses, read_noise_in_steps=self.update == "batch",
                snap_initial=self.snap_initial, pulse_truncation=self.pulse_truncation,
                skip_zero_rows=self.skip_zero_rows, count_lost=self.count_lost,
                algorithm=self.algorithm,
                # TensorFlow's scatter drops the sparse update's unused rows only in XLA
                sparse_update=self.sparse_update and (self.jit_compile or backends.name() != "tensorflow"),
            )
            for i, v in enumerate(v for v in var_list if self._includes(v))
        ]
        for tile in self._tiles:
            tile.build(self)
        counter = backends.counter_dtype()
        self._program_steps = self.add_variable((), "zeros", counter, name="program_steps")
        self._reads = self.add_variable((), "zeros", counter, name="evaluation_reads")

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def tiles(self) -> list:
        """The tiles (`devsim.tiles`), one per device-mapped variable (after `build`)."""
        return list(self._tiles)

    @property
    def device_variables(self):
        """The model variables that live on devices (after `build`)."""
        return [tile.variable for tile in self._tiles]

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            self.build(trainable_variables)
        if self.update == "batch":
            variables = list(trainable_variables if trainable_variables is not None else self._trainable_variables)
            key = tuple(id(v) for v in variables)
            if getattr(self, "_step_key", None) != key:  # the variables are captured, not arguments
                self._step_key = key
                self._step_fn = self._compile(lambda grads: self._step(grads, variables))
            self._step_fn(list(grads))
        else:
            self.inner_optimizer.apply(grads, trainable_variables)

    def _step(self, grads, trainable_variables):
        """One batch update: the inner optimizer's float step, then the devices
        (compiled together, the float step fuses with the device math)."""
        before = [ops.copy(tile.variable.value) for tile in self._tiles]
        tile_grads, lr = None, None
        if any(tile.needs_gradient for tile in self._tiles):
            by_variable = {id(v): g for v, g in zip(trainable_variables, grads)}
            tile_grads = [by_variable.get(id(tile.variable)) for tile in self._tiles]
            lr = self.inner_optimizer._get_current_learning_rate()  # the rate of this step (schedules)
        self.inner_optimizer.apply(grads, trainable_variables)
        self._program_devices(before, tile_grads, lr)

    def program(self):
        """Program every device with the float drift since it was last programmed.

        For ``update="epoch"``: each weight that moved gets the pulses the rule
        gives for ``w - mapping.weights(read(g))``, and the weight is set to the
        device's (noise-free) value. The `ProgramDevices` callback calls this at
        epoch end.
        """
        if not hasattr(self, "_program_fn"):
            self._program_fn = self._compile(self._program_devices)
        self._program_fn(None)

    def _compile(self, fn):
        """``fn`` compiled by the backend (`devsim.backends.stateful_compile`): one XLA program on
        TensorFlow with ``jit_compile`` (its ~40 elementwise ops per weight, random numbers
        included, fuse into a few loops); ``jax.jit`` of its stateless form on JAX (inside the
        Keras JAX trainer's jitted step it is traced into that step); eager on PyTorch."""
        return backends.stateful_compile(fn, self._state_variables, jit=self.jit_compile)

    def _state_variables(self):
        """Every variable a device update or read touches: the optimizer's and the model's it trains."""
        return [*self.variables, *self._trainable_variables]

    def _program_devices(self, before, grads=None, lr=None):
        """Weight change -> pulses -> devices -> weights, for every tile.

        ``before``: the weights before this step (batch updates), or None to
        program the drift from the devices' values (epoch updates). ``grads``
        (one per tile) and ``lr``: the raw gradient and the learning rate, for
        tile kinds that need them (`DeviceTile.needs_gradient`).
        """
        step = self._program_steps.value
        for i, tile in enumerate(self._tiles):
            anchor = before[i] if before is not None else None
            if grads is None:
                tile.update(anchor, step)
            else:
                tile.update(anchor, step, grad=grads[i], lr=lr)
        self._program_steps.assign_add(1)

    def load_own_variables(self, store):
        """Restore the saved state (conductances, counters, the inner optimizer's slots), then
        set every device-mapped weight to what its restored devices hold (`keras.saving`)."""
        super().load_own_variables(store)
        if self.built:
            for tile in self._tiles:
                tile.read(None)

    @property
    def has_read_noise(self) -> bool:
        return any(tile.has_read_noise for tile in self._tiles)

    def read_devices(self, noisy: bool = True, reads: int | None = None):
        """Set every device-mapped weight to a fresh read of its devices.

        With ``noisy=True`` each read draws new read noise (`ExpDevice.read_noise`);
        the stored conductances never change. `ProgramDevices` calls this before
        every evaluation or prediction batch when read noise is on.

        Args:
            noisy: draw read noise (where the devices have any).
            reads: the read counter whose noise to draw (default: the running
                counter). The running counter continues from ``reads + 1``, so
                reads can be replayed, e.g. once per stacked copy (`devsim.stacked`).
        """
        if reads is not None:
            self._reads.assign(reads)
        noisy = bool(noisy)
        fns = self.__dict__.setdefault("_read_fns", {})  # one per `noisy` (a Python branch)
        if noisy not in fns:
            read = functools.partial(self._read, noisy)
            # JAX: compiled (op by op it is slow); PyTorch: without gradient recording; TensorFlow: eager, as always
            fns[noisy] = self._compile(read) if backends.name() != "tensorflow" else read
        fns[noisy]()

    def _read(self, noisy):
        """`read_devices`'s reads (the running counter's noise when ``noisy``)."""
        counter = self._reads.value
        for tile in self._tiles:
            tile.read(counter if noisy else None)
        self._reads.assign_add(1)

    @property
    def read_counter(self) -> int:
        """How many reads `read_devices` has drawn (its next read uses this counter)."""
        return int(self._reads.numpy())

    def stuck_counts(self) -> dict:
        """Stuck devices per layer: ``{"stuck_gmin_<layer>": int, "stuck_gmax_<layer>": int}``."""
        counts = {}
        for tile in self._tiles:
            counts.update(tile.stuck_counts())
        return counts

    def pulse_counts(self, reset: bool = False) -> dict:
        """Pulses applied and lost at the bounds per layer since the last reset.

        Returns:
            ``{"pulses_applied_<layer>": int, "pulses_lost_<layer>": int, ...}``
            (with ``stack_axes``, int arrays with one count per copy); empty
            without ``count_pulses``.
        """
        counts = {}
        if not self.count_pulses:
            return counts
        for tile in self._tiles:
            counts.update(tile.pulse_counts(reset))
        return counts

    def device_states(self) -> dict:
        """Conductances per layer as numpy arrays ``{layer: g}``."""
        return {tile.layer: tile.state()["g"] for tile in self._tiles}

    def get_config(self):
        device = (
            {k: d.get_config() for k, d in self.device.items()}
            if isinstance(self.device, dict)
            else self.device.get_config()
        )
        include = self.include
        if callable(include):
            include = serialize_keras_object(include)
            if not isinstance(include, dict) or include.get("registered_name") is None:
                raise ValueError(
                    "DeviceOptimizer(include=...) is a plain function, which cannot be saved; pass a list of "
                    "layer names or register the function with keras.saving.register_keras_serializable"
                )
        return {
            "name": self.name,
            "optimizer": serialize_keras_object(self.inner_optimizer),
            "device": device,
            "mapping": self.mapping.get_config(),
            "pulses": self.pulses,
            "max_pulses": self.max_pulses,
            "update": self.update,
            "include": list(include) if isinstance(include, tuple) else include,
            "seed": self.seed,
            "jit_compile": self.jit_compile,
            "stack_axes": self.stack_axes,
            "count_pulses": self.count_pulses,
            "snap_initial": self.snap_initial,
            "pulse_truncation": self.pulse_truncation,
            "skip_zero_rows": self.skip_zero_rows,
            "count_lost": self.count_lost,
            "algorithm": self.algorithm.get_config(),
            "sparse_update": self.sparse_update,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects
        )
        device = config["device"]
        config["device"] = (
            device_from_config(device)
            if "kind" in device
            else {k: device_from_config(d) for k, d in device.items()}
        )
        config["mapping"] = mapping_from_config(config["mapping"])
        if isinstance(config.get("algorithm"), dict):
            config["algorithm"] = algorithms_mod.algorithm_from_config(config["algorithm"])
        if isinstance(config.get("include"), dict):
            config["include"] = deserialize_keras_object(config["include"], custom_objects=custom_objects)
        return cls(**config)
