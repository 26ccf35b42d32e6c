"""Self-checks of the numpy reference implementations (tests/algorithms_reference.py).

Fast (well under a second each) and independent of Keras, except the one
cross-check that the reference device model is devsim's.
"""

import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import brentq

import algorithms_reference as R

AG_SI = R.ExpDevice(a_p=0.4991809157811427, a_d=0.20030325878128413, n_p=96)  # devsim's ag-si preset
LINEAR = R.ExpDevice(n_p=20)


# --- device model ------------------------------------------------------------


def test_device_model_matches_devsim():
    import devsim
    from keras import ops

    rng = np.random.default_rng(0)
    g = rng.uniform(size=(30, 20)).astype(np.float32)
    n = rng.integers(-40, 41, size=g.shape).astype(np.float32)
    xi = rng.standard_normal(g.shape).astype(np.float32)
    for a_p, a_d, c2c in [(0.5, 0.2, 0.0), (-0.8, 0.3, 0.02), (math.inf, 0.4, 0.01), (math.inf, math.inf, 0.0)]:
        ours = R.apply_pulses(g, n, R.ExpDevice(a_p, a_d, 96, c2c=c2c), xi)
        theirs, _ = devsim.ExpDevice(a_p, a_d, 97, c2c=c2c).apply_pulses(g, n, xi=xi)
        np.testing.assert_allclose(ours, ops.convert_to_numpy(theirs), atol=2e-6)


def test_levels_follow_the_ltp_curve():
    p = np.arange(97)
    x = p / 96
    expected = -np.expm1(-x / AG_SI.a_p) / -np.expm1(-1 / AG_SI.a_p)
    np.testing.assert_allclose(R.level(p, AG_SI), expected, atol=1e-12)


def test_one_pulse_steps_are_what_apply_pulses_does():
    g = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(R.apply_pulses(g, 1.0, AG_SI) - g, R.step_up(g, AG_SI), atol=1e-12)
    np.testing.assert_allclose(g - R.apply_pulses(g, -1.0, AG_SI), R.step_down(g, AG_SI), atol=1e-12)


# --- symmetry point ----------------------------------------------------------


@pytest.mark.parametrize("a_p, a_d, n_p, n_d", [
    (0.4991809157811427, 0.20030325878128413, 96, None),
    (0.1, 0.9, 50, None), (2.0, 0.3, 200, 100), (0.5, math.inf, 64, None), (-0.5, -0.2, 40, None),
])
def test_symmetry_point_closed_form_against_root_finding(a_p, a_d, n_p, n_d):
    dev = R.ExpDevice(a_p, a_d, n_p, n_d)
    g_star = R.symmetry_point(dev)
    root = brentq(lambda g: float(R.step_up(g, dev) - R.step_down(g, dev)), -5.0, 6.0, xtol=1e-14)
    assert g_star == pytest.approx(root, abs=1e-10)
    if 0 <= root <= 1:
        assert R.symmetry_point_numeric(lambda g: R.step_up(g, dev), lambda g: R.step_down(g, dev)) == \
            pytest.approx(root, abs=1e-12)
    assert bool(R.symmetry_point_is_attracting(dev)) == (a_p > 0 and a_d > 0)


def test_ag_si_symmetry_point_is_a_third_of_the_range():
    assert R.symmetry_point(AG_SI) == pytest.approx(0.32982, abs=1e-5)


@pytest.mark.parametrize("a", [0.05, 0.3, 1.0, 5.0, -0.7])
def test_symmetric_device_has_its_symmetry_point_at_mid_range(a):
    assert R.symmetry_point(R.ExpDevice(a, a, 80)) == pytest.approx(0.5, abs=1e-12)


def test_linear_devices_have_no_single_symmetry_point():
    assert np.isnan(R.symmetry_point(LINEAR))
    assert R.reference_conductance(LINEAR) == 0.5


def test_symmetry_point_per_device_under_device_to_device_variation():
    rng = np.random.default_rng(1)
    a_p = 0.5 * np.exp(0.3 * rng.standard_normal((6, 5)))
    a_d = 0.2 * np.exp(0.3 * rng.standard_normal((6, 5)))
    dev = R.ExpDevice(a_p, a_d, 96)
    g_star = R.symmetry_point(dev)
    assert g_star.shape == (6, 5)
    for i, j in [(0, 0), (3, 2), (5, 4)]:
        one = R.ExpDevice(a_p[i, j], a_d[i, j], 96)
        assert g_star[i, j] == pytest.approx(R.symmetry_point(one), abs=1e-12)
    numeric = R.symmetry_point_numeric(lambda g: R.step_up(g, dev), lambda g: R.step_down(g, dev), (6, 5))
    np.testing.assert_allclose(numeric, g_star, atol=1e-12)


def test_numeric_symmetry_point_of_another_model():
    # a power-law model: up = 0.01 (1 - g)^2, down = 0.02 g  ->  (1 - g)^2 = 2 g
    up = lambda g: 0.01 * (1 - g) ** 2  # noqa: E731
    down = lambda g: 0.02 * g  # noqa: E731
    assert R.symmetry_point_numeric(up, down) == pytest.approx(2 - math.sqrt(3), abs=1e-12)
    assert np.isnan(R.symmetry_point_numeric(lambda g: 0.01 + 0 * g, lambda g: 0.02 + 0 * g))


def test_alternating_pulses_find_the_symmetry_point_within_a_step():
    g = R.symmetry_point_by_pulsing(AG_SI, np.array([0.0, 0.3, 1.0]))
    step = R.step_up(R.symmetry_point(AG_SI), AG_SI)
    assert np.all(np.abs(g - R.symmetry_point(AG_SI)) < step)
    assert np.ptp(g) < 1e-9  # the same two-cycle from anywhere


def test_zero_shifted_read():
    g_star = R.symmetry_point(AG_SI)
    assert R.weights(g_star, R.reference_conductance(AG_SI), 0.7) == pytest.approx(0.0, abs=1e-15)
    g = np.linspace(0, 1, 11)
    np.testing.assert_allclose(R.weights(g, 0.5, 0.7), 0.7 * (2 * g - 1))  # devsim's ReferenceMapping
    np.testing.assert_allclose(R.weights(g, g_star, 1.0), 2 * (g - g_star))
    # random up/down pulses leave a zero-shifted weight at zero on average
    rng = np.random.default_rng(2)
    g = np.full(20_000, g_star)
    for _ in range(300):
        g = R.apply_pulses(g, np.where(rng.uniform(size=g.shape) < 0.5, 1.0, -1.0), AG_SI)
    assert abs(np.mean(R.weights(g, g_star))) < 0.02
    assert abs(np.mean(R.weights(g, 0.5))) > 0.3  # the mid-range reference is biased by 2 (0.5 - g*)


def test_reference_programming_error():
    xi = np.array([1.0, -2.0])
    np.testing.assert_allclose(R.reference_conductance(AG_SI, sigma=0.01, xi=xi), R.symmetry_point(AG_SI) + [0.01, -0.02])


# --- pulse rules -------------------------------------------------------------


def test_pulse_rules():
    dw = np.array([-0.07, -0.02, 0.0, 0.011, 0.5])
    assert R.sign_pulses(dw).tolist() == [-1, -1, 0, 1, 1]
    assert R.proportional_pulses(dw, 0.02, 100).tolist() == [-4, -1, 0, 1, 25]
    u = np.random.default_rng(3).uniform(size=200_000)
    n = R.stochastic_pulses(np.full(u.shape, 0.013), 0.01, 100, u)
    assert set(np.unique(n)) == {1.0, 2.0}
    assert n.mean() == pytest.approx(1.3, abs=0.005)


# --- transfer algorithms -----------------------------------------------------


def _tiles(shape=(6, 4), dev=AG_SI, ref="symmetry"):
    g0 = np.full(shape, R.reference_conductance(dev, ref) if ref != "mid" else 0.5)
    return R.TransferState.new(g0, g0, R.reference_conductance(dev, ref), R.reference_conductance(dev, ref))


def _draws(seed, shape):
    return R.transfer_draws(np.random.default_rng(seed), shape)


def test_ttv2_with_infinite_threshold_never_touches_c():
    rng = np.random.default_rng(4)
    cfg = R.TransferConfig(fast_lr=0.5, n_reads_per_transfer=2, threshold=math.inf, read_noise=0.05)
    s = _tiles()
    c0 = s.g_c.copy()
    expected_h = np.zeros_like(s.h)
    for t in range(40):
        grad = rng.standard_normal(s.g_a.shape) * 0.05
        s, info = R.transfer_step(s, grad, 0.1, AG_SI, AG_SI, cfg, _draws(t, grad.shape), "ttv2")
        expected_h[info["rows"]] += 0.1 / R.dw_min(AG_SI) * info["reads"]
    np.testing.assert_array_equal(s.g_c, c0)
    np.testing.assert_allclose(s.h, expected_h, rtol=1e-12, atol=1e-12)
    assert np.any(s.g_a != c0)  # A did learn


def test_ttv2_reads_rows_in_order_and_wraps():
    cfg = R.TransferConfig(n_reads_per_transfer=4, transfer_every=2, threshold=math.inf)
    s = _tiles()
    rows = []
    for t in range(6):
        s, info = R.transfer_step(s, np.zeros(s.g_a.shape), 0.1, AG_SI, AG_SI, cfg, _draws(t, s.g_a.shape))
        rows.append(info["rows"].tolist())
    assert rows == [[], [0, 1, 2, 3], [], [4, 5, 0, 1], [], [2, 3, 4, 5]]
    assert s.transfer_counter == 2


def test_ttv2_buffer_fires_whole_pulses_and_forgets():
    # linear noise-free devices: A holds exactly what it was given, H grows linearly
    dev = R.ExpDevice(n_p=64)  # dw_min = 1/32: exact in binary
    cfg = R.TransferConfig(fast_lr=1.0, n_reads_per_transfer=3, transfer_lr=0.3, scale_transfer_lr=False)
    s = R.TransferState.new(np.full((3, 2), 0.5), np.full((3, 2), 0.5))
    grad = -np.array([[2, -1], [0, 3], [-4, 1]]) * R.dw_min(dev)  # A: +2, -1, 0, 3, -4, 1 pulses
    s, info = R.transfer_step(s, grad, 0.1, dev, dev, cfg, _draws(0, (3, 2)))
    np.testing.assert_array_equal(info["n_a"], -grad / R.dw_min(dev))
    # H = 0.3 / dw_min * (k dw_min) = 0.3 k  -> fires where |0.3 k| >= 1: k = 4 (-1.2 -> -1 pulse), 3 (0.9: no)
    np.testing.assert_allclose(info["n_c"], [[0, 0], [0, 0], [-1, 0]])
    np.testing.assert_allclose(s.h, [[0.6, -0.3], [0, 0.9], [0, 0.3]], atol=1e-12)  # forget_buffer: fired -> 0
    np.testing.assert_allclose(R.weights(s.g_c, 0.5), info["n_c"] * R.dw_min(dev), atol=1e-12)
    # second step without gradient: A still holds its values, H accumulates again
    s, info = R.transfer_step(s, np.zeros((3, 2)), 0.1, dev, dev, cfg, _draws(1, (3, 2)))
    np.testing.assert_allclose(info["n_c"], [[1, 0], [0, 1], [-1, 0]])
    # max_steps caps the pulses of one transfer; forget_buffer=False keeps the remainder
    cfg2 = dataclasses.replace(cfg, transfer_lr=1.3, max_steps=3, forget_buffer=False)
    s2 = R.TransferState.new(np.full((3, 2), 0.5), np.full((3, 2), 0.5))
    s2, info = R.transfer_step(s2, grad, 0.1, dev, dev, cfg2, _draws(0, (3, 2)))
    np.testing.assert_allclose(info["n_c"], [[2, -1], [0, 3], [-3, 1]])
    np.testing.assert_allclose(s2.h, [[0.6, -0.3], [0, 0.9], [-2.2, 0.3]], atol=1e-12)


def test_chopped_ttv2_without_chopping_is_ttv2():
    rng = np.random.default_rng(5)
    cfg = R.TransferConfig(fast_lr=0.5, n_reads_per_transfer=2, read_noise=0.02, transfer_lr=2.0)
    a, b = _tiles(), _tiles()
    dev = dataclasses.replace(AG_SI, c2c=0.01)
    for t in range(30):
        grad = rng.standard_normal(a.g_a.shape) * 0.05
        a, _ = R.transfer_step(a, grad, 0.1, dev, dev, cfg, _draws(t, grad.shape), "ttv2")
        b, _ = R.transfer_step(b, grad, 0.1, dev, dev, cfg, _draws(t, grad.shape), "cttv2")
    for f in ("g_a", "g_c", "h"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_chopper_flips_what_a_learns_but_not_what_h_sees():
    dev = R.ExpDevice(n_p=64)
    cfg = R.TransferConfig(fast_lr=1.0, n_reads_per_transfer=3, threshold=math.inf, transfer_lr=1.0,
                           scale_transfer_lr=False, in_chop_prob=0.5, in_chop_random=True)
    s = R.TransferState.new(np.full((3, 2), 0.5), np.full((3, 2), 0.5))
    s.c_in = np.array([1.0, -1.0, 1.0])
    s.c_out = np.array([1.0, -1.0])
    grad = -np.ones((3, 2)) * R.dw_min(dev)
    draws = _draws(0, (3, 2))
    draws["u_in"] = np.array([0.9, 0.1, 0.1])  # rows 1 and 2 flip after their read
    s, info = R.transfer_step(s, grad, 0.1, dev, dev, cfg, draws, "cttv2")
    c = np.outer([1, -1, 1], [1, -1])
    np.testing.assert_array_equal(info["n_a"], c)  # A learns the chopped gradient
    np.testing.assert_allclose(s.h, np.ones((3, 2)), atol=1e-12)  # the read is sign corrected
    np.testing.assert_array_equal(s.c_in, [1, 1, -1])


def test_regular_chopper_period():
    cfg = R.TransferConfig(n_reads_per_transfer=2, threshold=math.inf, in_chop_prob=0.25, in_chop_random=False)
    s = _tiles(shape=(2, 3))
    signs = []
    for t in range(10):
        s, _ = R.transfer_step(s, np.zeros((2, 3)), 0.1, AG_SI, AG_SI, cfg, _draws(t, (2, 3)), "cttv2")
        signs.append(s.c_in[0])
    assert signs == [1, 1, 1, -1, -1, -1, -1, 1, 1, 1]  # flips every 4 sweeps (ceil(1/0.25))


def test_agad_dynamic_reference_cancels_a_static_offset():
    # A sits at a constant offset (its reference is misplaced) and gets no gradient:
    # TTv2 transfers the offset into C, AGAD (after its first chopper period) does not.
    dev = R.ExpDevice(n_p=100)
    shape = (4, 3)
    g_a = np.full(shape, 0.6)  # 0.2 above the reference: w_A = 0.2
    cfg = R.TransferConfig(n_reads_per_transfer=4, transfer_lr=0.5, scale_transfer_lr=False,
                           in_chop_prob=0.5, in_chop_random=False, tail_weightening=2.0)
    ttv2 = R.TransferState.new(g_a, np.full(shape, 0.5))
    agad = R.TransferState.new(g_a, np.full(shape, 0.5))
    n_ttv2 = n_agad = 0
    for t in range(40):
        d = _draws(t, shape)
        ttv2, i1 = R.transfer_step(ttv2, np.zeros(shape), 0.1, dev, dev, cfg, d, "ttv2")
        agad, i2 = R.transfer_step(agad, np.zeros(shape), 0.1, dev, dev, cfg, d, "agad")
        n_ttv2 += np.abs(i1["n_c"]).sum()
        n_agad += np.abs(i2["n_c"]).sum()
    assert n_ttv2 > 100
    assert n_agad == 0
    np.testing.assert_allclose(agad.past_mean, 0.2, atol=1e-12)


def test_agad_follows_a_chopped_signal():
    # a constant gradient written through the chopper: A's reads alternate around its
    # offset and AGAD's difference to the past mean carries the sign of the gradient
    dev = R.ExpDevice(n_p=1000)
    shape = (2, 2)
    cfg = R.TransferConfig(fast_lr=1.0, n_reads_per_transfer=2, transfer_lr=0.05, scale_transfer_lr=False,
                           in_chop_prob=0.25, in_chop_random=False, tail_weightening=4.0)
    s = R.TransferState.new(np.full(shape, 0.7), np.full(shape, 0.5))  # offset 0.4 in A
    grad = -np.array([[1.0, -1.0], [2.0, 0.0]]) * R.dw_min(dev)
    total = np.zeros(shape)
    for t in range(200):
        s, info = R.transfer_step(s, grad, 0.1, dev, dev, cfg, _draws(t, shape), "agad")
        total += info["n_c"]
    assert np.all(np.sign(total) == np.sign(-grad))
    assert total[1, 0] > total[0, 0] > 0


def test_ttv1_transfers_reads_as_stochastic_pulses():
    dev = R.ExpDevice(n_p=64)
    cfg = R.TransferConfig(fast_lr=1.0, n_reads_per_transfer=3, transfer_lr=0.5, scale_transfer_lr=False)
    s = R.TransferState.new(np.full((3, 2), 0.5), np.full((3, 2), 0.5))
    grad = -np.array([[2, -1], [0, 3], [-4, 1]]) * R.dw_min(dev)
    d = _draws(0, (3, 2))
    s, info = R.transfer_step(s, grad, 0.1, dev, dev, cfg, d, "ttv1")
    r = 0.5 * np.abs(grad) / R.dw_min(dev)
    np.testing.assert_array_equal(info["n_c"], -np.sign(grad) * (np.floor(r) + (d["u_c"] < r - np.floor(r))))


def test_forward_weights_gamma():
    s = _tiles(ref="mid")
    s.g_a += 0.1
    s.g_c -= 0.05
    np.testing.assert_allclose(R.transfer_weights(s, R.TransferConfig()), -0.1)
    np.testing.assert_allclose(R.transfer_weights(s, R.TransferConfig(gamma=0.5)), -0.1 + 0.5 * 0.2)


# --- mixed precision ---------------------------------------------------------


def test_mixed_precision_applies_whole_pulses_exactly():
    dev = R.ExpDevice(n_p=50)
    eps = R.dw_min(dev)
    rng = np.random.default_rng(6)
    s = R.MixedPrecisionState.new(np.full((5, 4), 0.5))
    lr, total_chi, total_pulses = 0.1, np.zeros((5, 4)), np.zeros((5, 4))
    for _ in range(25):
        grad = rng.standard_normal((5, 4)) * 0.3
        total_chi -= lr * grad
        s, info = R.mixed_precision_step(s, lr, dev, R.MixedPrecisionConfig(), grad=grad)
        total_pulses += info["pulses"]
        assert np.all(np.abs(s.chi) < eps)
    # every pulse was whole, chi holds the rest, the device holds exactly the pulses
    np.testing.assert_allclose(total_pulses * eps + s.chi, total_chi, atol=1e-12)
    np.testing.assert_allclose(R.weights(s.g, 0.5), total_pulses * eps, atol=1e-12)


def test_mixed_precision_accumulates_small_gradients():
    dev = R.ExpDevice(n_p=64)
    eps = R.dw_min(dev)
    s = R.MixedPrecisionState.new(np.full((1, 1), 0.5))
    pulses = []
    for _ in range(10):
        s, info = R.mixed_precision_step(s, 1.0, dev, R.MixedPrecisionConfig(), grad=np.full((1, 1), -0.375 * eps))
        pulses.append(info["pulses"][0, 0])
    assert pulses == [0, 0, 1, 0, 0, 1, 0, 1, 0, 0]  # floor(0.375 k) - floor(0.375 (k - 1))
    assert s.chi[0, 0] == pytest.approx(0.75 * eps, abs=1e-15)
    assert R.weights(s.g, 0.5)[0, 0] == pytest.approx(3 * eps, abs=1e-15)


def test_mixed_precision_negative_and_partial_transfers():
    dev = R.ExpDevice(n_p=64)
    eps = R.dw_min(dev)
    cfg = R.MixedPrecisionConfig(n_rows_per_transfer=1, transfer_every=2)
    s = R.MixedPrecisionState.new(np.full((2, 3), 0.5))
    grad = np.array([[2.5, -1.7, 0.2], [-3.9, 0.0, 4.2]]) * eps
    s, info = R.mixed_precision_step(s, 1.0, dev, cfg, grad=grad)
    assert not info["pulses"].any()  # transfer_every=2
    s, info = R.mixed_precision_step(s, 1.0, dev, cfg, grad=np.zeros((2, 3)))
    np.testing.assert_array_equal(info["pulses"], [[-2, 0, 0], [3, 0, 0]])  # trunc toward zero, column 0 only
    np.testing.assert_allclose(s.chi[:, 0], [-0.5 * eps, 0.9 * eps], atol=1e-12)
    s, _ = R.mixed_precision_step(s, 1.0, dev, cfg, grad=np.zeros((2, 3)))
    s, info = R.mixed_precision_step(s, 1.0, dev, cfg, grad=np.zeros((2, 3)))
    np.testing.assert_array_equal(info["pulses"], [[0, 1, 0], [0, 0, 0]])  # then column 1


def test_mixed_precision_quantized_outer_product():
    x = np.array([[0.1, -0.4, 0.25, 0.0]])
    d = np.array([[1.0, -0.3]])
    qx = R.quantize_bins(x, 5)  # half = 2, width 0.2: levels -0.4 .. 0.4
    np.testing.assert_allclose(qx, [[0.0, -0.4, 0.2, 0.0]])  # 0.5 -> 0 (half to even), 1.25 -> 1
    u = np.array([[0.9, 0.5, 0.3, 0.0]])
    np.testing.assert_allclose(R.quantize_bins(x, 5, u), [[0.2, -0.4, 0.2, 0.0]])
    dev = R.ExpDevice(n_p=50)
    cfg = R.MixedPrecisionConfig(n_x_bins=5, n_d_bins=3, stoc_round_x=False, stoc_round_d=False, transfer_every=0)
    s, _ = R.mixed_precision_step(R.MixedPrecisionState.new(np.full((4, 2), 0.5)), 0.5, dev, cfg, x=x, d=d)
    np.testing.assert_allclose(s.chi, -0.5 * qx.T @ R.quantize_bins(d, 3))
    np.testing.assert_allclose(R.quantize_bins(d, 3), [[1.0, 0.0]])


# --- periphery ---------------------------------------------------------------


def test_resolution_steps():
    assert R.resolution_step(1 / 126, 1.0) == pytest.approx(1 / 63)  # 127 levels on [-1, 1]
    assert R.resolution_step(1 / 254, 1.0) == pytest.approx(1 / 127)  # 8 bits: 255 levels
    assert R.resolution_step(126, 1.0) == pytest.approx(1 / 63)  # a number of steps
    assert R.resolution_step(1 / 510, 12.0) == pytest.approx(24 / 510)
    assert R.resolution_step(0, 1.0) == 0 and R.resolution_step(-1, 1.0) == 0


def test_dac_and_adc_hit_exact_levels():
    io = R.IOConfig(out_noise=0.0, bound_management="none", noise_management="none", out_res=-1)
    x = np.array([[0.5, 0.75, -0.2, 1.7, -3.0]])
    y, _ = R.analog_mvm(x, np.eye(5), io)
    np.testing.assert_allclose(y, [[32 / 63, 47 / 63, -13 / 63, 1.0, -1.0]])  # 31.5 -> 32 (half to even)
    io = R.IOConfig(out_noise=0.0, bound_management="none", noise_management="none", inp_res=-1, out_bound=2.0,
                    out_res=1 / 8)  # ADC step 1/8 of the range 4 = 0.5: levels -2, -1.5, ..., 2
    y, _ = R.analog_mvm(np.array([[0.2, 0.3, 0.76, -0.65, 0.95]]), np.diag([2.0, 2, 2, 2, 3]), io)
    np.testing.assert_allclose(y, [[0.5, 0.5, 1.5, -1.5, 2.0]])  # 0.4, 0.6 -> 0.5; 1.52 -> 1.5; -1.3 -> -1.5; 2.85 -> 3 -> 2
    # stochastic rounding is unbiased
    io = R.IOConfig(out_noise=0.0, bound_management="none", noise_management="none", out_res=-1, inp_sto_round=True)
    rng = np.random.default_rng(7)
    draws = R.mvm_draws(rng, io, 100_000, 1, 1)
    y, _ = R.analog_mvm(np.full((100_000, 1), 0.3), np.ones((1, 1)), io, draws)
    assert set(np.round(np.unique(y) * 63)) == {18, 19}
    assert y.mean() == pytest.approx(0.3, abs=2e-4)


def test_noise_management_scales_inputs_and_outputs():
    io = R.IOConfig(out_noise=0.0, bound_management="none", inp_res=-1, out_res=-1)
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((5, 7)) * 3, rng.standard_normal((7, 4)) * 0.1
    y, _ = R.analog_mvm(x, w, io)
    np.testing.assert_allclose(y, x @ w, atol=1e-12)  # exact without quantization and noise
    io = R.IOConfig(out_noise=0.0, bound_management="none", out_res=-1)  # with the DAC: relative to max|x|
    y, _ = R.analog_mvm(x, w, io)
    a = np.max(np.abs(x), axis=1, keepdims=True)
    np.testing.assert_allclose(y, (np.rint(x / a * 63) / 63 * a) @ w, atol=1e-12)
    y, _ = R.analog_mvm(np.zeros((2, 7)), w, R.IOConfig())
    assert not y.any()


def test_output_noise_sigma():
    rng = np.random.default_rng(9)
    n = 40_000
    io = R.IOConfig(out_noise=0.06, bound_management="none", inp_res=-1, out_res=-1)
    x = np.tile([[0.5, -2.0, 1.0]], (n, 1))  # max|x| = 2: the noise is referred back times 2
    w = np.array([[0.3], [0.1], [-0.2]])
    y, _ = R.analog_mvm(x, w, io, R.mvm_draws(rng, io, n, 3, 1))
    assert np.std(y - x @ w) == pytest.approx(0.12, rel=0.02)
    assert abs(np.mean(y - x @ w)) < 0.003
    io = R.IOConfig(out_noise=0.0, w_noise=0.02, w_noise_type="additive_constant", bound_management="none",
                    noise_management="none", inp_res=-1, out_res=-1)
    x = np.tile([[0.5, -1.0, 1.0]], (n, 1))
    y, _ = R.analog_mvm(x, w, io, R.mvm_draws(rng, io, n, 3, 1))
    assert np.std(y - x @ w) == pytest.approx(0.02 * 1.5, rel=0.02)  # w_noise * ||x||_2
    io = dataclasses.replace(io, w_noise_type="pcm_read")
    y, _ = R.analog_mvm(x, w, io, R.mvm_draws(rng, io, n, 3, 1))
    assert np.std(y - x @ w) == pytest.approx(0.02 * math.sqrt(0.25 * 0.3 + 0.1 + 0.2), rel=0.02)


def test_iterative_bound_management():
    io = R.IOConfig(out_noise=0.0, inp_res=-1, out_res=-1, out_bound=12.0)
    assert R.bm_rounds(io) == 1 + int(math.log2(1000)) + 1  # without a DAC only max_bm_factor limits: 1..1024
    assert R.bm_rounds(R.IOConfig()) == 5  # 7-bit DAC: factors 1, 2, 4, 8, 16
    x = np.ones((3, 40)) * np.array([[1.0], [0.2], [1.0]])
    w = np.zeros((40, 2))
    w[:, 0] = 1.0  # output 0 sums 40 inputs
    w[:, 1] = np.r_[np.full(20, 1.0), np.full(20, -1.0)]
    x[2, 20:] = -1.0  # sample 2: output 1 reaches -40
    y, f = R.analog_mvm(x, w, io)
    np.testing.assert_allclose(y, x @ w, atol=1e-12)  # halving the inputs until |y| <= 12, then scaling back
    np.testing.assert_array_equal(f, [4, 4, 4])  # 40/4 = 10 <= 12 (sample 1: 8/0.2... alpha = 0.2 -> same)
    # the DAC-resolution limit stops at 16, the output stays clipped
    y, f = R.analog_mvm(np.ones((1, 400)), np.ones((400, 1)), R.IOConfig(out_noise=0.0, out_res=-1))
    assert f[0] == 16 and y[0, 0] == pytest.approx(12 * 16)
    # without bound management the output clips at once
    y, _ = R.analog_mvm(x, w, dataclasses.replace(io, bound_management="none"))
    np.testing.assert_allclose(y[0], [12, 0])


def test_backward_uses_the_transpose_without_bound_management():
    rng = np.random.default_rng(10)
    w = rng.standard_normal((6, 3))
    d = rng.standard_normal((4, 3))
    io = R.IOConfig(out_noise=0.0, inp_res=-1, out_res=-1, out_bound=0.5)
    y, f = R.analog_mvm(d, w, io, backward=True)
    a = np.max(np.abs(d), axis=1, keepdims=True)
    np.testing.assert_allclose(y, np.clip(d / a @ w.T, -0.5, 0.5) * a, atol=1e-12)
    assert np.all(f == 1)


def test_perfect_periphery():
    x, w = np.ones((2, 3)), np.full((3, 2), 0.5)
    y, _ = R.analog_mvm(x, w, R.IOConfig(is_perfect=True, out_scale=2.0))
    np.testing.assert_allclose(y, 3.0)
