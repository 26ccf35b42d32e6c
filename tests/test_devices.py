"""Conductance models: exact values, closed form vs. the curve, bounds, asymmetry."""

import math

import numpy as np
import pytest
from keras import ops

from devsim.devices import ExpDevice, LinearDevice


def npy(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def g_ltp(x, a):
    """docs/devices.md section 1, in float64: conductance after x (fraction of N) LTP pulses."""
    return x if math.isinf(a) else (1 - np.exp(-x / a)) / (1 - np.exp(-1 / a))


def x_ltp(g, a):
    """Inverse of g_ltp: position on the curve."""
    return g if math.isinf(a) else -a * np.log(1 - g * (1 - np.exp(-1 / a)))


def reference_pulse(g, n, a_p, a_d, num):
    """Step along the curve from its inverse (no closed form): the numpy reference."""
    if n > 0:
        return min(1.0, g_ltp(min(x_ltp(g, a_p) + n / num, 1.0), a_p))
    if n < 0:  # depression: the LTP-shaped curve of 1 - g with A_d
        return 1.0 - min(1.0, g_ltp(min(x_ltp(1 - g, a_d) - n / num, 1.0), a_d))
    return g


CURVES = [(0.8, 0.8), (-0.8, -0.8), (0.3, 2.0), (-0.5, 0.2), (math.inf, math.inf), (5.0, -3.0)]


def test_linear_device_has_n_plus_one_levels_and_1_over_n_steps():
    dev = LinearDevice(states=101)
    pulse, g = dev.response()
    up = g[:101]
    np.testing.assert_allclose(up, np.arange(101) / 100, atol=2e-6)
    np.testing.assert_allclose(np.diff(up), 0.01, atol=2e-6)
    assert len(np.unique(np.round(g, 5))) == 101
    np.testing.assert_allclose(g[100:], 1 - np.arange(101) / 100, atol=2e-6)
    assert dev.num_pulses == 100 and pulse[-1] == 200


def test_level_is_the_design_curve():
    for a_p, _ in CURVES:
        dev = ExpDevice(a_p, 1.0, 51)
        p = np.arange(51, dtype=np.float32)
        np.testing.assert_allclose(npy(dev.level(p)), g_ltp(p / 50, a_p), atol=2e-6)
        assert npy(dev.level(np.float32([0, 50]))).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("a_p,a_d", CURVES)
def test_closed_form_equals_stepping_along_curve(a_p, a_d):
    dev = ExpDevice(a_p, a_d, 101)
    rng = np.random.default_rng(1)
    g0 = rng.uniform(0, 1, 200).astype(np.float32)
    n = rng.integers(-30, 31, 200).astype(np.float32)
    got = npy(dev.pulse(g0, n))
    want = [reference_pulse(float(g), int(k), a_p, a_d, 100) for g, k in zip(g0, n)]
    np.testing.assert_allclose(got, want, atol=3e-6)
    # n pulses at once == n single pulses
    g_step = g0.copy()
    for _ in range(7):
        g_step = ops.convert_to_numpy(dev.pulse(g_step, np.sign(n)))
    np.testing.assert_allclose(g_step, npy(dev.pulse(g0, 7 * np.sign(n))), atol=1e-5)


@pytest.mark.parametrize("a_p,a_d", CURVES)
def test_bounds_and_monotonicity(a_p, a_d):
    dev = ExpDevice(a_p, a_d, 65)
    g = np.linspace(0, 1, 33, dtype=np.float32)
    for n in (1, 5, 64, 1000):
        up, down = npy(dev.potentiate(g, n)), npy(dev.depress(g, n))
        assert np.all((up >= g - 1e-7) & (up <= 1)) and np.all((down <= g + 1e-7) & (down >= 0))
        assert np.all(np.diff(up) >= -1e-7) and np.all(np.diff(down) >= -1e-7)  # order kept
    assert np.all(npy(dev.potentiate(g, 64)) == 1.0) and np.all(npy(dev.depress(g, 64)) == 0.0)
    assert np.all(npy(dev.pulse(g, np.zeros_like(g))) == g)
    _, resp = dev.response()
    assert np.all(np.diff(resp[:65]) > 0) and np.all(np.diff(resp[64:]) < 0)


def test_saturating_and_accelerating_step_sizes():
    _, sat = ExpDevice(0.5, 0.5, 101).response()
    steps = np.diff(sat[:101])
    assert np.all(np.diff(steps) < 0)  # A > 0: steps shrink toward Gmax
    _, acc = ExpDevice(-0.5, -0.5, 101).response()
    assert np.all(np.diff(np.diff(acc[:101])) > 0)  # A < 0: steps grow
    # depression with A_d > 0 saturates toward Gmin: LTD steps shrink too
    assert np.all(np.diff(-np.diff(sat[100:])) < 0)


def test_up_then_down_is_not_identity_when_asymmetric():
    g = np.float32([0.3, 0.5, 0.7])
    asym = ExpDevice(0.3, 2.0, 101)
    back = npy(asym.depress(asym.potentiate(g, 10), 10))
    assert np.all(np.abs(back - g) > 1e-3)
    lin = LinearDevice(101)
    np.testing.assert_allclose(npy(lin.depress(lin.potentiate(g, 10), 10)), g, atol=1e-6)
    # walking back down the LTP curve (A_d = -A_p) is the identity, the original post's model
    walk = ExpDevice(0.5, -0.5, 101)
    p = np.float32([20, 50, 70])
    np.testing.assert_allclose(npy(walk.depress(walk.level(p), 10)), npy(walk.level(p - 10)), atol=2e-6)


def test_depression_lowers_g():
    for a_p, a_d in CURVES:
        dev = ExpDevice(a_p, a_d, 101)
        g = np.float32([0.2, 0.5, 0.9])
        assert np.all(npy(dev.pulse(g, -np.ones(3))) < g)


def test_per_device_parameters_broadcast():
    a_p = np.array([[0.3, 1.0, np.inf], [-0.5, 2.0, 0.8]])
    dev = ExpDevice(a_p, 0.5, 101)
    g = np.full((2, 3), 0.4, np.float32)
    got = npy(dev.potentiate(g, 3))
    for idx in np.ndindex(2, 3):
        assert got[idx] == pytest.approx(reference_pulse(0.4, 3, a_p[idx], 0.5, 100), abs=2e-6)


def test_pulses_lost_at_the_bounds():
    dev = LinearDevice(101)
    g = np.float32([1.0, 0.0, 0.98, 0.02, 0.5, 1.0])
    n = np.float32([1, -1, 5, -5, 3, -1])
    assert npy(dev.pulses_lost(g, n)).tolist() == [1, 1, 3, 3, 0, 0]
    sat = ExpDevice(0.8, 0.8, 101)
    g_top = npy(sat.level(np.float32([98])))
    assert npy(sat.pulses_lost(g_top, np.float32([5]))).tolist() == [3]


def test_nearest_state_snaps_to_levels():
    dev = ExpDevice(0.5, 0.5, 11)
    levels = npy(dev.level(np.arange(11, dtype=np.float32)))
    g = np.random.default_rng(0).uniform(0, 1, 100)
    p, snapped = dev.nearest_state(g)
    want = levels[np.abs(levels[None, :] - g[:, None]).argmin(axis=1)]
    np.testing.assert_allclose(npy(snapped), want, atol=1e-6)
    np.testing.assert_allclose(npy(dev.level(p)), npy(snapped), atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"a_p": 0.0}, "A_p"), ({"a_d": float("nan")}, "A_d"), ({"states": 1}, "states"), ({"states": 2.5}, "states"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExpDevice(**kwargs)


def test_config_round_trip_and_nl_constructor():
    dev = ExpDevice.from_nl(2.4, -4.88, 97)
    assert dev.a_p == pytest.approx(0.4992, abs=1e-3) and dev.a_d == pytest.approx(0.2003, abs=1e-3)
    again = ExpDevice.from_config(dev.get_config())
    assert (again.a_p, again.a_d, again.states) == (dev.a_p, dev.a_d, 97)
    assert dev.get_config()["nl_ltd"] == pytest.approx(-4.88, abs=1e-3)


def test_equivalences_with_neurosim_and_aihwkit():
    """docs/devices.md section 4: NeuroSim's G(P) = B(1 - exp(-P/A_ns)) + Gmin with A_ns = A * N, and
    aihwkit's soft-bounds step dg = (s - g)(1 - exp(-1/(N A)))."""
    a, num, gmin, gmax = 0.37, 96, 2e-6, 25e-6
    dev = ExpDevice(a, a, num + 1)
    p = np.arange(num + 1)
    b = (gmax - gmin) / (1 - np.exp(-num / (a * num)))
    g_neurosim = (b * (1 - np.exp(-p / (a * num))) + gmin - gmin) / (gmax - gmin)
    np.testing.assert_allclose(npy(dev.level(p.astype(np.float32))), g_neurosim, atol=2e-6)
    s = 1 / (1 - np.exp(-1 / a))
    g = np.float32([0.0, 0.3, 0.8])
    np.testing.assert_allclose(npy(dev.potentiate(g, 1)) - g, (s - g) * (1 - np.exp(-1 / (num * a))), atol=2e-7)
