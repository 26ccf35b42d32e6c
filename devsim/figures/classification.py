"""Classification results of a trained network: metrics in numpy, a grid of test images
with their predictions, a confusion matrix with per-class precision, recall and F1."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from devsim.figures.style import BLUE, GREY, RED, paper_style, save_figure, text_color

__all__ = ["classification_metrics", "plot_predictions", "plot_confusion"]


def classification_metrics(y_true, y_pred, num_classes=None) -> dict:
    """Confusion matrix and per-class precision, recall and F1, in numpy.

    Args:
        y_true, y_pred: integer class labels of equal length.
        num_classes: number of classes (default: the largest label + 1).

    Returns:
        A dict with ``confusion`` (k x k int array, rows = true class, columns =
        predicted class), ``precision``, ``recall``, ``f1`` and ``support`` (true count) per
        class, ``accuracy``, and ``macro_precision``/``macro_recall``/``macro_f1`` (means
        over the classes where defined). Undefined ratios (0/0: a class never predicted, or
        absent) are NaN; ``f1 = 2 TP / (2 TP + FP + FN)``, 0 when TP = 0 but the class occurs.
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({len(y_true)} and {len(y_pred)})")
    if len(y_true) and min(y_true.min(), y_pred.min()) < 0:
        raise ValueError("class labels must be >= 0")
    k = int(num_classes) if num_classes else int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    if len(y_true) and max(y_true.max(), y_pred.max()) >= k:
        raise ValueError(f"class labels must be < num_classes = {k}")
    cm = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    predicted, actual = cm.sum(axis=0).astype(float), cm.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(actual > 0, tp / actual, np.nan)
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), np.nan)
    n = int(cm.sum())

    def mean(a):
        return float(np.mean(a[np.isfinite(a)])) if np.isfinite(a).any() else math.nan

    return {"confusion": cm, "precision": precision, "recall": recall, "f1": f1, "support": cm.sum(axis=1),
            "accuracy": float(tp.sum() / n) if n else math.nan, "n": n,
            "macro_precision": mean(precision), "macro_recall": mean(recall), "macro_f1": mean(f1)}


def _display_image(image):
    """An image as imshow wants it: 2-D grey or RGB in [0, 1] (CIFAR's [-1, 1] is mapped back)."""
    img = np.asarray(image, dtype=float)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 1:
        side = int(round(math.sqrt(img.size)))
        img = img.reshape(side, side) if side * side == img.size else img[None, :]
    if img.min() < 0:
        img = (img + 1) / 2
    elif img.max() > 1:
        img = img / 255
    return np.clip(img, 0, 1)


def _predictions_figure(images, labels, probabilities, n=16, class_names=None, title=None, cols=4) -> Figure:
    """Build the predictions figure (call inside `paper_style()`). See plot_predictions."""
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64).ravel()
    probs = np.asarray(probabilities, dtype=float)
    if probs.ndim != 2 or len(probs) != len(labels) or len(images) != len(labels):
        raise ValueError(f"plot_predictions: images ({len(images)}), labels ({len(labels)}) and probabilities "
                         f"{probs.shape} must have the same length, probabilities one row of class probabilities each")
    n = min(int(n), len(labels))
    if n < 1:
        raise ValueError("plot_predictions: no images")
    k = probs.shape[1]
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_predictions: {len(names)} class names for {k} classes")
    short = all(len(c) <= 2 for c in names)
    texts = []
    for i in range(n):
        pred, true = int(np.argmax(probs[i])), int(labels[i])
        text = f"{names[pred]} {100 * probs[i, pred]:.0f}%"
        if pred != true:
            text += ("\n" if len(text) + len(names[true]) > 14 else " ") + f"(true {names[true]})"
        texts.append(text)
    lines = max(t.count("\n") + 1 for t in texts)
    cols = min(cols, n)
    nrows = math.ceil(n / cols)
    # Geometry in inches: square image cells, bar charts beside them, a gap for titles and tick labels.
    width, left, right, wspace, ratio = 7.0, 0.08, 0.08, 0.12, 1.2
    ncell = 2 * cols
    avg = (width - left - right) / (ncell + (ncell - 1) * wspace)
    cell = avg * ncell / (cols * (1 + ratio))  # image width = row height
    gap = 0.2 + 0.13 * lines  # bar tick labels below a row, the next row's title above it
    top_in = (0.32 if title else 0.06) + 0.13 * lines
    bottom_in = 0.22 + (0.38 if short else 0.52)
    height = top_in + nrows * cell + (nrows - 1) * gap + bottom_in
    fig = Figure(figsize=(width, height))
    fig.set_layout_engine("none")
    gs = fig.add_gridspec(nrows, ncell, width_ratios=[1, ratio] * cols, left=left / width, right=1 - right / width,
                          top=1 - top_in / height, bottom=bottom_in / height, wspace=wspace, hspace=gap / cell)
    small = 6.5
    for i in range(n):
        r, c = divmod(i, cols)
        ax_img = fig.add_subplot(gs[r, 2 * c])
        ax_bar = fig.add_subplot(gs[r, 2 * c + 1])
        img = _display_image(images[i])
        ax_img.imshow(img, cmap="binary" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.grid(False)
        for spine in ax_img.spines.values():
            spine.set_visible(True)
            spine.set_color("0.7")
            spine.set_linewidth(0.5)
        ax_img.apply_aspect()  # bars exactly as tall as the (square) image
        box, bar_box = ax_img.get_position(), ax_bar.get_position()
        ax_bar.set_position([bar_box.x0, box.y0, bar_box.width, box.height])
        pred, true = int(np.argmax(probs[i])), int(labels[i])
        ok = pred == true
        color = BLUE if ok else RED
        ax_img.text(0, 1.04, texts[i], transform=ax_img.transAxes, ha="left", va="bottom", fontsize=small + 0.5,
                    color=color, fontweight="normal" if ok else "bold", linespacing=1.0)
        bars = ax_bar.bar(range(k), probs[i], color=GREY, width=0.75)
        bars[pred].set_color(color)
        bars[true].set_color(BLUE)
        mark = blended_transform_factory(ax_bar.transData, ax_bar.transAxes)
        ax_bar.plot([true], [-0.075], transform=mark, marker="^", color=BLUE, markersize=3, clip_on=False,
                    ls="none")
        ax_bar.set_ylim(0, 1)
        ax_bar.set_xlim(-0.6, k - 0.4)
        ax_bar.set_xticks(range(k), [str(j) for j in range(k)] if k <= 10 else [])
        ax_bar.tick_params(axis="x", labelsize=5, length=0, pad=6)
        ax_bar.get_xticklabels()[true].set_color(BLUE) if k <= 10 else None
        ax_bar.set_yticks([0, 0.5, 1], [])
        ax_bar.tick_params(axis="y", length=1.5)
        ax_bar.grid(axis="x", visible=False)
        ax_bar.spines["left"].set_linewidth(0.5)
        ax_bar.spines["bottom"].set_linewidth(0.5)
    legend = [Patch(color=BLUE, label="predicted = true class"), Patch(color=RED, label="wrong prediction"),
              Line2D([], [], ls="none", marker="^", color=BLUE, markersize=4, label="true class"),
              Patch(color=GREY, label="other classes")]
    fig.legend(handles=legend, loc="lower left", bbox_to_anchor=(left / width, 0.02 / height), ncols=4,
               frameon=False, fontsize=7, handlelength=1.2, columnspacing=1.5, borderaxespad=0)
    caption = "Bars: predicted probability of each class (0 to 1, gridline at 0.5) against the class index."
    if not short:
        caption += "\nClasses: " + ", ".join(f"{j} {c}" for j, c in enumerate(names))
    fig.text(left / width, 0.22 / height, caption, fontsize=6.5, color="0.3", ha="left", va="bottom")
    if title:
        fig.suptitle(title, fontsize=matplotlib.rcParams["axes.titlesize"], x=left / width, ha="left",
                     y=1 - 0.05 / height, va="top")
    return fig


def plot_predictions(images, labels, probabilities, stem, n=16, class_names=None, title=None) -> list[Path]:
    """The TensorFlow classification tutorial's figure: test images with their predictions.

    A grid of ``n`` (default 16, 4 per row) image/bar-chart pairs: each image is titled
    with the predicted class and its probability (vermillion-red, bold and with the true
    class when wrong, blue when right), and its bar chart shows the probabilities of all
    classes: the predicted bar red when wrong, the true class blue and marked with ▲.

    Args:
        images: test images, (m, h, w) grey or (m, h, w, 3) colour, in [0, 1] or [-1, 1].
        labels: true classes, (m,).
        probabilities: predicted class probabilities, (m, classes).
        stem: output path without suffix.
        n: how many of the first images to show.
        class_names: optional names of the classes (default: their indices).
        title: optional figure title.

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_predictions_figure(images, labels, probabilities, n, class_names, title), stem)


def _confusion_figure(y_true, y_pred, class_names=None, title=None, num_classes=None) -> Figure:
    """Build the confusion-matrix figure (call inside `paper_style()`). See plot_confusion."""
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    m = classification_metrics(y_true, y_pred, num_classes)
    cm = m["confusion"]
    k = len(cm)
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_confusion: {len(names)} class names for {k} classes")
    longest = max(map(len, names))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(cm.sum(axis=1, keepdims=True) > 0, cm / cm.sum(axis=1, keepdims=True), 0.0)
    fig = Figure(figsize=(7.0, 3.5 + 0.045 * max(0, longest - 3)))
    gs = fig.add_gridspec(1, 3, width_ratios=[k, 0.3, 5.4])
    ax, cax, tab = fig.add_subplot(gs[0]), fig.add_subplot(gs[1]), fig.add_subplot(gs[2])
    cmap = matplotlib.colormaps["Blues"]
    im = ax.imshow(frac, cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    size = 6.5 if k <= 10 else 5 if k <= 15 else 4
    for i in range(k):
        for j in range(k):
            count = int(cm[i, j])
            color = "0.65" if count == 0 else text_color(cmap(frac[i, j]))
            ax.text(j, i, str(count), ha="center", va="center", fontsize=size, color=color)
    rotate = longest > 2
    ax.set_xticks(range(k), names, rotation=45 if rotate else 0, ha="right" if rotate else "center",
                  rotation_mode="anchor")
    ax.set_yticks(range(k), names)
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    cbar = fig.colorbar(im, cax=cax, label="Fraction of true class")
    cbar.outline.set_visible(False)
    cbar.ax.tick_params(labelsize=7)
    columns = [("Precision", m["precision"]), ("Recall", m["recall"]), ("F1", m["f1"]),
               ("n", m["support"].astype(float))]
    tab.set_xlim(-0.5, len(columns) - 0.5)
    tab.set_ylim(k - 0.5, -0.5)
    for j, (_, values) in enumerate(columns):
        for i, v in enumerate(values):
            text = "–" if not math.isfinite(v) else (f"{int(v)}" if j == 3 else f"{v:.2f}")
            tab.text(j, i, text, ha="center", va="center", fontsize=7)
    tab.set_xticks(range(len(columns)), [c for c, _ in columns])
    tab.xaxis.tick_top()
    tab.tick_params(axis="x", length=0, labelsize=7)
    tab.set_yticks(range(k), names)
    tab.tick_params(axis="y", length=0, labelleft=False)
    tab.grid(False)
    for spine in tab.spines.values():
        spine.set_visible(False)
    for i in range(k + 1):
        tab.axhline(i - 0.5, color="0.9", lw=0.5)
    head = (f"Accuracy {m['accuracy']:.3f} (n = {m['n']}); macro averages: precision {m['macro_precision']:.3f}, "
            f"recall {m['macro_recall']:.3f}, F1 {m['macro_f1']:.3f}")
    fig.suptitle(f"{title}\n{head}" if title else head, fontsize=matplotlib.rcParams["axes.titlesize"])
    return fig


def plot_confusion(y_true, y_pred, stem, class_names=None, title=None, num_classes=None) -> list[Path]:
    """Confusion matrix with per-class precision, recall and F1 beside it.

    Cells print the counts and are coloured by the fraction of their row (the true class),
    so classes of different size compare; a side table lists precision, recall, F1 and the
    number of test images per class; the title gives the overall accuracy and the macro
    averages. Metrics come from
    `classification_metrics` (numpy only).

    Args:
        y_true, y_pred: integer class labels.
        stem: output path without suffix.
        class_names: optional names of the classes (default: their indices).
        title: optional text before "Accuracy ..." in the title (e.g. the model).
        num_classes: number of classes (default: len(class_names) or largest label + 1).

    Returns:
        ``[stem.png, stem.pdf]``.
    """
    with paper_style():
        return save_figure(_confusion_figure(y_true, y_pred, class_names, title, num_classes), stem)
