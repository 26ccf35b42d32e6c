"""Conductance against pulse number (devsim.figures.conductance)."""

import io
import math
import re
import warnings

import numpy as np
from matplotlib.image import imread

from devsim.devices import ExpDevice
from devsim.figures import conductance, style


def _responses(n=100, a=0.8):
    pulse = np.arange(2 * n + 1)
    x = np.arange(n + 1) / n
    up = (1 - np.exp(-x / a)) / (1 - np.exp(-1 / a))
    return [{"label": f"saturating (A={a})", "pulse": pulse, "g": np.concatenate([up, 1 - up[1:]])},
            {"label": "linear", "pulse": pulse, "g": np.concatenate([x, 1 - x[1:]]), "style": "dashed"}]


def _check_files(paths, tmp_path, stem="fig"):
    png, pdf = tmp_path / f"{stem}.png", tmp_path / f"{stem}.pdf"
    assert [str(p) for p in paths] == [str(png), str(pdf)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    height, width = imread(png).shape[:2]
    assert abs(width - 3.4 * 300) <= 0.1 * 3.4 * 300 and abs(height - 2.6 * 300) <= 0.1 * 2.6 * 300
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}.pdf", f"{stem}.png"]  # no temp files


def test_plot_conductance_writes_files(tmp_path):
    _check_files(conductance.plot_conductance(_responses(), tmp_path / "fig"), tmp_path)


def test_conductance_figure_contents():
    with style.paper_style():
        fig = conductance._conductance_figure(_responses(n=100))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["saturating (A=0.8)", "linear"]
    assert ax.get_xlabel() == "Pulse number" and "conductance" in ax.get_ylabel()
    assert {"LTP", "LTD"} <= {t.get_text() for t in ax.texts}
    assert any(list(ln.get_xdata()) == [100, 100] for ln in ax.get_lines())  # turning point
    data = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    assert [ln.get_linestyle() for ln in data] == ["-", "--"]
    assert all(ln.get_marker() in (None, "None", "") for ln in data)  # 100 pulses/branch: lines only
    with style.paper_style():
        small = conductance._conductance_figure(_responses(n=16))
    assert all(ln.get_marker() == "o" for ln in small.axes[0].get_lines() if len(ln.get_xdata()) > 2)


def test_device_response_has_the_linear_device_dashed(tmp_path):
    paths = conductance.plot_device_response(ExpDevice(0.5, -0.8, states=21), tmp_path / "conductance")
    assert [p.name for p in paths] == ["conductance.png", "conductance.pdf"] and all(p.is_file() for p in paths)
    curves = conductance._device_curves(ExpDevice(0.5, -0.8, states=21))
    assert [c["label"] for c in curves] == [r"device: $A_\mathrm{p}$=0.5, $A_\mathrm{d}$=−0.8 (NL 2.40/1.55)",
                                            "linear device"]  # minus signs of numbers typeset as such
    assert curves[1]["style"] == "dashed" and np.allclose(curves[1]["g"][:21], np.arange(21) / 20)
    linear = conductance._device_curves(ExpDevice(math.inf, math.inf, states=21))
    assert [c["label"] for c in linear] == ["device: linear"]  # no second linear curve


def test_a_long_device_description_wraps_and_stays_on_the_page():
    long = ("device: pulses_example: measured table, 62/68 pulses (fitted $A_\\mathrm{p}$=0.427, "
            "$A_\\mathrm{d}$=0.241, NL 2.76/−4.33)")
    responses = _responses()
    responses[0]["label"] = long
    with style.paper_style(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = conductance._conductance_figure(responses)
        fig.savefig(io.BytesIO(), format="png", dpi=300)  # as save_figure does
    assert not [w for w in caught if "constrained_layout" in str(w.message)]  # the layout did not collapse
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0].replace("\n", " ") == long and texts[0].count("\n") >= 1  # nothing dropped, broken at spaces
    assert all(len(re.sub(r"\\mathrm|[{}$_\\]", "", line)) <= 56 for line in texts[0].splitlines())  # shown characters
    box, page = fig.axes[0].get_legend().get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
