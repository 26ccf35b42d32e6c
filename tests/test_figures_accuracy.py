"""Accuracy against epoch (devsim.figures.accuracy), the paper style and atomic saving (devsim.figures.style)."""

import math

import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from devsim.figures import accuracy, style

LABELS = {"dev": "device (A_p=0.8, A_d=0.8; NL 1.25/-1.25)", "lin": "linear device", "float": "float (ideal)"}


def _history(train=True):
    """Rows as csv.DictReader gives them: every value a string."""
    rows = []
    for k, model in enumerate(LABELS):
        for epoch in range(1, 6):
            acc = 0.9 + 0.01 * k - 0.1 * math.exp(-epoch)
            row = {"model": model, "epoch": str(epoch), "test_accuracy": f"{acc:.4f}"}
            if train:
                row["train_accuracy"] = f"{acc + 0.01:.4f}"
            rows.append(row)
    return rows


def _check_files(paths, tmp_path, stem="fig"):
    png, pdf = tmp_path / f"{stem}.png", tmp_path / f"{stem}.pdf"
    assert [str(p) for p in paths] == [str(png), str(pdf)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    height, width = imread(png).shape[:2]
    assert abs(width - 3.4 * 300) <= 0.1 * 3.4 * 300 and abs(height - 2.6 * 300) <= 0.1 * 2.6 * 300
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}.pdf", f"{stem}.png"]  # no temp files


def test_plot_accuracy_writes_png_and_pdf(tmp_path):
    _check_files(accuracy.plot_accuracy(_history(), tmp_path / "fig", labels=LABELS, title="MNIST"), tmp_path)


def test_accuracy_figure_legend_and_axes():
    with style.paper_style():
        fig = accuracy._accuracy_figure(_history(), labels={"dev": LABELS["dev"]})
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [LABELS["dev"], "lin", "float"]  # order of first appearance, unlabelled -> model name
    hint = [t.get_text() for leg in ax.artists for t in leg.get_texts()]
    assert hint == ["test", "train"]
    assert ax.get_xlabel() == "Epoch" and ax.get_ylabel() == "Accuracy"
    lo, hi = ax.get_ylim()
    assert (lo, hi) == (0.85, 0.95)  # tight range for high curves (data 0.863..0.93), 0.05 steps
    solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata())]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert len(solid) == len(dashed) == 3
    assert list(solid[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert solid[0].get_color() == dashed[0].get_color() and dashed[0].get_linewidth() < solid[0].get_linewidth()


def test_accuracy_without_train_and_low_values(tmp_path):
    rows = [{"model": "m", "epoch": e, "test_accuracy": 0.1 * e} for e in range(1, 6)]
    rows += [{"model": "m2", "epoch": str(e), "test_accuracy": "0.5", "train_accuracy": ""} for e in (1, 2)]
    with style.paper_style():
        fig = accuracy._accuracy_figure(rows)
    ax = fig.axes[0]
    assert [ln.get_linestyle() for ln in ax.get_lines() if len(ln.get_xdata())] == ["-", "-"]
    assert [t.get_text() for leg in ax.artists for t in leg.get_texts()] == ["test"]
    assert ax.get_ylim() == (0, 1)
    _check_files(accuracy.plot_accuracy(rows, tmp_path / "fig"), tmp_path)


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    real = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        if kwargs.get("format") == "pdf" or str(fname).endswith(".pdf"):
            raise OSError("disk full")
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(OSError, match="disk full"):
        accuracy.plot_accuracy(_history(), tmp_path / "fig")
    assert list(tmp_path.iterdir()) == []  # no pdf, no temp file, and no unpaired png either


def test_stem_with_dots_keeps_name(tmp_path):
    paths = accuracy.plot_accuracy(_history(), tmp_path / "acc_A0.8")
    assert [p.name for p in paths] == ["acc_A0.8.png", "acc_A0.8.pdf"] and all(p.exists() for p in paths)


def test_paper_style_applied():
    with style.paper_style():
        fig = accuracy._accuracy_figure(_history())
    assert tuple(fig.get_size_inches()) == pytest.approx((3.4, 2.6))
    assert fig.get_layout_engine() is not None
    ax = fig.axes[0]
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert ax.get_lines()[0].get_color().lower() == "#0072b2"
