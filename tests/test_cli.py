"""`devsim run` / `devsim device` end to end, bad input, reproducibility."""

import csv
import json

import numpy as np
import pytest

from cli_helpers import call, offline  # noqa: F401  (offline: an autouse fixture)

SMALL = ["--dataset", "mnist-5k", "--epochs", "2", "--hidden", "16", "--states", "21"]


def read_history(folder):
    with open(folder / "history.csv") as f:
        return list(csv.DictReader(f))


def test_run_writes_results_folder(tmp_path, capsys):
    code, out, err = call(["run", "--ltp", "0.8", "--ltd", "0.8", *SMALL, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    folder = tmp_path / "mnist-5k_ltp0.8_ltd0.8_epoch-sign_s0"
    names = {p.name for p in folder.iterdir()}
    assert names == {"config.json", "history.csv", "states_device.npz", "states_linear.npz", "states_float.npz",
                     "accuracy.png", "accuracy.pdf", "conductance.png", "conductance.pdf"}
    assert not list(tmp_path.glob("*.partial"))
    config = json.loads((folder / "config.json").read_text())
    assert config["status"] == "complete" and config["seed"] == 0
    assert config["devsim_run"]["ltp"] == 0.8 and config["devsim_run"]["epochs"] == 2
    assert config["device"]["nl_ltp"] == pytest.approx(1.55, abs=0.01)
    assert config["dataset"]["name"] == "mnist-5k" and config["dataset"]["n_train"] == 4000
    assert {"tensorflow", "keras", "numpy", "devsim"} <= set(config["versions"])
    rows = read_history(folder)
    assert [(r["model"], r["epoch"]) for r in rows] == [(m, str(e)) for m in ("device", "linear", "float") for e in (1, 2)]
    for r in rows:
        assert 0 <= float(r["test_accuracy"]) <= 1 and float(r["seconds"]) > 0
    device_rows = [r for r in rows if r["model"] == "device"]
    assert all(int(r["pulses_applied_dense_1"]) > 0 for r in device_rows)
    assert all(r["pulses_applied_dense_1"] == "" for r in rows if r["model"] == "float")
    states = np.load(folder / "states_device.npz")
    g, w = states["g_dense_1"], states["w_dense_1"]
    assert g.shape == (784, 16) and np.all((g >= 0) & (g <= 1))
    np.testing.assert_allclose(w, 2 * g - 1, atol=1e-6)
    # same initial states: the linear run's weights stay on its 21-level grid
    g_lin = np.load(folder / "states_linear.npz")["g_dense_1"]
    np.testing.assert_allclose(g_lin * 20, np.round(g_lin * 20), atol=1e-4)
    assert "epoch   2/2" in out and "final test accuracy" in out
    assert (folder / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_same_seed_same_history(tmp_path, capsys):
    args = ["run", "--nl-ltp", "2.4", "--nl-ltd", "-4.88", *SMALL, "--update", "batch", "--no-baselines"]
    for name in ("a", "b"):
        assert call([*args, "--out", str(tmp_path), "--name", name], capsys)[0] == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    a, b = read_history(tmp_path / "a"), read_history(tmp_path / "b")
    assert strip(a) == strip(b) and len(a) == 2
    assert a[0]["model"] == "device"
    np.testing.assert_array_equal(np.load(tmp_path / "a/states_device.npz")["g_dense_2"],
                                  np.load(tmp_path / "b/states_device.npz")["g_dense_2"])
    config = json.loads((tmp_path / "a/config.json").read_text())
    assert config["device"]["a_p"] == pytest.approx(0.4992, abs=1e-3)
    assert config["devsim_run"]["pulses"] == "stochastic"


def test_mnist_falls_back_loudly_and_records_it(tmp_path, capsys):
    code, out, err = call(["run", "--linear", "--epochs", "1", "--hidden", "8", "--no-baselines",
                           "--out", str(tmp_path), "--name", "fb"], capsys)
    assert code == 0
    assert "WARNING" in err and "5000" in err
    config = json.loads((tmp_path / "fb/config.json").read_text())
    assert config["dataset"]["fallback"] is True and config["dataset"]["requested"] == "mnist"
    assert config["dataset"]["name"] == "mnist-5k"


BAD = [
    (["--ltp", "0"], "--ltp"),
    (["--ltd", "nan"], "--ltd"),
    (["--nl-ltp", "12"], "--nl-ltp"),
    (["--states", "1"], "--states"),
    (["--wmax", "0"], "--wmax"),
    (["--wmax", "-1"], "--wmax"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--dataset", "imagenet"], "--dataset"),
    (["--update", "hourly"], "--update"),
    (["--pulses", "many"], "--pulses"),
    (["--hidden", "12,x"], "--hidden"),
    (["--ltp", "0.5", "--nl-ltp", "2"], "--ltp"),
    (["--linear", "--ltp", "2"], "--linear"),
    (["--epochs", "two"], "--epochs"),
    (["--c2c", "-0.1"], "--c2c"),
    (["--stuck-gmin", "1.5"], "--stuck-gmin"),
    (["--on-off", "0.5"], "--on-off"),
    (["--device", "no-such-device"], "--device"),
    (["--device", "missing.json"], "--device"),
    (["--states-ltd", "1"], "--states-ltd"),
]


@pytest.mark.parametrize("args,option", BAD)
def test_bad_input_one_line_exit_2_nothing_written(args, option, tmp_path, capsys):
    out_dir = tmp_path / "results"
    code, out, err = call(["run", *args, "--out", str(out_dir)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and lines[0].startswith("Error:")
    assert not out_dir.exists()


def test_unwritable_out_and_bad_data_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = call(["run", "--dataset", "mnist-5k", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "--out" in err and len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = call(["run", "--data-dir", str(empty), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "--data-dir" in err and "mnist.npz" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_nan_loss_stops_and_keeps_history(tmp_path, capsys):
    code, out, err = call(["run", *SMALL, "--epochs", "4", "--no-baselines", "--linear", "--bias",
                           "--lr", "1e38", "--out", str(tmp_path), "--name", "nan"], capsys)
    assert code == 1
    assert "NaN" in err
    rows = read_history(tmp_path / "nan")
    assert 1 <= len(rows) < 4
    config = json.loads((tmp_path / "nan/config.json").read_text())
    assert config["status"] == "diverged" and "NaN" in config["model_status"]["device"]


def test_device_command(tmp_path, capsys):
    code, out, err = call(["device", "--nl-ltp", "2.4", "--nl-ltd", "-4.88", "--states", "97",
                           "--out", str(tmp_path), "--name", "agsi"], capsys)
    assert code == 0, err
    assert "NL_LTP = +2.40" in out and "NL_LTD = -4.88" in out and "N = 96" in out
    assert (tmp_path / "agsi/conductance.png").exists() and (tmp_path / "agsi/conductance.pdf").exists()
    code, _, err = call(["device", "--ltp", "0", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--ltp" in err


def test_preset_and_device_file_with_overrides(tmp_path, capsys):
    code, out, _ = call(["devices"], capsys)
    assert code == 0 and "ag-si" in out and "Jo et al." in out and "epiram" in out
    code, out, err = call(["device", "--device", "ag-si", "--out", str(tmp_path), "--save", str(tmp_path / "mine.json")], capsys)
    assert code == 0 and "NL_LTD = -4.88" in out and "c2c 0.035" in out
    code, out, err = call(["run", "--device", str(tmp_path / "mine.json"), "--c2c", "0", "--states", "33", *SMALL[:6],
                           "--no-baselines", "--out", str(tmp_path), "--name", "r"], capsys)
    assert code == 0, err
    config = json.loads((tmp_path / "r/config.json").read_text())
    assert config["device"]["name"] == "ag-si" and config["device"]["c2c"] == 0 and config["device"]["states"] == 33
    assert config["device"]["a_p"] == pytest.approx(0.4992, abs=1e-3) and config["device"]["on_off"] == 12.5
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = call(["run", "--device", str(bad), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "--device" in err and len(err.strip().splitlines()) == 1
