"""devsim: device-aware training of Keras networks on simulated memristive synapses.

The pieces, each in its own module:

- `devsim.devices`: conductance models (`ExpDevice`, `LinearDevice`).
- `devsim.nonlinearity`: NeuroSim NL labels <-> curvature A.
- `devsim.mapping`: conductance <-> weight (`ReferenceMapping`, `DifferentialMapping`).
- `devsim.pulses`: weight change -> pulses (sign, proportional, stochastic).
- `devsim.optimizer`: `DeviceOptimizer`, a wrapper around any Keras optimizer.
- `devsim.callbacks`: `ProgramDevices` (epoch-end programming, pulse counts).
- `devsim.initializers`: initial device states.
- `devsim.data`, `devsim.models`, `devsim.run`, `devsim.figures`, `devsim.cli`.

The names below are imported on first use, so ``import devsim`` is cheap and
TensorFlow loads only when a model is built.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from devsim import backends as _backends  # noqa: E402  (imports no backend)

_backends.use_wide_vectors()
_backends.MALLOC_KEPT = _backends.keep_freed_memory()

__version__ = "0.1.0"

_EXPORTS = {
    "DeviceOptimizer": "devsim.optimizer",
    "DevicePopulation": "devsim.devices",
    "DeviceTile": "devsim.tiles",
    "DifferentialMapping": "devsim.mapping",
    "ExpDevice": "devsim.devices",
    "LinearDevice": "devsim.devices",
    "ProgramDevices": "devsim.callbacks",
    "ReferenceMapping": "devsim.mapping",
    "RunConfig": "devsim.run",
    "StateInitializer": "devsim.initializers",
    "initial_states": "devsim.initializers",
    "load_dataset": "devsim.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'devsim' has no attribute {name!r}")
