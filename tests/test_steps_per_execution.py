"""`devsim run` runs a whole epoch per call into Keras's compiled step, with the same numbers as one step per call."""

import csv

import keras
import numpy as np
import pytest

from devsim.run import RunConfig, run
from cli_helpers import offline  # noqa: F401  (offline: an autouse fixture)

BASE = dict(dataset="mnist-5k", epochs=2, hidden=(12,), states=33, seed=4, lr=0.05)


def one_step_per_call(monkeypatch):
    """Keras's default: every `compile` with steps_per_execution=1."""
    compile = keras.Model.compile

    def patched(self, *args, **kwargs):
        kwargs["steps_per_execution"] = 1
        return compile(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", patched)


def results(folder):
    with open(folder / "history.csv") as f:
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]
    arrays = {}
    for path in sorted(folder.glob("states_*.npz")):
        with np.load(path) as z:
            arrays.update({f"{path.stem}/{k}": z[k] for k in z.files})
    return rows, arrays


@pytest.mark.parametrize("extra", [
    pytest.param({"update": "epoch", "pulses": "sign"}, marks=pytest.mark.slow),  # with the linear and float baselines
    {"update": "batch", "pulses": "stochastic", "c2c": 0.02, "count_pulses": True, "baselines": False},
    pytest.param({"update": "batch", "pulses": "stochastic", "d2d": 0.1, "mapping": "differential", "baselines": False},
                 marks=pytest.mark.slow),
])
def test_epoch_per_call_is_bit_identical_to_step_per_call(tmp_path, monkeypatch, extra):
    config = dict(BASE, ltp=0.8, ltd=0.4, **extra)
    fast = run(RunConfig(**config, out=str(tmp_path / "fast")), echo=lambda m: None)
    with monkeypatch.context() as m:
        one_step_per_call(m)
        slow = run(RunConfig(**config, out=str(tmp_path / "slow")), echo=lambda m: None)
    (rows_fast, arrays_fast), (rows_slow, arrays_slow) = results(fast), results(slow)
    assert rows_fast == rows_slow and len(rows_fast) >= 2
    assert arrays_fast.keys() == arrays_slow.keys() and arrays_fast
    for key in arrays_fast:
        np.testing.assert_array_equal(arrays_fast[key], arrays_slow[key], err_msg=key)


@pytest.mark.parametrize("read_noise,expected", [(0.0, -(-4000 // 32)), (0.01, 1)])
def test_steps_per_execution_is_an_epoch_except_under_read_noise(tmp_path, monkeypatch, read_noise, expected):
    # Under read noise every evaluation batch reads the devices afresh (a per-batch callback).
    seen = []
    compile = keras.Model.compile

    def recording(self, *args, **kwargs):
        seen.append(kwargs.get("steps_per_execution", 1))
        return compile(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", recording)
    run(RunConfig(**dict(BASE, epochs=1), update="batch", read_noise=read_noise, baselines=False,
                  out=str(tmp_path)), echo=lambda m: None)
    assert seen == [expected]
