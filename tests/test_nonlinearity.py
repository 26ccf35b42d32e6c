"""NeuroSim NL labels: anchors from docs/devices.md, round trips, sign conventions."""

import math

import numpy as np
import pytest

from devsim.nonlinearity import a_d_from_label, a_from_nl, a_p_from_label, ltd_label, ltp_label, nl_from_a

ANCHORS = [(0.01, 126.269), (0.5, 2.5199), (1, 1.2517), (2, 0.609), (2.40, 0.4992), (3, 0.3868),
           (4, 0.2691), (4.88, 0.2003), (5, 0.1924), (6, 0.1356), (9, 0.0228)]


@pytest.mark.parametrize("label,a", ANCHORS)
def test_anchor_pairs(label, a):
    assert nl_from_a(a) == pytest.approx(label, abs=0.01)
    assert a_from_nl(label) == pytest.approx(a, rel=2e-3)


def test_round_trips_vectorized():
    labels = np.linspace(0.01, 9.5, 200)
    np.testing.assert_allclose(nl_from_a(a_from_nl(labels)), labels, atol=1e-9)
    a = np.geomspace(0.01, 1000, 100)
    np.testing.assert_allclose(a_from_nl(nl_from_a(a)), a, rtol=1e-6)


def test_label_is_the_max_gap_to_the_line():
    x = np.linspace(0, 1, 200001)
    for a in (0.05, 0.3, 1.0, 7.0):
        g = (1 - np.exp(-x / a)) / (1 - np.exp(-1 / a))
        assert nl_from_a(a) == pytest.approx(np.max(g - x) / 0.098995, rel=1e-6)


def test_linear_and_signs():
    assert nl_from_a(math.inf) == 0 and a_from_nl(0) == math.inf
    assert a_p_from_label(0) == math.inf and a_d_from_label(0) == math.inf
    assert ltp_label(0.4992) == pytest.approx(2.40, abs=0.01)
    assert ltp_label(-0.4992) == pytest.approx(-2.40, abs=0.01)
    assert ltd_label(0.2003) == pytest.approx(-4.88, abs=0.01)  # saturating LTD has a negative label
    assert ltd_label(-0.2003) == pytest.approx(4.88, abs=0.01)
    assert a_d_from_label(-4.88) == pytest.approx(0.2003, rel=2e-3)
    assert a_d_from_label(1.46) < 0  # HZO FeFET's positive LTD label walks back down the LTP curve
    assert ltp_label(math.inf) == 0 and ltd_label(math.inf) == 0


def test_bad_label():
    with pytest.raises(ValueError, match="NL label"):
        a_from_nl(11)
    with pytest.raises(ValueError, match="NL label"):
        a_from_nl(float("nan"))
