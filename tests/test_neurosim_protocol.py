"""devsim's ``--protocol neurosim`` against the numpy reference of MLP+NeuroSim V3.0 (tests/neurosim_reference.py).

The per-image step (hardware forward pass with ADC, reference and series
resistance, the SSE error signal, NeuroSim's pulse rounding, the LTP/LTD write
with C2C from devsim's own counter-based draws) on a tiny 16-8-10 network gives
the same pulses and conductances; the label table, initial weights, optimizers
and image draws match; every new option is the identity when off; bad values
stop with one line and exit 2.
"""

import dataclasses
import json

import keras
import numpy as np
import pytest

import neurosim_reference as ref
from devsim import noise
from devsim.config import IDENTITY, RunConfig
from devsim.data import Dataset
from devsim.initializers import glibc_rand, neurosim_weights
from devsim.models import build_mlp
from devsim.neurosim_optimizers import NeuroSimOptimizer
from devsim.online import CompiledLoop, epoch_indices
from devsim.periphery import AnalogDense, ArrayReads
from devsim.pulses import neurosim_pulses
from devsim.run import build_model, initial_pulse_states
from devsim.sweep import run_hash
from cli_helpers import call, offline  # noqa: F401  (offline: an autouse fixture)

N_IN, N_HIDDEN, N_IMAGES = 16, 8, 6


def tiny_data(seed=3):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (N_IMAGES, 4, 4)).astype(np.float32)  # 4 x 4 binary images: 16 inputs
    y = rng.integers(0, 10, N_IMAGES)
    return Dataset("mnist-5k", "mnist-5k", x, y, x, y, "tests", False)


def tiny_config(device, **fields):
    return RunConfig(protocol="neurosim", device=device, dataset="mnist-5k", hidden=(N_HIDDEN,), crop="off", **fields)


def run_both(device_name, software=False, whole_epoch=False, **fields):
    """Train devsim's protocol and the reference image by image; yield both after each image (``whole_epoch``:
    devsim trains on all the images in one epoch of its compiled loop; yield once, after the last)."""
    data = tiny_data()
    config = tiny_config(device_name, **fields)
    device = config.make_device()
    ref_device = None if software else ref.preset(device_name, r_wire=config.r_wire, **(
        {"c2c": fields["c2c"]} if "c2c" in fields else {}))
    net = ref.init_network(N_IN, N_HIDDEN, 10, device=ref_device)
    states = initial_pulse_states(config, device, data.x_train.shape[1:])
    model, loss, _ = build_model("float" if software else "device", None if software else device, device, config, data,
                                 states)
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    if not software:
        # devsim's weight copy is the devices' read-back from the start (NeuroSim keeps the drawn grid values
        # until the first write, docs/protocols.md): start the reference from the read-back too
        net.w1 = ref.conductance_to_weight(net.g1, ref_device, net.rho1)
        net.w2 = ref.conductance_to_weight(net.g2, ref_device, net.rho2)
        net.read_back = True
    loop = CompiledLoop(model, loss, data.x_train, data.y_train, 1)
    bits = ref.prepare_images(data.x_train, size=4)
    for t in range(N_IMAGES):
        xi1 = xi2 = None
        if not software and device.c2c > 0:  # devsim's draws: tile i uses stream 3 i + 1 at update t
            xi1 = np.asarray(noise.normal((N_IN, N_HIDDEN), noise.key(config.seed, t, 1)), np.float64).T
            xi2 = np.asarray(noise.normal((N_HIDDEN, 10), noise.key(config.seed, t, 4)), np.float64).T
        out = ref.train_step(net, bits[t], int(data.y_train[t]), first=t == 0, xi1=xi1, xi2=xi2)
        if not whole_epoch:
            loop.run_epoch(np.array([t]))
            yield model, optimizer, net, out
        else:
            pulses = {k: np.abs(out[k]) for k in ("n1", "n2")}
            totals = pulses if t == 0 else {k: totals[k] + pulses[k] for k in pulses}
    if whole_epoch:
        loop.run_epoch(np.arange(N_IMAGES))
        yield loop, optimizer, net, totals


def check_against_reference(device_name, **fields):
    steps = 0
    for _, optimizer, net, out in run_both(device_name, **fields):
        g = optimizer.device_states()
        counts = optimizer.pulse_counts(reset=True)
        for layer, n in (("dense_1", out["n1"]), ("dense_2", out["n2"])):
            assert counts[f"pulses_ltp_{layer}"] == n[n > 0].sum() and f"pulses_lost_{layer}" not in counts
            assert counts[f"pulses_ltd_{layer}"] == -n[n < 0].sum()
        np.testing.assert_allclose(g["dense_1"], net.g1.T, rtol=0, atol=5e-6)  # float32 against float64
        np.testing.assert_allclose(g["dense_2"], net.g2.T, rtol=0, atol=5e-6)
        steps += 1
    assert steps == N_IMAGES


def test_step_matches_reference_ag_si():
    """Ag:a-Si (97/100 levels, C2C 3.5 %, series resistance): same pulses and conductances image by image."""
    check_against_reference("ag-si")


@pytest.mark.slow
@pytest.mark.parametrize("device", ["epiram", "hzo-fefet", "gst-pcm", "alox-hfo2", "taox-hfox", "pcmo"])
def test_step_matches_reference_other_devices(device):
    check_against_reference(device)


@pytest.mark.slow
def test_step_matches_reference_without_row_skipping():
    check_against_reference("ag-si", skip_zero_rows=False)


@pytest.mark.parametrize("device", ["ag-si", "epiram"])
def test_epoch_reading_kept_currents_matches_reference(device):
    """All the images in one epoch of the compiled loop: each layer reads the currents its tile keeps
    (`devsim.periphery.ReadCache`, written by the tile for the cells it programs), and the state after
    the epoch is the reference's: the conductances, the pulses and the read currents of every cell."""
    ref_device = ref.preset(device, r_wire=tiny_config(device).r_wire)
    (loop, optimizer, net, out), = run_both(device, whole_epoch=True)
    assert [cache.layer.name for cache in loop.read_caches] == ["dense_1", "dense_2"]
    g = optimizer.device_states()
    np.testing.assert_allclose(g["dense_1"], net.g1.T, rtol=0, atol=5e-6)
    np.testing.assert_allclose(g["dense_2"], net.g2.T, rtol=0, atol=5e-6)
    counts = optimizer.pulse_counts()
    assert counts["pulses_ltp_dense_1"] + counts["pulses_ltd_dense_1"] == out["n1"].sum() > 0
    assert counts["pulses_ltp_dense_2"] + counts["pulses_ltd_dense_2"] == out["n2"].sum() > 0
    for cache, g_ref, rho in zip(loop.read_caches, (net.g1, net.g2), (net.rho1, net.rho2)):
        np.testing.assert_allclose(cache.variable.numpy(), ref.cell_current(g_ref, ref_device, rho).T, rtol=0,
                                   atol=5e-6)


@pytest.mark.parametrize("fields, kept", [({}, 2), ({"skip_zero_rows": False}, 0), ({"d2d": 0.05}, 0)])
def test_only_tiles_that_program_the_cells_they_pulse_keep_read_currents(fields, kept):
    """A tile that programs every cell (row skipping off) or whose devices vary (D2D: the compacted update does not
    apply) leaves its layer computing the currents from the kernel on every forward pass."""
    data = tiny_data()
    config = tiny_config("ag-si", **fields)
    device = config.make_device()
    model, loss, _ = build_model("device", device, device, config, data,
                                 initial_pulse_states(config, device, data.x_train.shape[1:]))
    model.optimizer.build(model.trainable_variables)
    loop = CompiledLoop(model, loss, data.x_train, data.y_train, 1)
    assert len(loop.read_caches) == kept
    loop.run_epoch(np.arange(N_IMAGES))
    layers = [layer for layer in model.layers if isinstance(layer, AnalogDense)]
    for cache in loop.read_caches:
        assert not cache.active  # only while the loop runs: evaluation computes the currents
        np.testing.assert_allclose(cache.variable.numpy(), cache.kernel_currents(), rtol=1e-6)
    with pytest.raises(ValueError, match="reads no currents"):
        AnalogDense(3, reads=ArrayReads(hidden_threshold=0.5), name="no_currents").read_cache()
    assert len(layers) == 2


@pytest.mark.parametrize("fields", [{"count_pulses": False}, {"adc_bits": None, "r_access": 0.0, "r_wire": 0.0}])
def test_row_skipping_loop_without_counters_or_kept_currents(fields):
    """The compiled loop's row-skipping update carries only what the tile keeps: without pulse counters, or with
    no currents to keep (no ADC, no series resistance), it compiles and programs the devices as the full update
    does (skip_zero_rows off). 40 hidden units: layer 1's 640 cells take all three chunk loops."""
    data = tiny_data()

    def train(**more):
        config = RunConfig(protocol="neurosim", device="ag-si", dataset="mnist-5k", hidden=(40,), crop="off", **fields,
                           **more)
        device = config.make_device()
        model, loss, _ = build_model("device", device, device, config, data,
                                     initial_pulse_states(config, device, data.x_train.shape[1:]))
        model.optimizer.build(model.trainable_variables)
        loop = CompiledLoop(model, loss, data.x_train, data.y_train, 1)
        logs = loop.run_epoch(np.arange(N_IMAGES))
        return logs, model.optimizer.device_states()

    logs, g = train()
    logs_full, g_full = train(skip_zero_rows=False)
    assert logs == logs_full
    for layer in g:
        np.testing.assert_allclose(g[layer], g_full[layer], rtol=0, atol=1e-6)


def test_software_mode_matches_reference():
    for model, _, net, _ in run_both("ag-si", software=True):
        kernels = [l.kernel.numpy() for l in model.layers if hasattr(l, "kernel")]
        np.testing.assert_allclose(kernels[0], net.w1.T, atol=1e-6)
        np.testing.assert_allclose(kernels[1], net.w2.T, atol=1e-6)


def test_hardware_forward_pass_matches_reference():
    """ADC codes, reference column, series resistance and the thresholded hidden layer, on a batch."""
    config = tiny_config("epiram")  # R_on 81 kOhm: the series resistance is 0.19 of 1/Gmax
    device = config.make_device()
    ref_device = ref.preset("epiram", r_wire=config.r_wire)
    net = ref.init_network(N_IN, N_HIDDEN, 10, device=ref_device)
    rng = np.random.default_rng(0)
    net.g1, net.g2 = rng.uniform(0, 1, net.g1.shape), rng.uniform(0, 1, net.g2.shape)
    net.i1, net.i2 = ref.cell_current(net.g1, ref_device, net.rho1), ref.cell_current(net.g2, ref_device, net.rho2)
    model = build_mlp((4, 4), (N_HIDDEN,), "sigmoid", output_activation="sigmoid", reads=config.array_reads(device),
                      binarize=0.5)
    layers = [l for l in model.layers if hasattr(l, "kernel")]
    layers[0].kernel.assign((2 * net.g1.T - 1).astype(np.float32))
    layers[1].kernel.assign((2 * net.g2.T - 1).astype(np.float32))
    x = rng.integers(0, 2, (50, 4, 4)).astype(np.float32)
    _, _, a2 = ref.forward(net, ref.prepare_images(x, size=4).T)
    np.testing.assert_allclose(model.predict(x, verbose=0), a2.T, atol=2e-6)


# --- gradients of the periphery layer ------------------------------------------------------------------


def test_analog_dense_gradients_are_neurosims():
    """dL/dW = x^T s with the continuous input; dL/dx through the read-back weights."""
    import tensorflow as tf

    periphery = ArrayReads(hidden_threshold=0.5, adc_bits=8, r_access=15e3, r_on=81e3, on_off=50.2)
    layer = AnalogDense(4, reads=periphery, use_bias=False, name="analog_grad")  # named: auto names are global
    x = tf.constant(np.random.default_rng(1).uniform(0, 1, (1, 6)).astype(np.float32))
    layer.build((1, 6))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.constant([[1.0, -2.0, 0.5, 3.0]]))
    s = np.array([[1.0, -2.0, 0.5, 3.0]], np.float32)
    np.testing.assert_allclose(tape.gradient(loss, layer.kernel).numpy(), x.numpy().T @ s, rtol=1e-6)
    _, _, _, read = layer._currents(layer.kernel, 6)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), s @ np.asarray(read).T, rtol=1e-5)


# --- labels, initial weights, optimizers, image draws --------------------------------------------------------


@pytest.mark.parametrize("label", [0.29, 0.57, 0.58, 1.13, 2.01, 0.105, 4.89])
def test_label_table_truncation(label):
    """--nl-table (the protocol's) uses getParamA's truncated lookup; without it the exact inverse."""
    table = RunConfig(protocol="neurosim", nl_ltp=label, nl_ltd=-label, dataset="mnist-5k").make_device()
    assert table.a_p == pytest.approx(float(ref.param_a(label)), abs=1e-12)
    assert table.a_d == pytest.approx(-float(ref.param_a(-label)), abs=1e-12)
    exact = RunConfig(protocol="neurosim", nl_table=False, nl_ltp=label, dataset="mnist-5k").make_device()
    assert exact.a_p == pytest.approx(float(ref.param_a(label, exact=True)), rel=2e-6)
    if label in (0.29, 0.57, 0.58, 1.13, 2.01, 0.105):
        assert abs(exact.a_p - table.a_p) > 1e-4 * exact.a_p


def test_presets_read_as_neurosim():
    dev = RunConfig(protocol="neurosim", device="ag-si", dataset="mnist-5k").make_device()
    assert (dev.states, dev.states_ltd) == (98, 101) and dev.r_on == 26e6  # maxNumLevel 97 / 100 pulses
    assert RunConfig(device="ag-si", dataset="mnist-5k").make_device().states == 97  # outside the protocol: as before
    assert RunConfig(protocol="neurosim", device="hzo-fefet", dataset="mnist-5k").make_device().cell == "fefet"


def test_glibc_rand_and_initial_weights():
    assert list(glibc_rand(2, 5)) == list(ref.GlibcRand(2).rand(5))
    assert list(glibc_rand(0, 5)) == list(ref.GlibcRand(0).rand(5))
    w1, w2 = ref.initial_weights(N_IN, N_HIDDEN, 10)
    k1, k2 = neurosim_weights([(N_IN, N_HIDDEN), (N_HIDDEN, 10)], seed=0)
    np.testing.assert_array_equal(k1, w1.T.astype(np.float32))
    np.testing.assert_array_equal(k2, w2.T.astype(np.float32))


def test_initial_conductances_gmin_offset():
    data = tiny_data()
    for offset in (True, False):
        config = tiny_config("ag-si", gmin_offset=offset)
        device = config.make_device()
        model, _, _ = build_model("device", device, device, config, data, initial_pulse_states(config, device, (4, 4)))
        model.optimizer.build(model.trainable_variables)
        g = model.optimizer.device_states()["dense_1"]
        w1, _ = ref.initial_weights(N_IN, N_HIDDEN, 10)
        # 2e-6: Cell.cpp's Gmin, Gmax have on/off 12.50024, the preset Table II's 12.5
        np.testing.assert_allclose(g, ref.weight_to_conductance(w1, ref.preset("ag-si"), offset).T, atol=2e-6)
        assert len(np.unique(g)) == 7  # float states: the 7 drawn values, not snapped to the curve's levels


@pytest.mark.parametrize("kind", ["Momentum", "Adagrad", "RMSprop", "Adam"])
def test_neurosim_optimizers_match_reference(kind):
    rng = np.random.default_rng(5)
    grads = rng.normal(0, 1, (7, 2, 3)).astype(np.float32)
    opt = NeuroSimOptimizer(kind.lower(), (0.4,), steps_per_epoch=3)
    a = keras.Variable(np.zeros((2, 3), np.float32), name="kernel")
    other = ref.Optimizer(kind, (0.4, 0.2))
    opt.build([a])
    for t, g in enumerate(grads):
        before = a.numpy().copy()
        opt.apply([g], [a])
        expected = other.delta(0, g.astype(np.float64), first=t % 3 == 0)
        np.testing.assert_allclose(a.numpy() - before, expected, rtol=2e-5, atol=1e-6)


def test_epoch_indices_reproducible_with_replacement():
    a = epoch_indices(4000, 0, seed=1, images_per_epoch=8000)
    assert a.shape == (8000,) and a.min() >= 0 and a.max() < 4000 and len(np.unique(a)) < 4000
    np.testing.assert_array_equal(a, epoch_indices(4000, 0, seed=1, images_per_epoch=8000))
    assert not np.array_equal(a, epoch_indices(4000, 1, seed=1, images_per_epoch=8000))
    assert not np.array_equal(a, epoch_indices(4000, 0, seed=2, images_per_epoch=8000))
    assert sorted(epoch_indices(50, 3, seed=0)) == list(range(50))  # unset: every image once


def test_pulse_rule_rounding_and_truncation():
    ag = ref.preset("ag-si")
    k = np.arange(0, 150)
    for sign, n in ((1, 97), (-1, 100)):  # whole requests: NeuroSim's (int)((k/N) N) quirk, from the table
        dw = (sign * k * 2.0 / n).astype(np.float32)
        got = np.asarray(neurosim_pulses(dw, None, levels=(97, 100), w_range=2.0, truncation=True))
        np.testing.assert_array_equal(got, ref.pulse_counts(dw.astype(np.float64), ag))
        assert np.sum(np.abs(got) != k) >= 7  # 7, 14, 25, ... (N = 97); 29, 57, 58, ... (N = 100)
    half = ((k + 0.5) / 32).astype(np.float32)  # exact halves for N = 64 (EpiRAM): round half away from zero
    for sign in (1, -1):
        got = np.asarray(neurosim_pulses(sign * half, None, levels=(64, 64), w_range=2.0, truncation=True))
        np.testing.assert_array_equal(got, sign * (k + 1))
        np.testing.assert_array_equal(got, ref.pulse_counts(sign * half.astype(np.float64), ref.preset("epiram")))


# --- the identity when off ---------------------------------------------------------------------------------


def test_default_config_has_every_new_option_off():
    config = RunConfig(dataset="mnist-5k")
    for name, value in IDENTITY.items():
        assert getattr(config, name) == value, name
    assert config.protocol_fields == [] and config.run_name() == "mnist-5k_linear_epoch-sign_s0"
    d = {k: v for k, v in config.to_dict().items() if k not in IDENTITY}
    assert run_hash(config) == run_hash(dataclasses.replace(config)) and "protocol" not in json.dumps(d)


def test_periphery_off_is_plain_dense():
    model = build_mlp((28, 28), (16,), "relu", reads=ArrayReads())
    assert all(type(l) is keras.layers.Dense for l in model.layers if hasattr(l, "kernel"))
    x = np.random.default_rng(0).uniform(-1, 1, (5, 7)).astype(np.float32)
    analog, dense = AnalogDense(3, reads=ArrayReads(), name="analog_off"), keras.layers.Dense(3, name="plain")
    analog.build((5, 7))
    dense.build((5, 7))
    dense.kernel.assign(analog.kernel)
    np.testing.assert_array_equal(np.asarray(analog(x)), np.asarray(dense(x)))
    # without ADC and series resistance, the reference read is the weighted sum
    read = AnalogDense(3, reads=ArrayReads(adc_bits=None, hidden_threshold=0.0), use_bias=False, name="analog_read")
    read.build((5, 7))
    bits = (x >= 0).astype(np.float32)
    np.testing.assert_allclose(np.asarray(read(x)), bits @ read.kernel.numpy(), atol=1e-6)


def test_explicit_options_override_the_protocol_and_off_unsets():
    config = RunConfig(protocol="neurosim", device="ag-si", dataset="mnist-5k", adc_bits=6, images_per_epoch="off",
                       r_access=0.0, epochs=2)
    assert config.adc_bits == 6 and config.images_per_epoch is None and config.epochs == 2 and config.r_access == 0
    assert "adc_bits" not in config.protocol_fields and "hidden_threshold" in config.protocol_fields
    assert config.run_name() == "mnist-5k_ag-si_neurosim_s0"
    lin = RunConfig(protocol="neurosim", ltp=0.5, ltd=0.5, dataset="mnist-5k")  # no R_on: read without it, noted
    assert lin.r_access is None and lin.notes


# --- the command line ------------------------------------------------------------------------------------------


def test_cli_protocol_run(tmp_path, capsys):
    code, out, err = call(["run", "--protocol", "neurosim", "--device", "ag-si", "--epochs", "1", "--dataset", "mnist-5k",
                           "--images-per-epoch", "300", "--hidden", "16", "--no-baselines", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    folder = tmp_path / "mnist-5k_ag-si_neurosim_s0"
    record = json.loads((folder / "config.json").read_text())
    assert record["devsim_run"]["protocol"] == "neurosim" and record["devsim_run"]["adc_bits"] == 8
    assert "adc_bits" in record["protocol_fields"] and "hidden" not in record["protocol_fields"]
    assert record["device"]["states"] == 98 and record["dataset"]["name"] == "mnist-5k"
    header = (folder / "history.csv").read_text().splitlines()[0]
    for key in ("pulses_ltp_dense_1", "pulses_ltd_dense_1", "pulses_ltp_dense_2", "pulses_ltd_dense_2"):
        assert key in header


def test_protocol_runs_on_one_thread_in_a_fresh_process(tmp_path):
    """--protocol neurosim sets --threads 1: TensorFlow's intra-op pool, set before its first operation,
    recorded in config.json; asked for again in the same process with another size, a note says it is not applied."""
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from devsim import backends\n"
        "from devsim.cli import main\n"
        "try:\n"
        "    main(['run', '--protocol', 'neurosim', '--device', 'ag-si', '--epochs', '1', '--dataset', 'mnist-5k',\n"
        "          '--images-per-epoch', '50', '--hidden', '8', '--no-baselines', '--out', sys.argv[1], '--name', 'one'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "import tensorflow as tf\n"
        "print(json.dumps([tf.config.threading.get_intra_op_parallelism_threads(), backends.set_threads(2),\n"
        "                  backends.threads()]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    pool, note, in_effect = json.loads(result.stdout.strip().splitlines()[-1])
    assert pool == 1 and in_effect == 1 and note.startswith("--threads 2 not applied")
    record = json.loads((tmp_path / "one" / "config.json").read_text())
    assert record["threads"] == 1 and record["devsim_run"]["threads"] == 1 and "threads" in record["protocol_fields"]
    assert not record["notes"]


@pytest.mark.slow
def test_cli_protocol_run_as_documented(tmp_path, capsys):
    """The command of the issue: one full epoch (8000 images) of the three models."""
    code, out, err = call(["run", "--protocol", "neurosim", "--device", "ag-si", "--epochs", "1", "--dataset", "mnist-5k",
                           "--out", str(tmp_path)], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "mnist-5k_ag-si_neurosim_s0" / "config.json").read_text())
    assert set(record["final"]) == {"device", "linear", "float"}
    assert record["final"]["float"]["test_accuracy"] > 0.5


BAD = [
    (["--protocol", "bogus"], "--protocol"),
    (["--adc-bits", "0"], "--adc-bits"),
    (["--adc-bits", "x"], "--adc-bits"),
    (["--protocol", "neurosim", "--layer-lr", "0.4"], "--layer-lr"),
    (["--layer-lr", "0.4,abc"], "--layer-lr"),
    (["--layer-lr", "0.4,-0.2", "--optimizer", "neurosim-sgd"], "--layer-lr"),
    (["--layer-lr", "0.4,0.2"], "--layer-lr"),  # needs a neurosim-* optimizer
    (["--pulse-truncation"], "--pulse-truncation"),
    (["--r-access", "-1"], "--r-access"),
    (["--r-access", "1000"], "--r-access"),  # the default device has no R_on
    (["--protocol", "neurosim", "--threads", "0"], "--threads"),
    (["--r-wire", "nan"], "--r-wire"),
    (["--r-on", "0"], "--r-on"),
    (["--cell", "bogus"], "--cell"),
    (["--binarize", "nan"], "--binarize"),
    (["--hidden-threshold", "inf"], "--hidden-threshold"),
    (["--images-per-epoch", "0"], "--images-per-epoch"),
    (["--train-loop", "bogus"], "--train-loop"),
    (["--loss", "mse"], "--loss"),
    (["--output-activation", "relu"], "--output-activation"),
    (["--init", "bogus"], "--init"),
    (["--optimizer", "neurosim-bogus"], "--optimizer"),
    (["--preset-levels", "bogus"], "--preset-levels"),
    (["--c2c-mode", "bogus"], "--c2c-mode"),
    (["--mapping", "differential", "--adc-bits", "8"], "--mapping"),
]


@pytest.mark.parametrize("args,flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_values_one_line_exit_2(args, flag, tmp_path, capsys):
    code, out, err = call(["run", "--dataset", "mnist-5k", *args, "--out", str(tmp_path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and flag in lines[0], err
    assert not list(tmp_path.iterdir())
