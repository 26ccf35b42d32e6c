"""devsim sweep: grid, hashing, summary, resume, failures, TOML files, local processes and Dask."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devsim import sweep as sweep_mod
from devsim.cli import main
from devsim.errors import ConfigError
from devsim.sweep import Sweep, parse_list, run_hash, run_sweep
from cli_helpers import offline  # noqa: F401  (offline: an autouse fixture)

TINY = {"dataset": "mnist-5k", "epochs": 1, "hidden": (8,), "states": 21, "baselines": False}


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def histories(folder):
    """{run hash: history rows without the seconds column}."""
    out = {}
    for d in sorted(p for p in folder.iterdir() if (p / "history.csv").exists()):
        out[d.name] = [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(d / "history.csv")]
    return out


def test_parse_lists():
    assert parse_list("ltp", "0.1, 0.5,inf") == [0.1, 0.5, float("inf")]
    assert parse_list("seed", "0,1,2") == [0, 1, 2]
    assert parse_list("hidden", "64/128,32") == [(64,), (128, 32)]
    assert parse_list("update", "epoch,batch") == ["epoch", "batch"]
    with pytest.raises(ConfigError, match="--states"):
        parse_list("states", "8,many")
    with pytest.raises(ConfigError, match="--out"):
        parse_list("out", "a,b")


def test_grid_hashes_are_stable_and_distinct():
    s = Sweep("s", {"ltp": [0.5, float("inf")], "seed": [0, 1]}, TINY)
    runs = s.runs()
    assert len(runs) == 4 and len({h for h, _, _ in runs}) == 4
    assert [h for h, _, _ in Sweep("other name", {"seed": [0, 1], "ltp": [0.5, float("inf")]}, TINY).runs()] != []
    assert {h for h, _, _ in runs} == {h for h, _, _ in Sweep("x", {"seed": [1, 0], "ltp": [float("inf"), 0.5]}, TINY).runs()}
    h0 = runs[0][0]
    assert run_hash(runs[0][2]) == h0 and len(h0) == 12
    with pytest.raises(ConfigError, match="--ltp"):
        Sweep("s", {"ltp": [0.5, 0.0]}, TINY).runs()  # a bad value is caught before anything runs


def test_local_sweep_summary_and_resume(tmp_path):
    s = Sweep("grid", {"ltp": [0.5, float("inf")], "seed": [0, 1]}, TINY)
    lines = []
    folder = run_sweep(s, out=tmp_path, echo=lines.append)
    assert "4 to run" in lines[0] and lines[-1].startswith("[4/4]") and "left ~" in lines[-1]
    spec = json.loads((folder / "sweep.json").read_text())
    assert spec["parameters"] == {"ltp": [0.5, "inf"], "seed": [0, 1]} and len(spec["runs"]) == 4
    rows = read_csv(folder / "summary.csv")
    assert len(rows) == 4 and set(rows[0]) >= {"run", "ltp", "seed", "model", "epoch", "test_accuracy", "status"}
    assert {r["ltp"] for r in rows} == {"0.5", "inf"} and all(r["status"] == "complete" for r in rows)
    for h, swept in spec["runs"].items():
        config = json.loads((folder / h / "config.json").read_text())
        assert config["devsim_run"]["seed"] == swept["seed"]
    mtimes = {p: p.stat().st_mtime_ns for p in folder.glob("*/history.csv")}
    lines.clear()
    run_sweep(s, out=tmp_path, echo=lines.append)
    assert "4 already finished, 0 to run" in lines[0]
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*/history.csv")} == mtimes
    bigger = Sweep("grid", {"ltp": [0.5, float("inf"), 2.0], "seed": [0, 1]}, TINY)
    lines.clear()
    run_sweep(bigger, out=tmp_path, echo=lines.append)
    assert "4 already finished, 2 to run" in lines[0]
    assert len(read_csv(folder / "summary.csv")) == 6


def test_failed_run_is_recorded_and_sweep_goes_on(tmp_path):
    device = tmp_path / "device.json"
    device.write_text('{"a_d": 0.5, "states": 21}')
    s = Sweep("f", {"ltp": [0.5, 2.0]}, {**TINY, "device": str(device)})
    runs = s.runs()
    lines = []

    def echo(line):  # the device file disappears after the first run: the second one fails for real
        lines.append(line)
        if line.startswith("[1/2]"):
            device.unlink()

    folder = run_sweep(s, out=tmp_path, stack=1, echo=echo)
    statuses = {json.loads((folder / h / "config.json").read_text())["status"] for h, _, _ in runs}
    assert statuses == {"failed", "complete"}
    assert any("no such file" in line for line in lines)
    failed = next(h for h, sw, _ in runs if sw["ltp"] == 2.0)
    assert "--device: no such file" in json.loads((folder / failed / "config.json").read_text())["error"]
    assert {r["status"] for r in read_csv(folder / "summary.csv")} == {"failed", "complete"}
    device.write_text('{"a_d": 0.5, "states": 21}')  # a failed run is retried next time
    lines.clear()
    run_sweep(s, out=tmp_path, stack=1, echo=lines.append)
    assert "1 already finished, 1 to run" in lines[0]


def test_interrupted_sweep_keeps_finished_runs(tmp_path, monkeypatch):
    calls = []
    real = sweep_mod.execute

    def interrupted(payload):
        calls.append(payload["name"])
        if len(calls) == 2:  # Ctrl-C in the middle of the second run, after it wrote a partial folder
            (Path(payload["out"]) / (payload["name"] + ".partial")).mkdir(parents=True)
            raise KeyboardInterrupt
        return real(payload)

    monkeypatch.setattr(sweep_mod, "execute", interrupted)
    s = Sweep("k", {"seed": [0, 1, 2]}, TINY)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, out=tmp_path, echo=lambda m: None)
    folder = tmp_path / "k"
    assert len(read_csv(folder / "summary.csv")) == 1  # the finished run is in the summary
    monkeypatch.setattr(sweep_mod, "execute", real)
    lines = []
    run_sweep(s, out=tmp_path, echo=lines.append)
    assert "1 already finished, 2 to run" in lines[0]
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(h for h, _, _ in s.runs())


def test_cli_sweep_and_toml_file(tmp_path, capsys):
    sweep_file = tmp_path / "states.toml"
    sweep_file.write_text(
        'name = "by_states"\n[fixed]\ndataset = "mnist-5k"\nepochs = 1\nhidden = [8]\nbaselines = false\n'
        '[sweep]\nstates = [8, 16]\nltp = [0.5, "inf"]\n'
    )
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--file", str(sweep_file), "--seeds", "3", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    folder = tmp_path / "by_states"
    rows = read_csv(folder / "summary.csv")
    assert len(rows) == 4 and {r["states"] for r in rows} == {"8", "16"}
    spec = json.loads((folder / "sweep.json").read_text())
    assert spec["fixed"]["seed"] == 3 and spec["fixed"]["epochs"] == 1
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--ltp", "0.5,zero", "--out", str(tmp_path / "bad")])
    assert exc.value.code == 2 and "--ltp" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--epochs", "1", "--out", str(tmp_path / "bad")])
    assert exc.value.code == 2 and "at least one option" in capsys.readouterr().err


DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1, without nannies: killing one
    kills the worker itself (a nanny's worker child outlives a SIGKILL of its nanny and goes on writing)."""
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", DASK_DISTRIBUTED__WORKER__DAEMON="False")
    log = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--scheduler-file", str(scheduler_file), "--no-dashboard"], stdout=log, stderr=log, env=env)]
    deadline = time.time() + 60
    while not scheduler_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    workers = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                 "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"], stdout=log, stderr=log, env=env)
               for i in range(2)]
    procs += workers
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address, workers
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
    log.close()


@pytest.mark.slow
def test_dask_cluster_matches_local_and_survives_a_killed_worker(tmp_path, dask_cluster):
    address, workers = dask_cluster
    s = Sweep("d", {"seed": [0, 1], "ltp": [0.5, 2.0]}, {**TINY, "epochs": 2})
    local = run_sweep(s, out=tmp_path / "local", echo=lambda m: None)
    remote = run_sweep(s, out=tmp_path / "dask", scheduler=address, echo=lambda m: None)
    assert histories(remote) == histories(local) and len(histories(local)) == 4

    # kill -9 one worker while the sweep runs: every run still finishes, once
    bigger = Sweep("d", {"seed": [0, 1, 2, 3], "ltp": [0.5, 2.0]}, {**TINY, "epochs": 2})
    lines = []

    def killer():
        while not any(line.startswith("[5/") for line in lines):
            time.sleep(0.1)
        workers[0].send_signal(signal.SIGKILL)

    threading.Thread(target=killer, daemon=True).start()
    folder = run_sweep(bigger, out=tmp_path / "dask", scheduler=address, echo=lines.append)
    assert workers[0].wait(timeout=30) == -signal.SIGKILL
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert names == sorted(h for h, _, _ in bigger.runs())  # all 8 runs, no leftovers, each once
    rows = read_csv(folder / "summary.csv")
    assert len(rows) == 16 and all(r["status"] == "complete" for r in rows)
    assert sum(1 for line in lines if line.startswith("[")) == 4  # 4 new runs reported once each


@pytest.mark.slow
def test_stacked_sweep_equals_run_by_run(tmp_path):
    s = Sweep("st", {"ltp": [0.3, 2.0, -1.0], "ltd": [0.5]}, {**TINY, "epochs": 2, "update": "batch"})  # one curve kind
    lines = []
    stacked = run_sweep(s, out=tmp_path / "a", echo=lines.append)
    assert any("3 runs stacked, in 1 models" in line for line in lines)
    alone = run_sweep(s, out=tmp_path / "b", stack=1, echo=lambda m: None)
    assert histories(stacked) == histories(alone)  # bit-identical, pulse counts included


@pytest.mark.slow
def test_local_processes(tmp_path):
    s = Sweep("p", {"seed": [0, 1]}, TINY)
    folder = run_sweep(s, out=tmp_path, workers=2, echo=lambda m: None)
    serial = run_sweep(Sweep("p", {"seed": [0, 1]}, TINY), out=tmp_path / "serial", echo=lambda m: None)
    assert histories(folder) == histories(serial)


def test_ties_make_symmetric_sweeps():
    s = Sweep("sym", {"ltp": [0.5, 2.0]}, TINY, {"ltd": "ltp"})
    assert [(sw["ltp"], sw["ltd"]) for _, sw, _ in s.runs()] == [(0.5, 0.5), (2.0, 2.0)]
    assert [c.make_device().a_d for _, _, c in s.runs()] == [0.5, 2.0]
    with pytest.raises(ConfigError, match="--tie"):
        Sweep("bad", {"ltp": [0.5]}, TINY, {"ltd": "seed"})
