"""The `devsim` command line: run, sweep, plot, device, devices, fit.

Every run option comes from the option table (`devsim.config.RunConfig`'s
fields, `devsim.options`): ``devsim run`` takes one value of each, ``devsim
sweep`` a list.

Bad input exits with status 2 and one line ``Error: --option: what is allowed``,
before anything is written.
"""

from __future__ import annotations

import sys

import click

from devsim import __version__
from devsim import options as options_mod
from devsim.config import DeviceOptions, RunConfig
from devsim.quiet import quiet_stderr


def _widths(ctx, param, value):
    if value is None or options_mod.is_off(value):
        return value
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"must be comma-separated layer widths such as 128 or 256,128, got {value!r}") from None


def _floats(ctx, param, value):
    if value is None or options_mod.is_off(value):
        return value
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"must be comma-separated numbers such as 0.4,0.2, got {value!r}") from None


def _number_or_off(kind):
    def convert(ctx, param, value):
        if value is None or options_mod.is_off(value):
            return value
        try:
            return kind(value)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise click.BadParameter(f"{value!r} is not {noun} (or off)") from None
    return convert


GROUP_TITLES = {"device": "Device options", "algorithm": "Algorithm options (docs/algorithms.md)",
                "periphery": "Periphery options (docs/periphery.md, docs/protocols.md)", "training": "Training options",
                "output": "Output options"}


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists the run options under the headings of their table group."""

    def format_options(self, ctx, formatter):
        sections = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "devsim_group", "other"), []).append(record)
        for group, records in sections.items():
            with formatter.section(GROUP_TITLES.get(group, "Other options")):
                formatter.write_dl(records)


def _click_option(name, field, as_list=False):
    """The click option of one entry of the option table (`devsim.config.RunConfig`'s fields)."""
    spec, kind = options_mod.spec_of(field), options_mod.value_type(field)
    name_flag = options_mod.flag(name)
    help_text = options_mod.help_text(spec, field.default, kind)
    if options_mod.FALLBACK in field.metadata:
        help_text += f" Default: {options_mod.default_text(field).replace('`', '')}."
    if as_list:  # sweep: text, parsed into a list of values per field
        if spec.cli == "switch":
            decorator = click.option(f"{name_flag}/--no-{name_flag[2:]}", default=None,
                                     help=f"{help_text} Fixed for the whole sweep.")
        elif spec.cli == "flag":
            decorator = click.option(name_flag, is_flag=True, default=None, help=f"{help_text} Fixed for the whole sweep.")
        else:
            sep = "/-separated list" if spec.cli in ("widths", "floats") else "comma-separated list"
            decorator = click.option(name_flag, default=None, help=f"{help_text} A {sep} sweeps it.")
    elif spec.cli == "flag":
        decorator = click.option(name_flag, is_flag=True, default=False, help=help_text)
    elif spec.cli == "switch":
        decorator = click.option(f"{name_flag}/--no-{name_flag[2:]}", default=field.default,
                                 show_default=field.default is not None, help=help_text)
    elif spec.cli == "widths":
        decorator = click.option(name_flag, callback=_widths, default=None, help=help_text)
    elif spec.cli == "floats":
        decorator = click.option(name_flag, callback=_floats, default=None, help=help_text)
    elif field.default is None and kind in (int, float) and not spec.choices:  # unset, a number, or off
        decorator = click.option(name_flag, callback=_number_or_off(kind), default=None,
                                 metavar="INTEGER|off" if kind is int else "FLOAT|off",
                                 help=help_text + " off: unset (also when a protocol sets it).")
    else:
        kinds = {float: click.FLOAT, int: click.INT, str: click.STRING}
        kind_type = click.Choice(spec.choices) if spec.choices else kinds[kind]
        decorator = click.option(name_flag, type=kind_type, default=field.default,
                                 show_default=field.default is not None, help=help_text)

    def apply(f):
        f = decorator(f)
        f.__click_params__[-1].devsim_group = spec.group
        return f

    return apply


def run_options(fields, as_list=False):
    """Decorate a command with one option per entry of ``fields`` (name -> dataclass field), in order."""
    def decorate(f):
        for name, field in reversed(list(fields.items())):
            f = _click_option(name, field, as_list=as_list)(f)
        return f

    return decorate


def _option_fields(cls, keep=lambda spec: True):
    return {n: f for n, f in options_mod.parameters(cls).items() if options_mod.spec_of(f).cli and keep(options_mod.spec_of(f))}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="devsim")
def cli():
    """Device-aware training of Keras networks on simulated memristive synapses."""


@cli.command(cls=GroupedCommand)
@run_options(_option_fields(RunConfig))
def run(**options):
    """Train a network on a device (and the linear and float references).

    Writes OUT/NAME/ with config.json, history.csv, states_*.npz, accuracy.png/pdf
    and conductance.png/pdf. Example: devsim run --ltp 0.8 --ltd 0.8
    """
    with quiet_stderr():
        from devsim.run import run as run_experiment

    config = RunConfig(**options)
    folder = run_experiment(config, echo=click.echo, warn=lambda m: click.echo(m, err=True))
    import json

    record = json.loads((folder / "config.json").read_text())
    click.echo(f"\nfinal test accuracy ({record['dataset']['name']}, {config.epochs} epochs):")
    for model, final in record["final"].items():
        click.echo(f"  {model:>6}: {final['test_accuracy']:.4f}  (best {final['best_test_accuracy']:.4f})")
    click.echo(f"results: {folder}/")
    return 0 if record["status"] == "complete" else 1


@cli.command(cls=GroupedCommand)
@run_options(_option_fields(RunConfig, lambda spec: spec.group != "output"), as_list=True)
@click.option("--seeds", default=None, help="Seeds to repeat every configuration with, e.g. 0,1,2 (same as --seed 0,1,2).")
@click.option("--file", "sweep_file", default=None, help="TOML sweep file ([fixed] and [sweep] tables); options given here override [fixed].")
@click.option("--tie", "ties", multiple=True, help="FIELD=OTHER: FIELD takes the swept OTHER's value, e.g. --tie ltd=ltp (symmetric).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local processes running runs in parallel.")
@click.option("--stack", type=click.IntRange(min=1), default=8, show_default=True,
              help="Train up to STACK runs that differ only in A_p/A_d together as one model (same results, faster); 1: off.")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler (tcp://host:8786) to run the runs on.")
@click.option("--out", default="results", show_default=True, help="Results root folder.")
@click.option("--name", default=None, help="Sweep folder name (default: from the file name or the swept options).")
def sweep(seeds, sweep_file, ties, workers, stack, scheduler, out, name, **values):
    """Run the grid of every combination of the listed values; resumable.

    Example: devsim sweep --ltp 0.1,0.5,inf --ltd 0.1,0.5,inf --seeds 0,1,2 --epochs 20.
    Writes OUT/NAME/ with sweep.json, summary.csv and one run folder per configuration;
    running it again skips finished runs.
    """
    from devsim.sweep import Sweep, parse_list, run_sweep

    if seeds is not None:
        if values.get("seed") is not None:
            raise click.UsageError("give --seeds or --seed, not both")
        values["seed"] = seeds
    swept, fixed = {}, {}
    for key, text in values.items():
        if text is None:
            continue
        if isinstance(text, bool):
            fixed[key] = text
            continue
        values = parse_list(key, text)
        if not values:
            raise click.BadParameter(f"the list of values is empty ({text!r})", param_hint=f"'{options_mod.flag(key)}'")
        (swept if len(values) > 1 else fixed)[key] = values if len(values) > 1 else values[0]
    tie = {}
    for text in ties:
        field, _, source = text.partition("=")
        if not source:
            raise click.BadParameter(f"must be FIELD=OTHER such as ltd=ltp, got {text!r}", param_hint="'--tie'")
        tie[field.strip().replace("-", "_")] = source.strip().replace("-", "_")
    if sweep_file:
        base = Sweep.from_file(sweep_file)
        fixed_all = {k: v for k, v in {**base.fixed, **fixed}.items() if k not in swept}
        spec = Sweep(name or base.name, {**base.parameters, **swept}, fixed_all, {**base.ties, **tie})
    else:
        default = "sweep_" + "_".join(k for k in swept if k != "seed") if len(swept) > ("seed" in swept) else "sweep_seeds"
        spec = Sweep(name or default, swept, fixed, tie)
    with quiet_stderr():
        import devsim.run  # noqa: F401 - load TensorFlow quietly
    folder = run_sweep(
        spec, out=out, workers=workers, scheduler=scheduler, stack=stack, echo=click.echo, warn=lambda m: click.echo(m, err=True)
    )
    click.echo(f"results: {folder}/ (summary.csv; figures: devsim plot {folder})")
    return 0


@cli.command()
@click.argument("csv_file", metavar="CSV")
@click.option("--out", default=None, help="Folder for device.json and the figures (default: results/fit_<csv name>).")
@click.option("--name", default=None, help="Device name (default: the CSV file name).")
@click.option("--table", is_flag=True,
              help="Write the measured-table device (devsim.measured): device.json holds the table, exponential.json "
                   "the fitted curve; also measured.png/pdf (data, table, exponential) and the goodness of fit.")
@click.option("--bootstrap", type=click.IntRange(min=0, max=100_000), default=100, show_default=True,
              help="Refits over resampled cycles to check the uncertainties (with 6 or more cycles); 0: off.")
@click.option("--min-per-bin", type=click.IntRange(min=2, max=1_000_000), default=None,
              help="Fewest steps per bin of the table (default 20).")
@click.option("--unit", type=click.Choice(list(options_mod.CONDUCTANCE_UNITS)), default=None,
              help="Unit of the CSV's conductance column (recorded in the JSON, labels the figures' axes; "
                   "default: unnamed, 'CSV unit').")
def fit(csv_file, out, name, table, bootstrap, min_per_bin, unit):
    """Fit measured pulse data (CSV: pulse, conductance, direction[, cycle]) to the device model.

    Writes device.json (use it with --device) and fit.png/pdf overlaying data and curves;
    with --table the device is the measured response itself.
    """
    from pathlib import Path

    from devsim import io

    with quiet_stderr():
        from devsim import fitting

    if name is not None:
        io.check_name("--name", name)
    folder = Path(out or f"results/fit_{Path(csv_file).stem}")
    _check_out(folder)
    data = fitting.read_pulse_csv(csv_file)
    result = fitting.fit_pulse_data(data, source=str(csv_file))
    result.unit = unit
    if table:
        from devsim import measured

        try:
            dev = measured.table_from_data(data, source=str(csv_file), name=name, fit=result,
                                           min_per_bin=min_per_bin or measured.MIN_PER_BIN)
        except measured.TableError as exc:
            raise fitting.FitError(str(exc)) from None
        if dev.name:
            io.check_name(f"{csv_file}: device name", dev.name)
    elif name is None:
        io.check_name(f"{csv_file} (its name names the device; give --name)", Path(csv_file).stem)
    if bootstrap and result.n_cycles >= fitting.MIN_CLUSTER_CYCLES:
        result.bootstrap = fitting.bootstrap_fit(data, result, n=bootstrap)
    io.check_writable(folder, "--out")
    paths = fitting.write_fit(result, data, folder, name=name)
    click.echo(result.summary())
    if table:
        good = measured.goodness(data, dev, result, source=str(csv_file))
        config = dev.get_config()
        config["fit"] = result.to_json(name)["fit"]
        config["exponential"] = result.device(name).get_config()
        config["goodness"] = {k: v for k, v in good.items() if k != "bias"}
        io.write_json(folder / "exponential.json", result.to_json(name))
        io.write_json(folder / "device.json", config)
        paths["exponential"] = folder / "exponential.json"
        from devsim.figures.measured import plot_measured

        paths.update(zip(("measured_png", "measured_pdf"), plot_measured(data, dev, result, good, folder / "measured")))
        click.echo(f"table: {dev.describe()}; C2C {100 * dev.measured_c2c:.2f} % per pulse (measured spread)")
        click.echo(good["verdict"])
    click.echo("written: " + ", ".join(str(p) for p in paths.values()))
    click.echo(f"next: devsim run --device {paths['device']}")
    return 0


def _check_out(folder):
    """``--out`` must be (or become) a writable folder; checked without creating anything."""
    from pathlib import Path

    from devsim.errors import ConfigError

    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == folder else f"is under the file {probe}"
        raise ConfigError(f"--out: {folder} {what}, not a folder")
    import os

    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out: cannot write to {folder} ({probe} is read-only)")


@cli.command(cls=GroupedCommand)
@run_options(_option_fields(DeviceOptions))
@click.option("--out", default="results", show_default=True, help="Folder for conductance.png/pdf.")
@click.option("--name", default=None, help="Subfolder name (default: device_<parameters>).")
@click.option("--save", default=None, help="Also write the device as JSON to this file (for --device).")
def device(out, name, save, **options):  # noqa: F811 - the command, not the option
    """Show a device's LTP/LTD response and NeuroSim labels, without training."""
    from pathlib import Path

    import numpy as np

    from devsim import io
    from devsim.figures.conductance import plot_device_response
    from devsim.presets import save_device

    config = DeviceOptions(**options)
    dev = config.make_device()
    folder_name = name or f"device_{config.device_slug()}"
    io.check_name("--name" if name else "--device (its name)", folder_name)
    folder = Path(out) / folder_name
    nl_p, nl_d = dev.nl_labels
    n, n_d = dev.num_pulses, dev.num_pulses_ltd
    if dev.name:
        click.echo(f"{dev.name}: {dev.source or ''}")
    if dev.kind == "exp":
        click.echo(f"A_p = {dev.a_p:g}, A_d = {dev.a_d:g}, states = {dev.states}/{dev.states_ltd} "
                   f"(N = {n}/{n_d} LTP/LTD pulses)")
        click.echo(f"NeuroSim labels: NL_LTP = {nl_p:+.2f}, NL_LTD = {nl_d:+.2f}")
    else:
        click.echo(f"kind {dev.kind}: {dev.describe()}; N = {n}/{n_d} LTP/LTD pulses of the mean ramps")
        click.echo(f"NeuroSim labels of the fitted exponential: NL_LTP = {nl_p:+.2f}, NL_LTD = {nl_d:+.2f}")
    pulse, g = dev.response()
    steps_up, steps_down = np.diff(g[: n + 1]), -np.diff(g[n:])
    click.echo(
        f"LTP step: first {steps_up[0]:.4f}, last {steps_up[-1]:.4f};  "
        f"LTD step: first {steps_down[0]:.4f}, last {steps_down[-1]:.4f} (linear: {1 / n:.4f}/{1 / n_d:.4f})"
    )
    names = ("on_off", "c2c", "d2d", "d2d_range", "stuck_gmin", "stuck_gmax", "read_noise")
    noise = {k: dev.c2c_sigma if k == "c2c" else getattr(dev, k) for k in names if hasattr(dev, k)}
    from devsim import symmetry

    click.echo(symmetry.describe(dev))
    click.echo("non-idealities: " + ", ".join(f"{k} {v:g}" for k, v in noise.items()))
    ticks = np.linspace(0, n + n_d, 9).astype(int)
    click.echo("pulse   " + "  ".join(f"{p:>6d}" for p in ticks))
    click.echo("g       " + "  ".join(f"{g[p]:6.3f}" for p in ticks))
    io.check_writable(Path(out), "--out")
    if save:  # checked before anything is drawn
        target = Path(save)
        if target.is_dir():
            raise click.BadParameter(f"{save} is a folder; give a file name such as mydevice.json", param_hint="'--save'")
        io.check_writable(target.parent, "--save")
    paths = plot_device_response(dev, folder / "conductance")
    click.echo("figure: " + ", ".join(str(p) for p in paths))
    if save:
        save_device(dev, save)
        click.echo(f"device: {save}")
    return 0


@cli.command()
def devices():
    """List the device presets (NeuroSim benchmark devices) with their sources."""
    from devsim.presets import preset_table

    rows = preset_table()
    header = f"{'name':<10} {'device':<17} {'levels':>6} {'NL LTP':>7} {'NL LTD':>7} {'A_p':>7} {'A_d':>7} {'on/off':>6} {'C2C':>5} {'NeuroSim':>8}  source"
    click.echo(header)
    for r in rows:
        click.echo(
            f"{r['name']:<10} {r['device']:<17} {r['levels']:>6d} {r['nl_ltp']:>7.3g} {r['nl_ltd']:>7.3g} {r['a_p']:>7.3g} "
            f"{r['a_d']:>7.3g} {r['on_off']:>6.3g} {r['c2c']:>5.1%} {r['neurosim_accuracy']:>8.0%}  {r['source']}"
        )
    click.echo("NeuroSim: online MNIST accuracy of its 400-100-10 MLP (MLP+NeuroSim V3.0 manual, Table II). "
               "Use: devsim run --device ag-si")
    click.echo("Your own device: devsim fit pulses.csv [--table] writes a device.json for --device "
               "(--table: the measured response itself, kind 'table').")
    return 0


@cli.command()
@click.argument("folder")
@click.option("--out", default=None, help="Where to write the figures (default: the run folder, or <sweep>/figures).")
def plot(folder, out):
    """Regenerate every figure of a run or sweep results folder (never retrains).

    A sweep gets accuracy curves per swept value, final accuracy against each swept
    option, (A_p, A_d) heatmaps and accuracy against states; a run gets accuracy,
    conductance, prediction grids and confusion matrices. An unfinished run
    (NAME.partial) is drawn as far as it got, with a note on stderr.
    """
    from pathlib import Path

    if not Path(folder).is_dir():
        raise click.BadParameter(f"{folder} is not a folder", param_hint="'FOLDER'")
    with quiet_stderr():
        from devsim.figures import ResultsError, make_figures

    try:
        paths = make_figures(folder, out=out, warn=lambda m: click.echo(m, err=True))
    except ResultsError as exc:  # a file that is not what devsim writes, or an --out that cannot be written
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'FOLDER'") from None
    for path in paths:
        click.echo(str(path))
    return 0


def main(argv=None):
    """Console entry point: click, with one-line errors.

    Exit status 2: bad input (an option, a file), reported before anything is
    written. 1: a run that failed or diverged, or work stopped part way (a
    full disk, a sweep that cannot record a failure); what had finished is
    kept. 130: interrupted.
    """
    from devsim.data import DataError
    from devsim.errors import ConfigError, SweepStopped
    from devsim.fitting import FitError

    import warnings

    warnings.formatwarning = _warning_line
    try:
        status = cli.main(args=argv, prog_name="devsim", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (ConfigError, DataError, FitError) as exc:
        click.echo(f"Error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except SweepStopped as exc:
        click.echo(f"Error: {_one_line(exc)}", err=True)
        sys.exit(1)
    except OSError as exc:  # e.g. the disk filled up while a run was writing
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(f"Error: {where}{exc.strerror or exc}; finished results are kept", err=True)
        sys.exit(1)
    except (click.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line, without the Python source line they were raised from."""
    return f"Warning: {' '.join(str(message).split())}\n"


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    main()
