"""Reading results (devsim.figures.summary): cells, files, bad files."""

from devsim.figures import summary
from figure_checks import INF


def test_parse_value():
    assert summary.parse_value("inf") == INF and summary.parse_value("Infinity") == INF
    assert summary.parse_value("-inf") == -INF and summary.parse_value(" 64 ") == 64 and summary.parse_value("") is None
    assert summary.parse_value("0.5") == 0.5 and summary.parse_value("ag-a-si") == "ag-a-si"
    assert summary.parse_value([256, 128]) == "256,128" == summary.parse_value("[256, 128]")
