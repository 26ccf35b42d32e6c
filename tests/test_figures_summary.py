"""Reading results (devsim.figures.summary): cells, files, bad files."""

import subprocess
import sys
from pathlib import Path

import pytest

from devsim.figures import summary
from figure_checks import INF


def test_parse_value():
    assert summary.parse_value("inf") == INF and summary.parse_value("Infinity") == INF
    assert summary.parse_value("-inf") == -INF and summary.parse_value(" 64 ") == 64 and summary.parse_value("") is None
    assert summary.parse_value("0.5") == 0.5 and summary.parse_value("ag-a-si") == "ag-a-si"
    assert summary.parse_value([256, 128]) == "256,128" == summary.parse_value("[256, 128]")


def test_history_rows_are_numbers(tmp_path):
    (tmp_path / "history.csv").write_text("model,epoch,train_accuracy,test_accuracy,seconds,pulses_applied_dense\n"
                                          "device,1,0.5,0.45,1.5,120\nfloat,1.0,,0.5,nan,\n")
    rows = summary.load_history(tmp_path)
    assert rows[0] == {"model": "device", "epoch": 1, "train_accuracy": 0.5, "test_accuracy": 0.45, "seconds": 1.5,
                       "pulses_applied_dense": 120}
    assert rows[1]["epoch"] == 1 and rows[1]["train_accuracy"] is None and rows[1]["pulses_applied_dense"] is None
    assert summary.param_names(rows) == []


BAD_FILES = [
    ("history.csv", "", r"history\.csv: empty"),
    ("history.csv", "epoch,test_accuracy\n1,0.5\n", r"history\.csv: not a devsim history\.csv \(no model column"),
    ("history.csv", "model,epoch,test_accuracy\ndevice,,0.5\n", r"history\.csv line 2: epoch None"),
    ("history.csv", "model,epoch,test_accuracy\ndevice,1,high\n", r"history\.csv line 2: test_accuracy 'high'"),
    ("history.csv", "model,epoch,test_accuracy\ndevice,1,0.5,9\n", r"history\.csv line 2: 4 cells, the header has 3"),
    ("config.json", "", r"config\.json: not JSON"),
    ("config.json", '"text"', r"config\.json: must be a JSON object"),
    ("config.json", '{"device": {}, "models": "device"}', r"config\.json: 'models' must be a list"),
    ("sweep.json", '{"ties": []}', r"sweep\.json: 'ties' must be an object"),
    ("summary.csv", "run,model,epoch,test_accuracy\nab,device,-1,0.5\n", r"summary\.csv line 2: epoch -1"),
]


@pytest.mark.parametrize("name,text,message", BAD_FILES)
def test_bad_files_raise_one_line_naming_them(name, text, message, tmp_path):
    (tmp_path / name).write_text(text)
    load = {"history.csv": summary.load_history, "config.json": summary.load_config, "sweep.json": summary.load_sweep,
            "summary.csv": summary.load_summary}[name]
    with pytest.raises(summary.ResultsError, match=message) as err:
        load(tmp_path)
    assert str(err.value).startswith(str(tmp_path / name)) and "\n" not in str(err.value)


def test_a_failed_runs_summary_row_has_no_epoch(tmp_path):
    (tmp_path / "summary.csv").write_text("run,ltp,model,epoch,test_accuracy,status\nab,0.5,device,,,failed\n")
    assert summary.load_summary(tmp_path) == [{"run": "ab", "ltp": 0.5, "model": "device", "epoch": None,
                                               "test_accuracy": None, "status": "failed"}]


def test_reading_results_and_the_cli_help_need_no_matplotlib():
    code = ("import sys\n"
            "import devsim.figures, devsim.figures.summary, devsim.figures.labels\n"
            "from devsim.cli import main\n"
            "for argv in (['--help'], ['plot', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in ('matplotlib', 'keras', 'tensorflow') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.splitlines()[-1] == "[]"
