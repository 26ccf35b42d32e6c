"""The figures of a run folder (devsim.figures.run_figures), at the end of a run and with `devsim plot`."""

import json
from pathlib import Path

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


# ---------------------------------------------------------------- devsim plot

def _plot(argv, capsys):
    from devsim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["plot", *argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err

def test_plot_unfinished_run_says_so_in_one_line(run_folder, tmp_path, capsys):
    import shutil

    folder = tmp_path / "r.partial"
    shutil.copytree(run_folder, folder)
    for f in [*folder.glob("*.p*"), folder / "states_linear.npz", folder / "states_float.npz"]:
        f.unlink()
    config = json.loads((folder / "config.json").read_text())
    for key in ("final", "model_status", "seconds", "finished"):
        del config[key]
    (folder / "config.json").write_text(json.dumps({**config, "status": "running"}))
    lines = (folder / "history.csv").read_text().splitlines()
    (folder / "history.csv").write_text("\n".join(lines[:4]) + "\n")  # header, device 1-2, linear 1
    code, out, err = _plot([str(folder)], capsys)
    assert code == 0, err
    assert len(err.strip().splitlines()) == 1, err
    assert "unfinished run" in err and "device 2/2, linear 1/2" in err and "no predictions yet for linear, float" in err
    assert names(Path(p) for p in out.split()) == ["accuracy", "conductance", "confusion_device", "predictions_device"]
    valid([Path(p) for p in out.split()])


def _bare_run(run_folder, tmp_path):
    """A copy of the run folder without its figures."""
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(run_folder, folder)
    for f in folder.glob("*.p*"):
        f.unlink()
    return folder


def _read_only(path, monkeypatch):
    """A folder nobody may write to; as root (who writes anyway), writing there fails as it would for a user."""
    import errno
    import os
    import tempfile

    path.mkdir()
    path.chmod(0o555)
    if os.access(path, os.W_OK):
        real = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == path:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return path


BAD_RESULTS = [  # (what is broken, file: content or None, extra CLI args, text the one-line error names)
    ("history random text", "history.csv", "lorem ipsum dolor sit amet\nconsectetur, adipiscing elit\n", "history.csv"),
    ("history binary", "history.csv", b"\x89\xff\xfe\x00\x01garbage", "history.csv"),
    ("history bad number", "history.csv", "model,epoch,test_accuracy\ndevice,1,0.5\ndevice,two,0.6\n",
     "history.csv line 3"),
    ("history header only", "history.csv", "model,epoch,train_accuracy,test_accuracy\n", "history.csv"),
    ("config list", "config.json", "[]", "config.json"),
    ("config not json", "config.json", "{'status': complete", "config.json"),
    ("config without device", "config.json", '{"status": "complete"}', "config.json"),
    ("config bad device", "config.json", '{"device": {"a_p": 0}}', "config.json"),
    ("states not npz", "states_device.npz", "not a zip file", "states_device.npz"),
    ("out is a file", None, "file", "--out"),
    ("out inside a file", None, "file/sub", "--out"),
    ("out read-only", None, "read-only", "--out"),
]


@pytest.mark.parametrize("case,name,content,named", BAD_RESULTS, ids=[c[0] for c in BAD_RESULTS])
def test_plot_bad_run_folder_one_line_error_exit_2_nothing_written(case, name, content, named, run_folder, tmp_path,
                                                                    capsys, monkeypatch):
    folder = _bare_run(run_folder, tmp_path)
    args = [str(folder)]
    if name is not None:
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    elif content == "read-only":
        args += ["--out", str(_read_only(tmp_path / "ro", monkeypatch))]
    else:
        (tmp_path / "file").write_text("not a folder")
        args += ["--out", str(tmp_path / content)]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out, err = _plot(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and named in lines[0], err
    assert "Traceback" not in err and out == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


BAD_SWEEPS = [
    ("summary random text", "summary.csv", "lorem ipsum\n1,2,3,4\n", "summary.csv"),
    ("summary extra cells", "summary.csv", "run,model,epoch,test_accuracy\na,device,1,0.5,0.7\n", "summary.csv line 2"),
    ("sweep list", "sweep.json", "[]", "sweep.json"),
    ("sweep not json", "sweep.json", "{", "sweep.json"),
    ("sweep parameters list", "sweep.json", '{"parameters": ["ltp"]}', "sweep.json"),
]


@pytest.mark.parametrize("case,name,content,named", BAD_SWEEPS, ids=[c[0] for c in BAD_SWEEPS])
def test_plot_bad_sweep_folder_one_line_error_exit_2_nothing_written(case, name, content, named, tmp_path, capsys):
    from figure_checks import make_sweep

    make_sweep(tmp_path / "sw", {"ltp": [0.5, 1.0], "seed": [0]})
    (tmp_path / "sw" / name).write_text(content)
    code, out, err = _plot([str(tmp_path / "sw")], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error:") and named in lines[0], err
    assert not (tmp_path / "sw" / "figures").exists()


def test_plot_sweep_out_is_a_file(tmp_path, capsys):
    from figure_checks import make_sweep

    make_sweep(tmp_path / "sw", {"ltp": [0.5, 1.0], "seed": [0]})
    (tmp_path / "file").write_text("x")
    code, out, err = _plot([str(tmp_path / "sw"), "--out", str(tmp_path / "file")], capsys)
    assert code == 2 and err.strip() == f"Error: --out: {tmp_path / 'file'} is a file, not a folder"


def test_plot_bad_states_creates_no_out_folder(run_folder, tmp_path, capsys):
    folder = _bare_run(run_folder, tmp_path)
    (folder / "states_linear.npz").write_bytes((folder / "states_linear.npz").read_bytes()[:100])  # cut short
    code, out, err = _plot([str(folder), "--out", str(tmp_path / "new" / "figs")], capsys)
    assert code == 2 and "states_linear.npz" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "new").exists() and not list(folder.glob("*.p*"))
