"""The parameters of a run, declared once: `RunConfig` and its device part, `DeviceOptions`.

Every field is an option of ``devsim run`` (and, with a list of values, of
``devsim sweep``): its type, default, unit, help and allowed values are in its
declaration (`devsim.options`), and the command line, the sweep parser, the
figure labels and the README's option table derive from it. The device
options are `devsim.devices.ExpDevice`'s fields, taken over as optional
overrides: left at None they come from ``--device`` (a preset or JSON file)
or from `ExpDevice`'s defaults.

Nothing here imports Keras, so ``devsim --help`` and ``devsim device`` answer
without starting TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import os

from devsim import algorithms as algorithms_mod
from devsim import io
from devsim.data import DATASETS, INPUT_SHAPES
from devsim.devices import Device, ExpDevice
from devsim.errors import ConfigError
from devsim.mapping import MAPPINGS
from devsim.models import BUILDER_PATTERN, DEFAULT_HIDDEN, KERNEL_LAYERS, MODELS
from devsim.nonlinearity import NL_LIMIT, a_d_from_label, a_d_from_label_table, a_p_from_label, a_p_from_label_table
from devsim.options import (FALLBACK, FALLBACK_FROM, OFF, PER_ALGORITHM, SPEC, FieldError, check, document, flag,
                            is_off, option, parameters, protocol_option, spec_of)
from devsim.presets import load_device
from devsim.protocols import PROTOCOLS
from devsim.pulses import PULSE_RULES
from devsim.tiles import UPDATES

KERAS_OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad", "adamw", "nadam")
NEUROSIM_OPTIMIZERS = ("neurosim-sgd", "neurosim-momentum", "neurosim-adagrad", "neurosim-rmsprop", "neurosim-adam")
OPTIMIZERS = KERAS_OPTIMIZERS + NEUROSIM_OPTIMIZERS
INITS = ("uniform", "glorot", "neurosim")
LOSSES = ("crossentropy", "sse")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")
TRAIN_LOOPS = ("keras", "compiled")
PRESET_LEVELS = ("states", "neurosim")

DEVICE, TRAINING, PERIPHERY, OUTPUT = "device", "training", "periphery", "output"
_BYTES_PER_WEIGHT = 40  # kernel, conductance, gradient, optimizer slots and the step's temporaries (float32)


def _fail(option_name, message):
    raise ConfigError(f"{option_name}: {message}")


def _label_problem(value):
    if not abs(value) <= NL_LIMIT:
        return f"NL label must be a number with |NL| <= {NL_LIMIT:.2f} (|A| >= 0.001), got {value}"
    return None


# The device options: `ExpDevice`'s fields as overrides (default None), with the
# preset/file that they override and the NeuroSim-label alternatives to ltp/ltd.
_DEVICE_FIELD = {(spec_of(f).option or name): name for name, f in parameters(ExpDevice).items()}
"""Option name -> `ExpDevice` field name (``"ltp"`` -> ``"a_p"``)."""
_OPTION_OF = {field: name for name, field in _DEVICE_FIELD.items()}


def _device_option_fields():
    derived = []
    for name, f in parameters(ExpDevice).items():
        annotation = f.type if "None" in str(f.type) else f"{f.type} | None"
        metadata = {**f.metadata, FALLBACK: f.default}
        derived.append((spec_of(f).option or name, annotation, dataclasses.field(default=None, metadata=metadata)))
    labels = [
        ("nl_ltp", "float | None", option(
            None, "NeuroSim LTP nonlinearity label instead of --ltp (e.g. 2.4 for Ag:a-Si).", unit="NL label",
            label="LTP nonlinearity (NL label)", symbol=r"NL$_\mathrm{LTP}$", validate=_label_problem, group=DEVICE)),
        ("nl_ltd", "float | None", option(
            None, "NeuroSim LTD nonlinearity label instead of --ltd (e.g. -4.88 for Ag:a-Si).", unit="NL label",
            label="LTD nonlinearity (NL label)", symbol=r"NL$_\mathrm{LTD}$", validate=_label_problem, group=DEVICE)),
        ("linear", "bool", option(False, "A linear device (A_p = A_d = inf).", cli="flag", sweep=False, group=DEVICE)),
        ("nl_table", "bool | None", protocol_option(
            False, "Convert NL labels (of presets and --nl-ltp/--nl-ltd) through NeuroSim's table (formula.cpp "
            "getParamA: the A of (int)(|NL| 100)/100 to 6 decimals, so 0.105 -> 0.10, 0.29 -> 0.28) instead of exactly.",
            cli="switch", group=DEVICE)),
        ("preset_levels", "str | None", protocol_option(
            "states", "How a preset's levels are read: states (N = levels - 1 pulses per sweep, both branches) or "
            "neurosim (NeuroSim's maxNumLevel, the pulses of a full sweep: states = levels + 1, and Ag:a-Si's LTD has "
            "the 100 of Cell.cpp).", choices=PRESET_LEVELS, group=DEVICE)),
    ]
    after = [n for n, _, _ in derived].index("ltd") + 1
    preset = ("device", "str | None", option(
        None, "A preset (see `devsim devices`) or a device JSON file; the device options given override its fields.",
        label="Device", symbol="device", group=DEVICE))
    return [preset, *derived[:after], *labels, *derived[after:]]


@dataclasses.dataclass
class _DeviceMethods:
    def __post_init__(self):
        self._check_fields()
        self.make_device()

    def make_device(self) -> Device:
        """The requested device: the preset or file, with the given fields overriding it.

        Any device kind (`devsim.devices.DEVICE_KINDS`) works: an option may
        override a field the kind lists in its ``OPTION_FIELDS``; one naming
        another field (``--ltp`` on a measured table) is refused.

        Raises:
            ConfigError: naming the option (``--states: ...``).
        """
        table = bool(self.nl_table)
        levels = self.preset_levels or "states"
        base = load_device(self.device, levels=levels, nl_table=table) if self.device else ExpDevice()
        given = {o: _DEVICE_FIELD[o] for o in _DEVICE_FIELD if getattr(self, o) is not None}
        curvature = [o for o in ("linear", "nl_ltp", "nl_ltd") if getattr(self, o)]
        allowed = set(base.OPTION_FIELDS)
        for option_name in [*(o for o, f in given.items() if f not in allowed),
                            *(o for o in curvature if not {"a_p", "a_d"} <= allowed)]:
            _fail(flag(option_name), f"does not apply to {base.kind} device {self.device} ({base.describe()}); "
                  f"its options are {', '.join(flag(_OPTION_OF[f]) for f in base.OPTION_FIELDS if f in _OPTION_OF)}")
        fields = {f: getattr(self, o) for o, f in given.items()}
        if self.linear:
            fields.update(a_p=math.inf, a_d=math.inf)
        if self.nl_ltp is not None:
            fields["a_p"] = float((a_p_from_label_table if table else a_p_from_label)(self.nl_ltp))
        if self.nl_ltd is not None:
            fields["a_d"] = float((a_d_from_label_table if table else a_d_from_label)(self.nl_ltd))
        if "states" in fields and self.states_ltd is None and base.states_ltd == base.states:
            fields["states_ltd"] = fields["states"]  # a single --states sets both branches
        try:
            return dataclasses.replace(base, **fields)
        except FieldError as exc:
            _fail(flag(_OPTION_OF.get(exc.field, exc.field)), exc.reason)

    def device_slug(self) -> str:
        """``ltp0.8_ltd0.8``, ``linear``, ``table`` or the preset/file name: the device part of default names."""
        d = self.make_device()
        if d.name and self.ltp is None and self.ltd is None and self.nl_ltp is None and self.nl_ltd is None:
            return d.name
        return d.slug()

    def _check_fields(self):
        """Every field against its declaration, then the rules between fields; errors name the flag."""
        for name, field in parameters(self).items():
            if field.default is None and is_off(getattr(self, name)):
                setattr(self, name, OFF)  # off: resolved to None after a protocol would have set it
                continue
            try:
                setattr(self, name, check(name, field, getattr(self, name), scalar=True))
            except FieldError as exc:
                _fail(flag(name), exc.reason)
        if self.linear and any(v is not None for v in (self.ltp, self.ltd, self.nl_ltp, self.nl_ltd)):
            _fail("--linear", "cannot be combined with --ltp/--ltd/--nl-ltp/--nl-ltd")
        for a, nl in (("ltp", "nl_ltp"), ("ltd", "nl_ltd")):
            if getattr(self, a) is not None and getattr(self, nl) is not None:
                _fail(flag(a), f"give {flag(a)} or {flag(nl)}, not both")


def _algorithm_option_fields():
    """``--algorithm`` and every algorithm parameter once, as optional overrides of the algorithm's defaults."""
    fields = [("algorithm", "str", option(
        "sgd", "Training algorithm (docs/algorithms.md): sgd (the pulse rule on the optimizer's step), zero-shift "
        "(read against each device's symmetry point), ttv2 (Tiki-Taka v2), c-ttv2 (chopped TTv2), agad, "
        "mixed-precision. All but sgd and zero-shift need --update batch.", choices=algorithms_mod.NAMES,
        label="Algorithm", symbol="algorithm", group=algorithms_mod.ALGORITHM))]
    for name, f in algorithms_mod.option_fields().items():
        annotation = f.type if "None" in str(f.type) else f"{f.type} | None"
        defaults = {n: getattr(cls(), name) for n, cls in algorithms_mod.ALGORITHMS.items()
                    if name in parameters(cls)}
        metadata = {**f.metadata, PER_ALGORITHM: defaults}
        fields.append((name, annotation, dataclasses.field(default=None, metadata=metadata)))
    return fields


ALGORITHM_FIELDS = tuple(name for name, _, _ in _algorithm_option_fields())
"""Run options of the algorithms (left out of a run's hash while at their defaults: older sweeps resume)."""


def _periphery_option_fields():
    """``--periphery`` and every `devsim.periphery.IOParameters` field, as optional overrides of it."""
    from devsim import periphery

    fields = [("periphery", "str", option(
        "none", "Analog periphery of the device layers' forward and backward passes (docs/periphery.md): none (ideal "
        "matmul), aihwkit (aihwkit's IOParameters defaults: 7-bit DAC, 9-bit ADC on +-12, output noise 0.06, abs_max "
        "noise management, iterative bound management) or preset (aihwkit's PresetIOParameters: ADC +-20, noise 0.1); "
        "the options below override its fields.", choices=("none", "aihwkit", "preset"), label="Periphery",
        symbol="periphery", group=periphery.PERIPHERY))]
    defaults = periphery.IOParameters()
    for f in dataclasses.fields(periphery.IOParameters):
        annotation = f.type if "None" in str(f.type) else f"{f.type} | None"
        metadata = {**f.metadata, PER_ALGORITHM: {"none": getattr(defaults, f.name)}}
        fields.append((f.name, annotation, dataclasses.field(default=None, metadata=metadata)))
    return fields


PERIPHERY_FIELDS = tuple(name for name, _, _ in _periphery_option_fields())
"""Run options of the periphery (left out of a run's hash while at their defaults)."""


DeviceOptions = dataclasses.make_dataclass("DeviceOptions", _device_option_fields(), bases=(_DeviceMethods,))
DeviceOptions.__doc__ = """The device options of a run (`ExpDevice`'s fields as overrides of ``device``).

    ``DeviceOptions(device="ag-si", c2c=0).make_device()`` is the Ag:a-Si preset
    without cycle-to-cycle noise. Validated on creation (`ConfigError` naming the
    option); `devsim device` uses it alone, `RunConfig` extends it.
    """
DeviceOptions.__module__ = __name__
document(DeviceOptions)


_AlgorithmOptions = dataclasses.make_dataclass(
    "_AlgorithmOptions", _algorithm_option_fields() + _periphery_option_fields(), bases=(DeviceOptions,))


@dataclasses.dataclass
class RunConfig(_AlgorithmOptions):
    """Every parameter of a run (validated on creation). Field names are the options without ``--``.

    The device fields (`DeviceOptions`) left at None come from ``device`` or
    from `ExpDevice`'s defaults (linear, 101 states, no non-idealities). The
    fields a protocol may set (``protocol``, `devsim.protocols`) default to
    None too: left unset they take the protocol's value, else their fallback,
    and the resolved values are what `to_dict` (config.json) records. The
    others are declared below, each with its help, unit and allowed values;
    ``python -m devsim.options`` prints them as a table.
    """

    protocol: str | None = option(
        None, "A training protocol: a bundle of option values (devsim/protocols.py; neurosim: MLP+NeuroSim V3.0's "
        "procedure, docs/protocols.md). Options given explicitly override it.", choices=tuple(PROTOCOLS),
        label="Protocol", symbol="protocol")
    wmax: float | None = protocol_option(
        1.0, "Weight range: w = wmax (2g - 1) against a mid-range reference, or wmax (g+ - g-) for a pair.",
        unit="weight units", label=r"Weight range $w_\mathrm{max}$", symbol=r"$w_\mathrm{max}$",
        minimum=0.0, exclusive_minimum=True, finite=True)
    mapping: str | None = protocol_option(
        "reference", "reference: one device per weight against a mid-range reference; differential: a one-sided "
        "pair (LTP on g+ to increase the weight, on g- to decrease it).", choices=tuple(MAPPINGS),
        label="Weight mapping", symbol="mapping")
    update: str | None = protocol_option(
        "epoch", "epoch: one float epoch, then every weight is programmed (the original study); batch: the devices "
        "are programmed after every mini-batch.", choices=UPDATES, label="Update", symbol="update")
    pulses: str | None = option(
        None, "Weight change -> pulses: sign (one pulse per weight that moved), proportional (round(|dw|/dw_min), "
        "half to even, capped), stochastic (unbiased rounding) or neurosim (round half away from zero, no cap: "
        "Cell.cpp RealDevice::Write). Default: sign for epoch updates, stochastic for batch updates.",
        choices=tuple(PULSE_RULES), label="Pulse rule", symbol="pulses")
    pulse_truncation: bool | None = protocol_option(
        False, "With --pulses neurosim: NeuroSim's (int)((k/N) N), which applies k - 1 pulses where (k/N) N falls "
        "one ulp below k (N = 97: k = 7, 14, 25, ...).", cli="switch")
    max_pulses: int | None = option(
        None, "Most pulses one update may send to a device (default: N, a full sweep; none for --pulses neurosim).",
        unit="pulses", label="Max. pulses per update", symbol="max. pulses", minimum=1, maximum=1_000_000)
    count_pulses: bool | None = option(
        None, "Log pulses applied and lost per layer and epoch, and the LTP and LTD pulses sent. Default: on for "
        "epoch updates; off for batch updates, where it costs about a third of the device update.",
        cli="switch", sweep=False)
    count_lost: bool | None = protocol_option(
        True, "With --count-pulses, also count the pulses applied and those lost at the bounds (a logarithm per "
        "device); off: only the LTP and LTD pulses sent (what NeuroSim counts), about a third faster.",
        cli="switch", sweep=False)
    dataset: str = option(
        "mnist", "Training data (mnist falls back to the 5000-digit mnist-5k subset, loudly, without network).",
        choices=DATASETS, label="Dataset", symbol="dataset")
    data_dir: str | None = option(
        None, "Folder with the dataset files (else $DEVSIM_DATA_DIR, the Keras cache, or a download).", sweep=False)
    train_size: int | None = option(
        None, "Train on the first TRAIN_SIZE training images only (a stated subset, e.g. for CPU runs of "
        "CIFAR-10; config.json records it). Unset: the whole training set.", unit="images", label="Training images",
        symbol="train size", minimum=1, maximum=2**31 - 1)
    test_size: int | None = option(
        None, "Evaluate on the first TEST_SIZE test images only (recorded in config.json). Unset: the whole test "
        "set.", unit="images", label="Test images", symbol="test size", minimum=1, maximum=2**31 - 1)
    images_per_epoch: int | None = option(
        None, "Training images per epoch, drawn at random with replacement (reproducible by --seed; NeuroSim: 8000). "
        "Unset: every training image once per epoch, shuffled.", unit="images", label="Images per epoch",
        symbol="images/epoch", minimum=1, maximum=2**31 - 1)
    epochs: int | None = protocol_option(
        20, "Training epochs.", label="Epochs", symbol="epochs", minimum=1, maximum=1_000_000)
    batch_size: int | None = protocol_option(
        32, "Mini-batch size.", unit="images", label="Batch size", symbol="batch", minimum=1, maximum=2**31 - 1)
    train_loop: str | None = protocol_option(
        "keras", "keras: Keras fit, one compiled step per mini-batch; compiled: all the updates of an epoch in one "
        "XLA program (a loop over the mini-batches), much faster for small batches.", choices=TRAIN_LOOPS,
        label="Training loop", symbol="loop")
    lr: float | None = protocol_option(
        0.01, "Learning rate of the inner optimizer.", label="Learning rate", symbol="lr",
        minimum=0.0, exclusive_minimum=True, finite=True)
    layer_lr: tuple | None = option(
        None, "Learning rate of each layer, first to last (NeuroSim: 0.4,0.2); replaces --lr. Needs a neurosim-* "
        "optimizer.", cli="floats", label="Learning rate per layer", symbol="layer lr", minimum=0.0,
        exclusive_minimum=True)
    optimizer: str | None = protocol_option(
        "sgd", "The optimizer that proposes the float update: a Keras optimizer, or one of NeuroSim's (Train.cpp, "
        "their moment estimates updated once per epoch from the epoch's summed gradient).", choices=OPTIMIZERS,
        label="Optimizer", symbol="optimizer")
    loss: str | None = protocol_option(
        "crossentropy", "crossentropy (of the output probabilities) or sse: the sum over outputs of (t - y)^2 "
        "(NeuroSim's error signal, Train.cpp).", choices=LOSSES, label="Loss", symbol="loss")
    model: str = option(
        "mlp", "The network: mlp (--hidden), lenet5 (LeNet-5), vgg8 (DNN+NeuroSim V2.1's VGG-8 for CIFAR-10), or "
        "package.module:function, a builder called as function(input_shape, classes) that returns a Keras "
        "model. Every kernel (Dense, Conv2D) is on devices; biases and normalization stay float.",
        validate=lambda v: None if v in MODELS or BUILDER_PATTERN.match(v) else
        f"must be one of {', '.join(MODELS)} or package.module:function, got {v!r}",
        label="Network", symbol="network", sweep=False)
    hidden: tuple | None = option(
        None, "Hidden layer widths, e.g. 128 or 256,128 (default 128; cifar10 256,128,64,32).", cli="widths",
        label="Hidden layer widths", symbol="hidden", maximum=1_000_000)
    activation: str | None = protocol_option(
        "relu", "Hidden-layer activation (any Keras activation name).", label="Activation", symbol="activation")
    output_activation: str | None = protocol_option(
        "softmax", "Output-layer activation: softmax, or sigmoid (NeuroSim).", choices=OUTPUT_ACTIVATIONS,
        label="Output activation", symbol="output")
    crop: int | None = option(
        None, "Keep the central CROP x CROP pixels (20: NeuroSim's 400 inputs).", unit="pixels",
        label="Input crop (pixels)", symbol="crop", minimum=1, maximum=32)
    bias: bool | None = protocol_option(False, "Give the layers (float) biases; the original study had none.", cli="switch")
    init: str | None = protocol_option(
        "uniform", "Initial states: uniform random over all levels (the original study; the default of --model mlp), "
        "glorot-uniform weights snapped to the nearest state (the default of the CNNs), or neurosim: weights (rand() % 7 - 3)/3 wmax (Mapping.cpp, glibc rand() "
        "after srand(2 + seed)).", choices=INITS, label="Initial states", symbol="init")
    gmin_offset: bool | None = protocol_option(
        False, "NeuroSim's initial-mapping bug (Mapping.cpp WeightToConductance without + Gmin): every initial "
        "conductance is Gmin/(Gmax - Gmin) = 1/(on_off - 1) lower, clipped at Gmin.", cli="switch")
    skip_zero_rows: bool | None = protocol_option(
        False, "Batch updates program only the cells of a kernel that get pulses (the block of rows and columns holding "
        "a nonzero pulse, in chunks; none when no weight gets one): the same pulses and, to float32 rounding, the same conductances, several times faster when few "
        "devices are pulsed per update (one image per update, binary inputs); with --train-loop compiled the layers "
        "that read currents then keep them between images, updated for the cells programmed.", cli="switch", sweep=False)
    snap_init: bool | None = protocol_option(
        True, "Snap initial weights to the nearest device state; off: the initial conductances are floats "
        "(NeuroSim).", cli="switch")
    binarize: float | None = option(
        None, "Input DAC of 1 bit: every input becomes 1 where x >= BINARIZE, else 0 (NeuroSim: 0.5).",
        label="Input threshold", symbol="binarize", finite=True, group=PERIPHERY)
    hidden_threshold: float | None = option(
        None, "Hidden layers pass on 1 where their activation >= HIDDEN_THRESHOLD, else 0 (NeuroSim's Hthreshold "
        "0.5); the backward pass uses the continuous activation.", label="Hidden threshold",
        symbol="hidden threshold", finite=True, group=PERIPHERY)
    adc_bits: int | None = option(
        None, "ADC of the column sums: each column current and the reference current are floored in steps of "
        "R (Imax - Imin)/(2^bits - 1) for R rows, not clipped (NeuroSim: 8). Unset: no quantization.", unit="bits",
        label="ADC bits", symbol="ADC bits", minimum=1, maximum=24, group=PERIPHERY)
    r_access: float | None = option(
        None, "Access-transistor resistance in series with every read (NeuroSim 1T1R: 15e3); needs the device's "
        "R_on (--r-on or a preset).", unit="Ohm", label=r"$R_\mathrm{access}$ (Ohm)", symbol=r"$R_\mathrm{access}$",
        minimum=0.0, finite=True, group=PERIPHERY)
    r_wire: float | None = option(
        None, "Wire resistance per cell pitch, rows and columns (NeuroSim, 100 nm wires: about 0.48); the cell of "
        "output j, input k of R rows sees (j + 1 + R - k) r_wire.", unit="Ohm per cell", label=r"$r_\mathrm{wire}$ (Ohm)",
        symbol=r"$r_\mathrm{wire}$", minimum=0.0, finite=True, group=PERIPHERY)
    seed: int = option(
        0, "Seed of the initial states, the data order and every random draw.", label="Seed", symbol="seed",
        minimum=0, maximum=2**32 - 1)
    baselines: bool = option(True, "Also train the linear-device and float references.", cli="switch")
    eval_batch_size: int = option(
        2048, "Batch size of the per-epoch evaluation.", unit="images", minimum=1, maximum=2**31 - 1, sweep=False)
    threads: int | None = protocol_option(
        None, "Threads the backend may use for the run's operations (TensorFlow's intra-op pool, PyTorch's "
        "set_num_threads); unset: all cores. NeuroSim's protocol uses 1: an image's step is too small to split, "
        "and handing its kernels between threads costs more than it saves (the same numbers). TensorFlow takes "
        "it only before its first operation in a process; config.json records the threads in effect.",
        unit="threads", label="Threads", minimum=1, maximum=1024, sweep=False)
    out: str = option("results", "Results root folder.", sweep=False, group=OUTPUT)
    name: str | None = option(None, "Run folder name (default: built from the parameters).", sweep=False, group=OUTPUT)

    def __post_init__(self):
        self._check_fields()
        self._check_model()
        self.protocol_fields, self.notes = self._resolve_protocol(), []
        if self.pulses is None:
            self.pulses = "sign" if self.update == "epoch" else "stochastic"
        if self.hidden is None:
            self.hidden = DEFAULT_HIDDEN.get(self.dataset, (128,)) if self.model == "mlp" else None  # a CNN's own
        side = INPUT_SHAPES[self.dataset][0]
        if self.crop is not None and self.crop > side:
            _fail("--crop", f"must be at most the image side {side}, got {self.crop}")
        self._check_size()
        if self.activation is not None:
            import keras  # the backend loads here, for `devsim run` and `devsim sweep` only

            try:
                keras.activations.get(self.activation)
            except ValueError:
                _fail("--activation", f"unknown Keras activation {self.activation!r} (e.g. relu, tanh, sigmoid)")
        if self.name is not None:
            io.check_name("--name", self.name)
        device = self.make_device()  # validates the device fields (and reads a device file) now
        self._check_rules(device)
        self.make_algorithm()
        self.make_periphery()
        self._check_backend()
        self.run_name()

    def _check_model(self):
        """``--model`` and the options that only an MLP has (before the protocol and defaults are filled in)."""
        if self.model == "mlp":
            return
        if self.model not in MODELS:  # a user's builder: build its network once now, so a bad one fails here
            from devsim.models import BuilderError, build_network

            try:
                build_network(self.model, INPUT_SHAPES[self.dataset])
            except BuilderError as exc:
                _fail("--model", str(exc))
        if self.hidden is not None:
            _fail("--hidden", f"sets the layers of --model mlp; --model {self.model} has its own")
        if self.protocol is not None:
            _fail("--protocol", f"{self.protocol} is a procedure for its own MLP; it needs --model mlp")
        analog = [o for o in (*PERIPHERY_FIELDS[1:], "hidden_threshold", "adc_bits", "r_access", "r_wire")
                  if getattr(self, o) is not None]
        if analog or self.periphery != "none":
            _fail(flag(analog[0]) if analog else "--periphery", f"the analog periphery (AnalogDense) is for --model "
                  f"mlp; --model {self.model} reads its kernels ideally")
        side = INPUT_SHAPES[self.dataset][0] if self.crop is None else self.crop
        smallest = {"lenet5": 12, "vgg8": 8}.get(self.model, 1)
        if side < smallest:
            _fail("--crop", f"--model {self.model} needs images of at least {smallest}x{smallest} pixels, got {side}")
        if self.init is None:
            self.init = "glorot"  # uniform weights in [-wmax, wmax] saturate a deep network's activations

    def _resolve_protocol(self) -> list:
        """Fill the fields left at None from the protocol, then from their fallbacks; returns
        the names the protocol set."""
        from_protocol = []
        fields = parameters(self)
        for name, value in (PROTOCOLS[self.protocol] if self.protocol else {}).items():
            if getattr(self, name) is None:
                setattr(self, name, check(name, fields[name], value))
                from_protocol.append(name)
        for name in fields:
            if getattr(self, name) == OFF:
                setattr(self, name, None)
        for name, field in fields.items():
            if getattr(self, name) is None and field.metadata.get(FALLBACK_FROM) == "protocol":
                setattr(self, name, field.metadata[FALLBACK])
        return from_protocol

    def _check_rules(self, device):
        """Rules between options (after the protocol is resolved); errors name the flag."""
        if self.layer_lr is not None:
            if not self.optimizer.startswith("neurosim-"):
                _fail("--layer-lr", f"needs a neurosim-* optimizer (--optimizer), got {self.optimizer}")
            layers = len(self.hidden) + 1 if self.model == "mlp" else KERNEL_LAYERS.get(self.model)
            if layers is not None and len(self.layer_lr) != layers and self.model != "mlp":
                _fail("--layer-lr", f"needs one rate per layer with a kernel ({layers} for --model {self.model}), "
                      f"got {len(self.layer_lr)}")
            if self.model == "mlp" and len(self.layer_lr) != len(self.hidden) + 1:
                _fail("--layer-lr", f"needs one rate per layer ({len(self.hidden) + 1} for --hidden "
                      f"{','.join(map(str, self.hidden))}), got {len(self.layer_lr)}")
        if self.pulse_truncation and self.pulses != "neurosim":
            _fail("--pulse-truncation", f"is a detail of --pulses neurosim, got --pulses {self.pulses}")
        series = [o for o in ("r_access", "r_wire") if getattr(self, o)]
        if series and getattr(device, "r_on", None) is None:
            if all(o in self.protocol_fields for o in series):  # the protocol's default, not asked for
                for o in series:
                    setattr(self, o, None)
                self.notes.append(f"the device has no R_on (--r-on): read without series resistance "
                                  f"(protocol {self.protocol} sets {', '.join(flag(o) for o in series)})")
            else:
                _fail(flag(series[0]), "needs the device's R_on (--r-on, or a preset that has it)")
        if self.mapping != "reference" and (self.r_access or self.r_wire or self.adc_bits):
            _fail("--mapping", "the periphery reads (--adc-bits, --r-access, --r-wire) need --mapping reference")

    def _check_backend(self):
        """Refuse, in one line naming the option, what the Keras backend cannot run (`devsim.backends`):
        the compiled loop (a ``tf.while_loop``) needs TensorFlow; the aihwkit IO periphery (its draws
        keyed by a counter each layer call advances) cannot run inside JAX's stateless train step."""
        if self.train_loop != "compiled" and self.make_periphery() is None:
            return  # everything else runs on every backend: no need to load one here
        from devsim import backends

        backend = backends.name()
        if self.train_loop == "compiled" and backend != "tensorflow":
            if "train_loop" in self.protocol_fields:
                _fail("--protocol", f"{self.protocol} trains with --train-loop compiled (a tf.while_loop), which needs "
                      f"KERAS_BACKEND=tensorflow (the backend is {backend}); add --train-loop keras to train with Keras fit")
            _fail("--train-loop", f"compiled (a tf.while_loop over the epoch) needs KERAS_BACKEND=tensorflow "
                  f"(the backend is {backend}); use --train-loop keras")
        if self.make_periphery() is not None and backend == "jax":
            given = [n for n in PERIPHERY_FIELDS[1:] if getattr(self, n) is not None]
            option = "--periphery" if self.periphery != "none" or not given else flag(given[0])
            _fail(option, "the IO periphery's noise counter advances in every layer call, which JAX's stateless "
                  "train step cannot carry: it needs KERAS_BACKEND=tensorflow or torch (the backend is jax)")

    def make_periphery(self):
        """The `devsim.periphery.IOParameters` of the device layers (forward; the backward pass uses the same
        without bound management), or None when it is the identity (``--periphery none``, no field given)."""
        from devsim import periphery

        base = {"none": periphery.IOParameters, "aihwkit": periphery.IOParameters.aihwkit,
                "preset": periphery.IOParameters.preset}[self.periphery]
        given = {n: getattr(self, n) for n in PERIPHERY_FIELDS[1:] if getattr(self, n) is not None}
        try:
            io = base(**given)
        except FieldError as exc:
            _fail(flag(exc.field), exc.reason)
        return None if io.is_identity else io

    def make_algorithm(self):
        """The requested `devsim.algorithms.Algorithm`: ``--algorithm`` with the parameters given.

        Raises:
            ConfigError: naming the option (a parameter of another algorithm, a bad value,
                an algorithm that needs --update batch or the reference mapping).
        """
        cls = algorithms_mod.ALGORITHMS[self.algorithm]
        given = {n: getattr(self, n) for n in ALGORITHM_FIELDS[1:] if getattr(self, n) is not None}
        own = parameters(cls)
        for name in given:
            if name not in own:
                _fail(flag(name), f"is not a parameter of --algorithm {self.algorithm} "
                      f"(it is one of {', '.join(algorithms_mod.owners(name))})")
        try:
            algorithm = cls(**given)
        except FieldError as exc:
            _fail(flag(exc.field), exc.reason)
        if algorithm.needs_batch and self.update != "batch":
            _fail("--algorithm", f"{self.algorithm} needs --update batch (it uses the gradient of every step)")
        if algorithm.tile != "device" and self.mapping != "reference":
            _fail("--algorithm", f"{self.algorithm} needs --mapping reference (one device per weight)")
        return algorithm

    def _check_size(self):
        """Refuse an MLP that cannot fit in memory, before anything is allocated (the CNNs' sizes are fixed)."""
        if self.model != "mlp":
            return
        shape = INPUT_SHAPES[self.dataset]
        inputs = self.crop * self.crop * (shape[2] if len(shape) > 2 else 1) if self.crop else math.prod(shape)
        sizes = [inputs, *self.hidden, 10]
        weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        need = weights * _BYTES_PER_WEIGHT
        try:
            have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return
        if need > have:
            _fail("--hidden", f"the network has {weights:,} weights, which needs about {need / 2**30:,.0f} GB of "
                  f"memory; this machine has {have / 2**30:,.0f} GB")

    def weight_mapping(self):
        from devsim.mapping import DifferentialMapping, ReferenceMapping

        return ReferenceMapping(self.wmax) if self.mapping == "reference" else DifferentialMapping(self.wmax)

    def array_reads(self, device):
        """How the forward pass reads ``device``'s arrays (`devsim.periphery.ArrayReads`; identity when all off)."""
        from devsim.periphery import ArrayReads

        return ArrayReads(
            hidden_threshold=self.hidden_threshold, adc_bits=self.adc_bits, r_access=self.r_access or 0.0,
            r_wire=self.r_wire or 0.0, r_on=getattr(device, "r_on", None), on_off=device.on_off,
            cell=getattr(device, "cell", "1t1r"), w_max=self.wmax,
        )

    def run_name(self) -> str:
        """``--name``, or ``<dataset>_<device>_<update>-<pulses>_s<seed>`` (``<dataset>_<device>_<protocol>_s<seed>``
        with a protocol): a plain folder name, checked."""
        if self.name:
            return self.name
        how = self.protocol if self.protocol else f"{self.update}-{self.pulses}"
        algorithm = "" if self.algorithm == "sgd" else f"_{self.algorithm}"
        network = "" if self.model == "mlp" else "_" + "".join(c if c.isalnum() else "-" for c in self.model)
        name = f"{self.dataset}{network}_{self.device_slug()}_{how}{algorithm}_s{self.seed}"
        return io.check_name("--device (its name makes the run folder's; give --name)", name)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden) if self.hidden is not None else None
        if self.layer_lr is not None:
            d["layer_lr"] = list(self.layer_lr)
        return d

    def identity(self) -> dict:
        """`to_dict` without the options added after sweeps were first recorded while they change nothing
        (`IDENTITY`; ``--algorithm sgd`` without parameters; ``--periphery none`` without fields): what
        names a run in a sweep, so earlier sweeps resume."""
        d = self.to_dict()
        for name, value in IDENTITY.items():
            if name in d and d[name] == value:
                d.pop(name)
        for names, default in ((ALGORITHM_FIELDS, "sgd"), (PERIPHERY_FIELDS, "none")):
            if d.get(names[0]) == default and all(d.get(n) is None for n in names[1:]):
                for n in names:
                    d.pop(n, None)
        return d


document(RunConfig)

IDENTITY = {
    "protocol": None, "pulse_truncation": False, "images_per_epoch": None, "train_loop": "keras", "layer_lr": None,
    "loss": "crossentropy", "output_activation": "softmax", "gmin_offset": False, "snap_init": True, "skip_zero_rows": False, "count_lost": True, "binarize": None,
    "hidden_threshold": None, "adc_bits": None, "r_access": None, "r_wire": None, "nl_table": False,
    "preset_levels": "states", "r_on": None, "cell": None, "model": "mlp", "train_size": None, "test_size": None,
    "threads": None,
}
"""Options added with the protocols (issue 9) and the models (issue 13) and their values that change nothing: run hashes leave
them out at these values, so earlier sweeps resume."""

OPTION_FIELDS = {name: f for name, f in parameters(RunConfig).items()}
"""Every run option (name -> dataclass field with its `devsim.options.Spec`), in declaration order."""


def option_spec(name: str):
    """The `devsim.options.Spec` of a run option (None for names that are not options, e.g. ``run``)."""
    field = OPTION_FIELDS.get(name)
    return field.metadata.get(SPEC) if field is not None else None
