"""DeviceOptimizer and ProgramDevices: learning, reachable values, and the original loop."""

import math

import keras
import numpy as np
import pytest

from devsim import DeviceOptimizer, DifferentialMapping, ExpDevice, LinearDevice, ProgramDevices, StateInitializer


def separable(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] - 0.5 * x[:, 1] > 0).astype("int64")


def mlp(hidden=8, use_bias=False, kernel_initializer="glorot_uniform"):
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(hidden, activation="relu", use_bias=use_bias, kernel_initializer=kernel_initializer, name="dense_1"),
        keras.layers.Dense(2, activation="softmax", use_bias=use_bias, kernel_initializer=kernel_initializer, name="dense_2"),
    ])


def train(model, optimizer, epochs=5, callbacks=(), x=None, y=None):
    if x is None:
        x, y = separable()
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[ProgramDevices(), *callbacks])


@pytest.mark.parametrize("pulses", ["stochastic", "proportional", "sign"])
def test_batch_mode_learns_and_stays_on_devices(pulses):
    keras.utils.set_random_seed(0)
    device = LinearDevice(33)
    model = mlp()
    lr = {"stochastic": 0.2, "proportional": 0.5, "sign": 0.05}[pulses]
    opt = DeviceOptimizer(keras.optimizers.SGD(lr), device, pulses=pulses, seed=1, count_pulses=True)
    hist = train(model, opt, epochs=8)
    x, y = separable(seed=1)
    assert model.evaluate(x, y, verbose=0)[1] > 0.9
    for v, (layer, g) in zip(opt.device_variables, opt.device_states().items()):
        w = v.numpy()
        assert np.all((g >= 0) & (g <= 1))
        np.testing.assert_allclose(w, 2 * g - 1, atol=1e-6)  # weight == device value
        np.testing.assert_allclose(g * 32, np.round(g * 32), atol=1e-4)  # linear device: on the 33-level grid
        assert sum(hist.history[f"pulses_applied_{layer}"]) > 0


def test_nonlinear_device_weights_are_reachable_values():
    keras.utils.set_random_seed(0)
    device = ExpDevice(0.3, 0.6, 65)
    model = mlp()
    opt = DeviceOptimizer(keras.optimizers.SGD(0.2), device, pulses="stochastic", seed=0)
    train(model, opt, epochs=6)
    x, y = separable(seed=1)
    assert model.evaluate(x, y, verbose=0)[1] > 0.85
    for v, g in zip(opt.device_variables, opt.device_states().values()):
        np.testing.assert_allclose(v.numpy(), 2 * g - 1, atol=1e-6)
        assert np.all((g >= 0) & (g <= 1))


def test_build_snaps_initial_weights_to_states_and_biases_stay_float():
    keras.utils.set_random_seed(0)
    device = LinearDevice(11)
    model = mlp(use_bias=True)
    opt = DeviceOptimizer(keras.optimizers.SGD(0.1), device)
    opt.build(model.trainable_variables)
    assert [v.path.split("/")[-2] for v in opt.device_variables] == ["dense_1", "dense_2"]
    for v in opt.device_variables:
        w = v.numpy()
        np.testing.assert_allclose((w + 1) / 2 * 10, np.round((w + 1) / 2 * 10), atol=1e-5)
    train(model, opt, epochs=2)
    bias = model.layers[0].bias.numpy()
    assert np.any(np.abs(bias * 10 - np.round(bias * 10)) > 1e-3)  # biases are float, not on the grid


def test_per_device_curvature_array_and_per_layer_devices():
    keras.utils.set_random_seed(0)
    a_p = np.random.default_rng(0).uniform(0.2, 2.0, size=(4, 8))
    devices = {"dense_1": ExpDevice(a_p, 0.5, 65), "dense_2": LinearDevice(65)}
    model = mlp()
    opt = DeviceOptimizer(keras.optimizers.SGD(0.2), devices, seed=0)
    train(model, opt, epochs=3)
    g = opt.device_states()["dense_2"]
    np.testing.assert_allclose(g * 64, np.round(g * 64), atol=1e-4)
    with pytest.raises(ValueError, match="dense_2"):
        DeviceOptimizer(keras.optimizers.SGD(0.1), {"dense_1": LinearDevice()}).build(mlp().trainable_variables)


def test_conv2d_kernel_on_device_and_differential_pair():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten(),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ])
    opt = DeviceOptimizer(keras.optimizers.SGD(0.1), LinearDevice(21), mapping=DifferentialMapping(0.5), seed=0)
    x = np.random.default_rng(0).normal(size=(64, 6, 6, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    model.compile(opt, "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    states = opt.device_states()
    assert states["conv"].shape == (2, 3, 3, 1, 2)
    w = model.get_layer("conv").kernel.numpy()
    np.testing.assert_allclose(w, 0.5 * (states["conv"][0] - states["conv"][1]), atol=1e-6)


def original_loop(w_start, w_end, g, a_p, a_d, num):
    """The original post's per-weight loop, fixed: own states per layer, LTD on the
    depression curve, pulses past a bound ignored. Plain Python over every weight,
    stepping along the curves from their inverse (not devsim's closed form)."""
    g = g.astype(np.float64).copy()
    s_p, s_d = 1 / (1 - math.exp(-1 / a_p)), 1 / (1 - math.exp(-1 / a_d))
    applied = lost = 0
    for idx in np.ndindex(g.shape):
        if w_end[idx] > w_start[idx]:
            if g[idx] >= 1:
                lost += 1
                continue
            x = -a_p * math.log(1 - g[idx] / s_p)
            g[idx] = min(1.0, s_p * (1 - math.exp(-(x + 1 / num) / a_p)))
            applied += 1
        elif w_end[idx] < w_start[idx]:
            if g[idx] <= 0:
                lost += 1
                continue
            y = -a_d * math.log(1 - (1 - g[idx]) / s_d)
            g[idx] = 1 - min(1.0, s_d * (1 - math.exp(-(y + 1 / num) / a_d)))
            applied += 1
    return g, 2 * g - 1, applied, lost


class Snapshot(keras.callbacks.Callback):
    """Records kernels and device states at epoch begin and just before programming."""

    def __init__(self):
        super().__init__()
        self.records = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = [v.numpy().copy() for v in self.model.optimizer.device_variables]
        self.g = [g.copy() for g in self.model.optimizer.device_states().values()]

    def on_epoch_end(self, epoch, logs=None):
        end = [v.numpy().copy() for v in self.model.optimizer.device_variables]
        self.records.append((self.start, end, self.g))


def test_epoch_sign_matches_numpy_reimplementation_of_original_loop():
    keras.utils.set_random_seed(0)
    device = ExpDevice(0.8, 0.4, 21)  # asymmetric, few states so bounds are hit
    init = StateInitializer(device, seed=0)
    model = mlp(hidden=6, kernel_initializer=init)
    opt = DeviceOptimizer(keras.optimizers.SGD(0.05), device, pulses="sign", update="epoch")
    snap = Snapshot()
    model.compile(opt, "sparse_categorical_crossentropy")
    x, y = separable(256)
    hist = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[snap, ProgramDevices()])
    states = list(opt.device_states().values())
    for epoch, (start, end, g_start) in enumerate(snap.records):
        for layer, (w0, w1, g0) in enumerate(zip(start, end, g_start)):
            g_ref, w_ref, applied, lost = original_loop(w0, w1, g0, 0.8, 0.4, 20)
            if epoch == len(snap.records) - 1:
                np.testing.assert_allclose(states[layer], g_ref, atol=2e-6)
                np.testing.assert_allclose(opt.device_variables[layer].numpy(), w_ref, atol=4e-6)
            name = f"dense_{layer + 1}"
            assert hist.history[f"pulses_applied_{name}"][epoch] == applied
            assert hist.history[f"pulses_lost_{name}"][epoch] == lost
        if epoch + 1 < len(snap.records):  # the next epoch starts from the reference's result
            for layer, g_next in enumerate(snap.records[epoch + 1][2]):
                g_ref = original_loop(start[layer], end[layer], g_start[layer], 0.8, 0.4, 20)[0]
                np.testing.assert_allclose(g_next, g_ref, atol=2e-6)
    assert sum(hist.history["pulses_lost_dense_1"]) > 0  # the bounds were exercised


def test_epoch_mode_keeps_float_steps_until_programmed():
    keras.utils.set_random_seed(0)
    model = mlp()
    opt = DeviceOptimizer(keras.optimizers.SGD(0.05), LinearDevice(11), update="epoch")
    model.compile(opt, "sparse_categorical_crossentropy")
    x, y = separable(64)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # no ProgramDevices: weights drift in float
    w = opt.device_variables[0].numpy()
    assert np.any(np.abs((w + 1) / 2 * 10 - np.round((w + 1) / 2 * 10)) > 1e-3)
    opt.program()
    w = opt.device_variables[0].numpy()
    np.testing.assert_allclose((w + 1) / 2 * 10, np.round((w + 1) / 2 * 10), atol=1e-4)


def test_validation_and_config_round_trip():
    with pytest.raises(ValueError, match="pulses"):
        DeviceOptimizer("sgd", LinearDevice(), pulses="many")
    with pytest.raises(ValueError, match="update"):
        DeviceOptimizer("sgd", LinearDevice(), update="sometimes")
    with pytest.raises(ValueError, match="max_pulses"):
        DeviceOptimizer("sgd", LinearDevice(), max_pulses=0)
    with pytest.raises(ValueError, match="device"):
        DeviceOptimizer("sgd", "rram")
    opt = DeviceOptimizer(keras.optimizers.Adam(0.003), ExpDevice(0.5, -0.7, 33), DifferentialMapping(0.8, "push-pull"),
                          pulses="proportional", max_pulses=4, update="epoch", seed=3)
    again = DeviceOptimizer.from_config(opt.get_config())
    assert isinstance(again.inner_optimizer, keras.optimizers.Adam)
    assert float(again.learning_rate.numpy()) == pytest.approx(0.003)
    assert (again.device.a_p, again.device.a_d, again.device.states) == (0.5, -0.7, 33)
    assert (again.mapping.w_max, again.mapping.scheme) == (0.8, "push-pull")
    assert (again.pulses, again.max_pulses, again.update, again.seed) == ("proportional", 4, "epoch", 3)


def test_program_devices_requires_device_optimizer():
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = separable(32)
    with pytest.raises(TypeError, match="DeviceOptimizer"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ProgramDevices()])


def test_pulse_counting_is_off_by_default_in_batch_mode_and_changes_nothing():
    x, y = separable()
    states, histories = [], []
    for count in (None, True):
        keras.utils.set_random_seed(0)
        model = mlp()
        opt = DeviceOptimizer(keras.optimizers.SGD(0.2), ExpDevice(0.5, 0.3, 33, c2c=0.02), seed=1, count_pulses=count)
        assert opt.count_pulses is bool(count)
        histories.append(train(model, opt, epochs=2, x=x, y=y).history)
        states.append(opt.device_states())
    assert not any(k.startswith("pulses_") for k in histories[0])
    assert all(histories[1]["pulses_applied_dense_1"]) and "pulses_lost_dense_2" in histories[1]
    for layer in states[0]:  # counting is a side computation: the same trajectory
        np.testing.assert_array_equal(states[0][layer], states[1][layer])
    assert DeviceOptimizer("sgd", ExpDevice(), update="epoch").count_pulses  # free there: on
    assert DeviceOptimizer.from_config(opt.get_config()).count_pulses


@pytest.mark.parametrize("count_lost", [True, False])
def test_skipping_idle_cells_gives_the_full_update_exactly(count_lost):
    """``skip_zero_rows`` programs only the block of pulsed rows x columns, in chunks of 512, 128 and
    32 cells: conductances, weights and counters equal the full update's, step by step, for a sparse
    outer-product step (NeuroSim's), scattered cells (zero-pulse cells inside the block), a step that
    pulses nothing and one that pulses all 21,000 cells (41 chunks of 512, one of 32 part-full)."""
    rows, cols = 300, 70
    rng = np.random.default_rng(0)
    device = ExpDevice(0.4, 0.6, 98, states_ltd=101, c2c=0.03, c2c_mode="neurosim")
    half_pulse = 1.0 / 97  # |dw| N / (2 w_max) >= 1/2 with w_max 1
    x = (rng.random(rows) < 0.3).astype(np.float32)
    delta = np.where(rng.random(cols) < 0.05, rng.normal(0, 10, cols), rng.normal(0, 0.1, cols)) * half_pulse
    scattered = np.where(rng.random((rows, cols)) < 0.002, rng.normal(0, 8, (rows, cols)), 0.0) * half_pulse
    steps = [np.outer(x, delta), scattered, np.full((rows, cols), 0.4 * half_pulse),
             rng.normal(0, 6, (rows, cols)) * half_pulse + 2 * half_pulse, np.outer(x, delta)]
    runs = []
    for skip in (False, True):
        kernel = keras.Variable(np.full((rows, cols), 0.1, np.float32), name="kernel")
        opt = DeviceOptimizer(keras.optimizers.SGD(1.0), device, pulses="neurosim", pulse_truncation=True, seed=3,
                              count_pulses=True, count_lost=count_lost, skip_zero_rows=skip, snap_initial=False)
        opt.build([kernel])
        trace = []
        for grad in steps:
            opt.apply([keras.ops.convert_to_tensor(-grad.astype(np.float32))], [kernel])
            trace.append((kernel.numpy().copy(), opt.device_states(), opt.pulse_counts(reset=True)))
        runs.append(trace)
    for (w_full, g_full, n_full), (w_skip, g_skip, n_skip) in zip(*runs):
        # the same arithmetic in other XLA fusions: a few cells one float32 ulp apart, the pulses exact
        np.testing.assert_allclose(w_skip, w_full, rtol=0, atol=3e-7)
        assert np.mean(w_skip != w_full) < 1e-3
        for layer in g_full:
            np.testing.assert_allclose(g_skip[layer], g_full[layer], rtol=0, atol=1.5e-7)
        assert n_skip == n_full
    pulses = [sum(v for k, v in n.items() if "_lt" in k) for _, _, n in runs[0]]
    assert pulses[0] > 0 and pulses[1] > 0 and pulses[2] == 0 and pulses[3] > 20_000
