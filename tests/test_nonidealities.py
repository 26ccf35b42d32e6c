"""Variation, faults and read noise: identity at sigma 0, requested statistics, fixed draws."""

import dataclasses
import math

import keras
import numpy as np
import pytest
from keras import ops, random

from devsim import DeviceOptimizer, DevicePopulation, ExpDevice, LinearDevice, ProgramDevices
from devsim.nonlinearity import ltp_label


def npy(x):
    return ops.convert_to_numpy(x).astype(np.float64)


G = np.random.default_rng(0).uniform(0.1, 0.9, 20_000).astype(np.float32)
N_SIGNED = np.random.default_rng(1).integers(-5, 6, 20_000).astype(np.float32)


def test_sigma_zero_is_identity():
    base = ExpDevice(0.4, 0.7, 65)
    zero = ExpDevice(0.4, 0.7, 65, c2c=0.0, d2d=0.0, d2d_range=0.0, stuck_gmin=0.0, stuck_gmax=0.0, read_noise=0.0, on_off=20.0)
    np.testing.assert_array_equal(npy(zero.pulse(G, N_SIGNED, seed=1)), npy(base.pulse(G, N_SIGNED)))
    assert zero.sample(G.shape, seed=0).model is zero  # nothing to draw: the device itself
    np.testing.assert_array_equal(npy(zero.read(G, seed=random.SeedGenerator(0))), G)


@pytest.mark.parametrize("pulses", [1, 4])
def test_c2c_noise_has_requested_sigma_scaled_by_sqrt_n(pulses):
    dev = LinearDevice(101)
    noisy = dataclasses.replace(dev, c2c=0.02)
    g = np.full(200_000, 0.5, np.float32)
    n = np.full_like(g, pulses)
    diff = npy(noisy.pulse(g, n, seed=random.SeedGenerator(3))) - npy(dev.pulse(g, n))
    assert diff.std() == pytest.approx(0.02 * math.sqrt(pulses), rel=0.02)
    assert abs(diff.mean()) < 3e-4
    assert np.all(npy(noisy.pulse(g, np.zeros_like(g), seed=1)) == g)  # no pulse, no programming event, no noise
    with pytest.raises(ValueError, match="seed"):
        noisy.pulse(g, n)


def test_c2c_step_mode_is_proportional_to_the_step():
    dev = ExpDevice(0.5, 0.5, 101)
    noisy = dataclasses.replace(dev, c2c=0.1, c2c_mode="step")
    for g0 in (0.1, 0.8):  # saturating: small steps near the top, small noise there
        g = np.full(100_000, g0, np.float32)
        clean = npy(dev.pulse(g, np.ones_like(g)))
        diff = npy(noisy.pulse(g, np.ones_like(g), seed=random.SeedGenerator(0))) - clean
        assert diff.std() == pytest.approx(0.1 * (clean[0] - g0), rel=0.03)


def test_d2d_draws_have_sigma_and_are_reproducible():
    dev = ExpDevice(0.5, 0.3, 65, d2d=0.4, d2d_range=0.1)
    a = dev.sample((300, 100), seed=7)
    b = dev.sample((300, 100), seed=7)
    c = dev.sample((300, 100), seed=8)
    np.testing.assert_array_equal(a.model.a_p, b.model.a_p)
    np.testing.assert_array_equal(a.range_scale, b.range_scale)
    assert not np.array_equal(a.model.a_p, c.model.a_p)
    labels = ltp_label(a.model.a_p)
    assert labels.std() == pytest.approx(0.4, rel=0.03)
    assert labels.mean() == pytest.approx(ltp_label(0.5), abs=0.01)
    assert a.range_scale.std() == pytest.approx(0.1, rel=0.05)
    assert a.sample((300, 100), seed=9) is a  # already drawn: fixed for life


def test_d2d_fixed_across_epochs_in_training():
    keras.utils.set_random_seed(0)
    dev = ExpDevice(0.5, 0.5, 33, d2d=0.5, stuck_gmin=0.05, stuck_gmax=0.05)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu", name="dense"), keras.layers.Dense(2, activation="softmax", name="out")])
    opt = DeviceOptimizer(keras.optimizers.SGD(0.2), dev, seed=5, count_pulses=True)
    model.compile(opt, "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ProgramDevices()])
    a_before = [t.population.model.a_p.copy() for t in opt.tiles]
    g_before = opt.device_states()
    hist = model.fit(x, y, epochs=3, verbose=0, callbacks=[ProgramDevices()])
    for t, a in zip(opt.tiles, a_before):
        np.testing.assert_array_equal(t.population.model.a_p, a)
    # same seed, same draws in a new optimizer
    opt2 = DeviceOptimizer(keras.optimizers.SGD(0.2), dev, seed=5)
    opt2.build(model.trainable_variables)
    for t, a in zip(opt2.tiles, a_before):
        np.testing.assert_array_equal(t.population.model.a_p, a)
    # stuck devices never moved, and sit at their bound
    g_after = opt.device_states()
    for d, (layer, g) in zip((t.population for t in opt.tiles), g_after.items()):
        assert np.all(g[d.stuck < 0] == 0) and np.all(g[d.stuck > 0] == 1)
        np.testing.assert_array_equal(g[d.stuck != 0], g_before[layer][d.stuck != 0])
        assert 0.05 < np.mean(d.stuck != 0) < 0.2
    counts = opt.stuck_counts()
    assert counts["stuck_gmin_dense"] + counts["stuck_gmax_dense"] == int(np.sum(opt.tiles[0].population.stuck != 0))
    assert sum(hist.history["pulses_lost_dense"]) > 0  # pulses to stuck devices are lost


def test_stuck_devices_ignore_pulses():
    dev = ExpDevice(0.5, 0.5, 33, stuck_gmin=0.3, stuck_gmax=0.3).sample((1000,), seed=0)
    g = npy(dev.stuck_values(np.full(1000, 0.5, np.float32))).astype(np.float32)
    n = np.where(np.arange(1000) % 2 == 0, 3.0, -3.0).astype(np.float32)
    g_new, lost = dev.apply_pulses(g, n)
    stuck = dev.stuck != 0
    np.testing.assert_array_equal(npy(g_new)[stuck], g[stuck])
    np.testing.assert_array_equal(npy(lost)[stuck], 3.0)
    assert np.all(npy(g_new)[~stuck] != g[~stuck])


def test_read_noise_never_changes_stored_state():
    keras.utils.set_random_seed(0)
    dev = LinearDevice(33)
    noisy = dataclasses.replace(dev, read_noise=0.05)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, name="dense"), keras.layers.Dense(2, activation="softmax", name="out")])
    opt = DeviceOptimizer(keras.optimizers.SGD(0.1), noisy, seed=0)
    model.compile(opt, "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(128, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ProgramDevices()])
    g = opt.device_states()
    for _ in range(5):
        opt.read_devices(noisy=True)
        for layer, g_now in opt.device_states().items():
            np.testing.assert_array_equal(g_now, g[layer])
    # the weights are noisy reads: w = 2 g (1 + 0.05 xi) - 1
    w = opt.device_variables[0].numpy()
    g0 = g["dense"]
    xi = ((w + 1) / 2 / g0 - 1)[g0 > 0.2] / 0.05
    assert xi.std() == pytest.approx(1.0, rel=0.1)
    # evaluation with ProgramDevices reads afresh; predictions differ between calls
    p1 = model.predict(x, verbose=0, callbacks=[ProgramDevices()])
    p2 = model.predict(x, verbose=0, callbacks=[ProgramDevices()])
    assert not np.allclose(p1, p2)
    for layer, g_now in opt.device_states().items():
        np.testing.assert_array_equal(g_now, g[layer])


def test_on_off_ratio_with_range_variation():
    g = np.float32([0.0, 0.5, 1.0])
    dev = DevicePopulation(ExpDevice(on_off=5.0), range_scale=np.float32(1.1))
    # G/Gmax = 1.1 (0.2 + 0.8 g); read back against nominal Gmin = 0.2: (G - 0.2)/0.8
    np.testing.assert_allclose(npy(dev.read(g)), (1.1 * (0.2 + 0.8 * g) - 0.2) / 0.8, atol=1e-6)
    ideal = DevicePopulation(ExpDevice(), range_scale=np.float32(1.1))
    np.testing.assert_allclose(npy(ideal.read(g)), 1.1 * g, atol=1e-6)  # Gmin = 0: only a gain
    np.testing.assert_array_equal(npy(ExpDevice(on_off=5.0).read(g)), g)


def test_separate_ltd_levels():
    dev = ExpDevice(states=101, states_ltd=51)
    pulse, g = dev.response()
    assert len(pulse) == 151
    np.testing.assert_allclose(np.diff(g[:101]), 0.01, atol=2e-6)
    np.testing.assert_allclose(np.diff(g[100:]), -0.02, atol=2e-6)
    lost = npy(dev.pulses_lost(np.float32([0.02, 0.98]), np.float32([-3, 3])))
    assert lost.tolist() == [2, 1]


@pytest.mark.parametrize("kwargs,field", [
    ({"c2c": -0.1}, "c2c"), ({"read_noise": float("nan")}, "read_noise"), ({"stuck_gmin": 1.5}, "stuck_gmin"),
    ({"stuck_gmin": 0.6, "stuck_gmax": 0.6}, "stuck_gmin"), ({"on_off": 1.0}, "on_off"), ({"states_ltd": 1}, "states_ltd"),
    ({"c2c_mode": "linear"}, "c2c_mode"),
])
def test_bad_nonideality_parameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ExpDevice(**kwargs)
