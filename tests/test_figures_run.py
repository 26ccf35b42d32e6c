"""The figures of a run folder (devsim.figures.run_figures), at the end of a run and with `devsim plot`."""

import json

import pytest
from matplotlib.image import imread

from devsim import figures
from figure_checks import names, valid


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from devsim.run import RunConfig, run

    tmp = tmp_path_factory.mktemp("runs")
    return run(RunConfig(dataset="mnist-5k", epochs=2, hidden=(16,), ltp=0.5, ltd=0.5, out=str(tmp), name="r"),
               echo=lambda m: None, warn=lambda m: None)


def test_run_figures_writes_predictions_and_confusion(run_folder, tmp_path):
    messages = []
    paths = figures.run_figures(run_folder, out=tmp_path, n=8, warn=messages.append)
    valid(paths)
    assert names(paths) == sorted(["accuracy", "conductance", "predictions_device", "predictions_linear",
                                    "predictions_float", "confusion_device", "confusion_linear", "confusion_float"])
    assert {p.suffix for p in paths} == {".png", ".pdf"} and len(paths) == 16
    assert messages == [] and paths.notes == []  # saved kernels reproduce the recorded accuracies
    h, w = imread(tmp_path / "predictions_device.png").shape[:2]
    assert w == 7 * 300 and 2 * 300 < h < 4 * 300  # 2 rows of 4 image/bar pairs, full page width
    # One drawing path: the end of the run drew what the README promises, with the same function, so the same files.
    assert sorted(p.name for p in run_folder.glob("*.p*")) == ["accuracy.pdf", "accuracy.png", "conductance.pdf",
                                                                "conductance.png"]
    for name in ("accuracy.png", "accuracy.pdf", "conductance.png", "conductance.pdf"):
        assert (tmp_path / name).read_bytes() == (run_folder / name).read_bytes(), name


def test_run_figures_default_out_bias_and_missing_states(run_folder, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(run_folder, folder)
    for f in folder.glob("*.p*"):
        f.unlink()  # figures go back into the run folder
    (folder / "states_linear.npz").unlink()
    config = json.loads((folder / "config.json").read_text())
    config["devsim_run"]["bias"] = True
    config["models"] = ["linear", "float"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning) as record:
        paths = figures.make_figures(folder)
    messages = [str(w.message) for w in record]
    assert any("no states_linear.npz" in m for m in messages)
    assert any("predictions use zero biases" in m for m in messages)
    assert all(p.parent == folder for p in paths)
    assert names(paths) == ["accuracy", "conductance", "confusion_float", "predictions_float"]


def test_make_figures_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^folder: .*neither sweep\.json") as err:
        figures.make_figures(tmp_path)
    assert "\n" not in str(err.value)
    (tmp_path / "sweep.json").write_text("{}")
    with pytest.raises(ValueError, match=r"^folder: .*has no summary\.csv"):
        figures.make_figures(tmp_path)
    with pytest.raises(ValueError, match=r"^folder: .*does not exist"):
        figures.make_figures(tmp_path / "nope")
