"""--algorithm and --periphery through `devsim.cli.main`: runs, bad parameters (one line, exit 2), the run hash."""

import json

import pytest

from devsim.config import RunConfig
from devsim.sweep import run_hash
from cli_helpers import call, offline  # noqa: F401  (offline: an autouse fixture)

SMALL = ["--dataset", "mnist-5k", "--epochs", "1", "--hidden", "8", "--states", "21", "--update", "batch",
         "--no-baselines", "--crop", "10"]


@pytest.mark.parametrize("argv, flag", [
    (["--algorithm", "ttv2", "--update", "epoch"], "--algorithm"),
    (["--algorithm", "ttv2", "--in-chop-prob", "0.1"], "--in-chop-prob"),
    (["--algorithm", "c-ttv2", "--in-chop-prob", "2"], "--in-chop-prob"),
    (["--algorithm", "ttv2", "--fast-lr", "0"], "--fast-lr"),
    (["--algorithm", "agad", "--in-chop-prob", "0"], "--in-chop-prob"),
    (["--algorithm", "c-ttv2", "--gamma", "0.5"], "--gamma"),
    (["--algorithm", "mixed-precision", "--granularity", "-1"], "--granularity"),
    (["--algorithm", "zero-shift", "--mapping", "differential"], "--algorithm"),
    (["--algorithm", "tiki"], "--algorithm"),
    (["--inp-res", "0.01"], "--inp-res"),
    (["--periphery", "aihwkit", "--out-bound", "inf"], "--out-res"),
    (["--periphery", "aihwkit", "--out-res", "0", "--out-bound", "inf"], "--bound-management"),
    (["--out-noise", "-0.1"], "--out-noise"),
    (["--noise-management", "abs"], "--noise-management"),
])
def test_bad_parameters_exit_2_with_one_line(argv, flag, capsys, tmp_path):
    code, out, err = call(["run", *SMALL, "--out", str(tmp_path), *argv], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and flag in lines[0], err
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_run_with_an_algorithm_and_the_periphery(capsys, tmp_path):
    argv = ["run", *SMALL, "--device", "ag-si", "--algorithm", "c-ttv2", "--n-reads-per-transfer", "4",
            "--in-chop-prob", "0.2", "--periphery", "aihwkit", "--out", str(tmp_path)]
    code, out, err = call(argv, capsys)
    assert code == 0, err
    folder = tmp_path / "mnist-5k_ag-si_batch-stochastic_c-ttv2_s0"
    config = json.loads((folder / "config.json").read_text())
    assert config["status"] == "complete" and config["devsim_run"]["algorithm"] == "c-ttv2"
    assert "algorithm c-ttv2" in out
    code, out2, err = call(argv[:-2] + ["--out", str(tmp_path / "again")], capsys)
    again = json.loads((tmp_path / "again" / folder.name / "config.json").read_text())
    assert again["final"]["device"]["test_accuracy"] == config["final"]["device"]["test_accuracy"]  # same seed


def test_default_options_keep_the_run_hash():
    """Sweeps recorded before --algorithm/--periphery existed resume: their runs keep their hashes."""
    config = RunConfig(dataset="mnist-5k", epochs=2)
    identity = config.identity()
    assert "algorithm" not in identity and "periphery" not in identity and "fast_lr" not in identity
    assert run_hash(config) != run_hash(RunConfig(dataset="mnist-5k", epochs=2, algorithm="zero-shift"))
    assert run_hash(config) != run_hash(RunConfig(dataset="mnist-5k", epochs=2, out_noise=0.1))


def test_device_prints_the_symmetry_point(capsys, tmp_path):
    code, out, err = call(["device", "--device", "ag-si", "--out", str(tmp_path)], capsys)
    assert code == 0 and "symmetry point: g* = 0.3298" in out
