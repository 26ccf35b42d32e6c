"""Stacked training of K device configurations equals training them one by one."""

import csv
import json

import numpy as np
import pytest

from devsim.run import RunConfig, run
from devsim.stacked import run_stacked, stack_key
from cli_helpers import offline  # noqa: F401  (offline: an autouse fixture)

BASE = dict(dataset="mnist-5k", epochs=2, hidden=(12,), states=33, baselines=False, seed=3)


def history(folder):
    with open(folder / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("update,pulses,extra", [
    ("epoch", "sign", {}),
    ("batch", "stochastic", {"c2c": 0.01, "lr": 0.1}),
])
def test_stacked_equals_one_by_one(tmp_path, update, pulses, extra):
    curvatures = [(0.3, 0.7), (2.0, -1.0), (-0.8, 0.4)]  # one kind of curve math (stack_key): nonlinear, asymmetric
    configs = [RunConfig(**BASE, **extra, ltp=a, ltd=b, update=update, pulses=pulses, out=str(tmp_path / "stacked"))
               for a, b in curvatures]
    assert len({stack_key(c) for c in configs}) == 1
    stacked = run_stacked(configs, echo=lambda m: None)
    for config, folder in zip(configs, stacked):
        alone = run(RunConfig(**{**config.to_dict(), "out": str(tmp_path / "alone")}), echo=lambda m: None)
        a, b = history(folder), history(alone)
        assert len(a) == len(b) == 2
        for ra, rb in zip(a, b):
            for key in ("train_accuracy", "test_accuracy"):
                assert float(ra[key]) == pytest.approx(float(rb[key]), abs=2e-3), key
            assert float(ra["test_loss"]) == pytest.approx(float(rb["test_loss"]), rel=2e-3)
            for key in ra:
                if key.startswith("pulses_"):
                    assert int(ra[key]) == pytest.approx(int(rb[key]), rel=1e-3), key
        ga, gb = np.load(folder / "states_device.npz"), np.load(alone / "states_device.npz")
        assert np.mean(np.abs(ga["g_dense_1"] - gb["g_dense_1"]) > 1e-4) < 1e-3  # all but a handful of devices equal
        record = json.loads((folder / "config.json").read_text())
        assert record["status"] == "complete" and len(record["stacked_with"]) == 3
        assert float(record["device"]["a_p"]) == config.make_device().a_p  # strict JSON: inf as "inf"


def test_stack_key_groups_only_compatible_runs():
    a = RunConfig(**BASE, ltp=0.5, ltd=0.2)
    assert stack_key(a) == stack_key(RunConfig(**BASE, nl_ltp=2.0, ltd=0.3))
    # a linear branch, or a symmetric device, takes another code path: stacked only with its own kind
    assert stack_key(a) != stack_key(RunConfig(**BASE, ltp=0.5)) != stack_key(RunConfig(**BASE, ltp=0.5, ltd=0.5))
    assert stack_key(a) != stack_key(RunConfig(**{**BASE, "states": 65}, ltp=0.5))
    assert stack_key(RunConfig(**{**BASE, "baselines": True}, ltp=0.5)) is None
    # device-to-device variation stacks too (each copy draws its own devices as alone), with its own kind
    assert stack_key(RunConfig(**BASE, ltp=0.5, d2d=0.2)) not in (None, stack_key(a))


NOISES = {
    "c2c": {"c2c": 0.02},
    "read": {"read_noise": 0.01},
    "d2d+stuck": {"d2d": 0.3, "d2d_range": 0.05, "stuck_gmin": 0.02, "stuck_gmax": 0.01},
    "all": {"c2c": 0.02, "read_noise": 0.01, "d2d": 0.3, "stuck_gmin": 0.02},
}


@pytest.mark.parametrize("update", ["batch", pytest.param("epoch", marks=pytest.mark.slow)])
@pytest.mark.parametrize("noise", [pytest.param(n, marks=[] if n == "all" else [pytest.mark.slow]) for n in NOISES])
def test_stacked_is_bit_identical_to_alone_with_every_noise(tmp_path, update, noise):
    base = dict(dataset="mnist-5k", epochs=2, hidden=(8,), states=33, baselines=False, seed=1, lr=0.05,
                update=update, count_pulses=True, **NOISES[noise])
    configs = [RunConfig(**base, ltp=a, ltd=0.5, out=str(tmp_path / "stacked")) for a in (0.3, -2.0)]
    assert len({stack_key(c) for c in configs}) == 1
    stacked = run_stacked(configs, echo=lambda m: None)
    for config, folder in zip(configs, stacked):
        alone = run(RunConfig(**{**config.to_dict(), "out": str(tmp_path / "alone")}), echo=lambda m: None)
        strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert strip(history(folder)) == strip(history(alone))
        a, b = np.load(folder / "states_device.npz"), np.load(alone / "states_device.npz")
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
