"""Pulse rules and weight mappings."""

import numpy as np
import pytest
from keras import ops, random

from devsim.devices import ExpDevice, LinearDevice
from devsim.mapping import DifferentialMapping, ReferenceMapping
from devsim.pulses import proportional_pulses, sign_pulses, stochastic_pulses


def npy(x):
    return ops.convert_to_numpy(x)


DW = np.float32([-0.07, -0.02, -0.009, 0.0, 0.011, 0.03, 0.5])


def test_sign_rule():
    assert npy(sign_pulses(DW, 0.02, 100)).tolist() == [-1, -1, -1, 0, 1, 1, 1]


def test_proportional_rule_rounds_and_caps():
    assert npy(proportional_pulses(DW, 0.02, 100)).tolist() == [-4, -1, -0, 0, 1, 2, 25]  # 3.5 -> 4, 1.5 -> 2 (half to even)
    assert npy(proportional_pulses(DW, 0.02, 3)).tolist()[-1] == 3


def test_stochastic_rule_is_unbiased_and_bounded():
    dw = np.full(200_000, 0.013, np.float32)
    n = npy(stochastic_pulses(dw, 0.01, 100, seed=random.SeedGenerator(0)))
    assert set(np.unique(n)) == {1.0, 2.0}
    assert n.mean() == pytest.approx(1.3, abs=0.01)
    neg = npy(stochastic_pulses(-dw, 0.01, 100, seed=random.SeedGenerator(1)))
    assert neg.mean() == pytest.approx(-1.3, abs=0.01)
    assert np.all(npy(stochastic_pulses(dw * 100, 0.01, 5, seed=random.SeedGenerator(2))) == 5)
    a = npy(stochastic_pulses(dw[:100], 0.01, 100, seed=3))
    b = npy(stochastic_pulses(dw[:100], 0.01, 100, seed=3))
    assert np.array_equal(a, b)


def test_reference_mapping():
    m = ReferenceMapping(w_max=0.5)
    g = np.float32([0, 0.25, 0.5, 1])
    np.testing.assert_allclose(npy(m.weights(g)), [-0.5, -0.25, 0, 0.5])
    np.testing.assert_allclose(npy(m.conductances(np.float32([-0.5, 0, 0.5, 9]))), [0, 0.5, 1, 1])
    assert m.dw_min(LinearDevice(101)) == pytest.approx(0.01)
    np.testing.assert_allclose(npy(m.dw_min(ExpDevice(states=101, states_ltd=51), np.float32([1, -1]))), [0.01, 0.02])
    with pytest.raises(ValueError, match="w_max"):
        ReferenceMapping(0)


def test_differential_mapping():
    m = DifferentialMapping(1.0)
    w = np.float32([-0.5, 0.0, 0.25])
    g = npy(m.conductances(w))
    assert g.shape == (2, 3)
    np.testing.assert_allclose(npy(m.weights(g)), w)
    assert npy(m.route(np.float32([-2, 0, 3]))).tolist() == [[0, 0, 3], [2, 0, 0]]  # LTP only
    pp = DifferentialMapping(1.0, "push-pull")
    np.testing.assert_allclose(npy(pp.weights(npy(pp.conductances(w)))), w, atol=1e-7)
    assert npy(pp.route(np.float32([-2, 3]))).tolist() == [[-2, 3], [2, -3]]
    with pytest.raises(ValueError, match="scheme"):
        DifferentialMapping(1.0, "both")
