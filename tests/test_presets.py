"""Presets agree with the NeuroSim benchmark table; device files round-trip."""

import csv
import json
import math
from pathlib import Path

import pytest

from devsim.errors import ConfigError
from devsim.presets import PRESETS, load_device, save_device

TABLE = Path(__file__).resolve().parents[1] / "experiments" / "neurosim_benchmark_devices.csv"


def table_ii():
    with open(TABLE) as f:
        return {r["device"]: r for r in csv.DictReader(f) if "Table II" in r["source_table"]}


@pytest.mark.parametrize("key", list(PRESETS))
def test_presets_match_neurosim_table(key):
    preset, row = PRESETS[key], table_ii()[PRESETS[key].device]
    assert preset.nl_ltp == float(row["NL_LTP"]) and preset.nl_ltd == float(row["NL_LTD"])
    assert preset.on_off == float(row["on_off"])
    assert preset.levels == int(row["levels"].split("-")[0])
    assert preset.c2c == pytest.approx(float(row["c2c_sigma"].strip("<%")) / 100)
    assert preset.neurosim_accuracy == pytest.approx(float(row["online_accuracy_MNIST"].strip("~%")) / 100)
    device = preset.to_device()
    nl_p, nl_d = device.nl_labels
    assert nl_p == pytest.approx(preset.nl_ltp, abs=1e-6) and nl_d == pytest.approx(preset.nl_ltd, abs=1e-6)
    assert device.states == preset.levels and device.c2c == preset.c2c and device.name == key


def test_ag_si_is_the_design_example():
    d = load_device("ag-si")
    assert (d.a_p, d.a_d) == (pytest.approx(0.4992, abs=1e-3), pytest.approx(0.2003, abs=1e-3))


def test_device_json_round_trip_and_hand_written(tmp_path):
    d = load_device("hzo-fefet")
    save_device(d, tmp_path / "fefet.json")
    again = load_device(str(tmp_path / "fefet.json"))
    assert (again.a_p, again.a_d, again.states, again.on_off, again.c2c) == (d.a_p, d.a_d, d.states, d.on_off, d.c2c)
    (tmp_path / "mine.json").write_text(json.dumps({"nl_ltp": 1.0, "nl_ltd": -2.0, "states": 33, "read_noise": 0.02}))
    mine = load_device(str(tmp_path / "mine.json"))
    assert mine.name == "mine" and mine.states == 33 and mine.read_noise == 0.02
    assert mine.nl_labels[0] == pytest.approx(1.0) and mine.nl_labels[1] == pytest.approx(-2.0)
    assert math.isinf(load_device(str(_write(tmp_path / "lin.json", {"states": 9}))).a_p)


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("content,match", [
    ("{oops", "not a readable JSON"), ('{"color": 1}', "holds no device"), ('{"states": 1}', "states"),
    ('{"a_p": 0}', "A_p"),
])
def test_bad_device_files(tmp_path, content, match):
    path = tmp_path / "d.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match) as exc:
        load_device(str(path))
    assert str(exc.value).startswith("--device:") and "\n" not in str(exc.value)
