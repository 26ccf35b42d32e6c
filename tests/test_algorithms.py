"""devsim's algorithm tiles (devsim.algorithms, devsim.tiles, devsim.symmetry) against the numpy
reference (tests/algorithms_reference.py), fed devsim's own counter-based draws."""

import dataclasses
import math

import keras
import numpy as np
import pytest
from scipy.optimize import brentq

import algorithms_reference as R
import devsim
from devsim import algorithms as A
from devsim import symmetry
from devsim.options import FieldError

AG_SI = devsim.ExpDevice(a_p=0.4991809157811427, a_d=0.20030325878128413, states=97)


@pytest.fixture(autouse=True)
def fresh_keras_names():
    """Layers made here are unnamed: reset Keras's name counters after each test, so tests that run
    later in the process (the README's example) see the layer names they expect."""
    yield
    keras.backend.clear_session()


def ref_device(dev):
    return R.ExpDevice(a_p=dev.a_p, a_d=dev.a_d, n_p=dev.num_pulses, n_d=dev.num_pulses_ltd, c2c=dev.c2c,
                       c2c_mode=dev.c2c_mode)


# --- symmetry point -----------------------------------------------------------


@pytest.mark.parametrize("a_p, a_d, states, states_ltd", [
    (0.4991809157811427, 0.20030325878128413, 97, 97), (0.1, 0.9, 51, 51), (2.0, 0.3, 201, 101),
    (0.5, math.inf, 65, 65), (-0.5, -0.2, 41, 41)])
def test_symmetry_point_of_the_exponential_model_against_a_root_find(a_p, a_d, states, states_ltd):
    dev = devsim.ExpDevice(a_p, a_d, states, states_ltd=states_ltd)
    g_star = symmetry.symmetry_point(dev)

    def up_minus_down(g):  # one pulse each way through devsim's own numpy curve math, unclipped
        return float(symmetry.step_up(g, dev) - symmetry.step_down(g, dev))

    root = brentq(up_minus_down, -5.0, 6.0, xtol=1e-14)
    assert g_star == pytest.approx(root, abs=1e-10)
    assert g_star == pytest.approx(R.symmetry_point(ref_device(dev)), abs=1e-12)
    if 0.05 < root < 0.95:  # the numeric path (any device kind) through devsim's tensor-op pulses
        assert symmetry.symmetry_point(dev, method="numeric") == pytest.approx(root, abs=2e-5)


def test_one_pulse_steps_are_what_the_device_does():
    g = np.linspace(0.05, 0.95, 19).astype(np.float32)
    up, down = symmetry._pulse_steps(AG_SI, g.shape)
    np.testing.assert_allclose(up(g), symmetry.step_up(g, AG_SI), atol=2e-7)
    np.testing.assert_allclose(down(g), symmetry.step_down(g, AG_SI), atol=2e-7)


@pytest.mark.parametrize("a", [0.05, 0.3, 1.0, 5.0, -0.7])
def test_symmetric_device_has_its_symmetry_point_at_mid_range(a):
    dev = devsim.ExpDevice(a, a, 81)
    assert symmetry.symmetry_point(dev) == pytest.approx(0.5, abs=1e-12)
    assert symmetry.symmetry_point(dev, method="numeric") == pytest.approx(0.5, abs=1e-4)


def test_linear_device_has_no_single_symmetry_point():
    dev = devsim.LinearDevice(33)
    assert math.isnan(symmetry.symmetry_point(dev))
    assert math.isnan(symmetry.symmetry_point(dev, method="numeric"))
    assert symmetry.reference_conductance(dev) == 0.5
    assert "none" in symmetry.describe(dev)


def test_symmetry_point_per_device_under_d2d():
    dev = dataclasses.replace(AG_SI, d2d=0.5)
    population = dev.sample((6, 5), seed=3)
    g = symmetry.symmetry_point(population)
    assert g.shape == (6, 5) and np.ptp(g) > 0.01
    ref = R.symmetry_point(R.ExpDevice(population.model.a_p, population.model.a_d, 96))
    np.testing.assert_allclose(g, ref, atol=1e-12)
    np.testing.assert_allclose(symmetry.symmetry_point(population, (6, 5), method="numeric"), g, atol=2e-5)


def test_ag_si_symmetry_point():
    assert symmetry.symmetry_point(AG_SI) == pytest.approx(0.32982, abs=1e-5)
    assert "0.3298" in symmetry.describe(AG_SI)


# --- helpers --------------------------------------------------------------------


def tiny_model(n_in=6, n_out=4, seed=0, init="glorot_uniform"):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(n_out, use_bias=False, kernel_initializer=init,
                                                                      name="layer")])


def driven(algorithm, device, shape=(6, 4), lr=0.1, seed=0, pulses="stochastic"):
    """A one-layer model whose optimizer we step by hand with chosen gradients."""
    model = tiny_model(*shape)
    opt = devsim.DeviceOptimizer(keras.optimizers.SGD(lr), device, pulses=pulses, seed=seed, algorithm=algorithm)
    opt.build(model.trainable_variables)
    return model, opt


def transfer_config(alg, device):
    fields = {f.name for f in dataclasses.fields(R.TransferConfig)}
    values = {k: v for k, v in alg.get_config().items() if k in fields}
    values["read_noise"] = alg.read_noise_a
    return R.TransferConfig(w_max=1.0, **values)


def reference_state(tile):
    s = tile.state()
    shape = s["g_a"].shape
    state = R.TransferState.new(s["g_a"], s["g"].reshape(shape), s["g_ref_a"], s["g_ref_c"].reshape(shape))
    return state


ALGORITHM_NAMES = {"ttv2": "ttv2", "c-ttv2": "cttv2", "agad": "agad"}


@pytest.mark.parametrize("alg, device", [
    (A.TikiTakaV2(fast_lr=0.5, n_reads_per_transfer=2, transfer_lr=20.0, read_noise_a=0.02), dataclasses.replace(AG_SI, c2c=0.01)),
    (A.TikiTakaV2(fast_lr=0.3, n_reads_per_transfer=4, transfer_every=2, transfer_lr=30.0, max_steps=2, auto_scale=True,
                  auto_pulses=3, forget_buffer=False, momentum=0.2, buffer_cap=2.0), AG_SI),
    (A.ChoppedTTv2(fast_lr=0.5, n_reads_per_transfer=4, transfer_lr=20.0, in_chop_prob=0.3, out_chop_prob=0.2),
     dataclasses.replace(AG_SI, c2c=0.01)),
    (A.ChoppedTTv2(fast_lr=0.5, n_reads_per_transfer=3, transfer_lr=20.0, in_chop_prob=0.4, in_chop_random=False), AG_SI),
    (A.AGAD(fast_lr=0.5, n_reads_per_transfer=4, transfer_lr=20.0, in_chop_prob=0.5, tail_weightening=2.0), AG_SI),
    (A.AGAD(fast_lr=0.5, n_reads_per_transfer=5, transfer_lr=20.0, in_chop_prob=0.4, in_chop_random=True), devsim.ExpDevice(0.3, 0.6, 41)),
], ids=["ttv2", "ttv2-options", "cttv2-random", "cttv2-regular", "agad", "agad-random"])
def test_transfer_tile_matches_the_reference_step_by_step(alg, device):
    shape = (6, 4)
    model, opt = driven(alg, device, shape)
    tile = opt.tiles[0]
    state = reference_state(tile)
    if tile.chopped:
        state.c_in, state.c_out = tile.state()["c_in"].astype(float), tile.state()["c_out"].astype(float)
    cfg = transfer_config(alg, device)
    rdev = ref_device(device)
    rng = np.random.default_rng(1)
    fired = 0
    for t in range(40):
        grad = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        if tile.chopped and t % 7 == 3:
            grad = np.zeros(shape, np.float32)  # A rests: its offset alone reaches H
        draws = tile.transfer_draws(opt._program_steps.value)
        state, info = R.transfer_step(state, grad, 0.1, rdev, rdev, cfg, draws, ALGORITHM_NAMES[alg.name])
        opt.apply([keras.ops.convert_to_tensor(grad)], model.trainable_variables)
        s = tile.state()
        np.testing.assert_allclose(s["g_a"], state.g_a, atol=2e-5, err_msg=f"A, step {t}")
        np.testing.assert_allclose(s["g"], state.g_c, atol=2e-5, err_msg=f"C, step {t}")
        np.testing.assert_allclose(s["h"], state.h, atol=2e-4, rtol=1e-4, err_msg=f"H, step {t}")
        assert s["row"] == state.ptr and s["sweeps"] == state.transfer_counter
        if tile.chopped:
            np.testing.assert_array_equal(s["c_in"], state.c_in)
            np.testing.assert_array_equal(s["c_out"], state.c_out)
        if tile.agad:
            np.testing.assert_allclose(s["mean"], state.mean, atol=2e-5)
            np.testing.assert_allclose(s["past_mean"], state.past_mean, atol=2e-5)
            np.testing.assert_array_equal(s["switched"], state.switched)
        np.testing.assert_allclose(model.layers[0].kernel.numpy(), R.transfer_weights(state, cfg), atol=5e-5)
        fired += int(np.sum(info["n_c"] != 0))
    assert fired > 0  # C did learn: the comparison covered transfers


def test_ttv2_with_infinite_thresholds_trains_a_alone():
    shape = (6, 4)
    alg = A.TikiTakaV2(fast_lr=0.5, n_reads_per_transfer=3, threshold=math.inf)
    model, opt = driven(alg, AG_SI, shape)
    tile = opt.tiles[0]
    c0, w0 = tile.state()["g"].copy(), model.layers[0].kernel.numpy().copy()
    g_a = tile.state()["g_a"].astype(np.float64)
    rdev = ref_device(AG_SI)
    rng = np.random.default_rng(2)
    for t in range(30):
        grad = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        u = tile.transfer_draws(opt._program_steps.value)["u_a"]
        g_a = R.apply_pulses(g_a, R.stochastic_pulses(-0.5 * grad, 2.0 / 96, 96, u), rdev)  # A alone, by hand
        opt.apply([keras.ops.convert_to_tensor(grad)], model.trainable_variables)
    np.testing.assert_allclose(tile.state()["g_a"], g_a, atol=2e-5)
    np.testing.assert_array_equal(tile.state()["g"], c0)  # C never changed
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), w0)
    assert np.any(np.abs(tile.state()["h"]) > 0)


def test_ttv2_with_gamma_and_infinite_thresholds_learns_on_a():
    x, y = separable()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax", use_bias=False)])
    alg = A.TikiTakaV2(fast_lr=0.5, n_reads_per_transfer=4, threshold=math.inf, gamma=1.0)
    opt = devsim.DeviceOptimizer(keras.optimizers.SGD(0.1), devsim.ExpDevice(0.5, 0.5, 65), seed=0, algorithm=alg)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    w0 = model.get_weights()
    c0 = None
    model.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[devsim.ProgramDevices()])
    c0 = opt.tiles[0].state()["g"]
    assert model.evaluate(x, y, verbose=0)[1] > 0.9
    assert w0 is not None and np.all(c0 == opt.tiles[0].state()["g"])


def separable(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] - 0.5 * x[:, 1] > 0).astype("int64")


# --- zero shifting ---------------------------------------------------------------


def test_zero_shift_reads_against_the_symmetry_point():
    model, opt = driven("zero-shift", AG_SI)
    tile = opt.tiles[0]
    s = tile.state()
    g_star = symmetry.symmetry_point(AG_SI)
    np.testing.assert_allclose(s["g_ref"], g_star, atol=1e-7)
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), 2 * (s["g"] - g_star), atol=1e-6)
    # steps: the plain SGD rule on the zero-shifted read, with devsim's draws
    rng = np.random.default_rng(3)
    g = s["g"].astype(np.float64)
    rdev = ref_device(AG_SI)
    for t in range(10):
        grad = (rng.standard_normal(g.shape) * 0.2).astype(np.float32)
        u = keras.ops.convert_to_numpy(tile._noise(opt._program_steps.value)[0])
        w = model.layers[0].kernel.numpy()
        dw = (w - 0.1 * grad) - w  # the inner SGD's proposal, as the tile sees it
        g = R.apply_pulses(g, R.stochastic_pulses(dw, 2.0 / 96, 96, u), rdev)
        opt.apply([keras.ops.convert_to_tensor(grad)], model.trainable_variables)
        np.testing.assert_allclose(tile.state()["g"], g, atol=2e-5)


def test_zero_shift_random_pulses_stay_at_weight_zero():
    # alternating up/down pulses drift every device to g*: weight 0 for zero shifting, -0.34 for mid-range
    model, opt = driven("zero-shift", AG_SI, shape=(50, 40), pulses="sign")
    sgd_model, sgd = driven("sgd", AG_SI, shape=(50, 40), pulses="sign")
    rng = np.random.default_rng(0)
    for t in range(300):
        grad = np.where(rng.uniform(size=(50, 40)) < 0.5, 1.0, -1.0).astype(np.float32)
        opt.apply([keras.ops.convert_to_tensor(grad)], model.trainable_variables)
        sgd.apply([keras.ops.convert_to_tensor(grad)], sgd_model.trainable_variables)
    assert abs(model.layers[0].kernel.numpy().mean()) < 0.03
    assert sgd_model.layers[0].kernel.numpy().mean() == pytest.approx(2 * (0.3298 - 0.5), abs=0.05)


def test_zero_shift_reference_programming_error_is_drawn_once():
    _, opt = driven(A.ZeroShift(reference_std=0.02), AG_SI, shape=(40, 30))
    ref = opt.tiles[0].state()["g_ref"]
    assert np.std(ref - symmetry.symmetry_point(AG_SI)) == pytest.approx(0.02, rel=0.15)
    _, again = driven(A.ZeroShift(reference_std=0.02), AG_SI, shape=(40, 30))
    np.testing.assert_array_equal(again.tiles[0].state()["g_ref"], ref)


# --- mixed precision ----------------------------------------------------------------


def test_mixed_precision_equals_a_numpy_reimplementation_step_by_step():
    """Linear noise-free device, one softmax layer: numpy forward/backward, chi, whole pulses."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=160)
    n = 32
    device = devsim.LinearDevice(n + 1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax", use_bias=False)])
    opt = devsim.DeviceOptimizer(keras.optimizers.SGD(0.5), device, seed=0, algorithm=A.MixedPrecision(granularity=1.5 / n))
    model.compile(opt, "sparse_categorical_crossentropy")
    opt.build(model.trainable_variables)
    g = opt.tiles[0].state()["g"].astype(np.float64)
    chi = np.zeros_like(g)
    eps, dw_min = 1.5 / n, 2.0 / n
    for step in range(10):
        xb, yb = x[16 * step:16 * step + 16], y[16 * step:16 * step + 16]
        w = 2 * g - 1
        logits = xb @ w
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = xb.T @ (p - np.eye(3)[yb]) / len(xb)
        chi -= 0.5 * grad
        k = np.trunc(chi / eps)
        chi -= k * eps
        g = np.clip(g + np.round(k * eps / dw_min) / n, 0.0, 1.0)
        model.train_on_batch(xb, yb)
        np.testing.assert_allclose(opt.tiles[0].state()["g"], g, atol=1e-6, err_msg=f"step {step}")
        np.testing.assert_allclose(opt.tiles[0].state()["chi"], chi, atol=1e-5)
        np.testing.assert_allclose(model.layers[0].kernel.numpy(), 2 * g - 1, atol=2e-6)


@pytest.mark.parametrize("alg", [A.MixedPrecision(), A.MixedPrecision(transfer_every=3, n_rows_per_transfer=3, granularity=0.01,
                                                                        transfer_lr=2.0)])
def test_mixed_precision_matches_the_reference(alg):
    device = dataclasses.replace(AG_SI, c2c=0.01)
    shape = (6, 4)
    model, opt = driven(alg, device, shape)
    tile = opt.tiles[0]
    state = R.MixedPrecisionState.new(tile.state()["g"], 0.5)
    cfg = R.MixedPrecisionConfig(granularity=alg.granularity, transfer_lr=alg.transfer_lr, transfer_every=alg.transfer_every,
                                 n_rows_per_transfer=alg.n_rows_per_transfer)
    rng = np.random.default_rng(4)
    for t in range(12):
        grad = (rng.standard_normal(shape) * 0.3).astype(np.float32)
        xi = keras.ops.convert_to_numpy(tile._noise(opt._program_steps.value)[1])
        state, _ = R.mixed_precision_step(state, 0.1, ref_device(device), cfg, grad=grad, draws={"xi": xi})
        opt.apply([keras.ops.convert_to_tensor(grad)], model.trainable_variables)
        np.testing.assert_allclose(tile.state()["g"], state.g, atol=2e-5)
        np.testing.assert_allclose(tile.state()["chi"], state.chi, atol=1e-5)


# --- the API ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", A.NAMES)
def test_every_algorithm_learns_saves_and_reloads(name, tmp_path):
    x, y = separable()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(2, activation="softmax", name="out")])
    alg = A.get(name)
    if isinstance(alg, A.TikiTakaV2):
        alg = dataclasses.replace(alg, fast_lr=0.5, n_reads_per_transfer=4, transfer_lr=5.0,
                                  **({"in_chop_prob": 0.2} if isinstance(alg, A.ChoppedTTv2) else {}))
    opt = devsim.DeviceOptimizer(keras.optimizers.SGD(0.1), devsim.ExpDevice(0.5, 0.3, 65), seed=1, algorithm=alg)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[devsim.ProgramDevices()])
    assert model.evaluate(x, y, verbose=0)[1] > 0.85, name
    assert [type(t).kind for t in opt.tiles] == [A.ALGORITHMS[name].tile] * 2
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.algorithm == opt.algorithm
    for a, b in zip(loaded.optimizer.tiles, opt.tiles):
        for key, value in b.state().items():
            np.testing.assert_array_equal(a.state()[key], value)
        np.testing.assert_array_equal(a.variable.numpy(), b.variable.numpy())


def test_same_seed_same_results():
    results = []
    for _ in range(2):
        x, y = separable()
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        alg = A.ChoppedTTv2(fast_lr=0.5, n_reads_per_transfer=2, in_chop_prob=0.3, read_noise_a=0.01)
        opt = devsim.DeviceOptimizer(keras.optimizers.SGD(0.1), devsim.ExpDevice(0.5, 0.3, 65, c2c=0.01), seed=5, algorithm=alg)
        model.compile(opt, "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
        results.append(opt.tiles[0].state())
    for key in results[0]:
        np.testing.assert_array_equal(results[0][key], results[1][key])


@pytest.mark.parametrize("make, field", [
    (lambda: A.TikiTakaV2(fast_lr=-1), "fast_lr"),
    (lambda: A.TikiTakaV2(n_reads_per_transfer=0), "n_reads_per_transfer"),
    (lambda: A.TikiTakaV2(reference_a="zero"), "reference_a"),
    (lambda: A.ChoppedTTv2(in_chop_prob=1.5), "in_chop_prob"),
    (lambda: A.ChoppedTTv2(gamma=0.5), "gamma"),
    (lambda: A.AGAD(in_chop_prob=0.0), "in_chop_prob"),
    (lambda: A.MixedPrecision(granularity=0.0), "granularity"),
    (lambda: A.MixedPrecision(n_rows_per_transfer=0), "n_rows_per_transfer"),
    (lambda: A.ZeroShift(reference_std=-0.1), "reference_std"),
    (lambda: A.get("tiki-taka"), "algorithm"),
    (lambda: A.algorithm_from_config({"name": "ttv2", "granularity": 0.1}), "granularity"),
])
def test_bad_parameters_are_one_line_value_errors(make, field):
    with pytest.raises(FieldError) as err:
        make()
    assert err.value.field == field and "\n" not in str(err.value)


def test_algorithms_that_need_batch_updates_or_the_reference_mapping_say_so():
    with pytest.raises(ValueError, match="update='batch'"):
        devsim.DeviceOptimizer("sgd", AG_SI, update="epoch", algorithm="ttv2")
    with pytest.raises(ValueError, match="reference mapping"):
        devsim.DeviceOptimizer("sgd", AG_SI, mapping=devsim.DifferentialMapping(), algorithm="zero-shift")
    assert devsim.DeviceOptimizer("sgd", AG_SI, update="epoch", algorithm="zero-shift").algorithm.name == "zero-shift"


def test_get_config_round_trip():
    for name in A.NAMES:
        alg = A.get(name)
        assert A.algorithm_from_config(alg.get_config()) == alg
    opt = devsim.DeviceOptimizer("sgd", AG_SI, algorithm=A.AGAD(in_chop_prob=0.05))
    assert devsim.DeviceOptimizer.from_config(opt.get_config()).algorithm == A.AGAD(in_chop_prob=0.05)


@pytest.mark.parametrize("name", ["ttv2", "mixed-precision", "zero-shift"])
def test_conv_kernels_are_matrices_of_rows(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 2)).astype(np.float32)
    y = (x[:, :3].mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3, use_bias=False), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax", use_bias=False)])
    alg = A.TikiTakaV2(n_reads_per_transfer=5, fast_lr=0.5) if name == "ttv2" else name
    opt = devsim.DeviceOptimizer(keras.optimizers.SGD(0.1), AG_SI, seed=0, algorithm=alg)
    model.compile(opt, "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    tile = opt.tiles[0]
    assert tile.state()["g"].shape == (3, 3, 2, 3)
    if name == "ttv2":
        assert tile.state()["g_a"].shape == (18, 3) and tile.state()["row"] == (8 * 5) % 18


@pytest.mark.slow
def test_measured_table_device_symmetry_point_and_algorithms():
    """Another device kind: the numeric symmetry point, and the algorithms train on it."""
    from devsim import fitting, measured

    data = fitting.simulate_pulses(2e-6, 2e-5, 0.4, 0.25, 64, 64, cycles=20, c2c=0.0, seed=1)
    table = measured.table_from_data(data)
    exp = devsim.ExpDevice(0.4, 0.25, 65)
    assert symmetry.symmetry_point(table) == pytest.approx(symmetry.symmetry_point(exp), abs=0.03)
    x, y = separable()
    for alg in ("zero-shift", A.TikiTakaV2(n_reads_per_transfer=4, fast_lr=0.5), "mixed-precision"):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax", use_bias=False)])
        opt = devsim.DeviceOptimizer(keras.optimizers.SGD(0.1), table, seed=0, algorithm=alg)
        model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        assert model.evaluate(x, y, verbose=0)[1] > 0.8, alg
