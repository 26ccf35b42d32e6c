"""The analog periphery (devsim.periphery) against the numpy reference (tests/algorithms_reference.py)."""

import dataclasses
import math

import keras
import numpy as np
import pytest
from keras import ops

import algorithms_reference as R
from devsim import periphery as P
from devsim.options import FieldError

BIG = 1e30  # the reference's stand-in for an infinite bound


@pytest.fixture(autouse=True)
def fresh_keras_names():
    """Layers made here are unnamed: reset Keras's name counters after each test, so tests that run
    later in the process (the README's example) see the layer names they expect."""
    yield
    keras.backend.clear_session()


def ref_io(io: P.IOParameters) -> R.IOConfig:
    fields = {f.name for f in dataclasses.fields(R.IOConfig)}
    values = {k: (BIG if isinstance(v, float) and math.isinf(v) else v) for k, v in io.get_config().items() if k in fields}
    return R.IOConfig(**values)


def tensor(x):
    return ops.convert_to_tensor(np.asarray(x, np.float32))


def run(io, x, w, draws=None, backward=False):
    def draw(kind, r, shape):
        return tensor(draws[kind][r])
    return ops.convert_to_numpy(P.analog_mvm(tensor(x), tensor(w), io, draw, backward=backward))


CONFIGS = {
    "dac": P.IOParameters(inp_res=1 / 126, inp_bound=1.0),
    "dac-nm": P.IOParameters(inp_res=1 / 126, inp_bound=1.0, noise_management="abs_max"),
    "adc": P.IOParameters(out_res=1 / 510, out_bound=12.0),
    "out-noise": P.IOParameters(out_noise=0.06, noise_management="abs_max", inp_bound=1.0),
    "aihwkit": P.IOParameters.aihwkit(),
    "preset-everything": P.IOParameters.preset(w_noise=0.05, w_noise_type="pcm_read", inp_sto_round=True,
                                               out_sto_round=True, inp_noise=0.01, nm_thres=2.0),
    "w-noise-additive": P.IOParameters(w_noise=0.1),
    "max-nm-no-negative-test": P.IOParameters.aihwkit(noise_management="max", bm_test_negative_bound=False),
    "constant-nm": P.IOParameters.aihwkit(noise_management="constant", nm_thres=3.0),
    "bm-8-bit": P.IOParameters.aihwkit(inp_res=1 / 254, out_res=1 / 254, out_bound=4.0),
}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("backward", [False, True])
def test_analog_mvm_matches_the_reference(name, backward):
    io = CONFIGS[name]
    rng = np.random.default_rng(0)
    n_in, n_out, batch = 30, 7, 64
    x = rng.normal(size=(batch, n_out if backward else n_in)) * rng.uniform(0.1, 3, size=(batch, 1))
    x[3] = 0.0  # a zero vector: zero output, nothing drawn
    w = rng.normal(size=(n_in, n_out)) * 3.0  # large enough for outputs beyond the ADC bound: bound management acts
    rio = ref_io(io)
    draws = R.mvm_draws(rng, rio, batch, *((n_out, n_in) if backward else (n_in, n_out)), backward)
    draws = {k: v.astype(np.float32).astype(np.float64) for k, v in draws.items()}  # the values devsim sees
    ours = run(io, x.astype(np.float32), w.astype(np.float32), draws, backward)
    theirs, factor = R.analog_mvm(x.astype(np.float32), w.astype(np.float32), rio, draws, backward)
    if rio.bound_management == "iterative" and not backward:
        assert factor.max() > 1  # some vectors needed more than one pass
    step = io.out_step * (np.max(np.abs(x), axis=1, keepdims=True) if io.noise_management != "none" else 1)
    close = np.abs(ours - theirs) <= 1e-4 * (1 + np.abs(theirs))
    # float32 against float64: a value right at an ADC rounding edge may land one level apart
    assert np.mean(close) > 0.995
    assert np.all(close | (np.abs(ours - theirs) <= 1.01 * 16 * np.maximum(step, 1e-6)))


@pytest.mark.parametrize("field, on", [("inp_res", 1 / 126), ("inp_noise", 0.1), ("out_res", 1 / 510), ("out_noise", 0.1),
                                       ("w_noise", 0.1), ("noise_management", "abs_max"), ("bound_management", "iterative"),
                                       ("inp_sto_round", True), ("out_sto_round", True)])
def test_every_option_is_exactly_the_identity_when_off(field, on):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(16, 9)).astype(np.float32), rng.normal(size=(9, 5)).astype(np.float32)
    off = P.IOParameters()
    assert off.is_identity
    np.testing.assert_array_equal(run(off, x, w), ops.convert_to_numpy(ops.matmul(tensor(x), tensor(w))))
    bounds = {"inp_bound": 1.0, "out_bound": 12.0}
    with_it = P.IOParameters(**bounds, **{field: on})
    assert not with_it.is_identity or field.endswith("sto_round")  # stochastic rounding alone has nothing to round


def test_analog_dense_off_is_dense_bit_for_bit():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    keras.utils.set_random_seed(0)
    plain = keras.layers.Dense(4, activation="relu")
    keras.utils.set_random_seed(0)
    analog = P.AnalogDense(4, activation="relu")
    y1, y2 = plain(x), analog(x)
    analog.set_weights(plain.get_weights() + analog.get_weights()[2:])
    np.testing.assert_array_equal(ops.convert_to_numpy(plain(x)), ops.convert_to_numpy(analog(x)))
    del y1, y2


def test_dac_and_adc_levels_by_hand():
    w = np.ones((1, 1), np.float32)
    dac = P.IOParameters(inp_res=1 / 126, inp_bound=1.0)  # step 2/126 = 1/63: 0.3 -> rint(18.9) = 19 -> 19/63
    assert run(dac, [[0.3], [-0.3], [2.0], [0.5 / 63]], w)[:, 0] == pytest.approx([19 / 63, -19 / 63, 1.0, 0.0], abs=1e-7)
    adc = P.IOParameters(out_res=1 / 510, out_bound=12.0)  # step 24/510: 0.3 -> rint(6.375) = 6
    assert run(adc, [[0.3], [13.0], [-0.3]], w)[:, 0] == pytest.approx([6 * 24 / 510, 12.0, -6 * 24 / 510], abs=1e-6)
    nm = P.IOParameters(inp_res=1 / 126, inp_bound=1.0, noise_management="abs_max")
    # abs_max: [0.3, 2] -> [0.15, 1] -> [rint(9.45)/63, 1] -> times 2
    y = run(nm, [[0.3, 2.0]], np.eye(2, dtype=np.float32))
    assert y[0] == pytest.approx([2 * 9 / 63, 2.0], abs=1e-6)
    steps = P.IOParameters(inp_res=4, inp_bound=1.0)  # res > 1: four steps of 0.5
    assert run(steps, [[0.3], [0.2]], w)[:, 0] == pytest.approx([0.5, 0.0], abs=1e-7)


def test_bound_management_passes():
    assert P.IOParameters.aihwkit().rounds() == 5  # factors 1, 2, 4, 8, 16
    assert P.IOParameters.aihwkit(inp_res=1 / 254).rounds() == 6
    assert P.IOParameters.aihwkit().rounds(backward=True) == 1
    io = P.IOParameters(inp_bound=1.0, out_bound=1.0, noise_management="abs_max", bound_management="iterative")
    # x = [1, 1] against W = [[1], [1]]: 2 saturates at f = 1, passes at f = 2 -> 1 * 2 = 2
    assert run(io, [[1.0, 1.0]], np.ones((2, 1), np.float32))[0, 0] == pytest.approx(2.0)
    # 40 inputs: f = 64 > max_bm_res / inp_step is never reached without a DAC, max_bm_factor caps at 1024
    assert run(io, [np.ones(40)], np.ones((40, 1), np.float32))[0, 0] == pytest.approx(40.0)


def test_output_noise_sigma_on_many_samples():
    n = 200_000
    io = P.IOParameters(out_noise=0.06, noise_management="abs_max", inp_bound=1.0)
    x = np.tile(np.array([[0.5, -2.0, 1.0]], np.float32), (n, 1))
    w = np.array([[1.0], [0.5], [0.25]], np.float32)
    draw = P._drawer(seed=3, counter=0, layer_index=0, backward=False)
    y = ops.convert_to_numpy(P.analog_mvm(tensor(x), tensor(w), io, draw))[:, 0]
    exact = float(x[0] @ w[:, 0])
    assert np.mean(y) == pytest.approx(exact, abs=0.002)
    assert np.std(y) == pytest.approx(0.06 * 2.0, rel=0.01)  # sigma out_noise * max|x| after noise management
    wn = P.IOParameters(w_noise=0.1)
    y = ops.convert_to_numpy(P.analog_mvm(tensor(x), tensor(w), wn, draw))[:, 0]
    assert np.std(y) == pytest.approx(0.1 * np.linalg.norm(x[0]), rel=0.01)  # ADDITIVE_CONSTANT: w_noise ||x||


def test_gradients_go_through_the_backward_periphery():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    w = rng.normal(size=(5, 3)).astype(np.float32)
    dy = rng.normal(size=(8, 3)).astype(np.float32)
    forward = P.IOParameters.aihwkit(out_noise=0.0)
    backward = P.IOParameters(inp_res=1 / 14, inp_bound=1.0, noise_management="abs_max", out_res=1 / 30, out_bound=3.0)
    import tensorflow as tf

    xt, wt = tf.Variable(x), tf.Variable(w)
    with tf.GradientTape() as tape:
        y = P.periphery_matmul(xt, wt, forward, backward, w_max=2.0)
        loss = tf.reduce_sum(y * dy)
    dx, dw = tape.gradient(loss, [xt, wt])
    expected_dx, _ = R.analog_mvm(dy, w / 2.0, ref_io(backward), backward=True)
    np.testing.assert_allclose(dx.numpy(), 2.0 * expected_dx, atol=1e-5)
    np.testing.assert_allclose(dw.numpy(), x.T @ dy, atol=1e-5)  # the update sees the digital values
    expected_y, _ = R.analog_mvm(x, w / 2.0, ref_io(forward))
    np.testing.assert_allclose(y.numpy(), 2.0 * expected_y, atol=1e-5)


def test_same_seed_same_draws_and_fresh_noise_per_call():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    io = P.IOParameters.preset()
    outputs = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        layer = P.AnalogDense(4, forward=io, backward=io, seed=7)
        outputs.append([ops.convert_to_numpy(layer(x)) for _ in range(2)])
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
    assert np.any(outputs[0][0] != outputs[0][1])  # each call draws anew


def test_analog_dense_trains_and_saves(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(np.int64)
    keras.utils.set_random_seed(0)
    io = P.IOParameters.aihwkit()
    model = keras.Sequential([keras.Input((4,)), P.AnalogDense(8, forward=io, activation="relu"),
                              P.AnalogDense(2, forward=io, activation="softmax", index=1)])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.9
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.layers[0].forward_io == io


@pytest.mark.parametrize("fields, field", [
    ({"inp_res": 0.01}, "inp_res"), ({"out_res": 0.01}, "out_res"), ({"bound_management": "iterative"}, "bound_management"),
    ({"out_noise": -1.0}, "out_noise"), ({"noise_management": "abs"}, "noise_management"), ({"inp_bound": 0.0}, "inp_bound"),
])
def test_bad_parameters(fields, field):
    with pytest.raises(FieldError) as err:
        P.IOParameters(**fields)
    assert err.value.field == field and "\n" not in str(err.value)
