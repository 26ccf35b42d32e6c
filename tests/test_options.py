"""The option table: one declaration per option, everything else derived from it."""

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from devsim import options
from devsim.cli import cli
from devsim.config import OPTION_FIELDS, DeviceOptions, RunConfig, option_spec
from devsim.devices import ExpDevice
from devsim.errors import ConfigError
from devsim.sweep import parse_value, sweepable

ROOT = Path(__file__).resolve().parents[1]


def test_every_device_field_is_a_run_option_with_the_same_declaration():
    for name, field in options.parameters(ExpDevice).items():
        spec = options.spec_of(field)
        option_name = spec.option or name
        assert option_name in OPTION_FIELDS, name
        assert options.spec_of(OPTION_FIELDS[option_name]) is spec  # the same object: declared once
        assert OPTION_FIELDS[option_name].default is None  # an override: None keeps the preset's value
    assert option_spec("ltp").label == options.spec_of(dataclasses.fields(ExpDevice)[0]).label


def test_every_option_is_on_the_command_line_with_its_help_and_choices():
    run = {p.name: p for p in cli.commands["run"].params}
    sweep = {p.name: p for p in cli.commands["sweep"].params}
    for name, field in OPTION_FIELDS.items():
        spec = options.spec_of(field)
        assert name in run, name
        assert spec.help.split(".")[0] in run[name].help
        if spec.choices:
            assert list(run[name].type.choices) == list(spec.choices), name
        if spec.group != "output":
            assert name in sweep, name
    device = {p.name for p in cli.commands["device"].params}
    assert set(options.parameters(DeviceOptions)) <= device
    assert not set(options.parameters(RunConfig)) - set(options.parameters(DeviceOptions)) & device - {"out", "name"}


def test_sweep_value_types_come_from_the_table():
    kinds = sweepable()
    assert kinds["ltp"] is float and kinds["states"] is int and kinds["hidden"] is tuple
    assert kinds["bias"] is bool and kinds["update"] is str and "out" not in kinds
    assert parse_value("c2c", "0.02") == 0.02 and parse_value("hidden", "64,32") == (64, 32)
    assert parse_value("ltd", "inf") == math.inf and parse_value("bias", "true") is True
    with pytest.raises(ConfigError, match="^--seed: 'x' is not a valid integer"):
        parse_value("seed", "x")


@pytest.mark.parametrize("kwargs,flag,allowed", [
    ({"states": 1}, "--states", "an integer from 2 to 100000"),
    ({"states": 10**20}, "--states", "an integer from 2 to 100000"),
    ({"c2c": 1e308}, "--c2c", "from 0 to 1"),
    ({"d2d": -1.0}, "--d2d", "from 0 to"),
    ({"ltp": 1e-320}, "--ltp", "|A_p| >= 0.001"),
    ({"nl_ltp": 10.1}, "--nl-ltp", "|NL| <= 10.02"),
    ({"seed": -1}, "--seed", "from 0 to 4294967295"),
    ({"seed": 2**64}, "--seed", "from 0 to 4294967295"),
    ({"batch_size": 10**20}, "--batch-size", "an integer from 1 to"),
    ({"lr": math.inf}, "--lr", "a finite number > 0"),
    ({"update": "hourly"}, "--update", "choose from batch, epoch"),
    ({"stuck_gmin": 0.7, "stuck_gmax": 0.7}, "--stuck-gmin", "at most 1"),
    ({"hidden": (100_000_000,)}, "--hidden", "widths up to 1000000"),
    ({"hidden": (500_000, 500_000)}, "--hidden", "GB of memory"),
])
def test_bad_values_name_the_flag_and_what_is_allowed(kwargs, flag, allowed):
    with pytest.raises(ConfigError) as exc:
        RunConfig(dataset="mnist-5k", **kwargs)
    message = str(exc.value)
    assert message.startswith(f"{flag}: ") and allowed in message and "\n" not in message


def test_device_errors_carry_their_field():
    with pytest.raises(options.FieldError) as exc:
        ExpDevice(c2c=-0.1)
    assert exc.value.field == "c2c" and "from 0 to 1" in exc.value.reason
    with pytest.raises(options.FieldError) as exc:
        ExpDevice.from_config({"a_p": 0.5, "state": 50})
    assert exc.value.field == "state" and "not a device parameter" in str(exc.value)
    with pytest.raises(options.FieldError, match="a_p: must be a number, got True"):
        ExpDevice.from_config({"a_p": True})


def test_large_curvatures_are_the_linear_device_they_are():
    from keras import ops

    for a in (1e6, 1e38, 1e308):
        device = ExpDevice(a, a, 11)
        assert device.is_linear
        g = ops.convert_to_numpy(device.pulse([0.0, 0.5, 1.0], [1.0, -1.0, -1.0]))
        assert g.tolist() == pytest.approx([0.1, 0.4, 0.9], abs=1e-6)


def test_readme_option_table_is_generated_from_the_table():
    readme = (ROOT / "README.md").read_text()
    table = options.markdown_table(RunConfig)
    assert table in readme, "README.md's option table is stale: paste `python -m devsim.options` output"


def test_config_json_is_strict(tmp_path):
    from devsim.io import write_json

    write_json(tmp_path / "x.json", {"a": math.inf, "b": [-math.inf, 1.0], "c": math.nan})
    text = (tmp_path / "x.json").read_text()
    record = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert record == {"a": "inf", "b": ["-inf", 1.0], "c": "nan"}
    assert float(record["a"]) == math.inf


def test_help_and_device_commands_do_not_load_tensorflow(tmp_path):
    code = ("import sys; from devsim.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'backend loaded'\n")
    for args in (["--help"], ["run", "--help"], ["devices"], ["device", "--ltp", "0.5", "--out", str(tmp_path)]):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        assert "I0000" not in result.stderr and "oneDNN" not in result.stderr


def test_python_m_devsim_options_prints_the_table():
    result = subprocess.run([sys.executable, "-m", "devsim.options"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == options.markdown_table(RunConfig)
    assert "| `--c2c` | preset's, else `0` |" in result.stdout  # device options default to the preset's value


def test_figure_labels_come_from_the_table():
    from devsim.figures.labels import param_label, param_symbol

    for name in ("ltp", "c2c", "states", "lr", "d2d_range"):
        assert param_label(name) == option_spec(name).label and param_symbol(name) == option_spec(name).symbol
    assert param_label("model") == "Model"


def test_sweep_takes_switches_and_flags_as_run_does():
    sweep = {p.name: p for p in cli.commands["sweep"].params}
    assert "--no-baselines" in sweep["baselines"].secondary_opts and sweep["baselines"].default is None
    assert sweep["linear"].is_flag and sweep["linear"].default is None
