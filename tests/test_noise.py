"""Counter-based random numbers of the device update: distribution, independence, reproducibility."""

import dataclasses

import keras
import numpy as np
import pytest

from devsim import DeviceOptimizer, LinearDevice, noise


def test_uniform_and_normal_statistics():
    u = np.asarray(noise.uniform((1000, 1000), noise.key(3, 7, 0)))
    assert 0 < u.min() and u.max() < 1
    assert u.mean() == pytest.approx(0.5, abs=2e-3) and u.var() == pytest.approx(1 / 12, rel=1e-2)
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    assert np.all(np.abs(counts - 50_000) < 5 * np.sqrt(50_000))
    n = np.asarray(noise.normal((1000, 1000), noise.key(3, 7, 1)))
    assert n.mean() == pytest.approx(0, abs=3e-3) and n.std() == pytest.approx(1, rel=3e-3)
    assert np.mean(np.abs(n) > 2) == pytest.approx(0.0455, abs=2e-3)


def test_streams_steps_and_neighbours_are_independent():
    a = np.asarray(noise.uniform((500, 500), noise.key(0, 0, 0))).ravel()
    for other in (noise.key(0, 1, 0), noise.key(0, 0, 1), noise.key(1, 0, 0)):
        b = np.asarray(noise.uniform((500, 500), other)).ravel()
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.01
    np.testing.assert_array_equal(a, np.asarray(noise.uniform((500, 500), noise.key(0, 0, 0))).ravel())


def test_optimizer_c2c_noise_has_requested_sigma():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((400,)), keras.layers.Dense(250, use_bias=False, name="d")])
    device = dataclasses.replace(LinearDevice(101), c2c=0.03)
    opt = DeviceOptimizer("sgd", device, pulses="sign", update="epoch", seed=4)
    opt.build(model.trainable_variables)
    kernel = opt.device_variables[0]
    g0 = opt.device_states()["d"]
    kernel.assign(kernel.numpy() + 1e-3)  # every weight rose: one LTP pulse each
    opt.program()
    g1 = opt.device_states()["d"]
    step = (g1 - g0 - 0.01)[(g0 > 0.1) & (g0 < 0.85)]  # away from the bounds (no clipping)
    assert step.std() == pytest.approx(0.03, rel=0.03) and abs(step.mean()) < 1e-3


def test_extreme_draws_stay_finite_and_the_inverse_cdf_matches_scipy():
    from scipy.special import ndtri

    # every value `uniform` can return: (b + 0.5) / 2**23 for 23-bit b, the extremes included
    b = np.concatenate([np.arange(0, 2**23, 101), np.arange(2**23 - 1000, 2**23), np.arange(1000)]).astype(np.float32)
    u = (b + np.float32(0.5)) * np.float32(2.0**-23)
    assert 0 < u.min() and u.max() < 1  # never 0 or 1: the normal is finite
    z = np.asarray(noise._inverse_normal_cdf(u))
    reference = ndtri(u.astype(np.float64))
    np.testing.assert_allclose(z, reference, rtol=1e-6, atol=1e-6)
    assert z.min() == pytest.approx(-z.max()) and 5.2 < z.max() < 5.4
