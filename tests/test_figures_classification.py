"""Classification metrics, the predictions grid and the confusion matrix (devsim.figures.classification)."""

import matplotlib
import numpy as np
import pytest

from devsim.figures import classification, style
from devsim.figures.labels import CLASS_NAMES
from figure_checks import valid


def test_classification_metrics_by_hand():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0, 1]
    m = classification.classification_metrics(y_true, y_pred, num_classes=5)
    cm = np.array([[2, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 3, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(m["confusion"], cm)
    # class 0: TP 2, FP 1, FN 1; class 1: TP 1, FP 2, FN 1; class 2: TP 3, FP 1, FN 1; class 3: TP 0, FN 1
    np.testing.assert_allclose(m["precision"][:4], [2 / 3, 1 / 3, 3 / 4, np.nan])
    np.testing.assert_allclose(m["recall"][:4], [2 / 3, 1 / 2, 3 / 4, 0])
    np.testing.assert_allclose(m["f1"][:4], [2 / 3, 0.4, 0.75, 0])
    assert np.isnan(m["precision"][4]) and np.isnan(m["recall"][4]) and np.isnan(m["f1"][4])  # class never seen
    np.testing.assert_array_equal(m["support"], [3, 2, 4, 1, 0])
    assert m["accuracy"] == 0.6 and m["n"] == 10
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.4 + 0.75 + 0) / 4)


def test_classification_metrics_match_numpy_random():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    m = classification.classification_metrics(y_true, y_pred)
    for c in range(10):
        tp = np.sum((y_true == c) & (y_pred == c))
        assert m["precision"][c] == pytest.approx(tp / np.sum(y_pred == c))
        assert m["recall"][c] == pytest.approx(tp / np.sum(y_true == c))
        p, r = m["precision"][c], m["recall"][c]
        assert m["f1"][c] == pytest.approx(2 * p * r / (p + r))
    assert m["confusion"].sum() == 500 and m["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    with pytest.raises(ValueError, match="length"):
        classification.classification_metrics([0, 1], [0])


def test_confusion_figure_shows_counts_metrics_and_accuracy(tmp_path):
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0, 1]
    with style.paper_style():
        fig = classification._confusion_figure(y_true, y_pred, class_names=["a", "b", "c", "d"])
    ax, tab = fig.axes[0], fig.axes[2]
    assert [t.get_text() for t in ax.texts][:4] == ["2", "1", "0", "0"]  # counts, row by row
    table = [t.get_text() for t in tab.texts]
    assert table[:4] == ["0.67", "0.33", "0.75", "–"] and table[8:12] == ["0.67", "0.40", "0.75", "0.00"]
    assert "Accuracy 0.600 (n = 10)" in fig._suptitle.get_text()
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    assert fig.axes[1].get_ylabel() == "Fraction of true class"
    valid(classification.plot_confusion(y_true, y_pred, tmp_path / "c", class_names=list("abcd")))


def test_predictions_figure_marks_wrong_in_red(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((6, 28, 28))
    probs = np.full((6, 10), 0.02)
    probs[np.arange(6), [3, 1, 4, 1, 5, 9]] = 0.82
    labels = np.array([3, 1, 4, 7, 5, 9])  # image 3 is wrong
    with style.paper_style():
        fig = classification._predictions_figure(images, labels, probs, n=6)
    image_axes = fig.axes[0::2]
    titles = [ax.texts[0] for ax in image_axes]
    assert [t.get_text() for t in titles] == ["3 82%", "1 82%", "4 82%", "1 82% (true 7)", "5 82%", "9 82%"]
    assert [t.get_color() for t in titles] == [style.BLUE] * 3 + [style.RED] + [style.BLUE] * 2
    bars = fig.axes[7].patches  # bar chart of the wrong prediction
    assert bars[1].get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb(style.RED))
    assert bars[7].get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb(style.BLUE))
    valid(classification.plot_predictions(rng.random((3, 32, 32, 3)) * 2 - 1, [0, 1, 2], probs[:3], tmp_path / "c",
                                  class_names=CLASS_NAMES["cifar10"]))
