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
import functools
import io as _io
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from devsim import backends, io, losses
from devsim.callbacks import ProgramDevices
from devsim.config import RunConfig
from devsim.data import load_dataset
from devsim.figures import run_figures
from devsim.figures.labels import MODEL_NAMES
from devsim.initializers import gmin_offset, initial_states, neurosim_weights
from devsim.mapping import ReferenceMapping
from devsim.models import build_network, kernel_shapes
from devsim.online import CompiledLoop, epoch_indices
from devsim.optimizer import DeviceOptimizer

__all__ = ["RunConfig", "run", "RunFolder", "EpochRecorder", "versions", "linear_twin", "initial_pulse_states",
           "build_model", "network", "saved_weights"]

def versions() -> dict:
    """Versions of what ran, for config.json: devsim, Python, the Keras backend in use
    (``backend``, its package's version) and the kind of device it computed on
    (``accelerator``: cpu or gpu), Keras, numpy, scipy, matplotlib, the platform."""
    import keras
    import matplotlib
    import scipy

    import devsim
    from devsim import backends

    return {
        "devsim": devsim.__version__,
        "python": platform.python_version(),
        **backends.backend_versions(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
    }


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


def _initial_kernels(model_name, device, level_device, config, states):
    """The initial kernel values of one model: from state indices ``p`` (uniform, glorot) or,
    for ``init="neurosim"``, from NeuroSim's weights; the Gmin offset lowers device conductances."""
    mapping = ReferenceMapping(config.wmax)
    kernels = []
    for s in states:
        if config.init == "neurosim":
            if device is None:  # NeuroSim's software mode starts from the drawn weights themselves
                kernels.append(s)
                continue
            g = np.asarray(mapping.conductances(s))
        else:
            g = np.asarray(level_device.level(s.astype(np.float32)))
        if config.gmin_offset and device is not None:
            g = np.maximum(g - np.float32(gmin_offset(level_device)), 0.0)
        kernels.append(np.asarray(mapping.weights(g), np.float32))
    return kernels


def _optimizer(config, steps_per_epoch, software):
    """The inner optimizer: a Keras optimizer, or one of NeuroSim's (per-layer rates)."""
    if config.optimizer.startswith("neurosim-"):
        from devsim.neurosim_optimizers import NeuroSimOptimizer

        return NeuroSimOptimizer(config.optimizer.removeprefix("neurosim-"), config.layer_lr or (config.lr,),
                                 steps_per_epoch=steps_per_epoch, clip=config.wmax if software else None)
    return keras.optimizers.get({"class_name": config.optimizer, "config": {"learning_rate": config.lr}})


def build_model(model_name, device, level_device, config, data, states_p):
    """One model of a run, ready to train: built, initialized (state ``p`` ->
    ``level_device.level(p)``, or NeuroSim's initial weights) and compiled.

    ``device`` None is the float model (no periphery: the ideal forward pass).

    Returns:
        ``(model, loss, callbacks)``: the compiled model, its loss function and the
        callbacks training needs (`ProgramDevices` for device models).
    """
    keras.utils.set_random_seed(config.seed)
    mapping = config.weight_mapping()
    reads = config.array_reads(level_device) if device is not None else None  # float: the ideal forward pass
    model = network(config, data.x_train.shape[1:], name=f"{config.model.split(':')[-1]}_{model_name}", reads=reads,
                    io=config.make_periphery() if device is not None else None)
    for kernel, value in zip([v for v in model.weights if v.name == "kernel"],
                             _initial_kernels(model_name, device, level_device, config, states_p)):
        kernel.assign(value)
    images = config.images_per_epoch or len(data.y_train)
    steps_per_epoch = images // config.batch_size if config.train_loop == "compiled" else -(-images // config.batch_size)
    inner = _optimizer(config, max(steps_per_epoch, 1), software=device is None)
    callbacks = []
    if device is None:
        optimizer = inner
    else:
        optimizer = DeviceOptimizer(
            inner, device, mapping, pulses=config.pulses, max_pulses=config.max_pulses, update=config.update, seed=config.seed,
            count_pulses=config.count_pulses, snap_initial=config.snap_init, pulse_truncation=config.pulse_truncation,
            skip_zero_rows=config.skip_zero_rows, count_lost=config.count_lost, algorithm=config.make_algorithm(),
        )
        callbacks.append(ProgramDevices())
        optimizer.build(model.trainable_variables)
    loss = losses.get(config.loss)
    # Keras's loop runs a whole epoch per call into the compiled step (steps_per_execution):
    # the same numbers bit for bit (tests/test_steps_per_execution.py), without the per-step host work that
    # dominates small networks. Under read noise evaluation draws fresh reads before every batch
    # (a per-batch callback), so there each call stays one step.
    # PyTorch's Keras trainer runs one step per call (it has no compiled multi-step function).
    read_noise = device is not None and optimizer.has_read_noise
    one_step = read_noise or config.train_loop != "keras" or keras.backend.backend() == "torch"
    steps = 1 if one_step else max(steps_per_epoch, 1)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], steps_per_execution=steps)
    return model, loss, callbacks


def _train_model(model_name, device, level_device, config, data, states_p, on_row):
    """Build, initialize and train one model (`build_model`).

    Returns:
        (status, arrays for the npz file).
    """
    model, loss, callbacks = build_model(model_name, device, level_device, config, data, states_p)
    optimizer = model.optimizer
    n_train = len(data.y_train)
    keras.utils.set_random_seed(config.seed)  # the data order depends on the seed alone
    recorder = EpochRecorder(model_name, data, config.eval_batch_size, on_row, eval_callbacks=callbacks[:1])
    callbacks.append(recorder)
    if config.train_loop == "compiled":
        _fit_compiled(model, loss, config, data, callbacks)
    elif config.images_per_epoch is not None:
        for epoch in range(config.epochs):
            idx = epoch_indices(n_train, epoch, config.seed, config.images_per_epoch)
            model.fit(data.x_train[idx], data.y_train[idx], epochs=epoch + 1, initial_epoch=epoch,
                      batch_size=config.batch_size, shuffle=False, verbose=0, callbacks=callbacks)
            if model.stop_training:
                break
    else:
        model.fit(
            data.x_train, data.y_train, epochs=config.epochs, batch_size=config.batch_size, shuffle=True, verbose=0,
            callbacks=callbacks,
        )
    arrays = saved_weights(model)
    if device is not None:
        arrays.update({f"g_{k}": v for k, v in optimizer.device_states().items()})
    return recorder.status, arrays


def _fit_compiled(model, loss, config, data, callbacks):
    """``model.fit`` with every update of an epoch in one XLA program (`devsim.online.CompiledLoop`);
    the callbacks see the usual epoch events."""
    model.optimizer.build(model.trainable_variables)
    loop = CompiledLoop(model, loss, data.x_train, data.y_train, config.batch_size)
    history = keras.callbacks.CallbackList(callbacks, model=model)
    history.on_train_begin()
    for epoch in range(config.epochs):
        history.on_epoch_begin(epoch)
        idx = epoch_indices(len(data.y_train), epoch, config.seed, config.images_per_epoch)
        logs = loop.run_epoch(idx)
        history.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    history.on_train_end()


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
            "protocol_fields": list(getattr(config, "protocol_fields", [])),
            "notes": list(getattr(config, "notes", [])),
            "versions": versions(),
            "threads": backends.threads(),
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
        pulse_text = f"  pulses {pulses:>8d}  lost {lost:>6d}" if any(k.startswith("pulses_applied_") for k in row) else ""
        if not pulse_text and any(k.startswith("pulses_ltp_") for k in row):
            ltp = sum(v for k, v in row.items() if k.startswith("pulses_ltp_"))
            ltd = sum(v for k, v in row.items() if k.startswith("pulses_ltd_"))
            pulse_text = f"  LTP {ltp:>8d}  LTD {ltd:>8d}"
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
        io.replace_dir(self.partial, self.final)
        return self.final


def network(config, input_shape, name=None, reads=None, io=None):
    """The Keras network of a run (``--model``, `devsim.models.build_network`), with the periphery
    ``reads`` and ``io`` of its device layers (None: the ideal forward pass)."""
    return build_network(
        config.model, input_shape, hidden=config.hidden, activation=config.activation, use_bias=config.bias,
        crop=config.crop, output_activation=config.output_activation, binarize=config.binarize, reads=reads, io=io,
        w_max=config.wmax, seed=config.seed, name=name,
    )


def saved_weights(model) -> dict:
    """What a states file keeps of a trained network: every kernel as ``w_<layer>``, and every other
    weight (biases, normalization: float) as ``f_<layer>/<name>``."""
    from devsim.tiles import layer_name

    return {(f"w_{layer_name(v)}" if v.name == "kernel" else f"f_{layer_name(v)}/{v.name}"): keras.ops.convert_to_numpy(v)
            for v in model.weights}


def initial_pulse_states(config, device, input_shape):
    """The initial state index ``p`` of every kernel on ``device`` (``"uniform"``: the same for
    every device with the same number of states; ``"glorot"``: the same Glorot weights snapped to
    ``device``'s levels); for ``init="neurosim"`` the initial weights themselves."""
    if config.model == "mlp":
        shapes = _kernel_shapes(input_shape, config.hidden, config.crop)
    else:  # the shapes of the network itself (a CNN's, or a user's)
        shapes = kernel_shapes(network(config, input_shape))
    if config.init == "neurosim":
        return neurosim_weights(shapes, config.seed, config.wmax)
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
    data = load_dataset(config.dataset, config.data_dir, warn=warn, train_size=config.train_size,
                        test_size=config.test_size)
    io.check_writable(Path(config.out), "--out")
    note = backends.set_threads(config.threads)
    if note:
        config.notes.append(note)
    with io.folder_lock(Path(config.out) / f".{config.run_name()}.lock", "--name", "run"):
        return _run(config, device, data, echo, warn)


def _run(config, device, data, echo, warn):
    models = {"device": device}
    if config.baselines:
        if not device.is_linear:
            models["linear"] = linear_twin(device)
        models["float"] = None
    for note in getattr(config, "notes", []):
        warn(f"NOTE: {note}")
    folder = RunFolder(config, device, data, models, echo, warn)
    for name, dev in models.items():
        level_device = dev or linear_twin(device)
        # Each model draws the same initial weights on its own device: the same state indices for
        # "uniform" (same seed, same N), the same Glorot weights snapped to its own levels for "glorot".
        states_p = initial_pulse_states(config, level_device, data.x_train.shape[1:])
        what = device.describe() if name == "device" else MODEL_NAMES[name]
        how = f"protocol {config.protocol}" if config.protocol else f"{config.update} updates, {config.pulses} pulses"
        algorithm = f", algorithm {config.algorithm}" if dev is not None and config.algorithm != "sgd" else ""
        echo(f"training {name} model ({what}) on {data.name}, {how}{algorithm}")
        status, arrays = _train_model(name, dev, level_device, config, data, states_p, folder.add_row)
        folder.save_states(name, status, arrays)
    return folder.finish()


def linear_twin(device):
    """The linear reference of a device: same levels and non-idealities, linear curves."""
    return device.linear_twin()


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
