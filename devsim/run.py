"""One experiment: train on a device, and on the references, and write the results folder.

`RunConfig` holds every parameter of `devsim run` (validated on creation);
`run(config)` trains

- ``device``: the network with its kernels on the requested device,
- ``linear``: the same on a linear device with the same number of states,
- ``float``: the ideal float network,

all from the same initial states (the same state index ``p`` per weight,
each mapped through its own device) and the same data order, and writes
``<out>/<name>/``: config.json, history.csv, states_<model>.npz, accuracy.png/pdf
and conductance.png/pdf. While it runs the folder is ``<name>.partial``; it is
renamed when the run ends, so an interrupted run keeps its history there.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io as _io
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from devsim import io
from devsim.callbacks import ProgramDevices
from devsim.data import DATASETS, load_dataset
from devsim.devices import ExpDevice
from devsim.errors import ConfigError
from devsim.figures import run_figures
from devsim.figures.labels import MODEL_NAMES
from devsim.presets import load_device
from devsim.initializers import INITS, initial_states
from devsim.mapping import DifferentialMapping, ReferenceMapping
from devsim.models import DEFAULT_HIDDEN, build_mlp
from devsim.nonlinearity import NL_MAX, a_d_from_label, a_p_from_label
from devsim.optimizer import UPDATES, DeviceOptimizer
from devsim.pulses import PULSE_RULES

OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad", "adamw", "nadam")
MAPPINGS = ("reference", "differential")
DEVICE_FIELDS = (
    "states", "states_ltd", "on_off", "c2c", "c2c_mode", "d2d", "d2d_range", "stuck_gmin", "stuck_gmax", "read_noise",
)
_FIELD_OPTIONS = {"A_p": "--ltp", "A_d": "--ltd", "stuck_gmin + stuck_gmax": "--stuck-gmin"}


def _fail(option, message):
    raise ConfigError(f"{option}: {message}")


@dataclasses.dataclass
class RunConfig:
    """Every parameter of a run. Field names are the CLI options without ``--``.

    Device fields left at ``None`` come from ``device`` (a preset or JSON
    file) or, without one, from `ExpDevice`'s defaults (linear, 101 states,
    no non-idealities); given ones override the preset's.

    Args:
        device: a preset name (see `devsim.presets.PRESETS`) or a device JSON file.
        ltp: LTP curvature ``A_p`` (> 0 saturating, < 0 accelerating, inf linear).
        ltd: LTD curvature ``A_d`` (same conventions, for depression).
        nl_ltp: NeuroSim LTP label instead of ``ltp`` (e.g. 2.4).
        nl_ltd: NeuroSim LTD label instead of ``ltd`` (e.g. -4.88).
        linear: use a linear device (``A_p = A_d = inf``).
        states: conductance levels per device (``N = states - 1`` pulses).
        states_ltd: levels of the LTD branch, if different.
        on_off: Gmax/Gmin.
        c2c, c2c_mode: cycle-to-cycle sigma (fraction of range) and its scaling.
        d2d: device-to-device sigma of the NL labels.
        d2d_range: device-to-device relative sigma of the conductance range.
        stuck_gmin, stuck_gmax: fractions of devices stuck at Gmin / Gmax.
        read_noise: relative sigma of the multiplicative read noise.
        wmax: weight range, ``w = wmax (2g - 1)``.
        mapping: "reference" (one device and a mid-range reference) or
            "differential" (a one-sided pair, ``w = wmax (g+ - g-)``).
        update: "epoch" (one float epoch, then program: the original study)
            or "batch" (program after every mini-batch).
        pulses: "sign", "proportional" or "stochastic"; default "sign" for
            epoch updates, "stochastic" for batch updates.
        max_pulses: cap on pulses per device per update (default N).
        count_pulses: log pulses applied and lost per layer and epoch; None:
            on for epoch updates, off for batch updates (where it costs about
            a third of the device update).
        dataset: one of `devsim.data.DATASETS`.
        data_dir: folder with the dataset files (else ``$DEVSIM_DATA_DIR``, the
            Keras cache or download).
        epochs, batch_size, lr, optimizer: training (Keras optimizer name).
        hidden: hidden layer widths; default (128,) or the tutorial's
            (256, 128, 64, 32) for cifar10.
        activation: hidden activation (any Keras activation name).
        crop: keep the central ``crop x crop`` pixels (20 gives NeuroSim's 400 inputs).
        bias: give the layers biases (kept in float); the study had none.
        init: "uniform" random states (the study) or "glorot" quantized.
        seed: seed of initial states, data order and stochastic rounding.
        baselines: also train the linear-device and float references.
        out: results root folder; name: run folder name (default from the
            parameters).
        eval_batch_size: batch size of the per-epoch evaluation.
    """

    device: str | None = None
    ltp: float | None = None
    ltd: float | None = None
    nl_ltp: float | None = None
    nl_ltd: float | None = None
    linear: bool = False
    states: int | None = None
    states_ltd: int | None = None
    on_off: float | None = None
    c2c: float | None = None
    c2c_mode: str | None = None
    d2d: float | None = None
    d2d_range: float | None = None
    stuck_gmin: float | None = None
    stuck_gmax: float | None = None
    read_noise: float | None = None
    wmax: float = 1.0
    mapping: str = "reference"
    update: str = "epoch"
    pulses: str | None = None
    max_pulses: int | None = None
    count_pulses: bool | None = None
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.01
    optimizer: str = "sgd"
    hidden: tuple | None = None
    activation: str = "relu"
    crop: int | None = None
    bias: bool = False
    init: str = "uniform"
    seed: int = 0
    baselines: bool = True
    out: str = "results"
    name: str | None = None
    eval_batch_size: int = 2048

    def __post_init__(self):
        if self.linear and any(v is not None for v in (self.ltp, self.ltd, self.nl_ltp, self.nl_ltd)):
            _fail("--linear", "cannot be combined with --ltp/--ltd/--nl-ltp/--nl-ltd")
        for a, nl in (("ltp", "nl_ltp"), ("ltd", "nl_ltd")):
            if getattr(self, a) is not None and getattr(self, nl) is not None:
                _fail(f"--{a}", f"give --{a} or --{nl.replace('_', '-')}, not both")
            value = getattr(self, a)
            if value is not None and (math.isnan(value) or value == 0):
                _fail(f"--{a}", f"A must be a non-zero number (> 0 saturating, < 0 accelerating, inf linear), got {value}")
            label = getattr(self, nl)
            if label is not None and not abs(label) < NL_MAX:
                _fail(f"--{nl.replace('_', '-')}", f"NL label must be a number with |NL| < {NL_MAX:.2f}, got {label}")
        for option in ("states", "states_ltd"):
            if getattr(self, option) is not None:
                _check_int(f"--{option.replace('_', '-')}", getattr(self, option), 2)
        _check_int("--epochs", self.epochs, 1)
        _check_int("--batch-size", self.batch_size, 1)
        _check_int("--eval-batch-size", self.eval_batch_size, 1)
        if self.max_pulses is not None:
            _check_int("--max-pulses", self.max_pulses, 1)
        if not self.wmax > 0 or math.isinf(self.wmax):
            _fail("--wmax", f"must be a finite number > 0, got {self.wmax}")
        if not self.lr > 0 or math.isinf(self.lr):
            _fail("--lr", f"must be a finite number > 0, got {self.lr}")
        _check_choice("--dataset", self.dataset, DATASETS)
        _check_choice("--update", self.update, UPDATES)
        _check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("--mapping", self.mapping, MAPPINGS)
        _check_choice("--init", self.init, INITS)
        if self.pulses is None:
            self.pulses = "sign" if self.update == "epoch" else "stochastic"
        _check_choice("--pulses", self.pulses, tuple(PULSE_RULES))
        if self.hidden is None:
            self.hidden = DEFAULT_HIDDEN.get(self.dataset, (128,))
        self.hidden = tuple(int(h) for h in self.hidden)
        if not self.hidden or min(self.hidden) < 1:
            _fail("--hidden", f"must be one or more positive widths such as 128 or 256,128, got {self.hidden}")
        try:
            keras.activations.get(self.activation)
        except ValueError:
            _fail("--activation", f"unknown Keras activation {self.activation!r} (e.g. relu, tanh, sigmoid)")
        if self.crop is not None:
            _check_int("--crop", self.crop, 1)
            side = 32 if self.dataset == "cifar10" else 28
            if self.crop > side:
                _fail("--crop", f"must be at most the image side {side}, got {self.crop}")
        if self.name is not None and (not self.name or "/" in self.name or self.name.startswith(".")):
            _fail("--name", f"must be a plain folder name, got {self.name!r}")
        self.make_device()  # validates the device fields (and reads a device file) now

    def make_device(self) -> ExpDevice:
        """The requested device: the preset or file, with the given fields overriding it."""
        base = load_device(self.device) if self.device else ExpDevice()
        fields = {f: getattr(self, f) for f in DEVICE_FIELDS if getattr(self, f) is not None}
        if self.linear:
            fields.update(a_p=math.inf, a_d=math.inf)
        if self.ltp is not None or self.nl_ltp is not None:
            fields["a_p"] = self.ltp if self.ltp is not None else float(a_p_from_label(self.nl_ltp))
        if self.ltd is not None or self.nl_ltd is not None:
            fields["a_d"] = self.ltd if self.ltd is not None else float(a_d_from_label(self.nl_ltd))
        if "states" in fields and self.states_ltd is None and base.states_ltd == base.states:
            fields["states_ltd"] = fields["states"]  # a single --states sets both branches
        try:
            return dataclasses.replace(base, **fields)
        except ValueError as exc:
            field = str(exc).split()[0]
            _fail(_FIELD_OPTIONS.get(field, f"--{field.replace('_', '-')}"), str(exc))

    def weight_mapping(self):
        return ReferenceMapping(self.wmax) if self.mapping == "reference" else DifferentialMapping(self.wmax)

    def device_slug(self) -> str:
        """``ltp0.8_ltd0.8``, ``linear`` or the preset/file name: the device part of default names."""
        d = self.make_device()
        if d.name and self.ltp is None and self.ltd is None and self.nl_ltp is None and self.nl_ltd is None:
            return d.name
        return "linear" if math.isinf(d.a_p) and math.isinf(d.a_d) else f"ltp{d.a_p:.4g}_ltd{d.a_d:.4g}"

    def run_name(self) -> str:
        """``--name``, or ``<dataset>_<device>_<update>-<pulses>_s<seed>``."""
        return self.name or f"{self.dataset}_{self.device_slug()}_{self.update}-{self.pulses}_s{self.seed}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _check_int(option, value, minimum):
    if isinstance(value, bool) or int(value) != value or value < minimum:
        _fail(option, f"must be an integer >= {minimum}, got {value}")


def _check_choice(option, value, allowed):
    if value not in allowed:
        _fail(option, f"unknown value {value!r}; choose from {', '.join(allowed)}")


def versions() -> dict:
    import keras
    import matplotlib
    import scipy
    import tensorflow as tf

    import devsim

    return {
        "devsim": devsim.__version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
    }


def _check_writable(out: Path):
    try:
        out.mkdir(parents=True, exist_ok=True)
        with io.atomic_path(out / ".devsim-write-test"):
            pass
        os.unlink(out / ".devsim-write-test")
    except OSError as exc:
        _fail("--out", f"cannot write to {out} ({exc.strerror or exc})")


class EpochRecorder(keras.callbacks.Callback):
    """Evaluates the (programmed) model after each epoch and records a history row.

    Train and test loss/accuracy come from `evaluate` with a large batch after
    the devices were programmed, so they are the accuracies of the weights the
    devices hold. A non-finite loss stops training and sets `status`.
    """

    def __init__(self, model_name, data, eval_batch_size, on_row, eval_callbacks=()):
        super().__init__()
        self.model_name, self.data, self.eval_batch_size = model_name, data, eval_batch_size
        self.eval_callbacks = list(eval_callbacks)  # ProgramDevices: fresh device reads under read noise
        self.on_row = on_row
        self.status = "complete"

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        logs = logs or {}
        evaluate = functools.partial(
            self.model.evaluate, batch_size=self.eval_batch_size, verbose=0, return_dict=True, callbacks=self.eval_callbacks
        )
        train = evaluate(self.data.x_train, self.data.y_train)
        test = evaluate(self.data.x_test, self.data.y_test)
        row = {
            "model": self.model_name,
            "epoch": epoch + 1,
            "train_loss": train["loss"],
            "train_accuracy": train["accuracy"],
            "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
            "seconds": seconds,
        }
        row.update({k: v for k, v in logs.items() if k.startswith("pulses_")})
        if not all(math.isfinite(x) for x in (logs.get("loss", 0.0), train["loss"])):
            self.status = f"stopped: loss became NaN in epoch {epoch + 1}"
            self.model.stop_training = True
        self.on_row(row, self.status)


def _history_csv(rows) -> str:
    fixed = ["model", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"]
    extra = sorted({k for r in rows for k in r} - set(fixed))
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fixed + extra, restval="", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _train_model(model_name, device, level_device, config, data, states_p, on_row):
    """Build, initialize (state ``p`` -> ``level_device.level(p)``) and train one model.

    Returns:
        (status, arrays for the npz file).
    """
    keras.utils.set_random_seed(config.seed)
    mapping = config.weight_mapping()
    model = build_mlp(
        data.x_train.shape[1:], config.hidden, config.activation, use_bias=config.bias, crop=config.crop, name=f"mlp_{model_name}"
    )
    for layer, p in zip([l for l in model.layers if hasattr(l, "kernel")], states_p):
        g = level_device.level(p.astype(np.float32))
        layer.kernel.assign(ReferenceMapping(config.wmax).weights(g))
    inner = keras.optimizers.get({"class_name": config.optimizer, "config": {"learning_rate": config.lr}})
    callbacks = []
    if device is None:
        optimizer = inner
    else:
        optimizer = DeviceOptimizer(
            inner, device, mapping, pulses=config.pulses, max_pulses=config.max_pulses, update=config.update, seed=config.seed,
            count_pulses=config.count_pulses,
        )
        callbacks.append(ProgramDevices())
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras.utils.set_random_seed(config.seed)  # the data order depends on the seed alone
    recorder = EpochRecorder(model_name, data, config.eval_batch_size, on_row, eval_callbacks=callbacks[:1])
    callbacks.append(recorder)
    model.fit(
        data.x_train, data.y_train, epochs=config.epochs, batch_size=config.batch_size, shuffle=True, verbose=0, callbacks=callbacks
    )
    arrays = {f"w_{l.name}": l.kernel.numpy() for l in model.layers if hasattr(l, "kernel")}
    if device is not None:
        arrays.update({f"g_{k}": v for k, v in optimizer.device_states().items()})
    return recorder.status, arrays


class RunFolder:
    """One run's results folder: written as ``<name>.partial`` and renamed when finished.

    Holds the record that becomes config.json, appends history rows (saving
    history.csv after each, and printing a progress line), saves the models'
    states and, at `finish`, draws the figures and renames the folder.
    """

    def __init__(self, config, device, data, models, echo=print, warn=None, extra=None):
        self.config, self.device, self.models = config, device, models
        self.echo = echo
        self.warn = warn or (lambda m: print(m, file=sys.stderr))
        self.final = Path(config.out) / config.run_name()
        self.partial = self.final.with_name(self.final.name + ".partial")
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        self.rows, self.statuses = [], {}
        self.record = {
            "devsim_run": config.to_dict(),
            "device": device.get_config(),
            "mapping": config.weight_mapping().get_config(),
            "models": list(models),
            "seed": config.seed,
            "dataset": data.info(),
            "versions": versions(),
            "status": "running",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(extra or {}),
        }
        io.write_json(self.partial / "config.json", self.record)
        self.t0 = time.perf_counter()

    def add_row(self, row, status):
        self.rows.append(row)
        io.write_text(self.partial / "history.csv", _history_csv(self.rows))
        pulses = sum(v for k, v in row.items() if k.startswith("pulses_applied_"))
        lost = sum(v for k, v in row.items() if k.startswith("pulses_lost_"))
        pulse_text = f"  pulses {pulses:>8d}  lost {lost:>6d}" if any(k.startswith("pulses_") for k in row) else ""
        self.echo(
            f"[{row['model']:>6}] epoch {row['epoch']:>3}/{self.config.epochs}  loss {row['train_loss']:.4f}  "
            f"train {row['train_accuracy']:.4f}  test {row['test_accuracy']:.4f}{pulse_text}  {row['seconds']:.2f} s"
        )
        if status != "complete":
            self.warn(f"WARNING: {row['model']} model {status}; its history up to that epoch is kept")

    def save_states(self, model, status, arrays):
        self.statuses[model] = status
        with io.atomic_path(self.partial / f"states_{model}.npz") as tmp:
            np.savez_compressed(tmp, **arrays)

    def finish(self) -> Path:
        """Record the final results, draw accuracy and conductance from the saved folder, rename it.

        The figures come from `devsim.figures.run_figures`, the function ``devsim plot``
        draws a run folder with, so they are the same figures; the prediction and
        confusion figures (a rebuilt network on the test set, seconds per model) are
        left to ``devsim plot``.
        """
        self.record.update(
            status="complete" if all(s == "complete" for s in self.statuses.values()) else "diverged",
            model_status=self.statuses,
            final={m: _final(self.rows, m) for m in self.models},
            seconds=round(time.perf_counter() - self.t0, 3),
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        io.write_json(self.partial / "config.json", self.record)
        run_figures(self.partial, warn=self.warn, predictions=False)
        _replace_dir(self.partial, self.final)
        return self.final


def initial_pulse_states(config, device, input_shape):
    """The initial state index ``p`` of every kernel (shared by a run's models)."""
    shapes = _kernel_shapes(input_shape, config.hidden, config.crop)
    return [initial_states(shape, device, config.init, seed=config.seed + i, w_max=config.wmax) for i, shape in enumerate(shapes)]


def run(config: RunConfig, echo=print, warn=None) -> Path:
    """Train the device model (and the references) and write the results folder.

    Args:
        config: the run's parameters.
        echo: where progress lines go.
        warn: where warnings go (default: stderr).

    Returns:
        The results folder.

    Raises:
        ConfigError, DataError: bad input, raised before anything is written.
    """
    warn = warn or (lambda m: print(m, file=sys.stderr))
    device = config.make_device()
    data = load_dataset(config.dataset, config.data_dir, warn=warn)
    _check_writable(Path(config.out))
    models = {"device": device}
    if config.baselines:
        if not _is_linear(device):
            models["linear"] = linear_twin(device)
        models["float"] = None
    folder = RunFolder(config, device, data, models, echo, warn)
    states_p = initial_pulse_states(config, device, data.x_train.shape[1:])
    for name, dev in models.items():
        what = device.describe() if name == "device" else MODEL_NAMES[name]
        echo(f"training {name} model ({what}) on {data.name}, {config.update} updates, {config.pulses} pulses")
        status, arrays = _train_model(name, dev, dev or linear_twin(device), config, data, states_p, folder.add_row)
        folder.save_states(name, status, arrays)
    return folder.finish()


def _is_linear(device) -> bool:
    return bool(np.all(np.isinf(device.a_p)) and np.all(np.isinf(device.a_d)))


def linear_twin(device):
    """The linear reference of a device: same levels and non-idealities, linear curves."""
    return dataclasses.replace(device, a_p=math.inf, a_d=math.inf, name=None, source=None)


def _kernel_shapes(input_shape, hidden, crop=None):
    inputs = int(np.prod(input_shape)) if not crop else crop * crop * int(np.prod(input_shape[2:]))
    sizes = [inputs, *hidden, 10]
    return [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]


def _final(rows, model):
    mine = [r for r in rows if r["model"] == model]
    if not mine:
        return {}
    last = mine[-1]
    return {
        "epochs": last["epoch"],
        "train_accuracy": last["train_accuracy"],
        "test_accuracy": last["test_accuracy"],
        "best_test_accuracy": max(r["test_accuracy"] for r in mine),
        "mean_epoch_seconds": float(np.mean([r["seconds"] for r in mine])),
    }


def _replace_dir(src: Path, dst: Path):
    """Move the finished `src` folder onto `dst`, replacing an earlier result."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
