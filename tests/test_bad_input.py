"""Hostile and careless input: one line naming the option, exit 2, nothing written; no finished run lost."""

import json
import os
import subprocess
import sys
import time

import pytest

from cli_helpers import call, offline  # noqa: F401  (offline: an autouse fixture)


DEVICE_FILES = {
    "escape.json": {"name": "x/../../somewhere/ESCAPE", "a_p": 0.5},
    "typo.json": {"a_p": 0.5, "state": 50},
    "bool.json": {"a_p": True},
    "array.json": {"a_p": [0.5, 0.6]},
    "huge.json": '{"states": 1e999}',
    "list.json": [1, 2],
}

RUN = [
    (["--states", "99999999999999999999"], "--states"),
    (["--batch-size", "99999999999999999999"], "--batch-size"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "18446744073709551616"], "--seed"),
    (["--d2d", "1e308"], "--d2d"),
    (["--hidden", "100000000"], "--hidden"),
    (["--hidden", "400000,400000"], "--hidden"),
    (["--ltp", "1e-320"], "--ltp"),
    (["--nl-ltp", "10.1"], "--nl-ltp"),
    (["--c2c", "1e308"], "--c2c"),
    (["--read-noise", "inf"], "--read-noise"),
    (["--epochs", "1e3"], "--epochs"),
    (["--update", "hourly"], "--update"),
    (["--name", "../x"], "--name"),
    (["--name", ".hidden"], "--name"),
    (["--device", "escape.json"], "--device"),
    (["--device", "typo.json"], "state"),
    (["--device", "bool.json"], "a_p"),
    (["--device", "array.json"], "a_p"),
    (["--device", "huge.json"], "states"),
    (["--device", "list.json"], "--device"),
    (["--model", "resnet"], "--model"),
    (["--model", "no_such_module_xyz:build"], "--model"),
    (["--model", "json:no_such_function"], "--model"),
    (["--model", "lenet5", "--hidden", "64"], "--hidden"),
    (["--model", "vgg8", "--adc-bits", "8"], "--adc-bits"),
    (["--model", "lenet5", "--periphery", "aihwkit"], "--periphery"),
    (["--model", "lenet5", "--protocol", "neurosim"], "--protocol"),
    (["--model", "vgg8", "--crop", "4"], "--crop"),
    (["--model", "lenet5", "--optimizer", "neurosim-sgd", "--layer-lr", "0.1,0.1"], "--layer-lr"),
    (["--train-size", "0"], "--train-size"),
    (["--train-size", "4001"], "--train-size"),
    (["--test-size", "1001"], "--test-size"),
]


@pytest.fixture
def device_files(tmp_path, monkeypatch):
    for name, content in DEVICE_FILES.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line_naming(code, err, option):
    lines = err.strip().splitlines()
    return code == 2 and len(lines) == 1 and lines[0].startswith("Error:") and option in lines[0]


@pytest.mark.parametrize("args,option", RUN, ids=[" ".join(a) for a, _ in RUN])
def test_run_rejects_bad_input(args, option, device_files, capsys):
    code, out, err = call(["run", "--dataset", "mnist-5k", "--epochs", "1", "--out", "results", *args], capsys)
    assert one_line_naming(code, err, option), err
    assert not (device_files / "results").exists() and not list(device_files.glob("somewhere*"))


TOML = {
    "fixed_scalar.toml": "fixed = 5\n[sweep]\nseed = [0, 1]\n",
    "hidden_top.toml": "hidden = 128\n[sweep]\nseed = [0, 1]\n",
    "name_number.toml": "name = 5\n[sweep]\nseed = [0, 1]\n",
    "sweep_list.toml": "sweep = [1, 2]\n",
    "tie_text.toml": 'tie = "x"\n[sweep]\nltp = [0.5, 1]\n',
    "inline.toml": "[fixed]\nltp = {a = 1}\n[sweep]\nseed = [0, 1]\n",
    "nested.toml": "[sweep]\nltp = [[0.5, 1], [2]]\n",
    "date.toml": "[fixed]\nlr = 1979-05-27\n[sweep]\nseed = [0, 1]\n",
    "binary.toml": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe",
}

SWEEP = [
    (["--ltp", ""], "--ltp"),
    (["--ltp", ","], "--ltp"),
    (["--hidden", "/"], "--hidden"),
    (["--seeds", "0,0"], "--seed"),
    (["--ltp", "0.5,0.5"], "--ltp"),
    (["--ltp", "0.5,1", "--stack", "0"], "--stack"),
    (["--ltp", "0.5,1", "--stack", "-1"], "--stack"),
    (["--ltp", "0.5,1", "--workers", "0"], "--workers"),
    (["--ltp", "0.5,1", "--scheduler", "not a url"], "--scheduler"),
    (["--ltp", "0.5,1", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    (["--ltp", "0.5,1", "--name", "../up"], "--name"),
] + [(["--file", name], "--file") for name in TOML]


@pytest.mark.parametrize("args,option", SWEEP, ids=[" ".join(a) for a, _ in SWEEP])
def test_sweep_rejects_bad_input(args, option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, content in TOML.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = call(["sweep", "--dataset", "mnist-5k", "--epochs", "1", "--no-baselines", "--out", "results",
                           *args], capsys)
    assert one_line_naming(code, err, option), err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_device_rejects_bad_input(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (["--save", str(tmp_path)], "--save"),
        (["--save", str(blocker / "mine.json")], "--save"),
        (["--name", "../../x"], "--name"),
        (["--states", "100000000"], "--states"),
        (["--ltp", "0"], "--ltp"),
    ]
    for args, option in cases:
        out_dir = tmp_path / "out"
        code, out, err = call(["device", *args, "--out", str(out_dir)], capsys)
        assert one_line_naming(code, err, option), (args, err)
        assert not out_dir.exists() or not any(out_dir.rglob("*.png")), args


def test_huge_curvature_is_the_linear_device(tmp_path, capsys):
    code, out, err = call(["device", "--ltp", "1e39", "--ltd", "1e308", "--states", "11", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "nan" not in out and "LTP step: first 0.1000, last 0.1000" in out


@pytest.mark.slow
def test_two_sweeps_into_one_folder_lose_nothing(tmp_path, capsys):
    args = ["sweep", "--seeds", "0,1,2,3", "--dataset", "mnist-5k", "--epochs", "8", "--hidden", "8", "--no-baselines",
            "--name", "twice", "--out", str(tmp_path)]
    code = ("import sys; from devsim import data\n"
            "data._keras_load = lambda name: (_ for _ in ()).throw(OSError('offline'))\n"
            "from devsim.cli import main\nmain(sys.argv[1:])\n")
    first = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".twice.lock"
    deadline = time.time() + 120
    while not lock.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert lock.exists(), "the first sweep never took its lock"
    code2, _, err = call(args, capsys)
    assert first.poll() is None, "the first sweep finished before the second started: make it longer"  # the second one stops at once, without touching the folder
    assert code2 == 2 and "another devsim sweep" in err and len(err.strip().splitlines()) == 1
    out, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1
    folder = tmp_path / "twice"
    runs = json.loads((folder / "sweep.json").read_text())["runs"]
    for h in runs:
        record = json.loads((folder / h / "config.json").read_text())
        assert record["status"] == "complete" and (folder / h / "history.csv").exists()
    assert not lock.exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and permission to mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.decode().strip() or 'not root'})")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def fill(disk, leave):
    """Fill the disk until only about ``leave`` bytes are free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_full_disk_is_one_line_and_keeps_what_finished(small_disk, capsys):
    small = ["--dataset", "mnist-5k", "--epochs", "1", "--hidden", "4", "--no-baselines", "--out", str(small_disk)]
    code, out, err = call(["run", "--linear", "--name", "first", *small], capsys)
    assert code == 0, err
    first = sorted(p.name for p in (small_disk / "first").iterdir())
    fill(small_disk, 16 * 1024)  # too little for the next run's files
    code, out, err = call(["run", "--linear", "--name", "second", *small], capsys)
    lines = err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and "No space left on device" in lines[0], err
    assert sorted(p.name for p in (small_disk / "first").iterdir()) == first  # the finished run is intact
    code, out, err = call(["sweep", "--seeds", "0,1", "--name", "sw", *small], capsys)
    assert code in (1, 2) and len(err.strip().splitlines()) == 1 and "No space left" in err, err
