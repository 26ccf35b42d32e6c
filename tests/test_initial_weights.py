"""Every model of a run starts from the same initial weights, each on its own device."""

import dataclasses

import keras
import numpy as np

from devsim import run as run_module
from devsim.initializers import glorot_weights
from devsim.run import RunConfig, initial_pulse_states, linear_twin
from cli_helpers import offline  # noqa: F401  (offline: an autouse fixture)


def initial_kernels(config, tmp_path, monkeypatch):
    """The initial kernels of every model `devsim.run.run` trains."""
    kernels = {}
    build = run_module.build_model

    def recording(name, *args):
        model, loss, callbacks = build(name, *args)
        kernels[name] = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
        return model, loss, callbacks

    monkeypatch.setattr(run_module, "build_model", recording)
    run_module.run(dataclasses.replace(config, out=str(tmp_path)), echo=lambda m: None)
    return kernels


def test_glorot_puts_the_same_weights_on_every_models_device(tmp_path, monkeypatch):
    # A strongly saturating device: its states are far from evenly spaced, so one model's state
    # indices are another model's quite different weights.
    config = RunConfig(dataset="mnist-5k", ltp=0.1, ltd=0.1, states=64, init="glorot", hidden=(16,), seed=2,
                       epochs=1)
    kernels = initial_kernels(config, tmp_path, monkeypatch)
    for i, shape in enumerate([(784, 16), (16, 10)]):
        glorot = glorot_weights(shape, seed=2 + i)
        step = 2 * config.wmax / 63  # a linear level's spacing in weight (64 states: 63 pulses)
        np.testing.assert_allclose(kernels["linear"][i], glorot, atol=step / 2 + 1e-6)
        np.testing.assert_allclose(kernels["float"][i], kernels["linear"][i])  # the float model: the linear levels
        # the device's levels are densest near the bounds, sparsest where the curve is steep (mid-range)
        assert np.abs(kernels["device"][i] - glorot).max() <= 2 * config.wmax * (1 - np.exp(-1 / (0.1 * 63))) + 1e-6
        assert abs(kernels["device"][i].mean() - glorot.mean()) < 0.05 and abs(kernels["linear"][i].mean()) < 0.05


def test_uniform_states_are_shared_by_every_model():
    config = RunConfig(dataset="mnist-5k", ltp=0.3, ltd=0.6, states=32, hidden=(8,), seed=5)
    device = config.make_device()
    a = initial_pulse_states(config, device, (28, 28))
    b = initial_pulse_states(config, linear_twin(device), (28, 28))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_glorot_weights_have_kerass_distribution_for_dense_and_conv_kernels():
    for shape, fans in (((300, 100), (300, 100)), ((5, 5, 6, 16), (150, 400))):
        w = glorot_weights(shape, seed=0)
        limit = np.sqrt(6.0 / sum(fans))
        assert w.shape == shape and w.dtype == np.float32 and np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.99 * limit and abs(w.std() - limit / np.sqrt(3)) < 0.03 * limit  # U(-l, l)
        keras_w = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform(seed=0)(shape))
        assert np.abs(keras_w).max() <= limit and np.abs(keras_w).max() > 0.99 * limit  # the same bounds
    np.testing.assert_array_equal(glorot_weights((4, 3), 7), glorot_weights((4, 3), 7))
