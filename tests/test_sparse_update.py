"""The sparse batch update (`DeviceTile.updates_pulsed_blocks`) computes what the dense update of every
device computes, bit for bit, on TensorFlow and JAX; and it is used exactly where it applies."""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import devsim

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sparse_update_gives_the_dense_update_bit_for_bit(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "sparse_worker.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["backend"] == backend
    for case, r in result["cases"].items():
        assert r["sparse"] == [True, False], case  # the 784 x 64 kernel sparse; the 64 x 10 one too small
        assert r["dense"] == [False, False], case
        assert r["same_g"] and r["same_w"] and r["same_pulses"] and r["same_loss"], (case, r)
        ltp_hidden = r["pulses"][2]
        assert sum(ltp_hidden) > 0, case  # not vacuous: the sparse kernel got pulses
    # the large step moved devices in every block: the loop took all of its passes (8 of 1/8 each)
    assert result["cases"]["overflow"]["moved_blocks"] == 1.0


def _tiles(**fields):
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, use_bias=False),
                              keras.layers.Dense(10, use_bias=False)])
    settings = {"device": devsim.ExpDevice(a_p=0.8, a_d=0.8, c2c=0.02), "seed": 1, **fields}
    optimizer = devsim.DeviceOptimizer(keras.optimizers.SGD(0.1), **settings)
    optimizer.build(model.trainable_variables)
    return [tile.updates_pulsed_blocks for tile in optimizer.tiles]


def test_sparse_update_applies_where_it_computes_the_dense_numbers():
    base = devsim.ExpDevice(a_p=0.8, a_d=0.8, c2c=0.02)
    assert _tiles() == [True, False]  # 784 x 32 = 25088 devices; 320 are fewer than SPARSE_MIN_SIZE
    assert _tiles(sparse_update=False) == [False, False]
    assert _tiles(jit_compile=False) == [False, False]  # TensorFlow's scatter drops unused rows only in XLA
    assert _tiles(device=dataclasses.replace(base, d2d=0.1)) == [False, False]  # devices differ
    assert _tiles(device=dataclasses.replace(base, stuck_gmin=0.01)) == [False, False]
    assert _tiles(device=dataclasses.replace(base, read_noise=0.01)) == [False, False]  # every weight re-read
    assert _tiles(mapping=devsim.DifferentialMapping()) == [False, False]
    assert _tiles(algorithm="ttv2") == [False, False]


def test_sparse_update_is_saved_with_the_optimizer():
    optimizer = devsim.DeviceOptimizer("sgd", devsim.ExpDevice(), sparse_update=False)
    again = devsim.DeviceOptimizer.from_config(optimizer.get_config())
    assert again.sparse_update is False and devsim.DeviceOptimizer("sgd", devsim.ExpDevice()).sparse_update is True
