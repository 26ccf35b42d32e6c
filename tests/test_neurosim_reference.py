"""Self-checks of the numpy reference of MLP+NeuroSim V3.0 (tests/neurosim_reference.py).

Exact values where the arithmetic gives them (hand-computed pulse counts,
ADC codes, glibc's rand()), the regenerated getParamA table against the
values NeuroSim prints, the table lookup against devsim's exact labels, and
the noise-free write against the closed form of the curves.
"""

import ctypes
import ctypes.util
import math

import numpy as np
import pytest

import neurosim_reference as ref

AG_SI = ref.preset("ag-si")


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # glibc only
        return libc
    except (OSError, AttributeError, TypeError):
        return None


# --- glibc rand(), initial weights, image draws -----------------------------


def test_glibc_rand_known_values():
    assert list(ref.GlibcRand(2).rand(3)) == [1505335290, 1738766719, 190686788]
    assert list(ref.GlibcRand(1).rand(3)) == [1804289383, 846930886, 1681692777]
    assert list(ref.GlibcRand(0).rand(5)) == list(ref.GlibcRand(1).rand(5))  # glibc: srand(0) is srand(1)


@pytest.mark.skipif(_libc() is None, reason="needs glibc")
def test_glibc_rand_matches_libc():
    libc = _libc()
    for seed in (0, 2, 7, 123456):
        libc.srand(seed)
        expected = [libc.rand() for _ in range(1000)]
        assert list(ref.GlibcRand(seed).rand(1000)) == expected


def test_initial_weights_grid_and_order():
    w1, w2 = ref.initial_weights(16, 8, 10)
    r = ref.GlibcRand(2).rand(16 * 8 + 10 * 8)
    assert w1.shape == (8, 16) and w2.shape == (10, 8)
    assert w1[0, 0] == (1505335290 % 7 - 3) / 3 == 1 / 3
    np.testing.assert_array_equal(w1.ravel(), (r[:128] % 7 - 3) / 3.0)  # weight1[j][k], k fastest
    np.testing.assert_array_equal(w2.ravel(), (r[128:] % 7 - 3) / 3.0)
    assert set(np.unique(np.concatenate([w1.ravel(), w2.ravel()]) * 3).round(9)) <= {-3, -2, -1, 0, 1, 2, 3}


def test_image_indices_are_rand_mod_n():
    idx = ref.image_indices(ref.GlibcRand(0), 4000, 5)
    np.testing.assert_array_equal(idx, np.array([1804289383, 846930886, 1681692777, 1714636915, 1957747793]) % 4000)


# --- data ---------------------------------------------------------------------


def test_prepare_images_crop_and_threshold():
    img = np.zeros((1, 28, 28))
    img[0, 4, 4] = 0.5  # first kept pixel, exactly at the threshold: 1
    img[0, 4, 5] = 0.4999
    img[0, 23, 23] = 1.0  # last kept pixel
    img[0, 3, 3] = 1.0  # outside the central 20 x 20
    x = ref.prepare_images(img)
    assert x.shape == (1, 400) and x.dtype == np.uint8
    assert x[0, 0] == 1 and x[0, 1] == 0 and x[0, 399] == 1 and x.sum() == 2


# --- rounding and pulse counts --------------------------------------------------


def test_truncate_and_round_th():
    assert ref.truncate(0.25, 2) == 0.5  # 0.5 -> rounds up (>= threshold)
    assert ref.truncate(-0.25, 2) == -0.5  # half away from zero
    assert ref.truncate(0.26, 2) == 0.5 and ref.truncate(0.24, 2) == 0.0 and ref.truncate(0.76, 2) == 1.0 and ref.truncate(0.7, 2) == 0.5
    assert ref.truncate(0.3, 1, 0.5) == 0.0 and ref.truncate(0.7, 1, 0.5) == 1.0
    assert ref.round_th(0.5, 0.5) == 1.0 and ref.round_th(0.4999, 0.5) == 0.0 and ref.round_th(-1.5, 0.5) == -2.0
    assert ref.truncate(0.123, 0) == 0.123  # numLevel <= 0: no truncation


@pytest.mark.parametrize("dw,expected", [
    (2.4 * 2 / 97, 2),       # |dw| / (2/97) = 2.4 -> 2
    (2.5 * 2 / 97, 3),       # 2.5 -> 3 (half up)
    (7 * 2 / 97, 6),         # 7 requested, (7/97)*97 = 6.999... -> (int) gives 6
    (-0.05, -3),             # LTD uses maxNumLevelLTD = 100: 2.5 -> -3
    (-29 * 2 / 100, -28),    # 29 requested, (29/100)*100 = 28.999... -> -28
    (-28 * 2 / 100, -28),
    (2.0, 97), (-2.0, -100),  # a full-range change: a full sweep
    (3.0, 146),              # no cap: 145.5 -> 146 pulses
    (1e-9, 0), (0.0, 0), (-0.4 * 2 / 100, 0),
])
def test_pulse_counts_hand_cases(dw, expected):
    assert int(ref.pulse_counts(dw, AG_SI)) == expected


def test_pulse_count_quirk_list():
    """The requests (int)((k/N)*N) turns into k-1, for Ag:a-Si's N = 97 (LTP) and 100 (LTD)."""
    k = np.arange(1, 120)
    lost_ltp = k[ref.pulse_counts(k * 2.0 / 97, AG_SI) != k]
    lost_ltd = k[-ref.pulse_counts(-k * 2.0 / 100, AG_SI) != k]
    assert list(lost_ltp) == [7, 14, 25, 28, 31, 50, 53, 56, 59, 62, 100, 106, 112, 118]
    assert list(lost_ltd) == [29, 57, 58, 113, 114, 115, 116]
    assert ref.pulse_counts(k * 2.0 / 64, ref.preset("epiram")).tolist() == k.tolist()  # powers of 2: exact


# --- NL label -> A ------------------------------------------------------------------


NEUROSIM_TABLE = {0.01: 126.268958, 0.02: 63.134314, 0.03: 42.089359, 0.06: 21.044185, 0.07: 18.037668,
                  0.12: 10.521102, 2.35: 0.510959, 2.40: 0.499181, 9.00: 0.022810}
"""Entries of getParamA's table (formula.cpp), as NeuroSim prints them."""


def test_regenerated_table_matches_neurosim():
    table = ref.param_a_table()
    assert table.shape == (900,)
    for label, value in NEUROSIM_TABLE.items():
        assert table[round(label * 100) - 1] == pytest.approx(value, abs=1e-9)
    assert np.all(np.diff(table) < 0)


def test_table_index_truncation():
    assert ref.table_index(2.4) == 239 and ref.table_index(-4.88) == 487
    assert ref.table_index(0.29) == 27  # 0.29 * 100 = 28.999999999999996
    assert ref.table_index(0.105) == 9  # three decimals: label 0.10
    assert ref.table_index(0) == 0 and ref.table_index(12) == 899
    assert ref.param_a(0) == -126.268958  # label 0 is not linear in NeuroSim: A = -126.27
    assert ref.param_a(2.4) == 0.499181 and ref.param_a(-4.88) == -ref.param_a_table()[487]


def test_table_against_devsim_labels():
    nonlinearity = pytest.importorskip("devsim.nonlinearity")
    labels = ref.TABLE_LABELS
    exact = nonlinearity.a_from_nl(labels)
    table = ref.param_a_table()
    # devsim's NL unit (0.098995) differs from NeuroSim's (0.07 sqrt 2) by 5e-7 relative (up to 5e-6 in A),
    # and the table is rounded to 6 decimals
    assert np.all(np.abs(table - exact) <= 5.01e-7 + 5e-6 * exact)
    assert np.all(np.abs(table - ref.a_of_nl(labels)) <= 5.0e-7)
    # exact variant: the same as devsim's label conversion (to the NL-unit difference)
    for label in (2.4, 0.29, 0.105, 4.89, 1.46):
        assert ref.param_a(label, exact=True) == pytest.approx(nonlinearity.a_p_from_label(label), rel=2e-6)
    # where the lookup truncates, NeuroSim's A is the previous label's
    assert ref.param_a(0.29) == table[27] and ref.param_a(0.29) != pytest.approx(nonlinearity.a_p_from_label(0.29), rel=1e-3)
    assert ref.param_a(0.105) == pytest.approx(nonlinearity.a_p_from_label(0.10), rel=1e-5)
    assert ref.param_a(0.105) / nonlinearity.a_p_from_label(0.105) == pytest.approx(1.05, abs=0.01)
    # signs: NeuroSim's LTD A has the label's sign; devsim's A_d has the opposite
    for label in (-4.88, -0.5, 1.46, 2.4):
        assert -ref.param_a(label) == pytest.approx(nonlinearity.a_d_from_label(label), rel=2e-6)


# --- the device write -------------------------------------------------------------------


def _closed_form(g, n, a_norm, n_levels):
    a = a_norm * n_levels
    s = 1 / (1 - np.exp(-n_levels / a))
    return g + (s - g) * (1 - np.exp(-n / a))


def test_write_noise_free_closed_form():
    rng = np.random.default_rng(0)
    g = rng.uniform(0, 1, 500)
    n = rng.integers(-30, 31, 500)
    got = ref.write(g, n, AG_SI)
    expected = np.where(n > 0, _closed_form(g, n, AG_SI.a_ltp, 97), _closed_form(g, n, AG_SI.a_ltd, 100))
    np.testing.assert_allclose(got, np.clip(expected, 0, 1), rtol=0, atol=1e-12)
    assert np.all(got[n == 0] == g[n == 0])


def test_write_full_sweeps_and_bounds():
    one = ref.write(np.array([0.0]), np.array([97]), AG_SI)
    assert one[0] == pytest.approx(1.0, abs=1e-12)
    zero = ref.write(np.array([1.0]), np.array([-100]), AG_SI)
    assert zero[0] == pytest.approx(0.0, abs=1e-12)
    assert ref.write(np.array([0.9]), np.array([200]), AG_SI)[0] == 1.0  # past Gmax: clipped
    assert ref.write(np.array([0.1]), np.array([-200]), AG_SI)[0] == 0.0
    # first LTP step from Gmin: s (1 - exp(-1/(a N))), saturating (A > 0): the largest step
    a = AG_SI.a_ltp * 97
    step0 = ref.write(np.array([0.0]), np.array([1]), AG_SI)[0]
    assert step0 == pytest.approx((1 - math.exp(-1 / a)) / (1 - math.exp(-97 / a)), rel=1e-12)
    assert step0 > 1 / 97
    # NL_LTD = -4.88 -> A < 0: the first LTD step from Gmax is the largest too (saturating depression)
    first_ltd = 1 - ref.write(np.array([1.0]), np.array([-1]), AG_SI)[0]
    last_ltd = ref.write(np.array([1.0]), np.array([-99]), AG_SI)[0]
    assert first_ltd > 1 / 100 > last_ltd


def test_ltd_equals_devsim_depression_formula():
    """NeuroSim's LTD (A < 0 on the LTP-shaped curve) is devsim's g_ltd with A_d = -A."""
    a_d = -AG_SI.a_ltd
    s_d = 1 / (1 - math.exp(-1 / a_d))
    g = np.linspace(0, 1, 41)
    k = 7
    devsim_form = g - (g - 1 + s_d) * (1 - np.exp(-k / (100 * a_d)))
    np.testing.assert_allclose(ref.write(g, np.full_like(g, -k), AG_SI), np.clip(devsim_form, 0, 1), atol=1e-12)


def test_write_against_devsim_expdevice():
    devices = pytest.importorskip("devsim.devices")
    dev = devices.ExpDevice(AG_SI.a_ltp, -AG_SI.a_ltd, states=98, states_ltd=101)  # N = states - 1
    rng = np.random.default_rng(1)
    g = rng.uniform(0, 1, 300).astype(np.float32)
    n = rng.integers(-20, 21, 300).astype(np.float32)
    got = np.asarray(dev.pulse(g, n))
    np.testing.assert_allclose(got, ref.write(g.astype(np.float64), n, AG_SI), atol=2e-6)


def test_linear_write_and_c2c():
    lin = ref.preset("linear")
    g = np.array([0.0, 0.5, 0.5, 1.0])
    n = np.array([3, -10, 0, 5])
    np.testing.assert_allclose(ref.write(g, n, lin), [3 / 97, 0.4, 0.5, 1.0], atol=1e-15)
    xi = np.array([1.0, -2.0, 5.0, 0.5])
    dev = lin.replace(c2c=0.01)
    np.testing.assert_allclose(ref.write(g, n, dev, xi),
                               [3 / 97 + 0.01 * math.sqrt(3), 0.4 - 0.02 * math.sqrt(10), 0.5, 1.0], atol=1e-15)
    assert ref.write(np.array([0.0]), np.array([-1]), dev, np.array([-3.0]))[0] == 0.0  # clipped at Gmin


# --- reads, mapping, ADC ---------------------------------------------------------------


def test_initial_conductance_gmin_offset_bug():
    g = ref.weight_to_conductance(np.array([-1.0, -1 / 3, 1 / 3, 1.0]), AG_SI)
    offset = AG_SI.g_min / (AG_SI.g_max - AG_SI.g_min)  # 1/11.5
    np.testing.assert_allclose(g, [0.0, 1 / 3 - offset, 2 / 3 - offset, 1 - offset], atol=1e-12)
    np.testing.assert_allclose(ref.weight_to_conductance(np.array([-1.0, 0.0, 1.0]), AG_SI, gmin_offset_bug=False),
                               [0.0, 0.5, 1.0], atol=1e-12)


def test_weight_read_back():
    dev = AG_SI.replace(r_access=0.0, r_wire=0.0)
    g = np.linspace(0, 1, 11)[None, :]
    np.testing.assert_allclose(ref.conductance_to_weight(g, dev, ref.series_rho(g.shape, dev)), 2 * g - 1, atol=1e-12)
    # with the access transistor the read-back is slightly nonlinear but keeps the ends
    rho = ref.series_rho(g.shape, AG_SI)
    w = ref.conductance_to_weight(g, AG_SI, rho)
    assert w[0, 0] == pytest.approx(-1, abs=1e-5) and abs(w[0, 5]) < 1e-3 and w[0, -1] == pytest.approx(1, abs=1e-5)


def test_array_read_hand_computed():
    dev = ref.Device(g_max=1.0, g_min=0.1, r_access=0.0, r_wire=0.0)  # on/off 10, no series resistance
    g = np.array([[1.0, 1.0, 0.0, 0.5]])
    bits = np.array([1, 1, 1, 0])
    out, digits = ref.array_read(bits, g, dev, ref.series_rho(g.shape, dev), return_digits=True)
    # Isum = 2.1, Iref = 3 * 0.55 = 1.65, step = 4 * 0.9 / 255: codes 148 and 116
    assert digits[0] == 2 * (148 - 116)
    assert out[0] == pytest.approx(64 / 255 * 4)
    assert abs(out[0] - np.sum(bits * (2 * g[0] - 1))) <= 2 * 4 / 255  # ~ sum of w over active inputs


def test_array_read_batch_and_hidden_digitization():
    rng = np.random.default_rng(2)
    net = ref.init_network(16, 8, 10, device=AG_SI)
    x = rng.integers(0, 2, (16, 5))
    out1 = ref.array_read(x, net.g1, AG_SI, net.rho1)
    for i in range(5):
        np.testing.assert_array_equal(out1[:, i], ref.array_read(x[:, i], net.g1, AG_SI, net.rho1))
    quantum = 2 * 16 / 255
    assert np.allclose(out1 / quantum, np.round(out1 / quantum))
    a1, da1, _ = ref.forward(net, x)
    np.testing.assert_array_equal(da1, (out1 >= 0).astype(float))  # da1 = 1 iff a1 >= 0.5, out1 = 0 included


# --- optimizers ---------------------------------------------------------------------------


def test_optimizers_first_and_later_steps():
    g = np.array([1.0, -2.0])
    sgd = ref.Optimizer("SGD", (0.4, 0.2))
    np.testing.assert_allclose(sgd.delta(1, g, True), [-0.2, 0.4])
    adam = ref.Optimizer("Adam", (0.1, 0.1))
    np.testing.assert_allclose(adam.delta(0, g, True), -0.1 * g / (np.abs(g) + 0.2))  # m = v = 0
    np.testing.assert_allclose(adam.state[0]["m"], 0.9 * g)
    np.testing.assert_allclose(adam.state[0]["v"], 0.3 * g**2)
    v = 0.3 * g**2
    np.testing.assert_allclose(adam.delta(0, g, False), -0.1 * g / (np.sqrt((0.7 * v + 0.3 * g**2) / 0.3) + 0.2))
    mom = ref.Optimizer("Momentum", (0.5, 0.5))
    np.testing.assert_allclose(mom.delta(0, g, True), -0.5 * g)
    mom.delta(0, g, False)
    np.testing.assert_allclose(mom.delta(0, g, True), -(0.1 * 0.5 * g + 0.5 * g))  # m = 0.5 g from epoch 1
    np.testing.assert_allclose(mom.state[0]["m"], 0.9 * 0.5 * g + 0.5 * 2 * g)
    ada = ref.Optimizer("Adagrad", (1.0, 1.0))
    np.testing.assert_allclose(ada.delta(0, g, True), -g / 0.1)
    np.testing.assert_allclose(ada.delta(0, g, False), -g / (np.abs(g) + 0.1))
    rms = ref.Optimizer("RMSprop", (1.0, 1.0))
    np.testing.assert_allclose(rms.delta(0, g, True), -g / (np.sqrt(0.5) * np.abs(g) + 0.2))


# --- the whole step and a tiny network -------------------------------------------------------


def test_train_step_bookkeeping_tiny_network():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (6, 16)).astype(np.uint8)
    y = rng.integers(0, 10, 6)
    net = ref.init_network(16, 8, 10, device=AG_SI)
    g1, g2 = net.g1.copy(), net.g2.copy()
    a1, _, a2 = ref.forward(net, x[0])
    s1, s2 = ref.backward(net, a1, a2, int(y[0]))
    out = ref.train_step(net, x[0], int(y[0]), first=True)
    np.testing.assert_array_equal(out["n1"], ref.pulse_counts(-0.4 * np.outer(s1, x[0]), AG_SI))
    np.testing.assert_array_equal(out["n2"], ref.pulse_counts(-0.2 * np.outer(s2, a1), AG_SI))
    assert np.all(net.g1[out["n1"] == 0] == g1[out["n1"] == 0])
    np.testing.assert_array_equal(net.g1, ref.write(g1, out["n1"], AG_SI))
    np.testing.assert_array_equal(net.g2, ref.write(g2, out["n2"], AG_SI))
    np.testing.assert_allclose(net.w1, ref.conductance_to_weight(net.g1, AG_SI, net.rho1))  # every weight read back
    np.testing.assert_allclose(net.w2, ref.conductance_to_weight(net.g2, AG_SI, net.rho2))
    stats = ref.train_epoch(net, x, y, np.arange(6), np.random.default_rng(0))
    assert stats["layer1_pulses_ltp"] >= 0 and 0 <= stats["train_accuracy"] <= 1
    assert 0 <= ref.evaluate(net, x, y) <= 1


def test_software_mode_learns_a_tiny_problem():
    rng = np.random.default_rng(4)
    protos = rng.integers(0, 2, (10, 16))
    y = np.tile(np.arange(10), 20)
    x = protos[y]
    net = ref.init_network(16, 8, 10, device=None)
    before = ref.train_epoch(net, x, y, rng.permutation(200))["sse"]
    for _ in range(5):
        after = ref.train_epoch(net, x, y, rng.permutation(200))["sse"]
    assert after < before
    assert np.all(np.abs(net.w1) <= 1) and np.all(np.abs(net.w2) <= 1)
