"""devsim.measured: the measured-table device (construction, pulses, bad data, JSON, CLI, training)."""

import json

import numpy as np
import pytest

from devsim import fitting, io, measured
from devsim.devices import DEVICE_KINDS, ExpDevice, device_from_config
from devsim.measured import TableDevice, TableError


def exp_data(a_p=0.4, a_d=0.25, n=64, cycles=20, c2c=0.0, seed=1, g_min=2e-6, g_max=2e-5):
    return fitting.simulate_pulses(g_min, g_max, a_p, a_d, n, n, cycles=cycles, c2c=c2c, seed=seed)


def kinked_data(cycles=12, c2c=0.003, seed=0, n_p=66, n_d=66):
    """A piecewise-linear device: fast steps below g = 0.5, slow above (LTP); LTD the mirror. Readings in siemens."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("pulse", "conductance", "direction", "cycle")}
    g = 0.0
    for c in range(1, cycles + 1):
        for d, n in ((1, n_p), (-1, n_d)):
            trace = [g]
            for _ in range(n):
                h = g if d > 0 else 1 - g
                step = 0.03 if h < 0.5 else 0.01
                g = float(np.clip(g + d * step + c2c * rng.standard_normal(), 0.0, 1.0))
                trace.append(g)
            rows["pulse"].append(np.arange(n + 1))
            rows["conductance"].append(1e-4 + 1e-4 * np.asarray(trace))
            rows["direction"].append(np.full(n + 1, d))
            rows["cycle"].append(np.full(n + 1, c))
    return {k: np.concatenate(v) for k, v in rows.items()}


def kinked_ramp(n):
    """The noise-free kinked LTP ramp (h against pulses)."""
    h, out = 0.0, [0.0]
    for _ in range(n):
        h = min(1.0, h + (0.03 if h < 0.5 else 0.01))
        out.append(h)
    return np.asarray(out)


def numpy_pulses(dev, g, n):
    """Plain numpy reimplementation: position on the ramp by np.interp, move, read back."""
    h_up, _, h_dn, _ = dev._ramps[0]
    out = np.empty_like(g, dtype=np.float64)
    for i, (gi, ni) in enumerate(zip(g, n)):
        if ni == 0:
            out[i] = gi
            continue
        ramp = h_up if ni > 0 else h_dn
        h = gi if ni > 0 else 1 - gi
        p = np.interp(h, ramp, np.arange(ramp.size))
        h_new = np.interp(min(p + abs(ni), ramp.size - 1), np.arange(ramp.size), ramp)
        out[i] = h_new if ni > 0 else 1 - h_new
    return out


def test_registered_kind_and_json_round_trip(tmp_path):
    assert DEVICE_KINDS["table"] == "devsim.measured:TableDevice"
    dev = measured.table_from_data(exp_data(c2c=0.01), source="dev.csv")
    config = json.loads(json.dumps(io.jsonable(dev.get_config()), allow_nan=False))
    assert config["kind"] == "table" and config["states"] == dev.states
    back = device_from_config(config)
    assert isinstance(back, TableDevice)
    np.testing.assert_array_equal(back.response()[1], dev.response()[1])
    assert back.measured_c2c == pytest.approx(dev.measured_c2c) and len(back.variants) == len(dev.variants) > 0
    twin = dev.linear_twin()
    assert isinstance(twin, ExpDevice) and twin.is_linear and (twin.states, twin.states_ltd) == (dev.states, dev.states_ltd)
    assert "measured table" in dev.describe() and dev.name == "dev"
    assert np.allclose(dev.nl_labels, dev.fitted_exponential().nl_labels)
    with pytest.raises(ValueError, match="bogus"):
        device_from_config({**config, "bogus": 1})


def test_table_from_exponential_device_reproduces_its_curves():
    dev = measured.table_from_data(exp_data(c2c=0.01, cycles=30, seed=3))
    truth = ExpDevice(0.4, 0.25, 65)
    _, g_true = truth.response()
    _, g_tab = dev.response()
    up_true, up_tab = g_true[:65], g_tab[: dev.num_pulses + 1]
    n = min(up_true.size, up_tab.size)
    assert np.max(np.abs(up_true[:n] - up_tab[:n])) < 0.03
    assert abs(dev.num_pulses - 64) <= 4
    down_true, down_tab = g_true[64:], g_tab[dev.num_pulses:]
    n = min(down_true.size, down_tab.size)
    assert np.max(np.abs(down_true[:n] - down_tab[:n])) < 0.03
    assert dev.measured_c2c == pytest.approx(0.01, rel=0.2)
    # n pulses from anywhere follow the device's curves
    g = np.linspace(0.05, 0.95, 19).astype(np.float32)
    for k in (1, 4, -1, -4):
        n_arr = np.full_like(g, k)
        a = np.asarray(dev.apply_pulses(g, n_arr, xi=np.zeros_like(g))[0])
        b = np.asarray(truth.apply_pulses(g, n_arr)[0])
        assert np.max(np.abs(a - b)) < 0.03, k


def test_piecewise_linear_device_is_reproduced_by_the_table():
    data = kinked_data(c2c=0.0)
    dev = measured.table_from_data(data, min_per_bin=10)
    ramp = kinked_ramp(dev.num_pulses)
    _, g = dev.response()
    assert np.max(np.abs(g[: dev.num_pulses + 1] - ramp)) < 0.04
    assert abs(dev.num_pulses - kinked_ramp(200).tolist().index(1.0)) <= 3
    fit = fitting.fit_pulse_data(data)
    good = measured.goodness(data, dev, fit)
    assert not good["adequate"] and good["ratio"] > 2 and good["rms_table"] < 0.005
    exp_good = measured.goodness(exp_data(c2c=0.01), measured.table_from_data(exp_data(c2c=0.01)),
                                 fitting.fit_pulse_data(exp_data(c2c=0.01)))
    assert exp_good["adequate"] and exp_good["ratio"] < 1.05


def test_keras_pulses_match_a_numpy_reimplementation():
    dev = measured.table_from_data(kinked_data(c2c=0.002), min_per_bin=10)
    rng = np.random.default_rng(0)
    g = rng.uniform(0, 1, 500).astype(np.float32)
    n = rng.integers(-30, 31, 500).astype(np.float32)
    got, lost = dev.apply_pulses(g, n, xi=np.zeros_like(g))
    np.testing.assert_allclose(np.asarray(got), numpy_pulses(dev, g, n), atol=2e-5)
    # lost pulses: those past the bound
    h_up, _, h_dn, _ = dev._ramps[0]
    pos = np.where(n > 0, np.interp(g, h_up, np.arange(h_up.size)), np.interp(1 - g, h_dn, np.arange(h_dn.size)))
    room = np.where(n > 0, h_up.size - 1, h_dn.size - 1) - pos
    expected = np.maximum(np.abs(n) - np.maximum(np.ceil(room - 1e-3), 0), 0)
    np.testing.assert_allclose(np.asarray(lost), expected, atol=1e-3)
    # compiled (XLA) gives the same
    import tensorflow as tf

    step = tf.function(lambda a, b, x: dev.apply_pulses(a, b, xi=x)[0], jit_compile=True)
    np.testing.assert_allclose(np.asarray(step(g, n, np.zeros_like(g))), np.asarray(got), atol=1e-6)
    # levels and nearest states lie on the LTP ramp
    p, snapped = dev.nearest_state(g)
    np.testing.assert_allclose(np.asarray(dev.level(p)), np.asarray(snapped), atol=1e-6)
    assert np.all(np.abs(np.asarray(snapped) - g) <= np.max(np.diff(h_up)) / 2 + 1e-6)


def test_c2c_noise_follows_the_measured_spread_and_can_be_scaled():
    data = exp_data(c2c=0.01, cycles=30)
    dev = measured.table_from_data(data)
    g = np.full(20000, 0.5, np.float32)
    n = np.ones_like(g)
    xi = np.random.default_rng(0).standard_normal(g.size).astype(np.float32)
    mean = np.asarray(dev.apply_pulses(g, n, xi=np.zeros_like(g))[0])
    noisy = np.asarray(dev.apply_pulses(g, n, xi=xi)[0])
    assert np.std(noisy - mean) == pytest.approx(0.01, rel=0.25)
    off = dataclasses_replace(dev, c2c=0.0)
    assert off.c2c_sigma == 0 and np.array_equal(np.asarray(off.apply_pulses(g, n, xi=xi)[0]), mean)
    double = dataclasses_replace(dev, c2c=2 * dev.measured_c2c)
    assert np.std(np.asarray(double.apply_pulses(g, n, xi=xi)[0]) - mean) == pytest.approx(2 * np.std(noisy - mean), rel=0.05)


def dataclasses_replace(dev, **kw):
    import dataclasses

    return dataclasses.replace(dev, **kw)


def test_d2d_resamples_cycles_per_device():
    dev = dataclasses_replace(measured.table_from_data(exp_data(c2c=0.01, cycles=12)), d2d_cycles=True)
    pop = dev.sample((50, 40), seed=1)
    assert pop.model.variant.shape == (50, 40) and set(np.unique(pop.model.variant)) <= set(range(1, 9))
    g = np.full((50, 40), 0.3, np.float32)
    out = np.asarray(pop.apply_pulses(g, np.full_like(g, 5), xi=np.zeros_like(g))[0])
    assert np.unique(np.round(out, 6)).size > 1  # devices differ
    assert np.all((out > 0.3) & (out <= 1))


BAD_TABLE = {
    "too_few_per_bin": (lambda: exp_data(n=10, cycles=2), dict(min_per_bin=20), "too few readings per bin"),
    "not_monotone": (None, {}, "not monotone"),
    "does_not_move": (None, {}, "does not move"),
}


def _non_monotone():
    """LTP that rises to its top in 33 pulses, then falls back every cycle."""
    d = kinked_data(c2c=0.001, cycles=10)
    g = d["conductance"].copy()
    back = (d["direction"] > 0) & (d["pulse"] > 33)
    g[back] = 1.5e-4 + 1e-6 * (66 - d["pulse"][back])
    d["conductance"] = g
    return d


def _flat_ltd():
    d = kinked_data(c2c=0.0005, cycles=10)
    rng = np.random.default_rng(0)
    down = d["direction"] < 0
    d["conductance"] = d["conductance"].copy()
    d["conductance"][down] = 1.5e-4 + 1e-7 * rng.standard_normal(down.sum())
    return d


@pytest.mark.parametrize("case", BAD_TABLE)
def test_bad_data_gives_one_line_table_errors(case):
    make, kw, text = BAD_TABLE[case]
    data = {"not_monotone": _non_monotone, "does_not_move": _flat_ltd}.get(case, make)()
    fit = fitting.FitResult(1e-4, 2e-4, 0.5, 0.5, 0, 0, 0, 0, 11, 11, 1, -1, 0, 0, 1)
    with pytest.raises(TableError) as info:
        measured.table_from_data(data, source="bad.csv", fit=fit, **kw)
    message = str(info.value)
    assert "\n" not in message and message.startswith("bad.csv") and text in message, message
    assert ("ltp" in message) or ("ltd" in message)


def test_config_refuses_curvature_options_for_a_table(tmp_path):
    from devsim.config import DeviceOptions
    from devsim.errors import ConfigError

    path = tmp_path / "measured.json"
    io.write_json(path, measured.table_from_data(exp_data(c2c=0.01)).get_config())
    for option, value in (("ltp", 0.5), ("nl_ltp", 1.0), ("states", 33), ("linear", True), ("c2c_mode", "step")):
        with pytest.raises(ConfigError, match=f"--{option.replace('_', '-')}: does not apply to table device"):
            DeviceOptions(device=str(path), **{option: value})
    opts = DeviceOptions(device=str(path), c2c=0.0, read_noise=0.01)
    dev = opts.make_device()
    assert isinstance(dev, TableDevice) and dev.c2c_sigma == 0 and dev.read_noise == 0.01
    assert opts.device_slug() == "measured"


# ----------------------------------------------------------------------------- command line

from cli_helpers import call, offline  # noqa: E402,F401 - offline: an autouse fixture


def write_pulses(path, data):
    rows = ["cycle,direction,pulse,conductance"]
    for c, d, p, g in zip(data["cycle"], data["direction"], data["pulse"], data["conductance"]):
        rows.append(f"{int(c)},{'ltp' if d > 0 else 'ltd'},{int(p)},{g:.9e}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
def test_fit_table_then_train_on_it(tmp_path, capsys):
    csv_path = write_pulses(tmp_path / "kink.csv", kinked_data(c2c=0.002))
    out = tmp_path / "fit"
    code, text, err = call(["fit", str(csv_path), "--table", "--out", str(out), "--bootstrap", "20", "--unit", "S"],
                           capsys)
    assert code == 0, err
    assert json.loads((out / "exponential.json").read_text())["fit"]["unit"] == "S"
    assert {"device.json", "exponential.json", "fit.png", "measured.png", "measured.pdf"} <= {p.name for p in out.iterdir()}
    assert "misses structure" in text and "bootstrap over cycles" in text
    config = json.loads((out / "device.json").read_text())
    assert config["kind"] == "table" and config["goodness"]["adequate"] is False
    code, text, err = call(["device", "--device", str(out / "device.json"), "--out", str(tmp_path), "--name", "d"], capsys)
    assert code == 0, err
    assert "measured table" in text and (tmp_path / "d/conductance.png").exists()
    code, _, err = call(["run", "--device", str(out / "device.json"), "--ltp", "0.5", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--ltp: does not apply to table device" in err
    assert not (tmp_path / "x").exists()
    code, text, err = call(["run", "--device", str(out / "device.json"), "--c2c", "0", "--dataset", "mnist-5k",
                            "--epochs", "1", "--hidden", "8", "--out", str(tmp_path), "--name", "r"], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "r/config.json").read_text())
    assert record["device"]["kind"] == "table" and set(record["final"]) == {"device", "linear", "float"}
    dev = device_from_config(record["device"])
    states = np.load(tmp_path / "r/states_device.npz")
    levels = np.asarray(dev.level(np.arange(dev.num_pulses + 1, dtype=np.float32)))
    ones = np.ones_like(levels)
    reachable = np.r_[levels, np.asarray(dev.apply_pulses(levels, ones)[0]), np.asarray(dev.apply_pulses(levels, -ones)[0])]
    for layer in ("dense_1", "dense_2"):
        g, w = states[f"g_{layer}"], states[f"w_{layer}"]
        np.testing.assert_allclose(w, 2 * g - 1, atol=1e-6)
        gap = np.min(np.abs(g.reshape(-1, 1) - reachable.reshape(1, -1)), axis=1)
        assert np.max(gap) < 1e-5  # one epoch, sign pulses: one programming event from a level


def _csv(tmp_path, edit=None):
    rows = ["pulse,conductance,direction"] + [f"{p},{1e-4 + 1e-5 * p:.6e},ltp" for p in range(8)]
    rows += [f"{p},{1.7e-4 - 1e-5 * p:.6e},ltd" for p in range(8)]
    if edit:
        edit(rows)
    path = tmp_path / "pulses.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _set(row, column, value):
    def edit(rows):
        cells = rows[row - 1].split(",")
        cells[["pulse", "conductance", "direction"].index(column)] = value
        rows[row - 1] = ",".join(cells)
    return edit


def _negate_all(rows):
    for i in range(1, len(rows)):
        cells = rows[i].split(",")
        cells[1] = f"-{cells[1]}"
        rows[i] = ",".join(cells)


FIT_BAD = {
    "huge_pulse": (_set(4, "pulse", "1e30"), [], ["row 4", "'pulse'", "too large"]),
    "23_digit_pulse": (_set(5, "pulse", "12345678901234567890123"), [], ["row 5", "'pulse'", "too large"]),
    "one_negative": (_set(7, "conductance", "-1e-4"), [], ["row 7", "'conductance'", "negative"]),
    "all_negative": (_negate_all, [], ["row 2", "'conductance'", "negative"]),
    "absurd": (_set(6, "conductance", "1e308"), [], ["row 6", "'conductance'", "absurd"]),
    "out_is_file": (None, ["--out", "{file}"], ["--out", "is a file"]),
    "out_under_file": (None, ["--out", "{file}/sub"], ["--out", "under the file"]),
    "out_read_only": (None, ["--out", "/proc/devsim-fit-out"], ["--out"]),
    "name_slash": (None, ["--name", "a/b"], ["--name", "plain folder name"]),
    "name_dots": (None, ["--name", ".."], ["--name", "plain folder name"]),
    "unit": (None, ["--unit", "ohm"], ["--unit", "'S', 'mS', 'uS', 'nS'"]),
}


@pytest.mark.parametrize("case", FIT_BAD)
def test_fit_bad_input_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    edit, extra, expected = FIT_BAD[case]
    path = _csv(tmp_path, edit)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    extra = [a.replace("{file}", str(blocker)) for a in extra]
    out = tmp_path / "out"
    args = ["fit", str(path), *(extra if "--out" in extra else [*extra, "--out", str(out)])]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = call(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error:"), err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before and blocker.read_text() == "x"


def test_read_only_out_as_a_user(tmp_path, capsys):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable")
        code, _, err = call(["fit", str(_csv(tmp_path)), "--out", str(locked / "fit")], capsys)
        assert code == 2 and "--out" in err and "read-only" in err
    finally:
        locked.chmod(0o755)
